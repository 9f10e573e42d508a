import { appendFile, mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import {
  DescribeStreamCommand,
  DynamoDBStreamsClient,
  GetRecordsCommand,
  GetShardIteratorCommand,
  type _Record as StreamsRecord,
  type AttributeValue as StreamsAttributeValue,
  type Shard,
} from '@aws-sdk/client-dynamodb-streams';
import type { AttributeValue, DynamoDBBatchResponse, DynamoDBRecord, DynamoDBStreamEvent } from 'aws-lambda';

/**
 * Reads a DynamoDB (Local) stream and invokes a handler the way Lambda's event source mapping does: per
 * shard, in order, in batches of at most `batchSize` records gathered for at most `batchingWindowMs`; a
 * shard's children start once the parent is exhausted. On `batchItemFailures` the batch is retried from the
 * lowest failed sequence number (records before it are checkpointed); a thrown error retries the whole batch;
 * after `maxRetries` retries the failed records go to the dead-letter JSONL file and the shard moves on.
 */

export type StreamHandler = (event: DynamoDBStreamEvent) => Promise<DynamoDBBatchResponse | void>;

export interface StreamPollerOptions {
  streamArn: string;
  handler: StreamHandler;
  batchSize?: number;
  batchingWindowMs?: number;
  maxRetries?: number;
  deadLetterFile?: string;
  pollIntervalMs?: number;
  /** How often the shard list is described again (new shards after a split or a roll-over). */
  describeIntervalMs?: number;
  client?: DynamoDBStreamsClient;
  onError?: (error: unknown) => void;
}

export interface StreamPoller {
  stop(): Promise<void>;
  /** Resolves when every record written before the call has been delivered (or dead-lettered). */
  drained(timeoutMs?: number): Promise<void>;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** SDK stream record → the Lambda event's record (binary as base64, creation time in epoch seconds). */
function toLambdaValue(v: StreamsAttributeValue): AttributeValue {
  if (v.B !== undefined) return { B: Buffer.from(v.B).toString('base64') };
  if (v.BS !== undefined) return { BS: v.BS.map((b) => Buffer.from(b).toString('base64')) };
  if (v.L !== undefined) return { L: v.L.map(toLambdaValue) };
  if (v.M !== undefined) return { M: toLambdaImage(v.M) ?? {} };
  return v as AttributeValue;
}
function toLambdaImage(image: Record<string, StreamsAttributeValue> | undefined): Record<string, AttributeValue> | undefined {
  if (!image) return undefined;
  return Object.fromEntries(Object.entries(image).map(([k, v]) => [k, toLambdaValue(v)]));
}

/**
 * One stream record as Lambda's event source mapping delivers it. DynamoDB Local rounds
 * `ApproximateCreationDateTime` down to the minute (AWS: to the second), so it is raised to the second at which
 * the record was read, `fetchedAtMs` — never before the write, and stable across redeliveries of this object.
 */
export function toLambdaRecord(record: StreamsRecord, streamArn: string, region: string, fetchedAtMs: number = Date.now()): DynamoDBRecord {
  const d = record.dynamodb ?? {};
  const created =
    d.ApproximateCreationDateTime === undefined
      ? undefined
      : Math.max(Math.floor(new Date(d.ApproximateCreationDateTime).getTime() / 1000), Math.floor(fetchedAtMs / 1000));
  const out: DynamoDBRecord = {
    eventID: record.eventID,
    eventName: record.eventName,
    eventVersion: record.eventVersion ?? '1.1',
    eventSource: 'aws:dynamodb',
    awsRegion: record.awsRegion ?? region,
    eventSourceARN: streamArn,
    dynamodb: {
      ...(created !== undefined ? { ApproximateCreationDateTime: created } : {}),
      Keys: toLambdaImage(d.Keys),
      ...(d.NewImage ? { NewImage: toLambdaImage(d.NewImage) } : {}),
      ...(d.OldImage ? { OldImage: toLambdaImage(d.OldImage) } : {}),
      SequenceNumber: d.SequenceNumber,
      SizeBytes: d.SizeBytes,
      StreamViewType: d.StreamViewType,
    },
  };
  return out;
}

const seqOf = (r: DynamoDBRecord): bigint => BigInt(r.dynamodb?.SequenceNumber ?? '0');

interface ShardState {
  shard: Shard;
  started: boolean;
  done: boolean;
  /** Start time of the latest poll that found nothing new, with nothing buffered or in flight. */
  caughtUpAt: number;
}

export function startStreamPoller(options: StreamPollerOptions): StreamPoller {
  const batchSize = options.batchSize ?? 100;
  const windowMs = options.batchingWindowMs ?? 0;
  const maxRetries = options.maxRetries ?? 3;
  const pollIntervalMs = options.pollIntervalMs ?? 150;
  const describeIntervalMs = options.describeIntervalMs ?? 1000;
  const client = options.client ?? new DynamoDBStreamsClient({});
  const onError = options.onError ?? ((e) => console.error('[stream-poller]', e));
  const shards = new Map<string, ShardState>();
  const workers = new Set<Promise<void>>();
  let stopped = false;
  let lastDescribeStartedAt = 0;
  let region = 'us-east-1';

  async function deadLetter(records: DynamoDBRecord[], reason: string, attempts: number): Promise<void> {
    if (!options.deadLetterFile || records.length === 0) return;
    await mkdir(dirname(options.deadLetterFile), { recursive: true });
    const at = new Date().toISOString();
    // Like Lambda's on-failure destination: where the record is, not what it holds (images carry ciphertexts).
    const lines = records.map((record) =>
      JSON.stringify({
        at,
        reason,
        attempts,
        eventSourceARN: options.streamArn,
        eventID: record.eventID,
        eventName: record.eventName,
        sequenceNumber: record.dynamodb?.SequenceNumber,
        keys: record.dynamodb?.Keys,
        approximateCreationDateTime: record.dynamodb?.ApproximateCreationDateTime,
      }),
    );
    await appendFile(options.deadLetterFile, lines.join('\n') + '\n', 'utf8');
  }

  /** Delivers one batch with the event source mapping's retry rules. */
  async function deliver(batch: DynamoDBRecord[]): Promise<void> {
    let records = batch;
    for (let attempt = 0; ; attempt++) {
      let failed: DynamoDBRecord[];
      let reason: string;
      try {
        const response = await options.handler({ Records: records });
        const ids = new Set((response?.batchItemFailures ?? []).map((f) => f.itemIdentifier));
        if (ids.size === 0) return;
        const known = records.filter((r) => ids.has(r.dynamodb?.SequenceNumber ?? ''));
        // An identifier that is not a record of the batch fails the whole batch (as in Lambda).
        failed = known.length === ids.size ? known : records;
        reason = 'batchItemFailures';
      } catch (error) {
        failed = records;
        reason = `handler error: ${(error as Error).message}`;
      }
      if (attempt >= maxRetries) {
        await deadLetter(failed, reason, attempt + 1);
        return;
      }
      const lowest = failed.reduce((min, r) => (seqOf(r) < min ? seqOf(r) : min), seqOf(failed[0]!));
      records = records.filter((r) => seqOf(r) >= lowest);
      await sleep(Math.min(1000, 50 * 2 ** attempt));
    }
  }

  async function runShard(state: ShardState): Promise<void> {
    const shardId = state.shard.ShardId!;
    let iterator: string | undefined = (
      await client.send(new GetShardIteratorCommand({ StreamArn: options.streamArn, ShardId: shardId, ShardIteratorType: 'TRIM_HORIZON' }))
    ).ShardIterator;
    const buffer: DynamoDBRecord[] = [];
    let firstBufferedAt = 0;
    while (!stopped) {
      const pollStartedAt = Date.now();
      let got = 0;
      if (iterator) {
        const out = await client.send(new GetRecordsCommand({ ShardIterator: iterator, Limit: 1000 }));
        iterator = out.NextShardIterator;
        for (const r of out.Records ?? []) {
          if (buffer.length === 0) firstBufferedAt = Date.now();
          buffer.push(toLambdaRecord(r, options.streamArn, region));
          got += 1;
        }
      }
      const closed = !iterator;
      if (buffer.length > 0 && (buffer.length >= batchSize || Date.now() - firstBufferedAt >= windowMs || closed)) {
        await deliver(buffer.splice(0, batchSize));
        if (buffer.length > 0) firstBufferedAt = Date.now();
        continue;
      }
      if (closed && buffer.length === 0) {
        state.done = true;
        return;
      }
      if (got === 0 && buffer.length === 0) state.caughtUpAt = pollStartedAt;
      const wait = buffer.length > 0 ? Math.min(pollIntervalMs, Math.max(1, windowMs - (Date.now() - firstBufferedAt))) : pollIntervalMs;
      if (got === 0 || buffer.length > 0) await sleep(wait);
    }
  }

  function startReadyShards(): void {
    for (const state of shards.values()) {
      if (state.started) continue;
      const parentId = state.shard.ParentShardId;
      const parent = parentId ? shards.get(parentId) : undefined;
      if (parent && !parent.done) continue; // children wait for the parent to be exhausted
      state.started = true;
      const worker = runShard(state)
        .catch((error) => {
          onError(error);
          state.started = false; // picked up again on the next describe
        })
        .finally(() => workers.delete(worker));
      workers.add(worker);
    }
  }

  async function describe(): Promise<void> {
    lastDescribeStartedAt = Date.now();
    let exclusiveStartShardId: string | undefined;
    do {
      const out = await client.send(new DescribeStreamCommand({ StreamArn: options.streamArn, ExclusiveStartShardId: exclusiveStartShardId }));
      const description = out.StreamDescription;
      for (const shard of description?.Shards ?? []) {
        if (shard.ShardId && !shards.has(shard.ShardId)) shards.set(shard.ShardId, { shard, started: false, done: false, caughtUpAt: 0 });
      }
      exclusiveStartShardId = description?.LastEvaluatedShardId;
    } while (exclusiveStartShardId);
    startReadyShards();
  }

  const supervisor = (async () => {
    region = await client.config.region().catch(() => region);
    while (!stopped) {
      try {
        await describe();
      } catch (error) {
        onError(error);
      }
      const until = Date.now() + describeIntervalMs;
      while (!stopped && Date.now() < until) {
        startReadyShards(); // children of a shard that just finished
        await sleep(Math.min(pollIntervalMs, 50));
      }
    }
  })();

  return {
    async stop() {
      stopped = true;
      await supervisor;
      await Promise.all([...workers]);
    },
    async drained(timeoutMs = 30_000) {
      const since = Date.now();
      const deadline = since + timeoutMs;
      await describe(); // shards opened before the call are known from here on
      for (;;) {
        const all = [...shards.values()];
        const caughtUp = lastDescribeStartedAt >= since && all.every((s) => s.done || (s.started && s.caughtUpAt >= since));
        if (caughtUp) return;
        if (stopped) throw new Error('stream poller stopped before draining');
        if (Date.now() > deadline) throw new Error(`stream not drained within ${timeoutMs} ms`);
        await sleep(20);
      }
    },
  };
}
