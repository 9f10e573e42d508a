/**
 * History cache benchmark: `npm run bench -- cache`. Prints JSON.
 *
 * Runs the real list-transactions handler in-process (no HTTP) against its own DynamoDB Local, KMS endpoint
 * and redis-server, for one user with 500 transactions:
 *  - miss: the user's cache version is bumped before each request, so every request queries DynamoDB;
 *  - hit: the same page again;
 *  - read-heavy mix: 95 % reads over 20 users × 6 page shapes, 5 % writes (each write bumps its user's version);
 *  - Redis down: redis-server stopped; the added latency is the median against the same handler with the cache
 *    switched off (REDIS_URL empty), which is the uncached time.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Context } from 'aws-lambda';
import { startDynamoDbLocal } from '../local/dynamodb-local.ts';
import { startKmsServer } from '../local/kms-server.ts';
import { startRedis } from '../local/redis-local.ts';
import { ensureTable } from '../local/table.ts';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { summarise, time } from './stats.ts';

process.env.POWERTOOLS_LOG_LEVEL = 'SILENT';
process.env.AUTH_MODE = 'off';
const ITERATIONS = Number(process.env.BENCH_REQUESTS ?? 300);

type Handler = (event: APIGatewayProxyEventV2, context: Context) => Promise<APIGatewayProxyStructuredResultV2>;
const context = { functionName: 'bench', awsRequestId: 'bench', getRemainingTimeInMillis: () => 10_000 } as unknown as Context;
const event = (method: string, userId: string, query: Record<string, string> = {}, body?: unknown): APIGatewayProxyEventV2 =>
  ({
    version: '2.0',
    routeKey: `${method} /users/{user_id}/transactions`,
    rawPath: `/users/${userId}/transactions`,
    rawQueryString: '',
    headers: { 'content-type': 'application/json' },
    ...(Object.keys(query).length ? { queryStringParameters: query } : {}),
    pathParameters: { user_id: userId },
    requestContext: { requestId: 'bench', http: { method, path: '/', protocol: 'HTTP/1.1', sourceIp: '127.0.0.1', userAgent: 'bench' } },
    ...(body ? { body: JSON.stringify(body) } : {}),
    isBase64Encoded: false,
  }) as unknown as APIGatewayProxyEventV2;

const dataDir = mkdtempSync(join(tmpdir(), 'tally-bench-cache-'));
const dynamo = await startDynamoDbLocal();
const kms = await startKmsServer({ dataDir });
const redis = await startRedis();
Object.assign(process.env, {
  AWS_REGION: 'us-east-1',
  AWS_ACCESS_KEY_ID: 'bench',
  AWS_SECRET_ACCESS_KEY: 'bench',
  AWS_ENDPOINT_URL_DYNAMODB: dynamo.endpoint,
  AWS_ENDPOINT_URL_KMS: kms.endpoint,
  KMS_KEY_ID: kms.alias,
  TABLE_NAME: 'tally-bench',
  REDIS_URL: redis.url,
});
try {
  const client = new DynamoDBClient({ region: 'us-east-1', endpoint: dynamo.endpoint });
  await ensureTable(client, 'tally-bench');
  const list = ((await import('../lambdas/http/list-transactions.ts')) as { handler: Handler }).handler;
  const create = ((await import('../lambdas/http/create-transaction.ts')) as { handler: Handler }).handler;
  const { cache, resetCache, RedisCache } = await import('../lambdas/adapters/cache.ts');
  const { resetConfig } = await import('../lambdas/adapters/config.ts');
  const { resetContainer } = await import('../lambdas/adapters/container.ts');

  const write = (userId: string, i: number) =>
    create(event('POST', userId, {}, {
      full_name: `Bench Person ${i}`,
      transaction_date: new Date(Date.UTC(2026, 0, 1) + i * 3_600_000).toISOString(),
      transaction_amount: `${(i % 500) + 1}.25`,
      transaction_type: i % 3 === 0 ? 'debit' : 'credit',
    }), context);
  for (let i = 0; i < 500; i += 25) await Promise.all(Array.from({ length: 25 }, (_, j) => write('bench-user', i + j)));
  for (let u = 0; u < 20; u++) await Promise.all(Array.from({ length: 30 }, (_, j) => write(`mix-${u}`, j)));

  const read = async (userId: string, query: Record<string, string> = {}) => {
    const r = await list(event('GET', userId, query), context);
    if (r.statusCode !== 200) throw new Error(`history answered ${r.statusCode}`);
  };
  const sample = async (before: () => Promise<unknown>, fn: () => Promise<void>) => {
    const out: number[] = [];
    for (let i = 0; i < 20; i++) { await before(); await fn(); }
    for (let i = 0; i < ITERATIONS; i++) { await before(); out.push(await time(fn)); }
    return summarise(out);
  };

  const c = cache();
  const miss = await sample(() => c.bumpUserVersion('bench-user'), () => read('bench-user'));
  const hit = await sample(async () => undefined, () => read('bench-user'));

  // Read-heavy mix.
  if (!(c instanceof RedisCache)) throw new Error('expected the Redis cache');
  const shapes = [{}, { limit: '10' }, { type: 'credit' }, { type: 'debit' }, { from: '2026-01-01', to: '2026-01-01' }, { limit: '50' }];
  let seed = 7;
  const rand = () => ((seed = (seed * 48271) % 2147483647) / 2147483647);
  const hitsBefore = c.stats.hits;
  const missesBefore = c.stats.misses;
  let writes = 0;
  for (let i = 0; i < ITERATIONS * 4; i++) {
    const user = `mix-${Math.floor(rand() * 20)}`;
    if (rand() < 0.05) { await write(user, 1000 + i); writes++; }
    else await read(user, shapes[Math.floor(rand() * shapes.length)] as Record<string, string>);
  }
  const hits = c.stats.hits - hitsBefore;
  const misses = c.stats.misses - missesBefore;

  // Uncached baseline (cache off), then Redis down.
  const reconfigure = async (redisUrl: string) => {
    process.env.REDIS_URL = redisUrl;
    resetConfig();
    await resetCache();
    resetContainer();
  };
  await reconfigure('');
  const uncached = await sample(async () => undefined, () => read('bench-user'));
  await redis.process.stop();
  await reconfigure(redis.url);
  const down = await sample(async () => undefined, () => read('bench-user'));
  const downFirst: number[] = [];
  for (let i = 0; i < 5; i++) {
    await reconfigure(redis.url); // a fresh container: its first request meets the dead Redis with a closed circuit
    downFirst.push(await time(() => read('bench-user')));
  }

  console.log(JSON.stringify({
    bench: 'cache',
    page: 'GET /users/{id}/transactions, 20 items of a 500-item history, handler in-process',
    iterations: ITERATIONS,
    miss,
    hit,
    read_heavy_mix: { reads: hits + misses, writes, hit_ratio: Math.round((hits / Math.max(1, hits + misses)) * 1000) / 1000 },
    uncached,
    redis_down: {
      ...down,
      added_median_ms: Math.round((down.median_ms - uncached.median_ms) * 1000) / 1000,
      first_request_of_a_container_ms: summarise(downFirst),
      command_timeout_ms: Number(process.env.REDIS_COMMAND_TIMEOUT_MS ?? 100),
    },
  }, null, 2));
  client.destroy();
} finally {
  await redis.process.stop();
  await kms.stop();
  await dynamo.process.stop();
  rmSync(dataDir, { recursive: true, force: true });
}
