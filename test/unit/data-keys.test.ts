import { randomBytes } from 'node:crypto';
import {
  DecryptCommand,
  GenerateDataKeyCommand,
  InvalidCiphertextException,
  KMSClient,
  KMSInternalException,
  KMSInvalidStateException,
  KMSServiceException,
  type DecryptCommandInput,
  type GenerateDataKeyCommandInput,
} from '@aws-sdk/client-kms';
import { ConditionalCheckFailedException, DynamoDBClient, DynamoDBServiceException } from '@aws-sdk/client-dynamodb';
import {
  DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  UpdateCommand,
  type GetCommandInput,
  type PutCommandInput,
  type UpdateCommandInput,
} from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import 'aws-sdk-client-mock-vitest/extend';
import { beforeEach, describe, expect, it } from 'vitest';
import { DataKeyStore, isKmsUnavailable, type DataKeyStoreDeps } from '../../lambdas/adapters/data-keys.ts';
import { FieldDecryptionError } from '../../lambdas/adapters/field-cipher.ts';
import { Problem } from '../../lambdas/core/problems.ts';

const TABLE = 'tally-unit';
const KMS_KEY = 'alias/tally-data-keys';

const kms = mockClient(KMSClient);
const doc = mockClient(DynamoDBDocumentClient);

/** A fake KMS: a blob is a random handle; Decrypt needs the same encryption context, as real KMS does. */
const wrapped = new Map<string, { key: Buffer; context: string }>();
/** A fake table holding KEY items by PK, honouring the store's conditions. */
const table = new Map<string, Record<string, unknown>>();

const ccf = () => new ConditionalCheckFailedException({ message: 'The conditional request failed', $metadata: { httpStatusCode: 400 } });

function fakeKms(): void {
  kms.on(GenerateDataKeyCommand).callsFake((input: GenerateDataKeyCommandInput) => {
    const key = randomBytes(32);
    const blob = randomBytes(48);
    wrapped.set(blob.toString('base64'), { key: Buffer.from(key), context: JSON.stringify(input.EncryptionContext) });
    return { CiphertextBlob: new Uint8Array(blob), Plaintext: new Uint8Array(key), KeyId: 'arn:aws:kms:us-east-1:000000000000:key/k' };
  });
  kms.on(DecryptCommand).callsFake((input: DecryptCommandInput) => {
    const entry = wrapped.get(Buffer.from(input.CiphertextBlob ?? new Uint8Array()).toString('base64'));
    if (!entry || entry.context !== JSON.stringify(input.EncryptionContext)) {
      throw new InvalidCiphertextException({ message: 'invalid', $metadata: { httpStatusCode: 400 } });
    }
    return { Plaintext: new Uint8Array(entry.key), KeyId: 'arn:aws:kms:us-east-1:000000000000:key/k' };
  });
}

function fakeTable(): void {
  doc.on(GetCommand).callsFake((input: GetCommandInput) => {
    const item = table.get(String(input.Key?.PK));
    return { Item: item ? { ...item } : undefined };
  });
  doc.on(PutCommand).callsFake((input: PutCommandInput) => {
    const item = input.Item ?? {};
    const existing = table.get(String(item.PK));
    const previous = input.ExpressionAttributeValues?.[':previous'];
    if (existing && (existing.wrapped_key !== undefined || existing.key_version !== previous)) throw ccf();
    table.set(String(item.PK), { ...item });
    return {};
  });
  doc.on(UpdateCommand).callsFake((input: UpdateCommandInput) => {
    const existing = table.get(String(input.Key?.PK));
    if (!existing || existing.wrapped_key === undefined) throw ccf();
    delete existing.wrapped_key;
    existing.erased_at = input.ExpressionAttributeValues?.[':now'];
    return { Attributes: { ...existing } };
  });
}

/** Stores a live key for the user as another container would have, and returns its plaintext. */
function seedKey(userId: string, version = 1): Buffer {
  const key = randomBytes(32);
  const blob = randomBytes(48).toString('base64');
  wrapped.set(blob, { key, context: JSON.stringify({ user_id: userId }) });
  table.set(`USER#${userId}`, { PK: `USER#${userId}`, SK: 'KEY', key_version: version, wrapped_key: blob, created_at: 'x' });
  return key;
}

function store(overrides: Partial<DataKeyStoreDeps> = {}): DataKeyStore {
  return new DataKeyStore({
    kms: new KMSClient({ region: 'us-east-1' }),
    doc: DynamoDBDocumentClient.from(new DynamoDBClient({ region: 'us-east-1' })),
    tableName: TABLE,
    kmsKeyId: KMS_KEY,
    ttlMs: 5 * 60_000,
    maxEntries: 100,
    ...overrides,
  });
}

async function caught(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected a rejection');
}

beforeEach(() => {
  kms.reset();
  doc.reset();
  wrapped.clear();
  table.clear();
  fakeKms();
  fakeTable();
});

describe('DataKeyStore', () => {
  it("creates a new user's first key: GenerateDataKey (AES_256, context {user_id}) and a conditional put", async () => {
    const keys = store();
    const first = await keys.keyForWrite('alice');
    expect(first.version).toBe(1);
    expect(first.key).toHaveLength(32);
    expect(doc).toHaveReceivedCommandWith(GetCommand, { TableName: TABLE, Key: { PK: 'USER#alice', SK: 'KEY' }, ConsistentRead: true });
    expect(kms).toHaveReceivedCommandExactlyOnceWith(GenerateDataKeyCommand, {
      KeyId: KMS_KEY,
      KeySpec: 'AES_256',
      EncryptionContext: { user_id: 'alice' },
    });
    expect(kms).toHaveReceivedCommandTimes(DecryptCommand, 0);
    const put = doc.commandCalls(PutCommand)[0]?.args[0].input;
    expect(put?.ConditionExpression).toContain('attribute_not_exists(#pk)');
    expect(put?.ConditionExpression).toContain('attribute_not_exists(wrapped_key)');
    expect(put?.ExpressionAttributeNames).toEqual({ '#pk': 'PK' });
    expect(put?.Item).toMatchObject({ PK: 'USER#alice', SK: 'KEY', key_version: 1 });
    expect(typeof put?.Item?.wrapped_key).toBe('string');
    expect(put?.Item?.wrapped_key).not.toBe(first.key.toString('base64'));
    // The stored blob unwraps (in the fake KMS) to the key handed out.
    expect(wrapped.get(String(put?.Item?.wrapped_key))?.key.equals(first.key)).toBe(true);
  });

  it('unwraps an existing key with Decrypt under the user context and caches it', async () => {
    const plaintext = seedKey('bob', 4);
    const keys = store();
    const got = await keys.keyForWrite('bob');
    expect(got.version).toBe(4);
    expect(got.key.equals(plaintext)).toBe(true);
    expect(kms).toHaveReceivedCommandExactlyOnceWith(DecryptCommand, { KeyId: KMS_KEY, EncryptionContext: { user_id: 'bob' } });
    expect(kms).toHaveReceivedCommandTimes(GenerateDataKeyCommand, 0);
    expect(doc).toHaveReceivedCommandTimes(PutCommand, 0);
  });

  it("losing the first-write race re-reads and uses the winner's key", async () => {
    const winner = randomBytes(32);
    const winnerBlob = randomBytes(48).toString('base64');
    wrapped.set(winnerBlob, { key: winner, context: JSON.stringify({ user_id: 'carol' }) });
    doc
      .on(GetCommand)
      .resolvesOnce({ Item: undefined })
      .resolves({ Item: { PK: 'USER#carol', SK: 'KEY', key_version: 1, wrapped_key: winnerBlob } });
    doc.on(PutCommand).rejects(ccf());
    const keys = store();
    const got = await keys.keyForWrite('carol');
    expect(got.version).toBe(1);
    expect(got.key.equals(winner)).toBe(true);
    expect(doc).toHaveReceivedCommandTimes(GetCommand, 2);
    expect(doc).toHaveReceivedCommandTimes(PutCommand, 1);
    expect(kms).toHaveReceivedCommandTimes(GenerateDataKeyCommand, 1);
    expect(kms).toHaveReceivedCommandTimes(DecryptCommand, 1);
    // And the winner's key is what is cached.
    expect((await keys.keyForRead('carol', 1))?.key.equals(winner)).toBe(true);
    expect(kms).toHaveReceivedCommandTimes(DecryptCommand, 1);
  });

  it('two stores (two containers) racing for a new user end with one key', async () => {
    const [a, b] = [store(), store()];
    const [ka, kb] = await Promise.all([a.keyForWrite('dave'), b.keyForWrite('dave')]);
    expect(ka.key.equals(kb.key)).toBe(true);
    expect(ka.version).toBe(1);
    expect(doc).toHaveReceivedCommandTimes(PutCommand, 2); // one wins, one loses the condition
    expect(table.get('USER#dave')?.key_version).toBe(1);
  });

  it('cache hits: 1,000 keyForWrite and 1,000 keyForRead make zero KMS and zero DynamoDB calls', async () => {
    seedKey('erin', 1);
    const keys = store();
    const warm = await keys.keyForWrite('erin');
    kms.resetHistory();
    doc.resetHistory();
    for (let i = 0; i < 1_000; i += 1) expect((await keys.keyForWrite('erin')).key).toBe(warm.key);
    for (let i = 0; i < 1_000; i += 1) expect((await keys.keyForRead('erin', 1))?.key).toBe(warm.key);
    expect(kms.calls()).toHaveLength(0);
    expect(doc.calls()).toHaveLength(0);
  });

  it('TTL expiry causes exactly one re-fetch', async () => {
    seedKey('fay', 1);
    let now = 1_000_000;
    const keys = store({ ttlMs: 60_000, now: () => now });
    await keys.keyForWrite('fay');
    expect(kms).toHaveReceivedCommandTimes(DecryptCommand, 1);
    now += 60_000; // exactly the TTL: still fresh
    await keys.keyForRead('fay', 1);
    expect(kms).toHaveReceivedCommandTimes(DecryptCommand, 1);
    now += 1;
    await Promise.all(Array.from({ length: 20 }, () => keys.keyForWrite('fay')));
    for (let i = 0; i < 20; i += 1) await keys.keyForRead('fay', 1);
    expect(kms).toHaveReceivedCommandTimes(DecryptCommand, 2);
    expect(doc).toHaveReceivedCommandTimes(GetCommand, 2);
  });

  it('evicts the least recently used user at maxEntries', async () => {
    for (const user of ['u1', 'u2', 'u3']) seedKey(user);
    const keys = store({ maxEntries: 2 });
    await keys.keyForWrite('u1');
    await keys.keyForWrite('u2');
    await keys.keyForWrite('u1'); // u1 is now the most recent, u2 the least
    await keys.keyForWrite('u3'); // evicts u2
    expect(kms).toHaveReceivedCommandTimes(DecryptCommand, 3);
    await keys.keyForWrite('u1');
    await keys.keyForWrite('u3');
    expect(kms).toHaveReceivedCommandTimes(DecryptCommand, 3);
    await keys.keyForWrite('u2');
    expect(kms).toHaveReceivedCommandTimes(DecryptCommand, 4);
  });

  it('concurrent misses for one user share one GetItem and one Decrypt', async () => {
    seedKey('gus', 1);
    const keys = store();
    const results = await Promise.all([
      ...Array.from({ length: 25 }, () => keys.keyForWrite('gus')),
      ...Array.from({ length: 25 }, () => keys.keyForRead('gus', 1)),
    ]);
    const first = results[0];
    for (const r of results) expect(r?.key).toBe(first?.key);
    expect(kms).toHaveReceivedCommandTimes(DecryptCommand, 1);
    expect(doc).toHaveReceivedCommandTimes(GetCommand, 1);
  });

  it('concurrent first writes in one container share one GenerateDataKey', async () => {
    const keys = store();
    const results = await Promise.all(Array.from({ length: 25 }, () => keys.keyForWrite('hal')));
    for (const r of results) expect(r.key).toBe(results[0]?.key);
    expect(kms).toHaveReceivedCommandTimes(GenerateDataKeyCommand, 1);
    expect(doc).toHaveReceivedCommandTimes(PutCommand, 1);
  });

  describe('erasure', () => {
    it('erase removes wrapped_key, keeps key_version, and drops the cached key', async () => {
      seedKey('ivy', 1);
      const keys = store({ now: () => Date.parse('2026-12-03T18:00:00.000Z') });
      await keys.keyForWrite('ivy');
      await keys.erase('ivy');
      expect(doc).toHaveReceivedCommandWith(UpdateCommand, {
        TableName: TABLE,
        Key: { PK: 'USER#ivy', SK: 'KEY' },
        UpdateExpression: 'REMOVE wrapped_key SET erased_at = :now',
      });
      expect(table.get('USER#ivy')).toMatchObject({ key_version: 1, erased_at: '2026-12-03T18:00:00.000Z' });
      expect(table.get('USER#ivy')?.wrapped_key).toBeUndefined();
      doc.resetHistory();
      kms.resetHistory();
      expect(await keys.keyForRead('ivy', 1)).toBeNull();
      expect(kms.calls()).toHaveLength(0); // destroyed versions are known without a call
    });

    it('an erased key reads null and the next write creates version + 1', async () => {
      table.set('USER#jo', { PK: 'USER#jo', SK: 'KEY', key_version: 3, erased_at: 'x' });
      const keys = store();
      expect(await keys.keyForRead('jo', 3)).toBeNull();
      expect(await keys.keyForRead('jo', 1)).toBeNull();
      const next = await keys.keyForWrite('jo');
      expect(next.version).toBe(4);
      expect(doc).toHaveReceivedCommandWith(PutCommand, { ExpressionAttributeValues: { ':previous': 3 } });
      expect(await keys.keyForRead('jo', 3)).toBeNull();
      expect((await keys.keyForRead('jo', 4))?.key).toBe(next.key);
    });

    it('erase is idempotent: no item, or already erased, is fine', async () => {
      const keys = store();
      await expect(keys.erase('nobody')).resolves.toBeUndefined();
      seedKey('kim');
      await keys.erase('kim');
      await expect(keys.erase('kim')).resolves.toBeUndefined();
    });

    it('a key erased by another container is still served here until the TTL, then reads null', async () => {
      seedKey('lea', 1);
      let now = 0;
      const here = store({ ttlMs: 1_000, now: () => now });
      const there = store({ ttlMs: 1_000, now: () => now });
      await here.keyForRead('lea', 1);
      await there.erase('lea');
      expect(await here.keyForRead('lea', 1)).not.toBeNull(); // within the bound
      now += 1_001;
      expect(await here.keyForRead('lea', 1)).toBeNull();
    });
  });

  describe('key versions', () => {
    it('an older version than the live key reads null (destroyed by rotation or erasure)', async () => {
      seedKey('max', 2);
      const keys = store();
      expect(await keys.keyForRead('max', 1)).toBeNull();
      expect((await keys.keyForRead('max', 2))?.version).toBe(2);
    });

    it('a version newer than the stored one is an integrity error', async () => {
      seedKey('ned', 1);
      const keys = store();
      await expect(keys.keyForRead('ned', 2)).rejects.toBeInstanceOf(FieldDecryptionError);
      table.set('USER#ole', { PK: 'USER#ole', SK: 'KEY', key_version: 1 });
      await expect(keys.keyForRead('ole', 2)).rejects.toBeInstanceOf(FieldDecryptionError);
    });

    it('a missing KEY item reads null', async () => {
      expect(await store().keyForRead('pia', 1)).toBeNull();
    });

    it('a ciphertext newer than the cached key makes this container look again', async () => {
      seedKey('quin', 1);
      const keys = store();
      await keys.keyForWrite('quin');
      const newer = seedKey('quin', 2); // another container erased and re-keyed
      expect((await keys.keyForRead('quin', 2))?.key.equals(newer)).toBe(true);
      expect(await keys.keyForRead('quin', 1)).toBeNull();
    });

    it('forget drops the cached key', async () => {
      seedKey('rae', 1);
      const keys = store();
      await keys.keyForWrite('rae');
      keys.forget('rae');
      await keys.keyForWrite('rae');
      expect(kms).toHaveReceivedCommandTimes(DecryptCommand, 2);
    });
  });

  describe('failures', () => {
    const throttling = () =>
      new KMSServiceException({ name: 'ThrottlingException', $fault: 'client', message: 'Rate exceeded', $metadata: { httpStatusCode: 400 } });

    it.each([
      ['ThrottlingException', throttling],
      ['KMSInternalException', () => new KMSInternalException({ message: 'x', $metadata: { httpStatusCode: 500 } })],
      ['a refused connection', () => Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED', $metadata: { attempts: 3 } })],
      ['a timeout', () => Object.assign(new Error('timed out'), { name: 'TimeoutError' })],
    ])('KMS %s on Decrypt is a 503 problem naming KMS', async (_label, make) => {
      seedKey('sam');
      kms.on(DecryptCommand).rejects(make());
      const error = await caught(store().keyForWrite('sam'));
      expect(error).toBeInstanceOf(Problem);
      expect((error as Problem).status).toBe(503);
      expect((error as Problem).detail).toContain('KMS');
      expect((error as Problem).headers['retry-after']).toBe('1');
      expect(isKmsUnavailable(make())).toBe(true);
    });

    it('KMS throttling on GenerateDataKey is a 503 and nothing is written', async () => {
      kms.on(GenerateDataKeyCommand).rejects(throttling());
      const error = await caught(store().keyForWrite('tia'));
      expect((error as Problem).status).toBe(503);
      expect(doc).toHaveReceivedCommandTimes(PutCommand, 0);
    });

    it.each([
      ['InvalidCiphertextException', () => new InvalidCiphertextException({ message: 'x', $metadata: { httpStatusCode: 400 } })],
      ['KMSInvalidStateException', () => new KMSInvalidStateException({ message: 'x', $metadata: { httpStatusCode: 400 } })],
      ['IncorrectKeyException', () => new KMSServiceException({ name: 'IncorrectKeyException', $fault: 'client', message: 'x', $metadata: { httpStatusCode: 400 } })],
      ['AccessDeniedException', () => new KMSServiceException({ name: 'AccessDeniedException', $fault: 'client', message: 'x', $metadata: { httpStatusCode: 400 } })],
    ])('KMS %s is a 500 data-key-unusable problem that leaks nothing', async (_label, make) => {
      const plaintext = seedKey('uma');
      kms.on(DecryptCommand).rejects(make());
      const error = await caught(store().keyForWrite('uma'));
      expect(error).toBeInstanceOf(Problem);
      const problem = error as Problem;
      expect(problem.status).toBe(500);
      expect(problem.type).toBe('https://tally.dev/problems/data-key-unusable');
      expect(problem.title).toBe('A data key could not be unwrapped');
      const text = `${problem.message} ${problem.detail ?? ''} ${problem.title}`;
      expect(text).not.toContain('uma');
      expect(text).not.toContain(String(table.get('USER#uma')?.wrapped_key));
      expect(text).not.toContain(plaintext.toString('base64'));
    });

    it('a wrapped key under another context (moved KEY item) is refused, never guessed', async () => {
      seedKey('vic');
      table.set('USER#wes', { ...table.get('USER#vic'), PK: 'USER#wes' });
      const error = await caught(store().keyForWrite('wes'));
      expect((error as Problem).type).toBe('https://tally.dev/problems/data-key-unusable');
      expect(kms).toHaveReceivedCommandTimes(GenerateDataKeyCommand, 0);
    });

    it('DynamoDB throttling is a 503 problem naming DynamoDB', async () => {
      doc.on(GetCommand).rejects(
        new DynamoDBServiceException({ name: 'ProvisionedThroughputExceededException', $fault: 'client', message: 'x', $metadata: { httpStatusCode: 400 } }),
      );
      const error = await caught(store().keyForWrite('xia'));
      expect((error as Problem).status).toBe(503);
      expect((error as Problem).detail).toContain('DynamoDB');
      expect(kms.calls()).toHaveLength(0);
    });

    it('a failed load is not cached: the next call tries again', async () => {
      seedKey('yan');
      kms.on(DecryptCommand).rejectsOnce(throttling());
      const keys = store();
      await expect(keys.keyForWrite('yan')).rejects.toBeInstanceOf(Problem);
      fakeKms();
      await expect(keys.keyForWrite('yan')).resolves.toMatchObject({ version: 1 });
    });
  });
});
