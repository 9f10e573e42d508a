import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { KMSClient } from '@aws-sdk/client-kms';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { config } from './config.ts';
import { DataKeyStore } from './data-keys.ts';
import { NameCipher } from './name-cipher.ts';

/**
 * The container's SDK clients, created lazily and once. No endpoint is set here: the SDK reads
 * `AWS_ENDPOINT_URL` and the per-service `AWS_ENDPOINT_URL_<SERVICE>` itself, so the same code talks to AWS,
 * LocalStack or the local stack. Retries are modest and timeouts short, so a dead dependency is a 503 within a
 * few seconds rather than minutes.
 */
const MAX_ATTEMPTS = 3;
const REQUEST_HANDLER = {
  connectionTimeout: 1_000,
  requestTimeout: 3_000,
  // Without this the handler only logs a warning when requestTimeout is exceeded.
  throwOnRequestTimeout: true,
};

let kms: KMSClient | undefined;
let dynamo: DynamoDBClient | undefined;
let doc: DynamoDBDocumentClient | undefined;
let keys: DataKeyStore | undefined;
let names: NameCipher | undefined;

export function kmsClient(): KMSClient {
  kms ??= new KMSClient({ region: config().region, maxAttempts: MAX_ATTEMPTS, requestHandler: REQUEST_HANDLER });
  return kms;
}

export function dynamoClient(): DynamoDBClient {
  dynamo ??= new DynamoDBClient({ region: config().region, maxAttempts: MAX_ATTEMPTS, requestHandler: REQUEST_HANDLER });
  return dynamo;
}

export function dynamoDocumentClient(): DynamoDBDocumentClient {
  doc ??= DynamoDBDocumentClient.from(dynamoClient(), { marshallOptions: { removeUndefinedValues: true } });
  return doc;
}

export function dataKeyStore(): DataKeyStore {
  const c = config();
  keys ??= new DataKeyStore({
    kms: kmsClient(),
    doc: dynamoDocumentClient(),
    tableName: c.tableName,
    kmsKeyId: c.kmsKeyId,
    ttlMs: c.dataKeyCacheTtlMs,
    maxEntries: c.dataKeyCacheMaxEntries,
  });
  return keys;
}

export function nameCipher(): NameCipher {
  names ??= new NameCipher(dataKeyStore());
  return names;
}

/** Drops every client and the key cache (tests that change the environment call this with `resetConfig()`). */
export function resetClients(): void {
  kms?.destroy();
  dynamo?.destroy();
  kms = undefined;
  dynamo = undefined;
  doc = undefined;
  keys = undefined;
  names = undefined;
}
