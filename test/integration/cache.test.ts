import { randomUUID } from 'node:crypto';
import { createServer, type Server, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import {
  DisabledCache,
  RedisCache,
  cache,
  redisConnectionOptions,
  resetCache,
  type CacheLogger,
  type RedisCacheOptions,
} from '../../lambdas/adapters/cache.ts';
import { resetConfig } from '../../lambdas/adapters/config.ts';
import { historyKey, lockKey, userVersionKey } from '../../lambdas/core/cache-keys.ts';
import { freePort } from '../../local/processes.ts';
import { startRedis, type RedisLocal } from '../../local/redis-local.ts';

const COMMAND_TIMEOUT_MS = 100;
const OPEN_MS = 400;
/** A correctness bound of the fail-fast design (one command timeout at most), not a speed benchmark. */
const BOUND_MS = COMMAND_TIMEOUT_MS + 50;

const run = randomUUID().slice(0, 8);
let userCounter = 0;
const newUser = (): string => `cache-it-${run}-${(userCounter += 1)}`;

function recordingLogger(): CacheLogger & { warnings: { message: string; extra?: object }[] } {
  const warnings: { message: string; extra?: object }[] = [];
  return { warnings, warn: (message, extra) => warnings.push({ message, ...(extra ? { extra } : {}) }), info: () => undefined };
}

const opened: RedisCache[] = [];
function newCache(url: string, overrides: Partial<RedisCacheOptions> = {}) {
  const logger = recordingLogger();
  const instance = new RedisCache({
    url,
    connectTimeoutMs: 200,
    commandTimeoutMs: COMMAND_TIMEOUT_MS,
    circuitOpenMs: OPEN_MS,
    logger,
    ...overrides,
  });
  opened.push(instance);
  return { cache: instance, logger };
}

async function timed<T>(work: () => Promise<T>): Promise<{ result: T; ms: number }> {
  const started = performance.now();
  const result = await work();
  return { result, ms: performance.now() - started };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function counter<T>(value: T, delayMs = 0) {
  const state = { calls: 0 };
  const compute = async (): Promise<T> => {
    state.calls += 1;
    if (delayMs > 0) await sleep(delayMs);
    return value;
  };
  return { state, compute };
}

/** A TCP server that accepts connections and never answers: a hung or black-holed Redis. */
async function startSilentServer(port: number): Promise<{ server: Server; connections: () => number; stop: () => Promise<void> }> {
  const sockets = new Set<Socket>();
  let count = 0;
  const server = createServer((socket) => {
    count += 1;
    sockets.add(socket);
    socket.on('error', () => undefined);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  return {
    server,
    connections: () => count,
    stop: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

const sharedUrl = (): string => {
  const url = process.env.REDIS_URL;
  if (!url) throw new Error('REDIS_URL is not set: test/support/global-setup.ts starts redis-server');
  return url;
};

let raw: Redis;
beforeAll(() => {
  raw = new Redis(sharedUrl(), { lazyConnect: false, maxRetriesPerRequest: 1 });
});

afterAll(async () => {
  await Promise.all(opened.map((c) => c.close()));
  // Clean up every key this file wrote to the shared redis-server.
  let cursor = '0';
  do {
    const [next, keys] = await raw.scan(cursor, 'MATCH', `{u:cache-it-${run}-*`, 'COUNT', 1000);
    if (keys.length > 0) await raw.del(...keys);
    cursor = next;
  } while (cursor !== '0');
  await raw.quit();
});

describe('RedisCache against a real redis-server', () => {
  it('misses once (computes), then hits without computing again', async () => {
    const { cache: c } = newCache(sharedUrl());
    const key = historyKey(newUser(), '0', { limit: '20' });
    const { state, compute } = counter({ data: [1, 2, 3], next_cursor: null });

    expect(await c.getOrCompute(key, 60, compute)).toEqual({ value: { data: [1, 2, 3], next_cursor: null }, hit: false });
    expect(await c.getOrCompute(key, 60, compute)).toEqual({ value: { data: [1, 2, 3], next_cursor: null }, hit: true });
    expect(state.calls).toBe(1);
    expect(await raw.exists(lockKey(key))).toBe(0);
  });

  it('stores exactly the JSON of what compute returned (no extra fields) with a TTL of ttl ± 10 %', async () => {
    const { cache: c } = newCache(sharedUrl());
    const key = historyKey(newUser(), '0', { limit: '5', type: 'debit' });
    const page = {
      data: [{ transaction_id: '01JDZ8Q3V8K6E2M9W4T7A5B3CX', full_name_ct: 'v1.1.aXY.Y2lwaGVy', amount_minor: 12550, type: 'credit' }],
      next_cursor: 'opaque',
    };
    await c.getOrCompute(key, 300, async () => page);

    expect(await raw.get(key)).toBe(JSON.stringify(page));
    const ttl = await raw.ttl(key);
    expect(ttl).toBeGreaterThanOrEqual(269);
    expect(ttl).toBeLessThanOrEqual(330);
  });

  it('expires an entry after its TTL (1 s); the next read computes again', async () => {
    const { cache: c } = newCache(sharedUrl());
    const key = historyKey(newUser(), '0', {});
    const { state, compute } = counter({ n: 1 });

    await c.getOrCompute(key, 1, compute);
    expect((await c.getOrCompute(key, 1, compute)).hit).toBe(true);
    await sleep(1_150);
    expect((await c.getOrCompute(key, 1, compute)).hit).toBe(false);
    expect(state.calls).toBe(2);
  });

  it("reads version '0' before any bump; a bump moves the user to a new key, so the old entry is no longer read", async () => {
    const { cache: c } = newCache(sharedUrl(), { versionTtlSeconds: 3_600 });
    const user = newUser();
    const other = newUser();
    const v0 = await c.userVersion(user);
    expect(v0).toBe('0');
    await c.getOrCompute(historyKey(user, v0 as string, {}), 60, async () => ({ before: true }));

    await c.bumpUserVersion(user);
    const v1 = await c.userVersion(user);
    expect(v1).toBe('1');
    const after = await c.getOrCompute(historyKey(user, v1 as string, {}), 60, async () => ({ before: false }));
    expect(after).toEqual({ value: { before: false }, hit: false });

    const ttl = await raw.ttl(userVersionKey(user));
    expect(ttl).toBeGreaterThan(3_500);
    expect(ttl).toBeLessThanOrEqual(3_600);
    expect(await c.userVersion(other)).toBe('0'); // another user's version is untouched
  });

  it('single-flight: 20 concurrent misses of one key run a 50 ms compute exactly once and all get its value', async () => {
    const { cache: c } = newCache(sharedUrl());
    const key = historyKey(newUser(), '0', { limit: '20' });
    const { state, compute } = counter({ page: 'one' }, 50);

    const results = await Promise.all(Array.from({ length: 20 }, () => c.getOrCompute(key, 60, compute)));

    expect(state.calls).toBe(1);
    for (const r of results) expect(r.value).toEqual({ page: 'one' });
    expect(results.filter((r) => !r.hit)).toHaveLength(1);
    expect(await raw.exists(lockKey(key))).toBe(0);
  });

  it('waiters whose wait bound is exceeded fall through and compute themselves (bounded, never an error)', async () => {
    const { cache: c } = newCache(sharedUrl(), { lockWaitMs: 30 });
    const key = historyKey(newUser(), '0', { slow: '1' });
    const { state, compute } = counter({ slow: true }, 150);

    const { result, ms } = await timed(() => Promise.all(Array.from({ length: 5 }, () => c.getOrCompute(key, 60, compute))));

    for (const r of result) expect(r.value).toEqual({ slow: true });
    expect(state.calls).toBeGreaterThanOrEqual(1);
    expect(state.calls).toBeLessThanOrEqual(5);
    expect(ms).toBeLessThan(150 + 30 + 300);
  });

  it('propagates an error thrown by compute, releases the lock at once, and stores nothing', async () => {
    const { cache: c } = newCache(sharedUrl());
    const key = historyKey(newUser(), '0', {});
    await expect(c.getOrCompute(key, 60, async () => { throw new Error('dynamo down'); })).rejects.toThrow('dynamo down');
    expect(await raw.exists(key, lockKey(key))).toBe(0);

    const { result, ms } = await timed(() => c.getOrCompute(key, 60, async () => 'ok'));
    expect(result).toEqual({ value: 'ok', hit: false });
    expect(ms).toBeLessThan(200); // no waiting on a stale lock
  });

  it('treats an unreadable (non-JSON) entry as a miss and overwrites it', async () => {
    const { cache: c } = newCache(sharedUrl());
    const key = historyKey(newUser(), '0', {});
    await raw.set(key, '{not json', 'EX', 60);
    expect(await c.getOrCompute(key, 60, async () => ({ fixed: true }))).toEqual({ value: { fixed: true }, hit: false });
    expect(await raw.get(key)).toBe('{"fixed":true}');
  });
});

describe('DisabledCache and cache()', () => {
  it('DisabledCache always computes and knows no version', async () => {
    const c = new DisabledCache();
    const { state, compute } = counter(42);
    expect(await c.getOrCompute('k', 60, compute)).toEqual({ value: 42, hit: false });
    expect(await c.getOrCompute('k', 60, compute)).toEqual({ value: 42, hit: false });
    expect(state.calls).toBe(2);
    expect(await c.userVersion('u')).toBeUndefined();
    await expect(c.bumpUserVersion('u')).resolves.toBeUndefined();
  });

  it('cache() is a lazy per-container singleton: building it opens no connection; the first use opens one', async () => {
    const port = await freePort();
    const silent = await startSilentServer(port);
    const saved = { url: process.env.REDIS_URL, timeout: process.env.REDIS_COMMAND_TIMEOUT_MS };
    try {
      process.env.REDIS_URL = `redis://127.0.0.1:${port}`;
      process.env.REDIS_COMMAND_TIMEOUT_MS = String(COMMAND_TIMEOUT_MS);
      resetConfig();
      await resetCache();
      const c = cache({ logger: recordingLogger() });
      expect(cache()).toBe(c);
      expect(c).toBeInstanceOf(RedisCache);
      await sleep(100);
      expect(silent.connections()).toBe(0);

      const { result, ms } = await timed(() => c.getOrCompute('{u:lazy}:v0:h:x', 60, async () => 'computed'));
      expect(result).toEqual({ value: 'computed', hit: false });
      expect(ms).toBeLessThan(BOUND_MS);
      expect(silent.connections()).toBe(1);

      process.env.REDIS_URL = '';
      resetConfig();
      await resetCache();
      expect(cache()).toBeInstanceOf(DisabledCache);
    } finally {
      process.env.REDIS_URL = saved.url;
      if (saved.timeout === undefined) delete process.env.REDIS_COMMAND_TIMEOUT_MS;
      else process.env.REDIS_COMMAND_TIMEOUT_MS = saved.timeout;
      resetConfig();
      await resetCache();
      await silent.stop();
    }
  });

  it('takes TLS from rediss:// or REDIS_TLS, and AUTH from the URL, else from REDIS_AUTH_TOKEN', () => {
    expect(redisConnectionOptions('redis://127.0.0.1:6380')).toEqual({ host: '127.0.0.1', port: 6380 });
    expect(redisConnectionOptions('rediss://cache.example.com')).toMatchObject({ host: 'cache.example.com', port: 6379, tls: { servername: 'cache.example.com' } });
    expect(redisConnectionOptions('redis://h:1', true).tls).toBeDefined();
    expect(redisConnectionOptions('redis://h:1', false, 'tok')).toMatchObject({ password: 'tok' });
    expect(redisConnectionOptions('redis://alice:p%40ss@h:1/2', false, 'tok')).toMatchObject({ username: 'alice', password: 'p@ss', db: 2 });
    expect(() => redisConnectionOptions('http://h:1')).toThrow();
  });
});

describe('RedisCache when Redis fails (its own redis-server)', () => {
  let own: RedisLocal;
  beforeAll(async () => {
    own = await startRedis();
  });
  afterAll(async () => {
    await own.process.stop();
  });

  it('Redis stopped mid-test: every call still returns the computed value within commandTimeout + 50 ms, the failure is logged once, and while the circuit is open no Redis call is attempted', async () => {
    const { cache: c, logger } = newCache(own.url);
    const user = newUser();
    const key = historyKey(user, '0', { limit: '20' });
    await c.getOrCompute(key, 60, async () => ({ warm: true }));
    expect((await c.getOrCompute(key, 60, async () => ({ warm: false }))).hit).toBe(true);

    await own.process.stop();

    const first = await timed(() => c.getOrCompute(key, 60, async () => ({ fresh: 1 })));
    expect(first.result).toEqual({ value: { fresh: 1 }, hit: false });
    expect(first.ms).toBeLessThan(BOUND_MS);
    expect(c.circuitState).toBe('open');

    const callsWhenOpened = c.stats.redisCalls;
    const durations: number[] = [];
    for (let i = 0; i < 20; i += 1) {
      const { result, ms } = await timed(() => c.getOrCompute(historyKey(user, '0', { i: String(i) }), 60, async () => i));
      expect(result).toEqual({ value: i, hit: false });
      durations.push(ms);
    }
    expect(await c.userVersion(user)).toBeUndefined();
    await c.bumpUserVersion(user); // never throws
    expect(c.stats.redisCalls).toBe(callsWhenOpened); // open circuit: not one attempt
    expect(Math.max(...durations)).toBeLessThan(BOUND_MS);

    // After the open period one probe goes out, fails fast, and re-opens without logging again.
    await sleep(OPEN_MS + 20);
    const probe = await timed(() => c.getOrCompute(key, 60, async () => 'probe'));
    expect(probe.result.value).toBe('probe');
    expect(probe.ms).toBeLessThan(BOUND_MS);
    expect(c.stats.redisCalls).toBe(callsWhenOpened + 1);
    expect(c.circuitState).toBe('open');

    expect(logger.warnings).toHaveLength(1);
    expect(c.stats.circuitOpenings).toBe(1);
    expect(JSON.stringify(logger.warnings)).not.toContain('cache-it'); // no key, no user id in the log

    // Redis started again on the same port: once the open period is over, the cache is used again.
    own = await startRedis({ port: own.port });
    expect((await c.getOrCompute(key, 60, async () => 'still open')).value).toBe('still open'); // circuit still open
    await sleep(OPEN_MS + 20);
    expect(await c.getOrCompute(key, 60, async () => 'refilled')).toEqual({ value: 'refilled', hit: false });
    expect(c.circuitState).toBe('closed');
    expect(await c.getOrCompute(key, 60, async () => 'not used')).toEqual({ value: 'refilled', hit: true });
    // The bump that could not be delivered during the outage is delivered before the version is trusted again.
    expect(await c.userVersion(user)).toBe('1');
  });

  it('Redis accepting connections but never answering: each call waits at most about one command timeout, and the open circuit attempts no connection', async () => {
    const port = await freePort();
    const silent = await startSilentServer(port);
    try {
      const { cache: c, logger } = newCache(`redis://127.0.0.1:${port}`);
      const key = historyKey(newUser(), '0', {});

      const first = await timed(() => c.getOrCompute(key, 60, async () => 'a'));
      expect(first.result).toEqual({ value: 'a', hit: false });
      expect(first.ms).toBeGreaterThanOrEqual(COMMAND_TIMEOUT_MS - 5); // it really waited for the timeout …
      expect(first.ms).toBeLessThan(BOUND_MS); // … and no longer
      expect(silent.connections()).toBe(1);

      const whileOpen = await timed(async () => {
        for (let i = 0; i < 50; i += 1) await c.getOrCompute(key, 60, async () => i);
      });
      expect(whileOpen.ms).toBeLessThan(50); // 50 requests, no Redis wait at all
      expect(silent.connections()).toBe(1);

      await sleep(OPEN_MS + 20);
      const probe = await timed(() => c.getOrCompute(key, 60, async () => 'b'));
      expect(probe.result.value).toBe('b');
      expect(probe.ms).toBeLessThan(BOUND_MS);
      expect(silent.connections()).toBe(2); // the probe reconnected on a fresh socket, once

      expect(logger.warnings).toHaveLength(1);
    } finally {
      await silent.stop();
    }
  });

  it('concurrent requests when Redis dies under them: each still answers within about one command timeout', async () => {
    const port = await freePort();
    const silent = await startSilentServer(port);
    try {
      const { cache: c } = newCache(`redis://127.0.0.1:${port}`);
      const user = newUser();
      const results = await Promise.all(
        Array.from({ length: 20 }, (_, i) => timed(() => c.getOrCompute(historyKey(user, '0', { i: String(i) }), 60, async () => i))),
      );
      results.forEach(({ result }, i) => expect(result.value).toBe(i));
      expect(Math.max(...results.map((r) => r.ms))).toBeLessThan(BOUND_MS);
      expect(c.stats.circuitOpenings).toBe(1);
    } finally {
      await silent.stop();
    }
  });
});
