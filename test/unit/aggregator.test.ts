import {
  BatchGetItemCommand,
  DynamoDBClient,
  GetItemCommand,
  ProvisionedThroughputExceededException,
  QueryCommand,
  TransactionCanceledException,
  TransactWriteItemsCommand,
  UpdateItemCommand,
  type AttributeValue,
  type TransactWriteItem,
} from '@aws-sdk/client-dynamodb';
import { marshall } from '@aws-sdk/util-dynamodb';
import type { DynamoDBRecord } from 'aws-lambda';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import { AggregateStore } from '../../lambdas/adapters/aggregate-store.ts';
import type { DomainEventPublisher } from '../../lambdas/adapters/event-publisher.ts';
import { buildTransactionItem } from '../../lambdas/adapters/transaction-item.ts';
import type { DomainEvent } from '../../lambdas/core/aggregate-delta.ts';
import { createAggregatorHandler } from '../../lambdas/stream/aggregate.ts';

/**
 * The coalescing aggregator against a mocked DynamoDBClient (aws-sdk-client-mock): a small in-memory table
 * answers the store's commands, so the tests see what is sent and what it would have counted.
 */

const TABLE = 'unit-table';
const ddb = mockClient(DynamoDBClient);

/** The fake table: markers, and the numbers of AGG / DAY# items; plus what to fail. */
let markers: Set<string>;
let numbers: Map<string, Record<string, bigint>>;
let throttledUsers: Set<string>;
let published: DomainEvent[][];
let failPublishFor: string | undefined;

const keyOf = (key: Record<string, AttributeValue>): string => `${key.PK?.S}|${key.SK?.S}`;
/** The ADD values of the store's updates, by attribute. */
const ADDED: Record<string, string> = { ':count': 'count', ':sum': 'sum', ':credit': 'credit', ':debit': 'debit', ':one': 'rev' };

function installTable(): void {
  ddb.reset();
  markers = new Set();
  numbers = new Map();
  throttledUsers = new Set();
  published = [];
  failPublishFor = undefined;
  ddb.on(TransactWriteItemsCommand).callsFake((input: { TransactItems: TransactWriteItem[] }) => {
    const items = input.TransactItems;
    if (items.some((i) => throttledUsers.has(String((i.Put?.Item ?? i.Update?.Key)?.PK?.S).replace('USER#', '')))) {
      throw new ProvisionedThroughputExceededException({ message: 'throttled', $metadata: {} });
    }
    const reasons = items.map((i) => ({ Code: i.Put && markers.has(keyOf(i.Put.Item!)) ? 'ConditionalCheckFailed' : 'None' }));
    if (reasons.some((r) => r.Code !== 'None')) {
      throw new TransactionCanceledException({ message: 'cancelled', $metadata: {}, CancellationReasons: reasons });
    }
    for (const item of items) {
      if (item.Put) markers.add(keyOf(item.Put.Item!));
      if (item.Update) {
        const target = numbers.get(keyOf(item.Update.Key!)) ?? {};
        for (const [placeholder, value] of Object.entries(item.Update.ExpressionAttributeValues ?? {})) {
          const attribute = ADDED[placeholder];
          if (attribute) target[attribute] = (target[attribute] ?? 0n) + BigInt(value.N!);
        }
        numbers.set(keyOf(item.Update.Key!), target);
      }
    }
    return {};
  });
  ddb.on(GetItemCommand).callsFake((input: { Key: Record<string, AttributeValue> }) => {
    const found = numbers.get(keyOf(input.Key));
    return found ? { Item: { ...input.Key, rev: { N: String(found.rev ?? 0n) } } } : {};
  });
  ddb.on(BatchGetItemCommand).callsFake((input: { RequestItems: Record<string, { Keys: Record<string, AttributeValue>[] }> }) => ({
    Responses: {
      [TABLE]: input.RequestItems[TABLE]!.Keys.flatMap((k) => {
        const found = numbers.get(keyOf(k));
        return found ? [{ SK: k.SK!, count: { N: String(found.count ?? 0n) } }] : [];
      }),
    },
  }));
  ddb.on(QueryCommand).resolves({ Items: [] });
  ddb.on(UpdateItemCommand).resolves({});
}

const publisher: DomainEventPublisher = {
  async publish(events) {
    if (events.some((e) => e.transaction_id === failPublishFor)) throw new Error('publish failed');
    published.push(events);
  },
};

const handler = createAggregatorHandler(() => ({
  store: new AggregateStore(new DynamoDBClient({ region: 'us-east-1' }), TABLE),
  publisher,
  largeAmountThresholdMinor: 1_000_000,
}));

let sequence = 0;
/** An INSERT of one transaction of `userId` on `day`. */
function insert(userId: string, n: number, day = '2026-03-01'): DynamoDBRecord {
  sequence += 1;
  const transactionId = `01K${String(n).padStart(23, '0')}`;
  const image = buildTransactionItem({
    transaction_id: transactionId,
    user_id: userId,
    full_name_ct: 'v1.1.aXY.Y2lwaGVy',
    key_version: 1,
    amount_minor: 100,
    type: 'credit',
    date: `${day}T10:00:00.000Z`,
    version: 1,
    created_at: '2026-06-01T00:00:00.000Z',
    updated_at: new Date(Date.UTC(2026, 5, 1) + sequence * 1000).toISOString(),
  });
  return {
    eventID: `ev-${userId}-${n}`,
    eventName: 'INSERT',
    eventSource: 'aws:dynamodb',
    dynamodb: {
      Keys: { PK: { S: image.PK }, SK: { S: image.SK } },
      NewImage: marshall(image) as never,
      SequenceNumber: String(1000 + sequence),
      StreamViewType: 'NEW_AND_OLD_IMAGES',
    },
  };
}

const transactions = () => ddb.commandCalls(TransactWriteItemsCommand).map((c) => c.args[0].input.TransactItems ?? []);
const markerPuts = (items: TransactWriteItem[]) => items.filter((i) => i.Put?.Item?.SK?.S?.startsWith('APPLIED#'));
const countOf = (userId: string) => Number(numbers.get(`USER#${userId}|AGG`)?.count ?? 0n);
const seq = (r: DynamoDBRecord) => r.dynamodb!.SequenceNumber!;

beforeEach(() => {
  sequence = 0;
  installTable();
});

describe('the aggregator coalesces one user\'s records of a batch', () => {
  it('N records of one user: ONE TransactWriteItems with N markers and the summed ADDs, one refresh', async () => {
    const records = Array.from({ length: 40 }, (_, i) => insert('u1', i, i % 2 ? '2026-03-01' : '2026-03-02'));
    const out = await handler({ Records: records });
    expect(out.batchItemFailures).toEqual([]);
    const sent = transactions();
    expect(sent).toHaveLength(1);
    const markersSent = markerPuts(sent[0]!);
    expect(markersSent).toHaveLength(40);
    expect(new Set(markersSent.map((m) => m.Put!.Item!.SK!.S))).toEqual(new Set(records.map((r) => `APPLIED#${r.eventID}`)));
    expect(markersSent.every((m) => m.Put!.ConditionExpression === 'attribute_not_exists(#pk)')).toBe(true);
    // one ADD on AGG, one per touched day
    expect(sent[0]!.filter((i) => i.Update).map((i) => i.Update!.Key!.SK!.S).sort()).toEqual(['AGG', 'DAY#2026-03-01', 'DAY#2026-03-02']);
    expect(numbers.get('USER#u1|AGG')).toEqual({ count: 40n, sum: 4000n, credit: 4000n, debit: 0n, rev: 1n });
    expect(numbers.get('USER#u1|DAY#2026-03-01')?.count).toBe(20n);
    // one refresh: one read of AGG, one BatchGetItem of the days, as_of raised on AGG and the two days
    expect(ddb.commandCalls(GetItemCommand)).toHaveLength(1);
    expect(ddb.commandCalls(BatchGetItemCommand)).toHaveLength(1);
    expect(ddb.commandCalls(UpdateItemCommand).filter((c) => c.args[0].input.UpdateExpression === 'SET as_of = :t')).toHaveLength(3);
    // still one set of events per record, in stream order
    expect(published.map((events) => events[0]!.id)).toEqual(records.map((r) => r.eventID));
  });

  it('a group larger than a transaction is split into chunks of at most 100 items', async () => {
    const records = Array.from({ length: 150 }, (_, i) => insert('u1', i));
    const out = await handler({ Records: records });
    expect(out.batchItemFailures).toEqual([]);
    const sent = transactions();
    expect(sent.map((items) => items.length)).toEqual([100, 54]);
    expect(sent.map((items) => markerPuts(items).length)).toEqual([98, 52]);
    expect(countOf('u1')).toBe(150);
    expect(ddb.commandCalls(GetItemCommand)).toHaveLength(1);
  });

  it('records on many days: transactions within 100 items, the refresh reads the days 100 keys at a time', async () => {
    const day = (i: number) => new Date(Date.UTC(2025, 0, 1 + i)).toISOString().slice(0, 10);
    const records = Array.from({ length: 150 }, (_, i) => insert('u1', i, day(i)));
    expect((await handler({ Records: records })).batchItemFailures).toEqual([]);
    expect(transactions().every((items) => items.length <= 100)).toBe(true);
    expect(transactions().map((items) => markerPuts(items).length)).toEqual([49, 49, 49, 3]);
    expect(countOf('u1')).toBe(150);
    const keysPerBatchGet = ddb.commandCalls(BatchGetItemCommand).map((c) => c.args[0].input.RequestItems![TABLE]!.Keys!.length);
    expect(keysPerBatchGet).toEqual([100, 50]);
  });

  it('a marker that exists already (a redelivery) makes that chunk fall back to record by record: each counted once', async () => {
    const records = Array.from({ length: 5 }, (_, i) => insert('u1', i));
    // the first two were applied by an earlier delivery
    expect((await handler({ Records: records.slice(0, 2) })).batchItemFailures).toEqual([]);
    expect(countOf('u1')).toBe(2);
    ddb.resetHistory();
    published = [];

    const out = await handler({ Records: records });
    expect(out.batchItemFailures).toEqual([]);
    // the group transaction (cancelled), then one per record: 2 cancelled as duplicates, 3 committed
    expect(transactions().map((items) => markerPuts(items).length)).toEqual([5, 1, 1, 1, 1, 1]);
    expect(countOf('u1')).toBe(5);
    expect(markers.size).toBe(5);
    // events for every record, duplicates included (consumers de-duplicate on the id)
    expect(published.map((events) => events[0]!.id)).toEqual(records.map((r) => r.eventID));

    // the same batch once more: nothing changes
    await handler({ Records: records });
    expect(countOf('u1')).toBe(5);
  });

  it('a throttled group fails its first record and all later records of that user, not the other users\'', async () => {
    throttledUsers.add('hot');
    const records = [insert('hot', 1), insert('calm', 1), insert('hot', 2), insert('calm', 2), insert('hot', 3)];
    const out = await handler({ Records: records });
    const failed = out.batchItemFailures.map((f) => f.itemIdentifier);
    expect(failed).toEqual([records[0]!, records[2]!, records[4]!].map(seq));
    // the lowest failed sequence number, where the event source mapping retries from, is the group's first
    expect(failed.reduce((a, b) => (BigInt(a) < BigInt(b) ? a : b))).toBe(seq(records[0]!));
    expect(countOf('hot')).toBe(0);
    expect(countOf('calm')).toBe(2);
    expect(published.flat().map((e) => e.user_id)).toEqual(['calm', 'calm']);

    // the retry (from the hot user's first record) applies everything once; what was applied is a duplicate
    throttledUsers.clear();
    expect((await handler({ Records: records })).batchItemFailures).toEqual([]);
    expect(countOf('hot')).toBe(3);
    expect(countOf('calm')).toBe(2);
  });

  it('a failed publish fails that record only; its retry finds the marker and publishes again', async () => {
    const records = Array.from({ length: 3 }, (_, i) => insert('u1', i));
    failPublishFor = `01K${String(1).padStart(23, '0')}`;
    const out = await handler({ Records: records });
    expect(out.batchItemFailures.map((f) => f.itemIdentifier)).toEqual([seq(records[1]!)]);
    expect(countOf('u1')).toBe(3);
    failPublishFor = undefined;
    // Lambda redelivers from the failed record: it and the later one come back as duplicates
    expect((await handler({ Records: records.slice(1) })).batchItemFailures).toEqual([]);
    expect(countOf('u1')).toBe(3);
    expect(published.map((events) => events[0]!.id)).toEqual([records[0], records[2], records[1], records[2]].map((r) => r!.eventID));
  });
});
