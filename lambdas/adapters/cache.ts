import { randomUUID } from 'node:crypto';
import { Redis, type RedisOptions } from 'ioredis';
import { CircuitBreaker } from '../core/circuit-breaker.ts';
import { lockKey, ttlWithJitter, userVersionKey } from '../core/cache-keys.ts';
import { config } from './config.ts';
import { logger } from './logger.ts';

/**
 * The Redis cache (docs/caching.md): cache-aside with single-flight, per-user versions for freshness, and a
 * circuit breaker so that Redis being slow or down costs a request at most about one command timeout and never
 * fails it. Values are the JSON of what the caller computed; callers only cache ciphertext-bearing records.
 */
export interface Cache {
  /** The user's cache version (a string; '0' when never bumped). On Redis failure: undefined (caller must then bypass the cache). */
  userVersion(userId: string): Promise<string | undefined>;
  /** INCR the user's version (with a long TTL so it does not live forever); never throws. */
  bumpUserVersion(userId: string): Promise<void>;
  /**
   * Cache-aside: the cached JSON value, or `compute` run once across concurrent callers (single-flight), stored
   * with ttl ± 10 % and returned. Any Redis error → just compute (never throws because of Redis; errors from
   * compute propagate). `T` must survive `JSON.stringify`/`JSON.parse` unchanged (plain data, no Date).
   */
  getOrCompute<T>(key: string, ttlSeconds: number, compute: () => Promise<T>): Promise<{ value: T; hit: boolean }>;
  close(): Promise<void>;
}

/** The slice of a structured logger the cache needs (Powertools `Logger` fits). Never given a key or a value. */
export interface CacheLogger {
  warn(message: string, extra?: object): void;
  info?(message: string, extra?: object): void;
}

export interface RedisCacheOptions {
  /** `redis://[user:password@]host[:port][/db]` or `rediss://…` (TLS). */
  url: string;
  /** TLS even for `redis://`. */
  tls?: boolean;
  /** AUTH password/token used when the URL has none. */
  authToken?: string;
  connectTimeoutMs: number;
  /** The most a request waits on Redis for one operation (connect included); also ioredis' `commandTimeout`. */
  commandTimeoutMs: number;
  circuitOpenMs: number;
  lockTtlMs?: number;
  lockWaitMs?: number;
  lockPollMs?: number;
  versionTtlSeconds?: number;
  logger?: CacheLogger;
  /** Clock for the circuit (tests). */
  now?: () => number;
}

/** Counters for tests and benchmarks; they hold no key and no value. */
export interface CacheStats {
  /** Redis operations attempted (each is one command or one script). */
  redisCalls: number;
  redisFailures: number;
  /** Operations not attempted because the circuit was open. */
  skippedByCircuit: number;
  circuitOpenings: number;
  hits: number;
  misses: number;
  /** Times `compute` ran. */
  computes: number;
}

const UNAVAILABLE: unique symbol = Symbol('redis-unavailable');
type Unavailable = typeof UNAVAILABLE;

/** Sets the value and drops the lock only if it is still ours, in one round trip. KEYS: key, lock. */
const STORE_AND_UNLOCK = `redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
if redis.call('GET', KEYS[2]) == ARGV[3] then redis.call('DEL', KEYS[2]) end
return 1`;
/** Drops the lock only if it is still ours. KEYS: lock. */
const UNLOCK = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`;
/** INCR and (re)arm the version's TTL atomically. KEYS: version key. */
const BUMP = `local v = redis.call('INCR', KEYS[1])
redis.call('EXPIRE', KEYS[1], ARGV[1])
return v`;

/** At most this many users' failed bumps are remembered for replay; beyond it the TTL bounds staleness. */
const MAX_PENDING_BUMPS = 10_000;

class RedisTimeoutError extends Error {
  override readonly name = 'RedisTimeoutError';
}

/** Connection options from the URL plus TLS/AUTH settings. Exported for tests. */
export function redisConnectionOptions(url: string, tls = false, authToken = ''): RedisOptions {
  const parsed = new URL(url);
  if (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:') {
    throw new Error('REDIS_URL must start with redis:// or rediss://');
  }
  const host = parsed.hostname.replace(/^\[(.*)\]$/, '$1');
  const options: RedisOptions = { host, port: parsed.port === '' ? 6379 : Number(parsed.port) };
  if (parsed.username !== '') options.username = decodeURIComponent(parsed.username);
  if (parsed.password !== '') options.password = decodeURIComponent(parsed.password);
  else if (authToken !== '') options.password = authToken;
  if (parsed.pathname.length > 1) {
    const db = Number(parsed.pathname.slice(1));
    if (!Number.isSafeInteger(db) || db < 0) throw new Error('REDIS_URL database must be a non-negative integer');
    options.db = db;
  }
  if (parsed.protocol === 'rediss:' || tls) options.tls = { servername: host };
  return options;
}

function describe(error: unknown): { name: string; code?: string; message: string } {
  if (!(error instanceof Error)) return { name: 'Error', message: 'non-error thrown' };
  const code = (error as { code?: unknown }).code;
  return { name: error.name, ...(typeof code === 'string' ? { code } : {}), message: error.message.slice(0, 200) };
}

const consoleLogger: CacheLogger = {
  warn: (message, extra) => console.warn(JSON.stringify({ level: 'WARN', message, ...extra })),
  info: (message, extra) => console.info(JSON.stringify({ level: 'INFO', message, ...extra })),
};

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

function parseJson(text: string): { ok: true; value: unknown } | { ok: false } {
  try {
    return { ok: true, value: JSON.parse(text) as unknown };
  } catch {
    return { ok: false };
  }
}

/**
 * Fail-fast design:
 * - One ioredis client per instance, created on first use, `lazyConnect` (constructing this class connects to
 *   nothing). `retryStrategy` returns null: ioredis never reconnects on its own, so there is no reconnect loop;
 *   the next operation the circuit lets through reconnects (after an outage, that is the half-open probe).
 * - `enableOfflineQueue: false`, `maxRetriesPerRequest: 0`: a command is never parked waiting for a connection.
 * - Every operation races one deadline of `commandTimeoutMs` covering connect and command; the connect attempt
 *   itself is bounded by `connectTimeoutMs` (+ one command timeout for the handshake) and reports a failure to
 *   the circuit even when no request is still waiting on it. Only an answered command closes the circuit.
 * - Any failure opens the circuit (logged once per opening) and drops the connection (a silently dead socket
 *   cannot keep timing out); while open, no Redis operation is attempted at all.
 */
export class RedisCache implements Cache {
  readonly stats: CacheStats = {
    redisCalls: 0,
    redisFailures: 0,
    skippedByCircuit: 0,
    circuitOpenings: 0,
    hits: 0,
    misses: 0,
    computes: 0,
  };

  readonly #options: RedisOptions;
  readonly #commandTimeoutMs: number;
  readonly #connectTimeoutMs: number;
  readonly #circuitOpenMs: number;
  readonly #lockTtlMs: number;
  readonly #lockWaitMs: number;
  readonly #lockPollMs: number;
  readonly #versionTtlSeconds: number;
  readonly #logger: CacheLogger;
  readonly #breaker: CircuitBreaker;
  readonly #pendingBumps = new Set<string>();
  #client: Redis | undefined;
  #connecting: { client: Redis; promise: Promise<Redis> } | undefined;
  #closed = false;

  constructor(options: RedisCacheOptions) {
    this.#commandTimeoutMs = options.commandTimeoutMs;
    this.#connectTimeoutMs = options.connectTimeoutMs;
    this.#circuitOpenMs = options.circuitOpenMs;
    this.#lockTtlMs = options.lockTtlMs ?? 2_000;
    this.#lockWaitMs = options.lockWaitMs ?? 250;
    this.#lockPollMs = Math.max(1, options.lockPollMs ?? 20);
    this.#versionTtlSeconds = options.versionTtlSeconds ?? 7 * 24 * 3600;
    this.#logger = options.logger ?? consoleLogger;
    this.#breaker = new CircuitBreaker({ openMs: options.circuitOpenMs, ...(options.now ? { now: options.now } : {}) });
    this.#options = {
      ...redisConnectionOptions(options.url, options.tls ?? false, options.authToken ?? ''),
      lazyConnect: true,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
      reconnectOnError: null,
      autoResendUnfulfilledCommands: false,
      autoResubscribe: false,
      connectTimeout: options.connectTimeoutMs,
      commandTimeout: options.commandTimeoutMs,
      // Fewer handshake round trips, and nothing ElastiCache may not support: RESP2, no ready-check INFO, no
      // CLIENT SETINFO, no maintenance-notification registration.
      protocol: 2,
      enableReadyCheck: false,
      disableClientInfo: true,
      maintNotifications: 'disabled',
    };
  }

  /** The circuit's state, for tests and health reporting. */
  get circuitState(): 'closed' | 'open' | 'half-open' {
    return this.#breaker.state;
  }

  async userVersion(userId: string): Promise<string | undefined> {
    // A bump this container could not deliver must land before we trust the stored version again.
    if (this.#pendingBumps.has(userId)) {
      await this.bumpUserVersion(userId);
      if (this.#pendingBumps.has(userId)) return undefined;
    }
    const version = await this.#call((client) => client.get(userVersionKey(userId)));
    if (version === UNAVAILABLE) return undefined;
    return version ?? '0';
  }

  async bumpUserVersion(userId: string): Promise<void> {
    const result = await this.#call((client) => client.eval(BUMP, 1, userVersionKey(userId), String(this.#versionTtlSeconds)));
    if (result === UNAVAILABLE) {
      if (this.#pendingBumps.size < MAX_PENDING_BUMPS) this.#pendingBumps.add(userId);
    } else {
      this.#pendingBumps.delete(userId);
    }
  }

  async getOrCompute<T>(key: string, ttlSeconds: number, compute: () => Promise<T>): Promise<{ value: T; hit: boolean }> {
    const cached = await this.#call((client) => client.get(key));
    if (cached === UNAVAILABLE) return { value: await this.#compute(compute), hit: false };
    if (cached !== null) {
      const parsed = parseJson(cached);
      if (parsed.ok) return this.#hit(parsed.value as T);
      // An unreadable entry is a miss; the fill below overwrites it.
    }

    const token = randomUUID();
    const lock = lockKey(key);
    const acquired = await this.#call((client) => client.set(lock, token, 'PX', this.#lockTtlMs, 'NX'));
    if (acquired === null) {
      const waited = await this.#waitForFill(key, lock);
      if (waited.found) return this.#hit(waited.value as T);
    }
    const holdsLock = acquired === 'OK';

    let value: T;
    try {
      value = await this.#compute(compute);
    } catch (error) {
      if (holdsLock) await this.#call((client) => client.eval(UNLOCK, 1, lock, token));
      throw error;
    }
    const json = JSON.stringify(value) as string | undefined;
    const ttl = ttlWithJitter(ttlSeconds);
    if (json === undefined) {
      if (holdsLock) await this.#call((client) => client.eval(UNLOCK, 1, lock, token));
    } else if (holdsLock) {
      await this.#call((client) => client.eval(STORE_AND_UNLOCK, 2, key, lock, json, String(ttl), token));
    } else if (acquired !== UNAVAILABLE) {
      await this.#call((client) => client.set(key, json, 'EX', ttl));
    }
    return { value, hit: false };
  }

  async close(): Promise<void> {
    this.#closed = true;
    const client = this.#client;
    this.#client = undefined;
    if (client === undefined) return;
    if (client.status === 'ready') {
      await this.#race(client.quit(), this.#commandTimeoutMs, 'Redis QUIT timed out').catch(() => undefined);
    }
    client.disconnect();
  }

  #hit<T>(value: T): { value: T; hit: boolean } {
    this.stats.hits += 1;
    return { value, hit: true };
  }

  async #compute<T>(compute: () => Promise<T>): Promise<T> {
    this.stats.misses += 1;
    this.stats.computes += 1;
    return compute();
  }

  /** Polls for the lock holder's value until it appears, the lock disappears, Redis fails, or the wait bound. */
  async #waitForFill(key: string, lock: string): Promise<{ found: true; value: unknown } | { found: false }> {
    const deadline = Date.now() + this.#lockWaitMs;
    for (;;) {
      const left = deadline - Date.now();
      if (left <= 0) return { found: false };
      await sleep(Math.min(this.#lockPollMs, left));
      const reply = await this.#call((client) => client.mget(key, lock));
      if (reply === UNAVAILABLE) return { found: false };
      const [value, holder] = reply;
      if (typeof value === 'string') {
        const parsed = parseJson(value);
        if (parsed.ok) return { found: true, value: parsed.value };
      }
      if (holder === null || holder === undefined) return { found: false }; // the holder gave up: compute now
    }
  }

  /** One Redis operation under the circuit and the deadline. Never throws; UNAVAILABLE means "act as if no cache". */
  async #call<R>(operation: (client: Redis) => Promise<R>): Promise<R | Unavailable> {
    if (this.#closed) return UNAVAILABLE;
    if (!this.#breaker.tryAcquire()) {
      this.stats.skippedByCircuit += 1;
      return UNAVAILABLE;
    }
    this.stats.redisCalls += 1;
    const deadline = Date.now() + this.#commandTimeoutMs;
    let client: Redis | undefined;
    try {
      client = await this.#race(this.#connection(), this.#commandTimeoutMs, 'Redis connect did not finish in time');
      // One budget for connect and command: a request never waits on Redis for more than the command timeout.
      // (A connect that eats nearly all of it makes the command time out and opens the circuit: accepted, as a
      // connect that slow means Redis is in trouble anyway.)
      const result = await this.#race(operation(client), deadline - Date.now(), 'Redis did not answer in time');
      this.#succeeded();
      return result;
    } catch (error) {
      // A connect that failed has reported itself; one still running when our time ran out is not a failure yet
      // (a slow cold-start TLS handshake) and reports a failure itself if it ends in one.
      if (client !== undefined) this.#failed(error, client);
      return UNAVAILABLE;
    }
  }

  #connection(): Promise<Redis> {
    const client = this.#getClient();
    if (client.status === 'ready') return Promise.resolve(client);
    if (this.#connecting?.client !== client) {
      const promise: Promise<Redis> = this.#connect(client).finally(() => {
        if (this.#connecting?.promise === promise) this.#connecting = undefined;
      });
      this.#connecting = { client, promise };
    }
    return this.#connecting.promise;
  }

  async #connect(client: Redis): Promise<Redis> {
    try {
      await this.#race(client.connect(), this.#connectTimeoutMs + this.#commandTimeoutMs, 'Redis connect timed out');
      // Not a success for the circuit yet: only an answered command closes it (a peer that accepts connections
      // but never answers must not close and re-open the circuit, and log, on every probe).
      return client;
    } catch (error) {
      this.#failed(error, client);
      throw error;
    }
  }

  #getClient(): Redis {
    if (this.#client === undefined) {
      const client = new Redis(this.#options);
      // Failures surface as rejected commands and feed the circuit; the event itself is only swallowed so that
      // it is never an unhandled 'error' (which would crash the process).
      client.on('error', () => undefined);
      this.#client = client;
    }
    return this.#client;
  }

  #succeeded(): void {
    if (this.#breaker.recordSuccess() === 'closed') {
      this.#logger.info?.('Redis cache available again');
      for (const userId of [...this.#pendingBumps]) void this.bumpUserVersion(userId);
    }
  }

  #failed(error: unknown, client: Redis): void {
    this.stats.redisFailures += 1;
    // A late failure from an already discarded client says nothing about the current one.
    if (this.#client !== client) return;
    const isReplyError = error instanceof Error && error.name === 'ReplyError';
    // A timeout or a broken connection: discard this client, so the next attempt connects a fresh one. (ioredis'
    // disconnect() half-closes and may wait seconds on a hung peer, during which the old client is unusable.)
    if (!isReplyError) {
      this.#client = undefined;
      this.#connecting = undefined;
      client.disconnect();
    }
    const outcome = this.#breaker.recordFailure();
    if (outcome === 'opened') {
      this.stats.circuitOpenings += 1;
      this.#logger.warn('Redis cache unavailable; serving uncached until it answers again', {
        circuitOpenMs: this.#circuitOpenMs,
        error: describe(error),
      });
    }
  }

  /** `promise`, or a RedisTimeoutError after `ms`. A late rejection of `promise` stays handled. */
  #race<R>(promise: Promise<R>, ms: number, message: string): Promise<R> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new RedisTimeoutError(message)), Math.max(0, ms));
    });
    return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
  }
}

/** The cache when `REDIS_URL` is empty: every read computes, versions are unknown. */
export class DisabledCache implements Cache {
  async userVersion(_userId: string): Promise<string | undefined> {
    return undefined;
  }
  async bumpUserVersion(_userId: string): Promise<void> {}
  async getOrCompute<T>(_key: string, _ttlSeconds: number, compute: () => Promise<T>): Promise<{ value: T; hit: boolean }> {
    return { value: await compute(), hit: false };
  }
  async close(): Promise<void> {}
}

let instance: Cache | undefined;

const powertoolsCacheLogger: CacheLogger = {
  warn: (message, extra) => logger.warn(message, { ...extra }),
  info: (message, extra) => logger.info(message, { ...extra }),
};

/**
 * The container's cache, from `config()`. Lazy twice over: the first call builds the object, and the object
 * connects only when it is first used. `logger` is used only by the call that builds it.
 */
export function cache(options: { logger?: CacheLogger } = {}): Cache {
  if (instance === undefined) {
    const c = config();
    instance = c.redisUrl === ''
      ? new DisabledCache()
      : new RedisCache({
          url: c.redisUrl,
          tls: c.redisTls,
          authToken: c.redisAuthToken,
          connectTimeoutMs: c.redisConnectTimeoutMs,
          commandTimeoutMs: c.redisCommandTimeoutMs,
          circuitOpenMs: c.redisCircuitOpenMs,
          lockTtlMs: c.redisLockTtlMs,
          lockWaitMs: c.redisLockWaitMs,
          lockPollMs: c.redisLockPollMs,
          versionTtlSeconds: c.cacheVersionTtlSeconds,
          logger: options.logger ?? powertoolsCacheLogger,
        });
  }
  return instance;
}

/** Closes and forgets the container's cache (tests that change the environment). */
export async function resetCache(): Promise<void> {
  const current = instance;
  instance = undefined;
  await current?.close();
}
