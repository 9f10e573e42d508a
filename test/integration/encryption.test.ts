import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GetCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startKmsServer, type KmsServer } from '../../local/kms-server.ts';
import { startTestStack, type TestStack } from '../support/stack.ts';

/**
 * Envelope encryption end to end: the real @aws-sdk/client-kms against this file's own KMS endpoint (so its
 * request counts belong to this file), real DynamoDB Local, the handlers behind the gateway.
 */
let kms: KmsServer;
let stack: TestStack;
const kmsCalls = () => {
  const c = kms.counts();
  return (c.GenerateDataKey ?? 0) + (c.Decrypt ?? 0) + (c.Encrypt ?? 0);
};

beforeAll(async () => {
  kms = await startKmsServer({ dataDir: mkdtempSync(join(tmpdir(), 'tally-kms-enc-')) });
  stack = await startTestStack({
    stream: false,
    services: { AWS_ENDPOINT_URL_KMS: kms.endpoint, KMS_KEY_ID: kms.alias },
  });
});
afterAll(async () => {
  await stack?.stop();
  await kms?.stop();
});

const body = (fullName: string, amount = '10.00') => ({
  full_name: fullName,
  transaction_date: '2026-11-20T10:00:00Z',
  transaction_amount: amount,
  transaction_type: 'debit',
});
const NAMES = ['Ama Mensah', 'Zoë Åkesson-Ñúñez', '王秀英', 'Ngozi Okonjo 🦁', 'Σωκράτης Παπαδόπουλος'];

describe('full_name is envelope-encrypted', () => {
  it('reads back every name, and no attribute of any item holds a name or its base64', async () => {
    const ids: string[] = [];
    for (const [i, name] of NAMES.entries()) {
      const r = await stack.request('POST', `/users/enc-${i % 2}/transactions`, { body: body(name) });
      expect(r.status).toBe(201);
      expect(r.body.full_name).toBe(name);
      ids.push(`/users/enc-${i % 2}/transactions/${r.body.transaction_id}`);
    }
    for (const [i, path] of ids.entries()) expect((await stack.request('GET', path)).body.full_name).toBe(NAMES[i]);
    const page = await stack.request('GET', '/users/enc-0/transactions');
    expect(page.body.data.map((t: { full_name: string }) => t.full_name).sort()).toEqual([NAMES[0], NAMES[2], NAMES[4]].sort());

    const raw = JSON.stringify(await stack.scan());
    for (const name of NAMES) {
      for (const form of [name, Buffer.from(name).toString('base64'), Buffer.from(name).toString('base64url'), Buffer.from(name).toString('hex')]) {
        expect(raw).not.toContain(form);
      }
    }
    const items = await stack.scan();
    const tx = items.find((i) => String(i.SK).startsWith('TX#'))!;
    expect(tx.full_name_ct).toMatch(/^v1\.1\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/);
    expect(items.filter((i) => i.SK === 'KEY')).toHaveLength(2);
  });

  it('refuses a ciphertext copied to another row, without revealing anything', async () => {
    const a = await stack.request('POST', '/users/mover/transactions', { body: body('Secret Name A') });
    const b = await stack.request('POST', '/users/mover/transactions', { body: body('Secret Name B') });
    const keyA = { PK: 'USER#mover', SK: `TX#${a.body.transaction_id}` };
    const keyB = { PK: 'USER#mover', SK: `TX#${b.body.transaction_id}` };
    const itemA = (await stack.doc.send(new GetCommand({ TableName: stack.info.tableName, Key: keyA }))).Item!;
    await stack.doc.send(
      new UpdateCommand({ TableName: stack.info.tableName, Key: keyB, UpdateExpression: 'SET full_name_ct = :ct', ExpressionAttributeValues: { ':ct': itemA.full_name_ct } }),
    );
    const moved = await stack.request('GET', `/users/mover/transactions/${b.body.transaction_id}`);
    expect(moved.status).toBe(500);
    expect(moved.body.type).toBe('https://tally.dev/problems/integrity-error');
    expect(moved.text).not.toContain('Secret Name');
    expect(moved.text).not.toContain(String(itemA.full_name_ct));
    expect(moved.text).not.toMatch(/at .*\.ts|Error:/);
    expect((await stack.request('GET', `/users/mover/transactions/${a.body.transaction_id}`)).body.full_name).toBe('Secret Name A');
  });

  it('ends concurrent first writes of a new user with one data key and every name readable', async () => {
    const results = await Promise.all(
      Array.from({ length: 12 }, (_, i) => stack.request('POST', '/users/brand-new/transactions', { body: body(`Concurrent ${i}`) })),
    );
    expect(results.map((r) => r.status)).toEqual(Array(12).fill(201));
    const keys = (await stack.scan()).filter((i) => i.PK === 'USER#brand-new' && i.SK === 'KEY');
    expect(keys).toHaveLength(1);
    for (const [i, r] of results.entries()) {
      expect((await stack.request('GET', `/users/brand-new/transactions/${r.body.transaction_id}`)).body.full_name).toBe(`Concurrent ${i}`);
    }
  });

  it('makes at most one KMS call for 1,000 writes and 1,000 reads of one existing user in a warm container', async () => {
    const warm = await stack.request('POST', '/users/steady/transactions', { body: body('Warm Up') });
    expect(warm.status).toBe(201);
    const before = kmsCalls();
    const ids: string[] = [];
    for (let batch = 0; batch < 100; batch++) {
      const created = await Promise.all(
        Array.from({ length: 10 }, (_, i) => stack.request('POST', '/users/steady/transactions', { body: body(`Steady ${batch}-${i}`) })),
      );
      ids.push(...created.map((r) => r.body.transaction_id));
    }
    const writes = kmsCalls() - before;
    for (let batch = 0; batch < 100; batch++) {
      const read = await Promise.all(ids.slice(batch * 10, batch * 10 + 10).map((id) => stack.request('GET', `/users/steady/transactions/${id}`)));
      expect(read.every((r) => r.status === 200)).toBe(true);
    }
    const reads = kmsCalls() - before - writes;
    console.log(JSON.stringify({ figure: 'kms-calls', writes: 1000, kmsCallsForWrites: writes, reads: 1000, kmsCallsForReads: reads }));
    expect(writes).toBeLessThanOrEqual(1);
    expect(reads).toBeLessThanOrEqual(1);
  });
});

describe('erasure of personal data', () => {
  it('destroys the key: names read null and erased, in pages too; later writes use a new key; idempotent', async () => {
    const user = 'forget-me';
    const first = await stack.request('POST', `/users/${user}/transactions`, { body: body('Erase Me Please') });
    await stack.request('POST', `/users/${user}/transactions`, { body: body('Erase Me Too') });
    expect((await stack.request('GET', `/users/${user}/transactions`)).body.data.map((t: { full_name: string }) => t.full_name)).toContain('Erase Me Please');

    const erased = await stack.request('DELETE', `/users/${user}/personal-data`);
    expect(erased.status).toBe(204);

    const one = await stack.request('GET', `/users/${user}/transactions/${first.body.transaction_id}`);
    expect(one.status).toBe(200);
    expect(one.body).toMatchObject({ full_name: null, full_name_erased: true, transaction_amount: '10.00' });
    const page = await stack.request('GET', `/users/${user}/transactions`);
    expect(page.body.data).toHaveLength(2);
    expect(page.body.data.every((t: { full_name: null; full_name_erased: boolean }) => t.full_name === null && t.full_name_erased)).toBe(true);

    const keyItem = (await stack.scan()).find((i) => i.PK === `USER#${user}` && i.SK === 'KEY')!;
    expect(keyItem.wrapped_key).toBeUndefined();

    const later = await stack.request('POST', `/users/${user}/transactions`, { body: body('New Start') });
    expect(later.status).toBe(201);
    const items = await stack.scan();
    const laterItem = items.find((i) => i.SK === `TX#${later.body.transaction_id}`)!;
    expect(laterItem.full_name_ct).toMatch(/^v1\.2\./);
    expect((await stack.request('GET', `/users/${user}/transactions/${later.body.transaction_id}`)).body.full_name).toBe('New Start');
    expect((await stack.request('GET', `/users/${user}/transactions/${first.body.transaction_id}`)).body.full_name_erased).toBe(true);

    expect((await stack.request('DELETE', `/users/${user}/personal-data`)).status).toBe(204);
    expect((await stack.request('DELETE', `/users/${user}/personal-data`)).status).toBe(204);
    expect((await stack.request('DELETE', '/users/never-existed/personal-data')).status).toBe(204);
    const all = await stack.request('GET', `/users/${user}/transactions`);
    expect(all.body.data.every((t: { full_name_erased?: boolean }) => t.full_name_erased)).toBe(true);
  });

  it('does not leave an unreadable name when a patch renames after erasure', async () => {
    const user = 'rename-after-erase';
    const created = await stack.request('POST', `/users/${user}/transactions`, { body: body('Old Name') });
    await stack.request('DELETE', `/users/${user}/personal-data`);
    const renamed = await stack.request('PATCH', `/users/${user}/transactions/${created.body.transaction_id}`, { body: { full_name: 'Fresh Name' } });
    expect(renamed.status).toBe(200);
    expect((await stack.request('GET', `/users/${user}/transactions/${created.body.transaction_id}`)).body.full_name).toBe('Fresh Name');
  });
});
