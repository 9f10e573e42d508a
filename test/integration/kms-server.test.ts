import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  DecryptCommand,
  DescribeKeyCommand,
  EncryptCommand,
  GenerateDataKeyCommand,
  IncorrectKeyException,
  InvalidCiphertextException,
  KMSClient,
  NotFoundException,
} from '@aws-sdk/client-kms';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startKmsServer, type KmsServer } from '../../local/kms-server.ts';

/** The real @aws-sdk/client-kms against the local KMS endpoint (its own instance, its own root key). */
let dataDir: string;
let server: KmsServer;
let kms: KMSClient;

const clientFor = (endpoint: string) =>
  new KMSClient({ region: 'us-east-1', endpoint, credentials: { accessKeyId: 'local', secretAccessKey: 'local' }, maxAttempts: 1 });

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected a rejection');
}

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'tally-kms-test-'));
  server = await startKmsServer({ dataDir });
  kms = clientFor(server.endpoint);
});

afterAll(async () => {
  kms.destroy();
  await server.stop();
  await rm(dataDir, { recursive: true, force: true });
});

describe('local KMS endpoint through @aws-sdk/client-kms', () => {
  it('GenerateDataKey then Decrypt with the same context returns the same 256-bit key', async () => {
    const generated = await kms.send(
      new GenerateDataKeyCommand({ KeyId: server.alias, KeySpec: 'AES_256', EncryptionContext: { user_id: 'user-42' } }),
    );
    expect(generated.Plaintext).toHaveLength(32);
    expect(generated.KeyId).toBe(server.keyArn);
    const blob = generated.CiphertextBlob ?? new Uint8Array();
    expect(Buffer.from(blob).includes(Buffer.from(generated.Plaintext ?? []))).toBe(false);
    const decrypted = await kms.send(
      new DecryptCommand({ CiphertextBlob: blob, KeyId: server.alias, EncryptionContext: { user_id: 'user-42' } }),
    );
    expect(Buffer.from(decrypted.Plaintext ?? []).equals(Buffer.from(generated.Plaintext ?? []))).toBe(true);
    expect(decrypted.KeyId).toBe(server.keyArn);
  });

  it('GenerateDataKey honours NumberOfBytes', async () => {
    const generated = await kms.send(new GenerateDataKeyCommand({ KeyId: server.keyId, NumberOfBytes: 64 }));
    expect(generated.Plaintext).toHaveLength(64);
  });

  it('Decrypt under a different, missing or extra context fails with InvalidCiphertextException', async () => {
    const { CiphertextBlob } = await kms.send(
      new GenerateDataKeyCommand({ KeyId: server.alias, KeySpec: 'AES_256', EncryptionContext: { user_id: 'user-42' } }),
    );
    const contexts: (Record<string, string> | undefined)[] = [{ user_id: 'user-43' }, undefined, { user_id: 'user-42', extra: 'x' }, { USER_ID: 'user-42' }];
    for (const context of contexts) {
      const error = await rejection(kms.send(new DecryptCommand({ CiphertextBlob, EncryptionContext: context })));
      expect(error).toBeInstanceOf(InvalidCiphertextException);
    }
  });

  it('the context is canonical: key order does not matter', async () => {
    const { CiphertextBlob } = await kms.send(
      new EncryptCommand({ KeyId: server.alias, Plaintext: Buffer.from('hi'), EncryptionContext: { a: '1', b: '2' } }),
    );
    const out = await kms.send(new DecryptCommand({ CiphertextBlob, EncryptionContext: { b: '2', a: '1' } }));
    expect(Buffer.from(out.Plaintext ?? []).toString()).toBe('hi');
  });

  it('Encrypt then Decrypt round-trips, with the key named by id, ARN or alias', async () => {
    for (const keyId of [server.keyId, server.keyArn, server.alias]) {
      const { CiphertextBlob, KeyId } = await kms.send(new EncryptCommand({ KeyId: keyId, Plaintext: Buffer.from('secret 🔑') }));
      expect(KeyId).toBe(server.keyArn);
      const out = await kms.send(new DecryptCommand({ CiphertextBlob }));
      expect(Buffer.from(out.Plaintext ?? []).toString()).toBe('secret 🔑');
    }
  });

  it('DescribeKey by alias', async () => {
    const { KeyMetadata } = await kms.send(new DescribeKeyCommand({ KeyId: server.alias }));
    expect(KeyMetadata?.KeyId).toBe(server.keyId);
    expect(KeyMetadata?.Arn).toBe(server.keyArn);
    expect(KeyMetadata?.Enabled).toBe(true);
    expect(KeyMetadata?.KeyState).toBe('Enabled');
    expect(KeyMetadata?.CreationDate).toBeInstanceOf(Date);
  });

  it('an unknown key is NotFoundException; Decrypt naming another key is IncorrectKeyException', async () => {
    expect(await rejection(kms.send(new DescribeKeyCommand({ KeyId: 'alias/nope' })))).toBeInstanceOf(NotFoundException);
    const { CiphertextBlob } = await kms.send(new EncryptCommand({ KeyId: server.alias, Plaintext: Buffer.from('x') }));
    expect(await rejection(kms.send(new DecryptCommand({ CiphertextBlob, KeyId: 'alias/other' })))).toBeInstanceOf(IncorrectKeyException);
  });

  it('a tampered blob fails with InvalidCiphertextException', async () => {
    const { CiphertextBlob } = await kms.send(
      new GenerateDataKeyCommand({ KeyId: server.alias, KeySpec: 'AES_256', EncryptionContext: { user_id: 'u' } }),
    );
    const blob = Buffer.from(CiphertextBlob ?? []);
    for (const index of [0, 1, 10, blob.length - 20, blob.length - 1]) {
      const tampered = Buffer.from(blob);
      tampered[index] = (tampered[index] ?? 0) ^ 0x01;
      const error = await rejection(kms.send(new DecryptCommand({ CiphertextBlob: tampered, EncryptionContext: { user_id: 'u' } })));
      expect(error).toBeInstanceOf(InvalidCiphertextException);
    }
    const truncated = await rejection(
      kms.send(new DecryptCommand({ CiphertextBlob: blob.subarray(0, 20), EncryptionContext: { user_id: 'u' } })),
    );
    expect(truncated).toBeInstanceOf(InvalidCiphertextException);
  });

  it('an unknown operation is a 400 UnsupportedOperationException', async () => {
    const response = await fetch(server.endpoint, {
      method: 'POST',
      headers: { 'x-amz-target': 'TrentService.ScheduleKeyDeletion', 'content-type': 'application/x-amz-json-1.1' },
      body: '{}',
    });
    expect(response.status).toBe(400);
    expect(response.headers.get('content-type')).toBe('application/x-amz-json-1.1');
    expect(await response.json()).toMatchObject({ __type: 'UnsupportedOperationException' });
  });

  it('counts requests per operation', async () => {
    server.resetCounts();
    await kms.send(new DescribeKeyCommand({ KeyId: server.alias }));
    await kms.send(new GenerateDataKeyCommand({ KeyId: server.alias, KeySpec: 'AES_256' }));
    await kms.send(new GenerateDataKeyCommand({ KeyId: server.alias, KeySpec: 'AES_256' }));
    expect(server.counts()).toEqual({ DescribeKey: 1, GenerateDataKey: 2 });
  });

  it('persists the root key (mode 0600) and reuses it: a blob from one run decrypts in the next', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tally-kms-restart-'));
    try {
      const first = await startKmsServer({ dataDir: dir });
      const client1 = clientFor(first.endpoint);
      const generated = await client1.send(
        new GenerateDataKeyCommand({ KeyId: first.alias, KeySpec: 'AES_256', EncryptionContext: { user_id: 'restart' } }),
      );
      client1.destroy();
      await first.stop();

      const file = join(dir, 'kms-root-key.json');
      expect((await stat(file)).mode & 0o777).toBe(0o600);
      const before = await readFile(file, 'utf8');

      const second = await startKmsServer({ dataDir: dir });
      const client2 = clientFor(second.endpoint);
      expect(second.keyId).toBe(first.keyId);
      const out = await client2.send(
        new DecryptCommand({ CiphertextBlob: generated.CiphertextBlob, EncryptionContext: { user_id: 'restart' } }),
      );
      expect(Buffer.from(out.Plaintext ?? []).equals(Buffer.from(generated.Plaintext ?? []))).toBe(true);
      expect(await readFile(file, 'utf8')).toBe(before);
      client2.destroy();
      await second.stop();

      // Another root key (another data dir) cannot read it.
      const other = await startKmsServer({ dataDir: join(dir, 'other') });
      const client3 = clientFor(other.endpoint);
      const error = await rejection(
        client3.send(new DecryptCommand({ CiphertextBlob: generated.CiphertextBlob, EncryptionContext: { user_id: 'restart' } })),
      );
      expect(error).toBeInstanceOf(InvalidCiphertextException);
      client3.destroy();
      await other.stop();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
