import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { DeleteTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { KMSClient } from '@aws-sdk/client-kms';
import { DynamoDBDocumentClient, GetCommand, ScanCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dataKeyStore, nameCipher, resetClients } from '../../lambdas/adapters/clients.ts';
import { resetConfig } from '../../lambdas/adapters/config.ts';
import { DataKeyStore } from '../../lambdas/adapters/data-keys.ts';
import { FieldDecryptionError } from '../../lambdas/adapters/field-cipher.ts';
import { NameCipher } from '../../lambdas/adapters/name-cipher.ts';
import { Problem } from '../../lambdas/core/problems.ts';
import { startKmsServer, type KmsServer } from '../../local/kms-server.ts';
import { freePort } from '../../local/processes.ts';
import { ensureTable } from '../../local/table.ts';

/** DataKeyStore against real DynamoDB Local (from the global setup) and a real local KMS endpoint of its own. */
const tableName = `data-keys-${randomUUID()}`;
const credentials = { accessKeyId: 'local', secretAccessKey: 'local' };
let dataDir: string;
let kmsServer: KmsServer;
let dynamo: DynamoDBClient;
let doc: DynamoDBDocumentClient;
const kmsClients: KMSClient[] = [];

/** Holds each caller's first GetItem answer until `parties` callers have theirs, so a race is a real race. */
function barrier(parties: number): () => Promise<void> {
  let arrived = 0;
  let open!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  return () => {
    arrived += 1;
    if (arrived >= parties) open();
    return opened;
  };
}

/** A fresh "container": its own SDK clients and its own key cache. */
function container(options: { kmsEndpoint?: string; ttlMs?: number; firstGet?: () => Promise<void> } = {}): DataKeyStore {
  const kms = new KMSClient({ region: 'us-east-1', endpoint: options.kmsEndpoint ?? kmsServer.endpoint, credentials, maxAttempts: 3 });
  kmsClients.push(kms);
  const dynamoClient = new DynamoDBClient({ region: 'us-east-1', credentials });
  const firstGet = options.firstGet;
  if (firstGet) {
    let waited = false;
    dynamoClient.middlewareStack.add(
      (next, context) => async (args) => {
        const result = await next(args);
        if (context.commandName === 'GetItemCommand' && !waited) {
          waited = true;
          await firstGet();
        }
        return result;
      },
      { step: 'initialize', name: 'raceBarrier' },
    );
  }
  return new DataKeyStore({
    kms,
    doc: DynamoDBDocumentClient.from(dynamoClient),
    tableName,
    kmsKeyId: kmsServer.alias,
    ttlMs: options.ttlMs ?? 300_000,
    maxEntries: 1_000,
  });
}

async function keyItem(userId: string): Promise<Record<string, unknown> | undefined> {
  const out = await doc.send(new GetCommand({ TableName: tableName, Key: { PK: `USER#${userId}`, SK: 'KEY' }, ConsistentRead: true }));
  return out.Item;
}

beforeAll(async () => {
  expect(process.env.AWS_ENDPOINT_URL_DYNAMODB).toBeTruthy();
  dynamo = new DynamoDBClient({ region: 'us-east-1', credentials });
  doc = DynamoDBDocumentClient.from(dynamo);
  await ensureTable(dynamo, tableName);
  dataDir = await mkdtemp(join(tmpdir(), 'tally-data-keys-'));
  kmsServer = await startKmsServer({ dataDir });
});

afterAll(async () => {
  for (const client of kmsClients) client.destroy();
  resetClients();
  await kmsServer.stop();
  await dynamo.send(new DeleteTableCommand({ TableName: tableName }));
  dynamo.destroy();
  await rm(dataDir, { recursive: true, force: true });
});

describe('DataKeyStore with DynamoDB Local and the local KMS', () => {
  it('two containers racing the first write of a new user end with one KEY item and the same key', async () => {
    kmsServer.resetCounts();
    for (let round = 0; round < 5; round += 1) {
      const userId = `race-${round}-${randomUUID()}`;
      const firstGet = barrier(2);
      const [a, b] = [container({ firstGet }), container({ firstGet })];
      const [ka, kb] = await Promise.all([a.keyForWrite(userId), b.keyForWrite(userId)]);
      expect(ka.version).toBe(1);
      expect(kb.version).toBe(1);
      expect(ka.key.equals(kb.key)).toBe(true);
      const items = await doc.send(
        new ScanCommand({ TableName: tableName, FilterExpression: 'PK = :pk', ExpressionAttributeValues: { ':pk': `USER#${userId}` }, ConsistentRead: true }),
      );
      expect(items.Items).toHaveLength(1);
      // A third container reads back that same key.
      expect((await container().keyForRead(userId, 1))?.key.equals(ka.key)).toBe(true);
    }
    // Both containers saw no item and generated a key in every round: one lost at the conditional put and
    // read the winner's key.
    expect(kmsServer.counts().GenerateDataKey).toBe(10);
  });

  it('stores only the wrapped key, never the plaintext', async () => {
    const userId = `wrapped-${randomUUID()}`;
    const key = await container().keyForWrite(userId);
    const item = await keyItem(userId);
    expect(item).toMatchObject({ key_version: 1 });
    expect(typeof item?.created_at).toBe('string');
    const wrapped = Buffer.from(String(item?.wrapped_key), 'base64');
    expect(wrapped.length).toBeGreaterThan(32);
    expect(wrapped.includes(key.key)).toBe(false);
    expect(JSON.stringify(item)).not.toContain(key.key.toString('base64'));
  });

  it('erase then write: version 2, the old version reads null, in this and in a fresh container', async () => {
    const userId = `erase-${randomUUID()}`;
    const here = container();
    const cipher = new NameCipher(here);
    const old = await cipher.encrypt(userId, 'tx-1', 'Ama Mensah');
    expect(old.keyVersion).toBe(1);
    await here.erase(userId);
    const erased = await keyItem(userId);
    expect(erased?.wrapped_key).toBeUndefined();
    expect(erased).toMatchObject({ key_version: 1 });
    expect(typeof erased?.erased_at).toBe('string');
    await here.erase(userId); // idempotent
    await container().erase(`never-${randomUUID()}`); // no item: fine

    expect(await cipher.decrypt(userId, 'tx-1', old.ciphertext)).toBeNull();
    expect(await new NameCipher(container()).decrypt(userId, 'tx-1', old.ciphertext)).toBeNull();

    const fresh = await cipher.encrypt(userId, 'tx-2', 'Kofi Boateng');
    expect(fresh.keyVersion).toBe(2);
    expect(await keyItem(userId)).toMatchObject({ key_version: 2 });
    expect((await keyItem(userId))?.erased_at).toBeUndefined();
    expect(await new NameCipher(container()).decrypt(userId, 'tx-2', fresh.ciphertext)).toBe('Kofi Boateng');
    expect(await new NameCipher(container()).decrypt(userId, 'tx-1', old.ciphertext)).toBeNull();
  });

  it('a ciphertext moved to another transaction or user fails to decrypt', async () => {
    const [alice, bob] = [`alice-${randomUUID()}`, `bob-${randomUUID()}`];
    const cipher = new NameCipher(container());
    const sealed = await cipher.encrypt(alice, 'tx-1', 'Ama Mensah');
    await cipher.encrypt(bob, 'tx-9', 'Bob');
    await expect(cipher.decrypt(alice, 'tx-2', sealed.ciphertext)).rejects.toBeInstanceOf(FieldDecryptionError);
    await expect(cipher.decrypt(bob, 'tx-1', sealed.ciphertext)).rejects.toBeInstanceOf(FieldDecryptionError);
    expect(await cipher.decrypt(alice, 'tx-1', sealed.ciphertext)).toBe('Ama Mensah');
  });

  it('one warm container: 1,000 writes and 1,000 reads of an existing user make at most 1 KMS call', async () => {
    const userId = `warm-${randomUUID()}`;
    await container().keyForWrite(userId); // the user exists (key created elsewhere)
    kmsServer.resetCounts();
    const cipher = new NameCipher(container());
    const sealed: string[] = [];
    for (let i = 0; i < 1_000; i += 1) sealed.push((await cipher.encrypt(userId, `tx-${i}`, `Name ${i}`)).ciphertext);
    for (let i = 0; i < 1_000; i += 1) expect(await cipher.decrypt(userId, `tx-${i}`, sealed[i] ?? '')).toBe(`Name ${i}`);
    const counts = kmsServer.counts();
    const total = Object.values(counts).reduce((a, b) => a + b, 0);
    expect(counts).toEqual({ Decrypt: 1 });
    expect(total).toBeLessThanOrEqual(1);
  });

  it('KMS unreachable is a 503 problem, and no KEY item is written', async () => {
    const deadPort = await freePort();
    const store = container({ kmsEndpoint: `http://127.0.0.1:${deadPort}` });
    const userId = `down-${randomUUID()}`;
    const started = Date.now();
    const error = await store.keyForWrite(userId).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Problem);
    expect((error as Problem).status).toBe(503);
    expect((error as Problem).detail).toContain('KMS');
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(await keyItem(userId)).toBeUndefined();
  });

  it('clients.ts builds the store from config and the SDK endpoint variables (AWS_ENDPOINT_URL_KMS)', async () => {
    expect(process.env.AWS_ENDPOINT_URL_KMS).toBeTruthy();
    const previous = process.env.TABLE_NAME;
    process.env.TABLE_NAME = tableName;
    resetConfig();
    resetClients();
    try {
      expect(dataKeyStore()).toBe(dataKeyStore());
      const userId = `clients-${randomUUID()}`;
      const sealed = await nameCipher().encrypt(userId, 'tx-1', 'Zoë Ångström 👩🏽‍💻');
      expect(await nameCipher().decrypt(userId, 'tx-1', sealed.ciphertext)).toBe('Zoë Ångström 👩🏽‍💻');
      expect(await keyItem(userId)).toMatchObject({ key_version: 1 });
    } finally {
      if (previous === undefined) delete process.env.TABLE_NAME;
      else process.env.TABLE_NAME = previous;
      resetConfig();
      resetClients();
    }
  });
});
