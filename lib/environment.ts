import { usesTable, type RouteAccess } from './routes.ts';

/**
 * The functions' environment, built in this one place from the variable names that
 * lambdas/adapters/config.ts reads (test/infra checks the two agree; see NOT_SET_IN_AWS for the exceptions).
 */
export interface EnvironmentResources {
  tableName: string;
  dataKeyKeyArn: string;
  /** A `{{resolve:secretsmanager:…}}` dynamic reference, resolved by CloudFormation at deploy time. */
  cursorSecret: string;
  redisUrl: string;
  eventBusName: string;
  stage: string;
}

/** Tuning values, same as config.ts's defaults but stated, so a deployment shows what it runs with. */
export const TUNING = {
  DATA_KEY_CACHE_TTL_MS: '300000',
  DATA_KEY_CACHE_MAX_ENTRIES: '1000',
  REDIS_CONNECT_TIMEOUT_MS: '500',
  REDIS_COMMAND_TIMEOUT_MS: '200',
  REDIS_CIRCUIT_OPEN_MS: '5000',
  HISTORY_CACHE_TTL_SECONDS: '300',
  ANALYTICS_CACHE_TTL_SECONDS: '60',
  REDIS_LOCK_TTL_MS: '2000',
  REDIS_LOCK_WAIT_MS: '250',
  REDIS_LOCK_POLL_MS: '20',
  CACHE_VERSION_TTL_SECONDS: String(7 * 24 * 3600),
  LARGE_AMOUNT_THRESHOLD_MINOR: '1000000',
  IDEMPOTENCY_TTL_SECONDS: '86400',
  IDEMPOTENCY_IN_PROGRESS_SECONDS: '30',
} as const;

/** What a function is, for its environment: a route's access, or the aggregator (which also publishes events). */
export interface EnvironmentNeeds extends RouteAccess {
  publishesEvents: boolean;
  /** Signs or verifies history cursors. */
  cursors: boolean;
}

/** Each function receives the variables for what it touches; a function without cache access gets no REDIS_URL. */
export function functionEnvironment(needs: EnvironmentNeeds, r: EnvironmentResources): Record<string, string> {
  const env: Record<string, string> = {
    POWERTOOLS_SERVICE_NAME: 'tally',
    POWERTOOLS_LOG_LEVEL: 'INFO',
    TALLY_STAGE: r.stage,
  };
  if (usesTable(needs)) {
    env.TABLE_NAME = r.tableName;
    env.IDEMPOTENCY_TTL_SECONDS = TUNING.IDEMPOTENCY_TTL_SECONDS;
    env.IDEMPOTENCY_IN_PROGRESS_SECONDS = TUNING.IDEMPOTENCY_IN_PROGRESS_SECONDS;
  }
  if (needs.dataKeys !== 'none') {
    env.KMS_KEY_ID = r.dataKeyKeyArn;
    env.DATA_KEY_CACHE_TTL_MS = TUNING.DATA_KEY_CACHE_TTL_MS;
    env.DATA_KEY_CACHE_MAX_ENTRIES = TUNING.DATA_KEY_CACHE_MAX_ENTRIES;
  }
  if (needs.cursors) env.CURSOR_SECRET = r.cursorSecret;
  if (needs.cache) {
    env.REDIS_URL = r.redisUrl;
    env.REDIS_CONNECT_TIMEOUT_MS = TUNING.REDIS_CONNECT_TIMEOUT_MS;
    env.REDIS_COMMAND_TIMEOUT_MS = TUNING.REDIS_COMMAND_TIMEOUT_MS;
    env.REDIS_CIRCUIT_OPEN_MS = TUNING.REDIS_CIRCUIT_OPEN_MS;
    env.HISTORY_CACHE_TTL_SECONDS = TUNING.HISTORY_CACHE_TTL_SECONDS;
    env.ANALYTICS_CACHE_TTL_SECONDS = TUNING.ANALYTICS_CACHE_TTL_SECONDS;
    // ElastiCache Serverless accepts TLS only (the URL is rediss:// too).
    env.REDIS_TLS = 'true';
    env.REDIS_LOCK_TTL_MS = TUNING.REDIS_LOCK_TTL_MS;
    env.REDIS_LOCK_WAIT_MS = TUNING.REDIS_LOCK_WAIT_MS;
    env.REDIS_LOCK_POLL_MS = TUNING.REDIS_LOCK_POLL_MS;
    env.CACHE_VERSION_TTL_SECONDS = TUNING.CACHE_VERSION_TTL_SECONDS;
  }
  if (needs.publishesEvents) {
    env.EVENT_BUS_NAME = r.eventBusName;
    env.LARGE_AMOUNT_THRESHOLD_MINOR = TUNING.LARGE_AMOUNT_THRESHOLD_MINOR;
  }
  return env;
}

/**
 * Variables config.ts reads that the stack deliberately never sets: the region comes from Lambda, EVENTS_FILE is
 * the local stack's bus, and the cache has no AUTH token (access is the security group plus TLS).
 */
export const NOT_SET_IN_AWS = ['AWS_REGION', 'AWS_DEFAULT_REGION', 'EVENTS_FILE', 'REDIS_AUTH_TOKEN'] as const;
