import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { BatchWriteItemCommand, DeleteTableCommand, DynamoDBClient, PutItemCommand } from '@aws-sdk/client-dynamodb';
import type { DynamoDBBatchResponse, DynamoDBStreamEvent } from 'aws-lambda';
import { ensureTable } from '../../local/table.ts';
import { startStreamPoller, type StreamHandler } from '../../local/stream-poller.ts';

const dynamo = new DynamoDBClient({});
let tableName: string;
let streamArn: string;
let dir: string;

beforeAll(async () => {
  tableName = `poller-${randomUUID()}`;
  streamArn = await ensureTable(dynamo, tableName);
  dir = await mkdtemp(join(tmpdir(), 'tally-poller-'));
});

afterAll(async () => {
  await dynamo.send(new DeleteTableCommand({ TableName: tableName }));
  await rm(dir, { recursive: true, force: true });
});

const item = (pk: string, sk: string) => ({ PK: { S: pk }, SK: { S: sk } });

async function batchPut(pk: string, sks: string[]): Promise<void> {
  for (let i = 0; i < sks.length; i += 25) {
    await dynamo.send(
      new BatchWriteItemCommand({ RequestItems: { [tableName]: sks.slice(i, i + 25).map((sk) => ({ PutRequest: { Item: item(pk, sk) } })) } }),
    );
  }
}

/** A handler that records every delivery and lets each test decide the response. */
function recordingHandler(respond: (event: DynamoDBStreamEvent, call: number) => DynamoDBBatchResponse | Promise<DynamoDBBatchResponse>) {
  const deliveries: DynamoDBStreamEvent[] = [];
  const handler: StreamHandler = async (event) => {
    deliveries.push(event);
    return respond(event, deliveries.length);
  };
  return { handler, deliveries };
}

const sksOf = (event: DynamoDBStreamEvent, pk: string): string[] =>
  event.Records.filter((r) => r.dynamodb?.Keys?.PK?.S === pk).map((r) => r.dynamodb?.Keys?.SK?.S ?? '');

describe('stream poller (DynamoDB Local)', () => {
  it('delivers real DynamoDBStreamEvent records in order, in batches of at most batchSize', async () => {
    const pk = `batch-${randomUUID()}`;
    const { handler, deliveries } = recordingHandler(() => ({ batchItemFailures: [] }));
    const poller = startStreamPoller({ streamArn, handler, batchSize: 7, batchingWindowMs: 200, pollIntervalMs: 100 });
    try {
      const sks = Array.from({ length: 30 }, (_, i) => `S#${String(i).padStart(3, '0')}`);
      await batchPut(pk, sks);
      await poller.drained();
      const mine = deliveries.filter((e) => sksOf(e, pk).length > 0);
      expect(mine.every((e) => e.Records.length <= 7)).toBe(true);
      expect(mine.flatMap((e) => sksOf(e, pk))).toEqual(sks);
      const record = mine[0]!.Records[0]!;
      expect(record).toMatchObject({
        eventName: 'INSERT',
        eventSource: 'aws:dynamodb',
        eventSourceARN: streamArn,
        awsRegion: expect.any(String),
        dynamodb: {
          Keys: { PK: { S: pk }, SK: { S: 'S#000' } },
          NewImage: { PK: { S: pk }, SK: { S: 'S#000' } },
          SequenceNumber: expect.any(String),
          SizeBytes: expect.any(Number),
          StreamViewType: 'NEW_AND_OLD_IMAGES',
          ApproximateCreationDateTime: expect.any(Number),
        },
      });
      expect(typeof record.eventID).toBe('string');
    } finally {
      await poller.stop();
    }
  });

  it('retries from the lowest failed sequence number; records before it are not redelivered', async () => {
    const pk = `retry-${randomUUID()}`;
    let failedOnce = false;
    const { handler, deliveries } = recordingHandler((event) => {
      const third = event.Records.find((r) => r.dynamodb?.Keys?.SK?.S === 'S#2' && r.dynamodb?.Keys?.PK?.S === pk);
      if (!third || failedOnce) return { batchItemFailures: [] };
      failedOnce = true;
      return { batchItemFailures: [{ itemIdentifier: third.dynamodb!.SequenceNumber! }] };
    });
    const poller = startStreamPoller({ streamArn, handler, batchSize: 10, batchingWindowMs: 300, pollIntervalMs: 100 });
    try {
      await batchPut(pk, ['S#0', 'S#1', 'S#2', 'S#3', 'S#4']);
      await poller.drained();
      const mine = deliveries.map((e) => sksOf(e, pk)).filter((l) => l.length > 0);
      expect(mine).toEqual([
        ['S#0', 'S#1', 'S#2', 'S#3', 'S#4'],
        ['S#2', 'S#3', 'S#4'],
      ]);
    } finally {
      await poller.stop();
    }
  });

  it('a thrown handler error retries the whole batch', async () => {
    const pk = `throw-${randomUUID()}`;
    let thrown = false;
    const { handler, deliveries } = recordingHandler((event) => {
      if (!thrown && sksOf(event, pk).length > 0) {
        thrown = true;
        throw new Error('boom');
      }
      return { batchItemFailures: [] };
    });
    const poller = startStreamPoller({ streamArn, handler, batchSize: 10, batchingWindowMs: 300, pollIntervalMs: 100 });
    try {
      await batchPut(pk, ['S#0', 'S#1', 'S#2']);
      await poller.drained();
      expect(deliveries.map((e) => sksOf(e, pk)).filter((l) => l.length > 0)).toEqual([
        ['S#0', 'S#1', 'S#2'],
        ['S#0', 'S#1', 'S#2'],
      ]);
    } finally {
      await poller.stop();
    }
  });

  it('a record that always fails lands in the dead-letter file after the bounded retries; later records still flow', async () => {
    const pk = `poison-${randomUUID()}`;
    const deadLetterFile = join(dir, 'dlq.jsonl');
    const { handler, deliveries } = recordingHandler((event) => ({
      batchItemFailures: event.Records.filter((r) => r.dynamodb?.Keys?.SK?.S === 'POISON' && r.dynamodb?.Keys?.PK?.S === pk).map((r) => ({
        itemIdentifier: r.dynamodb!.SequenceNumber!,
      })),
    }));
    const poller = startStreamPoller({ streamArn, handler, batchSize: 10, batchingWindowMs: 0, maxRetries: 2, deadLetterFile, pollIntervalMs: 100 });
    try {
      await dynamo.send(new PutItemCommand({ TableName: tableName, Item: item(pk, 'POISON') }));
      await poller.drained();
      await dynamo.send(new PutItemCommand({ TableName: tableName, Item: item(pk, 'AFTER') }));
      await poller.drained();
      const poisonDeliveries = deliveries.filter((e) => sksOf(e, pk).includes('POISON'));
      expect(poisonDeliveries).toHaveLength(3); // first try + 2 retries
      expect(deliveries.some((e) => sksOf(e, pk).includes('AFTER'))).toBe(true);
      const lines = (await readFile(deadLetterFile, 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatchObject({ attempts: 3, reason: 'batchItemFailures', keys: { SK: { S: 'POISON' } }, eventName: 'INSERT' });
      expect(lines[0]).toHaveProperty('sequenceNumber');
      expect(JSON.stringify(lines[0])).not.toContain('NewImage');
    } finally {
      await poller.stop();
    }
  });
});
