import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { startDynamoDbLocal } from './dynamodb-local.ts';
import { lambdaContext, startGateway, type Authorizer, type Gateway } from './gateway.ts';
import { loadLocalIssuer, type LocalIssuer } from './auth.ts';
import { startKmsServer, LOCAL_KMS_ALIAS } from './kms-server.ts';
import { redisAvailable, startRedis } from './redis-local.ts';
import { ensureTable } from './table.ts';
import { streamHandler } from '../lib/routes.ts';

export interface LocalStackOptions {
  /** Port of the HTTP gateway; 0 picks a free one. */
  port: number;
  /** Folder for the local root key, stack.json, events and dead letters. */
  dataDir: string;
  /** Keep DynamoDB data in `dataDir` across restarts. */
  persist?: boolean;
  tableName?: string;
  /** Services already running (the test run's), by their SDK variables; those not given are started here. */
  services?: Partial<Record<'AWS_ENDPOINT_URL_DYNAMODB' | 'AWS_ENDPOINT_URL_KMS' | 'REDIS_URL' | 'KMS_KEY_ID', string>>;
  /** Start Redis when it is installed (default true); false runs with the cache off. */
  cache?: boolean;
  /** Run the stream poller that feeds the aggregator (default true). */
  stream?: boolean;
  /**
   * Verify bearer tokens in the gateway (the local issuer's, key pair in `dataDir/auth/`) and authorize in the
   * handlers — default true. `false` switches both off (`AUTH_MODE=off`, set only here): quick experiments
   * and tests that are not about auth.
   */
  auth?: boolean;
  /** Replaces the local issuer's verifier (tests). */
  authorizer?: Authorizer;
  onRequest?: (line: { method: string; path: string; status: number; ms: number }) => void;
  log?: (line: string) => void;
}

export interface StackInfo {
  apiUrl: string;
  dynamodbEndpoint: string;
  kmsEndpoint: string;
  redisUrl: string | null;
  region: string;
  tableName: string;
  streamArn: string;
  kmsKeyId: string;
  eventsFile: string;
  deadLetterFile: string;
  auth: StackAuthInfo;
}

export interface StackAuthInfo {
  /** `jwt`: tokens are verified and authorized as in AWS; `off`: anyone may do anything. */
  mode: 'jwt' | 'off';
  issuer: string | null;
  /** App client ids accepted as `aud` / `client_id`. */
  audience: string[];
  jwksFile: string | null;
  /** How to get a token. */
  token: string;
}

export interface LocalStack {
  info: StackInfo;
  /** The local token issuer; undefined when auth is off. */
  issuer: LocalIssuer | undefined;
  gateway: Gateway;
  /** Resolves once every stream record written so far has been through the aggregator. */
  drained(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * The one-machine stack: DynamoDB Local, the KMS-compatible endpoint, Redis, the table, the HTTP gateway and
 * the stream poller, wired through the same environment variables Lambda would see. The handlers run in
 * this process, so the environment is set before they are first imported.
 */
export async function startLocalStack(options: LocalStackOptions): Promise<LocalStack> {
  const log = options.log ?? (() => undefined);
  const dataDir = resolve(options.dataDir);
  mkdirSync(dataDir, { recursive: true });
  const stops: Array<() => Promise<void>> = [];
  const stopAll = async () => {
    for (const stop of stops.reverse()) await stop().catch(() => undefined);
  };
  try {
    const region = process.env.AWS_REGION ?? 'us-east-1';
    let dynamodbEndpoint = options.services?.AWS_ENDPOINT_URL_DYNAMODB;
    if (!dynamodbEndpoint) {
      const persistDir = options.persist ? join(dataDir, 'dynamodb') : undefined;
      if (persistDir) mkdirSync(persistDir, { recursive: true });
      const dynamo = await startDynamoDbLocal(persistDir ? { persistDir } : {});
      stops.push(() => dynamo.process.stop());
      dynamodbEndpoint = dynamo.endpoint;
    }
    let kmsEndpoint = options.services?.AWS_ENDPOINT_URL_KMS;
    let kmsKeyId = options.services?.KMS_KEY_ID ?? LOCAL_KMS_ALIAS;
    if (!kmsEndpoint) {
      const kms = await startKmsServer({ dataDir, region });
      stops.push(() => kms.stop());
      kmsEndpoint = kms.endpoint;
      kmsKeyId = kms.alias;
    }
    let redisUrl: string | null = options.services?.REDIS_URL ?? null;
    if (!redisUrl && options.cache !== false) {
      if (redisAvailable()) {
        const redis = await startRedis();
        stops.push(() => redis.process.stop());
        redisUrl = redis.url;
      } else {
        log('redis-server is not installed: running with the cache off (apt-get install -y redis-server to enable it)');
      }
    }
    if (options.cache === false) redisUrl = null;
    const tableName = options.tableName ?? 'tally';
    const eventsFile = join(dataDir, 'events.jsonl');
    const deadLetterFile = join(dataDir, 'dead-letters.jsonl');

    Object.assign(process.env, {
      AWS_REGION: region,
      AWS_ACCESS_KEY_ID: process.env.AWS_ACCESS_KEY_ID ?? 'local',
      AWS_SECRET_ACCESS_KEY: process.env.AWS_SECRET_ACCESS_KEY ?? 'local',
      AWS_ENDPOINT_URL_DYNAMODB: dynamodbEndpoint,
      AWS_ENDPOINT_URL_DYNAMODB_STREAMS: dynamodbEndpoint,
      AWS_ENDPOINT_URL_KMS: kmsEndpoint,
      KMS_KEY_ID: kmsKeyId,
      TABLE_NAME: tableName,
      REDIS_URL: redisUrl ?? '',
      EVENTS_FILE: eventsFile,
    });

    // The switch the handlers' auth middleware reads. Only this file ever sets it to `off`, and the middleware
    // ignores it inside a real Lambda runtime.
    const authOn = options.auth !== false;
    process.env.AUTH_MODE = authOn ? 'on' : 'off';
    const issuer = authOn ? await loadLocalIssuer(dataDir) : undefined;
    const authorizer = options.authorizer ?? issuer?.authorizer();

    const client = new DynamoDBClient({ region, endpoint: dynamodbEndpoint });
    const streamArn = await ensureTable(client, tableName);
    client.destroy();

    let drained = async () => undefined as void;
    if (options.stream !== false) {
      const { handler } = await import('../lambdas/stream/aggregate.ts');
      const { startStreamPoller } = await import('./stream-poller.ts');
      const poller = await startStreamPoller({
        streamArn,
        handler: (event) => handler(event, lambdaContext(streamHandler.functionName, 60_000)),
        batchSize: 100,
        batchingWindowMs: 50,
        maxRetries: 3,
        deadLetterFile,
        pollIntervalMs: 100,
      });
      stops.push(() => poller.stop());
      drained = () => poller.drained();
    }

    const gateway = await startGateway({
      port: options.port,
      ...(authOn && authorizer ? { authorizer } : {}),
      ...(options.onRequest ? { onRequest: options.onRequest } : {}),
    });
    stops.push(() => gateway.stop());

    const info: StackInfo = {
      apiUrl: gateway.url,
      dynamodbEndpoint,
      kmsEndpoint,
      redisUrl,
      region,
      tableName,
      streamArn,
      kmsKeyId,
      eventsFile,
      deadLetterFile,
      auth: issuer
        ? {
            mode: 'jwt',
            issuer: issuer.issuer,
            audience: issuer.audience,
            jwksFile: issuer.jwksFile,
            token: 'npm run token -- --user <user_id>  (end user)  |  npm run token -- --admin  (service); send Authorization: Bearer <token>',
          }
        : { mode: 'off', issuer: null, audience: [], jwksFile: null, token: 'auth is off (--no-auth): no token needed' },
    };
    return { info, issuer, gateway, drained, stop: stopAll };
  } catch (error) {
    await stopAll();
    throw error;
  }
}

export function writeStackFile(dataDir: string, info: StackInfo & Record<string, unknown>): string {
  const file = join(resolve(dataDir), 'stack.json');
  writeFileSync(file, `${JSON.stringify(info, null, 2)}\n`);
  return file;
}
