import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startKmsServer, type KmsServer } from '../../local/kms-server.ts';
import { startTestStack, type TestStack } from '../support/stack.ts';

let kms: KmsServer;
let stack: TestStack;
let kmsRunning = false;

beforeAll(async () => {
  kms = await startKmsServer({ dataDir: mkdtempSync(join(tmpdir(), 'tally-kms-down-')) });
  kmsRunning = true;
  stack = await startTestStack({
    stream: false,
    services: { AWS_ENDPOINT_URL_KMS: kms.endpoint, KMS_KEY_ID: kms.alias },
  });
});
afterAll(async () => {
  await stack?.stop();
  if (kmsRunning) await kms.stop();
});

const body = { full_name: 'Kwame Nkrumah', transaction_date: '2026-11-20T10:00:00Z', transaction_amount: 5, transaction_type: 'credit' };

describe('KMS unavailable', () => {
  it('answers 503 with nothing written for a user whose key is not cached, and keeps serving cached users', async () => {
    const warm = await stack.request('POST', '/users/cached-user/transactions', { body });
    expect(warm.status).toBe(201);
    await kms.stop();
    kmsRunning = false;
    const before = await stack.scan();

    const started = Date.now();
    const cold = await stack.request('POST', '/users/cold-user/transactions', { body });
    expect(cold.status).toBe(503);
    expect(cold.headers.get('retry-after')).toBe('1');
    expect(cold.body).toMatchObject({ type: 'https://tally.dev/problems/dependency-unavailable', status: 503 });
    expect(cold.text).not.toMatch(/ECONNREFUSED|at .*\.ts/);
    expect(Date.now() - started).toBeLessThan(15_000);
    expect(await stack.scan()).toEqual(before);

    const hot = await stack.request('POST', '/users/cached-user/transactions', { body });
    expect(hot.status).toBe(201);
    expect((await stack.request('GET', `/users/cached-user/transactions/${hot.body.transaction_id}`)).body.full_name).toBe('Kwame Nkrumah');
  });
});
