/**
 * Configuration from the environment, read in one place. Every value has a local default so the same code
 * runs in Lambda, under LocalStack and on the local stack; in AWS the stack sets each variable.
 */
export interface Config {
  region: string;
  tableName: string;
  /** KMS key (id, ARN or alias) that wraps the per-user data keys. */
  kmsKeyId: string;
  /** How long an unwrapped data key may stay in a container's memory. Bounds erasure lag across containers. */
  dataKeyCacheTtlMs: number;
  dataKeyCacheMaxEntries: number;
  /** HMAC secret for history cursors; a cursor signed with another secret is a 400. */
  cursorSecret: string;
  /** `redis://` or `rediss://` (TLS); empty means the cache is off. */
  redisUrl: string;
  redisConnectTimeoutMs: number;
  redisCommandTimeoutMs: number;
  /** After a Redis failure, skip Redis for this long before trying again. */
  redisCircuitOpenMs: number;
  historyCacheTtlSeconds: number;
  analyticsCacheTtlSeconds: number;
  /** Force TLS even for a `redis://` URL (`rediss://` always means TLS). ElastiCache Serverless requires TLS. */
  redisTls: boolean;
  /** AUTH token (ElastiCache AUTH / password); used when the URL carries no password. */
  redisAuthToken: string;
  /** Single-flight lock lifetime: longer than a slow compute; frees the key if its holder dies. */
  redisLockTtlMs: number;
  /** How long a concurrent miss waits for the lock holder's value before computing itself. */
  redisLockWaitMs: number;
  redisLockPollMs: number;
  /** Lifetime of a user's version key, refreshed on each bump; must far exceed the entry TTLs. */
  cacheVersionTtlSeconds: number;
  /** EventBridge bus for domain events; when empty, `eventsFile` is used (local stack). */
  eventBusName: string;
  eventsFile: string;
  /** Amount (minor units) at or above which a large-amount alert event is published. */
  largeAmountThresholdMinor: number;
  /** How long an idempotency key is remembered. */
  idempotencyTtlSeconds: number;
  /** How long an in-progress idempotency marker blocks a duplicate before a retry may take over. */
  idempotencyInProgressSeconds: number;
}

function intFrom(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new Error(`Environment variable ${name} must be a non-negative integer`);
  }
  return value;
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  return {
    region: env.AWS_REGION ?? env.AWS_DEFAULT_REGION ?? 'us-east-1',
    tableName: env.TABLE_NAME ?? 'tally',
    kmsKeyId: env.KMS_KEY_ID ?? 'alias/tally-data-keys',
    dataKeyCacheTtlMs: intFrom(env, 'DATA_KEY_CACHE_TTL_MS', 5 * 60_000),
    dataKeyCacheMaxEntries: intFrom(env, 'DATA_KEY_CACHE_MAX_ENTRIES', 1_000),
    cursorSecret: env.CURSOR_SECRET ?? 'tally-local-cursor-secret',
    redisUrl: env.REDIS_URL ?? '',
    redisConnectTimeoutMs: intFrom(env, 'REDIS_CONNECT_TIMEOUT_MS', 200),
    redisCommandTimeoutMs: intFrom(env, 'REDIS_COMMAND_TIMEOUT_MS', 100),
    redisCircuitOpenMs: intFrom(env, 'REDIS_CIRCUIT_OPEN_MS', 5_000),
    historyCacheTtlSeconds: intFrom(env, 'HISTORY_CACHE_TTL_SECONDS', 300),
    analyticsCacheTtlSeconds: intFrom(env, 'ANALYTICS_CACHE_TTL_SECONDS', 60),
    redisTls: env.REDIS_TLS === 'true' || env.REDIS_TLS === '1',
    redisAuthToken: env.REDIS_AUTH_TOKEN ?? '',
    redisLockTtlMs: intFrom(env, 'REDIS_LOCK_TTL_MS', 2_000),
    redisLockWaitMs: intFrom(env, 'REDIS_LOCK_WAIT_MS', 250),
    redisLockPollMs: intFrom(env, 'REDIS_LOCK_POLL_MS', 20),
    cacheVersionTtlSeconds: intFrom(env, 'CACHE_VERSION_TTL_SECONDS', 7 * 24 * 3600),
    eventBusName: env.EVENT_BUS_NAME ?? '',
    eventsFile: env.EVENTS_FILE ?? '',
    largeAmountThresholdMinor: intFrom(env, 'LARGE_AMOUNT_THRESHOLD_MINOR', 1_000_000),
    idempotencyTtlSeconds: intFrom(env, 'IDEMPOTENCY_TTL_SECONDS', 24 * 3600),
    idempotencyInProgressSeconds: intFrom(env, 'IDEMPOTENCY_IN_PROGRESS_SECONDS', 30),
  };
}

let cached: Config | undefined;
/** The container's configuration, read once. Tests that change the environment call `resetConfig()`. */
export function config(): Config {
  cached ??= loadConfig();
  return cached;
}
export function resetConfig(): void {
  cached = undefined;
}
