/**
 * Analytics benchmark: `npm run bench -- analytics` (about 7 minutes on 2 cores).
 *
 * Starts its own DynamoDB Local, loads three users with 100, 10,000 and 100,000 transactions, then measures
 * the real GET /users/{id}/analytics handler in-process (cache off) for all time and for a 30-day period:
 * median and p95 over BENCH_REQUESTS (200) requests each, measured in interleaved rounds so warm-up affects
 * every user alike, and the read units one such request consumes.
 *
 * Loading: every user's transaction items are written with BatchWriteItem and the stream is drained through
 * the real poller and aggregator (~300 records/s here; 100,000 take about 6 minutes), then each user is
 * reconciled against a recompute. `BENCH_STREAM_UP_TO=10000` builds the larger users' AGG and DAY# items from
 * the recompute instead (identical items; the read path does not care how they were built), for a quick run.
 */
import { performance } from 'node:perf_hooks';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Context } from 'aws-lambda';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BatchWriteItemCommand, DynamoDBClient, type AttributeValue, type WriteRequest } from '@aws-sdk/client-dynamodb';
import { DynamoDBStreamsClient } from '@aws-sdk/client-dynamodb-streams';
import { startDynamoDbLocal } from '../local/dynamodb-local.ts';
import { ensureTable } from '../local/table.ts';
import { startStreamPoller } from '../local/stream-poller.ts';
import { AggregateStore } from '../lambdas/adapters/aggregate-store.ts';
import { FileEventPublisher } from '../lambdas/adapters/event-publisher.ts';
import { buildTransactionItem } from '../lambdas/adapters/transaction-item.ts';
import type { TxFacts } from '../lambdas/core/aggregate-delta.ts';
import { AGGREGATE_SK, daySk, userPk } from '../lambdas/core/keys.ts';
import { recompute } from '../lambdas/core/reconcile.ts';
import { logger } from '../lambdas/adapters/logger.ts';
import { createAggregatorHandler } from '../lambdas/stream/aggregate.ts';
import { reconcileUser } from '../scripts/reconcile.ts';

// Keep stdout pure JSON: the shared logger was created (at import) before this line could set its level.
logger.setLogLevel('ERROR');
const REQUESTS = Number(process.env.BENCH_REQUESTS ?? 200);
const WARMUP = 20;
/** Users up to this size are aggregated through the real stream + aggregator (BENCH_STREAM_UP_TO). */
const STREAM_UP_TO = Number(process.env.BENCH_STREAM_UP_TO ?? 100_000);
const SIZES = [100, 10_000, 100_000];
const DAYS_SPAN = 1000; // transactions spread over this many consecutive days
const START_DAY = Date.UTC(2023, 0, 1);
const WRITE_CONCURRENCY = 8;

const s = (v: string): AttributeValue => ({ S: v });
const n = (v: bigint | number): AttributeValue => ({ N: v.toString() });

function transactionsFor(userId: string, count: number): (TxFacts & { id: string })[] {
  const out: (TxFacts & { id: string })[] = [];
  let a = count >>> 0; // mulberry32: deterministic per size
  const rand = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  for (let i = 0; i < count; i++) {
    const dayIndex = Math.floor(rand() * Math.min(DAYS_SPAN, count));
    const date = new Date(START_DAY + dayIndex * 86_400_000 + Math.floor(rand() * 86_400_000)).toISOString();
    out.push({
      id: `01B${String(i).padStart(23, '0')}`,
      amountMinor: 1 + Math.floor(rand() * 500_000),
      type: rand() < 0.5 ? 'credit' : 'debit',
      date,
      updatedAt: '2026-01-01T00:00:00.000Z',
    });
  }
  return out;
}

async function batchWrite(dynamo: DynamoDBClient, tableName: string, requests: WriteRequest[]): Promise<void> {
  const chunks: WriteRequest[][] = [];
  for (let i = 0; i < requests.length; i += 25) chunks.push(requests.slice(i, i + 25));
  let next = 0;
  const worker = async () => {
    while (next < chunks.length) {
      let pending: WriteRequest[] | undefined = chunks[next++];
      for (let round = 0; pending && pending.length > 0; round++) {
        const out = await dynamo.send(new BatchWriteItemCommand({ RequestItems: { [tableName]: pending } }));
        pending = out.UnprocessedItems?.[tableName];
        if (pending && pending.length > 0) await new Promise((r) => setTimeout(r, Math.min(500, 10 * 2 ** round)));
      }
    }
  };
  await Promise.all(Array.from({ length: WRITE_CONCURRENCY }, worker));
}

function transactionPuts(userId: string, txs: (TxFacts & { id: string })[]): WriteRequest[] {
  return txs.map((tx) => {
    const item = buildTransactionItem({
      transaction_id: tx.id,
      user_id: userId,
      full_name_ct: 'v1.1.YmVuY2g.YmVuY2hjaXBoZXJ0ZXh0',
      key_version: 1,
      amount_minor: Number(tx.amountMinor),
      type: tx.type,
      date: tx.date,
      version: 1,
      created_at: tx.updatedAt,
      updated_at: tx.updatedAt,
    });
    const attrs: Record<string, AttributeValue> = {};
    for (const [k, v] of Object.entries(item)) attrs[k] = typeof v === 'number' ? n(v) : s(String(v));
    return { PutRequest: { Item: attrs } };
  });
}

/** The AGG and DAY# items exactly as the aggregator leaves them, from the recompute. */
function aggregatePuts(userId: string, txs: TxFacts[]): WriteRequest[] {
  const truth = recompute(txs);
  const a = truth.aggregate;
  const pk = s(userPk(userId));
  const agg: Record<string, AttributeValue> = {
    PK: pk,
    SK: s(AGGREGATE_SK),
    count: n(a.count),
    sum: n(a.credit + a.debit),
    credit: n(a.credit),
    debit: n(a.debit),
    rev: n(txs.length),
    ...(a.asOf ? { as_of: s(a.asOf) } : {}),
    ...(a.busiestDay ? { busiest_day: s(a.busiestDay.day), busiest_count: n(a.busiestDay.count) } : {}),
  };
  const days = [...truth.days.values()].map((d) => ({
    PutRequest: {
      Item: { PK: pk, SK: s(daySk(d.day)), count: n(d.count), credit: n(d.credit), debit: n(d.debit), as_of: s(a.asOf ?? '') },
    },
  }));
  return [{ PutRequest: { Item: agg } }, ...days];
}

const percentile = (sorted: number[], p: number): number => sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
const round = (x: number, digits = 3): number => Number(x.toFixed(digits));

/** One request kind: `time` is what is measured (the real handler), `cost` reads the same figures through the store once to report the read units. */
interface Run {
  time: () => Promise<void>;
  cost: () => Promise<{ consumedReadUnits: number; requests: number }>;
}

/**
 * Measures several request kinds in interleaved rounds (one request of each kind per round), so warm-up,
 * JIT and DynamoDB Local's own state affect every kind alike.
 */
async function measureInterleaved(runs: Run[]) {
  for (let i = 0; i < WARMUP; i++) for (const run of runs) await run.time();
  const times = runs.map(() => [] as number[]);
  for (let i = 0; i < REQUESTS; i++) {
    for (const [k, run] of runs.entries()) {
      const t0 = performance.now();
      await run.time();
      times[k]!.push(performance.now() - t0);
    }
  }
  const costs: { consumedReadUnits: number; requests: number }[] = [];
  for (const run of runs) costs.push(await run.cost());
  return runs.map((_, k) => {
    const sorted = times[k]!.sort((a, b) => a - b);
    return {
      median_ms: round(percentile(sorted, 50)),
      p95_ms: round(percentile(sorted, 95)),
      read_units_per_request: costs[k]!.consumedReadUnits,
      dynamodb_requests_per_read: costs[k]!.requests,
    };
  });
}

/** The real GET /users/{id}/analytics handler, invoked in-process with the cache off and auth switched off. */
async function analyticsHandler(endpoint: string, tableName: string) {
  Object.assign(process.env, {
    AWS_ENDPOINT_URL_DYNAMODB: endpoint,
    AWS_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: 'local',
    AWS_SECRET_ACCESS_KEY: 'local',
    TABLE_NAME: tableName,
    REDIS_URL: '',
    AUTH_MODE: 'off',
  });
  type Invoke = (event: APIGatewayProxyEventV2, context: Context) => Promise<APIGatewayProxyStructuredResultV2>;
  const { handler } = (await import('../lambdas/http/get-analytics.ts')) as unknown as { handler: Invoke };
  const context = { functionName: 'GetAnalytics', awsRequestId: 'bench', getRemainingTimeInMillis: () => 10_000 } as unknown as Context;
  return async (userId: string, period: { from: string; to: string } | null): Promise<void> => {
    const event = {
      version: '2.0',
      routeKey: 'GET /users/{user_id}/analytics',
      rawPath: `/users/${userId}/analytics`,
      rawQueryString: '',
      headers: {},
      ...(period ? { queryStringParameters: period } : {}),
      pathParameters: { user_id: userId },
      requestContext: { requestId: 'bench', http: { method: 'GET', path: `/users/${userId}/analytics`, protocol: 'HTTP/1.1', sourceIp: '127.0.0.1', userAgent: 'bench' } },
      isBase64Encoded: false,
    } as unknown as APIGatewayProxyEventV2;
    const result = await handler(event, context);
    if (result.statusCode !== 200) throw new Error(`analytics answered ${result.statusCode}: ${result.body}`);
  };
}

async function main(): Promise<void> {
  const started = performance.now();
  const local = await startDynamoDbLocal();
  const dir = await mkdtemp(join(tmpdir(), 'tally-bench-'));
  try {
    const clientConfig = { endpoint: local.endpoint, region: 'us-east-1', credentials: { accessKeyId: 'local', secretAccessKey: 'local' } };
    const dynamo = new DynamoDBClient(clientConfig);
    const streams = new DynamoDBStreamsClient(clientConfig);
    const tableName = 'tally-bench';
    const streamArn = await ensureTable(dynamo, tableName);
    const store = new AggregateStore(dynamo, tableName);
    const loaded: { size: number; userId: string; viaStream: boolean; loadMs: number; reconciled: boolean; dayItems: number; period: { from: string; to: string } }[] = [];
    for (const size of SIZES) {
      const userId = `bench-${size}`;
      const txs = transactionsFor(userId, size);
      const loadStart = performance.now();
      const viaStream = size <= STREAM_UP_TO;
      if (viaStream) {
        const handler = createAggregatorHandler({
          store,
          publisher: new FileEventPublisher(join(dir, 'events.jsonl')),
          largeAmountThresholdMinor: 1_000_000,
        });
        const poller = startStreamPoller({ streamArn, handler, client: streams, batchSize: 100, batchingWindowMs: 50, pollIntervalMs: 100 });
        await batchWrite(dynamo, tableName, transactionPuts(userId, txs));
        await poller.drained(Math.max(120_000, size * 10));
        await poller.stop();
      } else {
        await batchWrite(dynamo, tableName, transactionPuts(userId, txs));
        await batchWrite(dynamo, tableName, aggregatePuts(userId, txs));
      }
      const loadMs = performance.now() - loadStart;
      const report = await reconcileUser(dynamo, tableName, userId);
      const lastDay = new Date(START_DAY + (Math.min(DAYS_SPAN, size) - 1) * 86_400_000).toISOString().slice(0, 10);
      const firstOfPeriod = new Date(Date.parse(`${lastDay}T00:00:00Z`) - 29 * 86_400_000).toISOString().slice(0, 10);
      loaded.push({ size, userId, viaStream, loadMs, reconciled: report.differences.length === 0, dayItems: recompute(txs).days.size, period: { from: firstOfPeriod, to: lastDay } });
    }
    const invoke = await analyticsHandler(local.endpoint, tableName);
    const runs: Run[] = loaded.flatMap((u) => [
      { time: () => invoke(u.userId, null), cost: () => store.analyticsFor(u.userId, null) },
      { time: () => invoke(u.userId, u.period), cost: () => store.analyticsFor(u.userId, u.period) },
    ]);
    const figures = await measureInterleaved(runs);
    const results = [];
    for (const [i, u] of loaded.entries()) {
      const sample = (await store.analyticsFor(u.userId, null)).value;
      results.push({
        transactions: u.size,
        load: u.viaStream ? 'batch-write + stream drained through the real aggregator' : 'batch-write + AGG/DAY# items from the recompute',
        load_seconds: round(u.loadMs / 1000, 1),
        reconciled: u.reconciled,
        day_items: u.dayItems,
        all_time: figures[2 * i]!,
        period_30_days: { ...u.period, ...figures[2 * i + 1]! },
        sample: { transaction_count: sample.transaction_count, average_transaction_value: sample.average_transaction_value, busiest_day: sample.busiest_day },
      });
    }
    const first = results[0]!;
    const last = results[results.length - 1]!;
    console.log(
      JSON.stringify(
        {
          bench: 'analytics',
          what: 'the GET /users/{id}/analytics handler in-process (middleware, validation, one DynamoDB read, arithmetic), cache off, strongly consistent reads, DynamoDB Local',
          requests_per_measure: REQUESTS,
          results,
          all_time_median_ratio_largest_vs_smallest: round(last.all_time.median_ms / first.all_time.median_ms, 2),
          all_time_p95_ratio_largest_vs_smallest: round(last.all_time.p95_ms / first.all_time.p95_ms, 2),
          total_seconds: round((performance.now() - started) / 1000, 1),
        },
        null,
        2,
      ),
    );
  } finally {
    await local.process.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
