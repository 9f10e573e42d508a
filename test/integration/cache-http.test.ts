import { UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRedis, type RedisLocal } from '../../local/redis-local.ts';
import { startTestStack, type TestStack } from '../support/stack.ts';

/**
 * The cache seen through the API: this file's own redis-server (so it can stop and restart it), the run's
 * DynamoDB Local and KMS endpoint, the aggregator fed by the stream poller.
 */
process.env.REDIS_CIRCUIT_OPEN_MS = '300';
process.env.HISTORY_CACHE_TTL_SECONDS = '2';

let redis: RedisLocal;
let redisPort: number;
let stack: TestStack;
let inspector: Redis;

beforeAll(async () => {
  redis = await startRedis();
  redisPort = redis.port;
  stack = await startTestStack({
    services: { REDIS_URL: redis.url },
  });
  inspector = new Redis(redis.url, { lazyConnect: true, maxRetriesPerRequest: 1 });
});
afterAll(async () => {
  inspector?.disconnect();
  await stack?.stop();
  await redis?.process.stop();
});

const body = (overrides: Record<string, unknown> = {}) => ({
  full_name: 'Cached Person',
  transaction_date: '2026-11-10T12:00:00Z',
  transaction_amount: '10.00',
  transaction_type: 'credit',
  ...overrides,
});

async function allValues(): Promise<Map<string, string>> {
  const values = new Map<string, string>();
  let cursor = '0';
  do {
    const [next, keys] = await inspector.scan(cursor, 'COUNT', 1000);
    cursor = next;
    for (const key of keys) {
      const type = await inspector.type(key);
      if (type === 'string') values.set(key, (await inspector.get(key)) ?? '');
    }
  } while (cursor !== '0');
  return values;
}

/** Changes an item behind the API's back (no version bump): only a cached read can still show the old value. */
async function sneakyAmount(userId: string, transactionId: string, minor: number): Promise<void> {
  await stack.doc.send(
    new UpdateCommand({
      TableName: stack.info.tableName,
      Key: { PK: `USER#${userId}`, SK: `TX#${transactionId}` },
      UpdateExpression: 'SET amount_minor = :m',
      ExpressionAttributeValues: { ':m': minor },
    }),
  );
}

describe('history cache', () => {
  it('serves a repeated page from Redis', async () => {
    const created = await stack.request('POST', '/users/hit-user/transactions', { body: body() });
    const first = await stack.request('GET', '/users/hit-user/transactions');
    expect(first.body.data[0].transaction_amount).toBe('10.00');
    await sneakyAmount('hit-user', created.body.transaction_id, 99_900);
    const second = await stack.request('GET', '/users/hit-user/transactions');
    expect(second.body.data[0].transaction_amount).toBe('10.00');
    expect([...(await allValues()).keys()].some((k) => k.startsWith('{u:hit-user}:v') && k.includes(':h:'))).toBe(true);
  });

  it('reads its own writes on every page shape after POST, PATCH and DELETE', async () => {
    const user = 'ryw-user';
    const seed = [];
    for (let i = 0; i < 6; i++) {
      seed.push(
        (await stack.request('POST', `/users/${user}/transactions`, {
          body: body({ transaction_date: `2026-11-0${i + 1}T10:00:00Z`, transaction_type: i % 2 ? 'debit' : 'credit' }),
        })).body,
      );
    }
    const shapes = ['', '?limit=2', '?type=credit', '?type=debit', '?from=2026-11-01&to=2026-11-30', '?from=2026-11-05'];
    const ids = async (query: string) =>
      ((await stack.request('GET', `/users/${user}/transactions${query}`)).body.data as Array<{ transaction_id: string; transaction_amount: string }>);
    for (const shape of shapes) await ids(shape); // warm every shape

    const added = (await stack.request('POST', `/users/${user}/transactions`, { body: body({ transaction_date: '2026-11-20T10:00:00Z' }) })).body;
    for (const shape of ['', '?limit=2', '?type=credit', '?from=2026-11-01&to=2026-11-30', '?from=2026-11-05']) {
      expect((await ids(shape)).map((t) => t.transaction_id), `POST then ${shape}`).toContain(added.transaction_id);
    }
    expect((await ids('?type=debit')).map((t) => t.transaction_id)).not.toContain(added.transaction_id);

    await stack.request('PATCH', `/users/${user}/transactions/${added.transaction_id}`, { body: { transaction_amount: '77.77', transaction_type: 'debit' } });
    for (const shape of ['', '?limit=2', '?type=debit']) {
      expect((await ids(shape)).find((t) => t.transaction_id === added.transaction_id)?.transaction_amount, `PATCH then ${shape}`).toBe('77.77');
    }
    expect((await ids('?type=credit')).map((t) => t.transaction_id)).not.toContain(added.transaction_id);

    await stack.request('DELETE', `/users/${user}/transactions/${added.transaction_id}`);
    for (const shape of shapes) expect((await ids(shape)).map((t) => t.transaction_id), `DELETE then ${shape}`).not.toContain(added.transaction_id);

    // A second page, through its cursor, also follows writes.
    const page1 = (await stack.request('GET', `/users/${user}/transactions?limit=2`)).body;
    const page2Path = `/users/${user}/transactions?limit=2&cursor=${encodeURIComponent(page1.next_cursor)}`;
    const page2 = (await stack.request('GET', page2Path)).body.data as Array<{ transaction_id: string }>;
    const target = page2[0]!.transaction_id;
    await stack.request('PATCH', `/users/${user}/transactions/${target}`, { body: { transaction_amount: '55.55' } });
    expect((await stack.request('GET', page2Path)).body.data[0].transaction_amount).toBe('55.55');
    expect(seed).toHaveLength(6);
  });

  it('lets entries expire by TTL', async () => {
    const created = await stack.request('POST', '/users/ttl-user/transactions', { body: body() });
    await stack.request('GET', '/users/ttl-user/transactions');
    await sneakyAmount('ttl-user', created.body.transaction_id, 4_200);
    expect((await stack.request('GET', '/users/ttl-user/transactions')).body.data[0].transaction_amount).toBe('10.00');
    await new Promise((r) => setTimeout(r, 2_300));
    expect((await stack.request('GET', '/users/ttl-user/transactions')).body.data[0].transaction_amount).toBe('42.00');
  });

  it('answers 304 to If-None-Match with the current ETag, and 200 once the page changed', async () => {
    await stack.request('POST', '/users/etag-user/transactions', { body: body() });
    const first = await stack.request('GET', '/users/etag-user/transactions');
    const etag = first.headers.get('etag')!;
    expect(etag).toMatch(/^W\/"/);
    expect(first.headers.get('cache-control')).toBe('private, no-cache');
    const again = await stack.request('GET', '/users/etag-user/transactions', { headers: { 'if-none-match': etag } });
    expect(again.status).toBe(304);
    expect(again.text).toBe('');
    await stack.request('POST', '/users/etag-user/transactions', { body: body() });
    expect((await stack.request('GET', '/users/etag-user/transactions', { headers: { 'if-none-match': etag } })).status).toBe(200);
  });
});

describe('analytics cache', () => {
  it('follows the aggregator: the figures refresh once the stream is drained', async () => {
    const user = 'agg-cache-user';
    await stack.request('POST', `/users/${user}/transactions`, { body: body({ transaction_amount: '10.00' }) });
    await stack.drained();
    const before = await stack.request('GET', `/users/${user}/analytics`);
    expect(before.body.transaction_count).toBe(1);
    expect((await stack.request('GET', `/users/${user}/analytics`)).body.transaction_count).toBe(1); // now cached
    await stack.request('POST', `/users/${user}/transactions`, { body: body({ transaction_amount: '30.00' }) });
    await stack.drained();
    const after = await stack.request('GET', `/users/${user}/analytics`);
    expect(after.body).toMatchObject({ transaction_count: 2, average_transaction_value: '20.00', totals: { credit: '40.00' } });
  });
});

describe('as_of', () => {
  it('moves to the deletion when a transaction is deleted', async () => {
    const user = 'as-of-delete';
    const created = await stack.request('POST', `/users/${user}/transactions`, { body: body() });
    await stack.request('POST', `/users/${user}/transactions`, { body: body({ transaction_amount: '5.00' }) });
    await stack.drained();
    const before = (await stack.request('GET', `/users/${user}/analytics`)).body;
    await new Promise((r) => setTimeout(r, 1_100)); // the stream dates records to the second
    const deletedAt = new Date().toISOString();
    await stack.request('DELETE', `/users/${user}/transactions/${created.body.transaction_id}`);
    await stack.drained();
    const after = (await stack.request('GET', `/users/${user}/analytics`)).body;
    expect(after.transaction_count).toBe(1);
    expect(after.as_of > before.as_of).toBe(true);
    expect(after.as_of >= `${deletedAt.slice(0, 19)}.000Z`).toBe(true);
  });
});

describe('conditional analytics', () => {
  it('answers 304 to the current ETag and 200 once the aggregator changed the figures', async () => {
    const user = 'etag-analytics';
    await stack.request('POST', `/users/${user}/transactions`, { body: body() });
    await stack.drained();
    const first = await stack.request('GET', `/users/${user}/analytics`);
    const etag = first.headers.get('etag')!;
    expect(etag).toMatch(/^W\/"/);
    expect((await stack.request('GET', `/users/${user}/analytics`, { headers: { 'if-none-match': etag } })).status).toBe(304);
    await stack.request('POST', `/users/${user}/transactions`, { body: body() });
    await stack.drained();
    const changed = await stack.request('GET', `/users/${user}/analytics`, { headers: { 'if-none-match': etag } });
    expect(changed.status).toBe(200);
    expect(changed.body.transaction_count).toBe(2);
  });
});

describe('what Redis holds', () => {
  it('holds no plaintext name in any value', async () => {
    const names = ['Ifeoma Chukwu', 'Þórunn Guðmundsdóttir', '李小龍'];
    for (const name of names) {
      await stack.request('POST', '/users/pii-cache/transactions', { body: body({ full_name: name }) });
      await stack.request('GET', '/users/pii-cache/transactions');
      await stack.request('GET', '/users/pii-cache/transactions?limit=1');
    }
    await stack.drained();
    await stack.request('GET', '/users/pii-cache/analytics');
    const values = await allValues();
    expect([...values.keys()].filter((k) => k.startsWith('{u:pii-cache}')).length).toBeGreaterThan(2);
    for (const value of values.values()) {
      for (const name of names) {
        expect(value).not.toContain(name);
        expect(value).not.toContain(JSON.stringify(name).slice(1, -1));
        expect(value).not.toContain(Buffer.from(name).toString('base64'));
      }
    }
  });
});

describe('Redis stopped mid-suite, then back', () => {
  it('keeps answering correctly while Redis is down and uses the cache again once it is back', async () => {
    const user = 'outage-user';
    await stack.request('POST', `/users/${user}/transactions`, { body: body() });
    await stack.request('GET', `/users/${user}/transactions`);
    await redis.process.stop();

    const created = await stack.request('POST', `/users/${user}/transactions`, { body: body({ transaction_amount: '20.00' }) });
    expect(created.status).toBe(201);
    const page = await stack.request('GET', `/users/${user}/transactions`);
    expect(page.status).toBe(200);
    expect(page.body.data.map((t: { transaction_id: string }) => t.transaction_id)).toContain(created.body.transaction_id);
    await stack.request('PATCH', `/users/${user}/transactions/${created.body.transaction_id}`, { body: { transaction_amount: '21.00' } });
    expect((await stack.request('GET', `/users/${user}/transactions`)).body.data.find((t: { transaction_id: string }) => t.transaction_id === created.body.transaction_id).transaction_amount).toBe('21.00');
    await stack.drained();
    expect((await stack.request('GET', `/users/${user}/analytics`)).body.transaction_count).toBe(2);

    redis = await startRedis({ port: redisPort });
    await new Promise((r) => setTimeout(r, 400)); // the circuit's open period
    await stack.request('GET', `/users/${user}/transactions`);
    await stack.request('GET', `/users/${user}/transactions`);
    const keys = [...(await allValues()).keys()];
    expect(keys.some((k) => k.startsWith(`{u:${user}}:v`) && k.includes(':h:'))).toBe(true);
    // Read-your-writes still holds after the outage: the bump missed while Redis was down was delivered.
    const later = await stack.request('POST', `/users/${user}/transactions`, { body: body({ transaction_amount: '30.00' }) });
    expect((await stack.request('GET', `/users/${user}/transactions`)).body.data.map((t: { transaction_id: string }) => t.transaction_id)).toContain(later.body.transaction_id);
  });
});
