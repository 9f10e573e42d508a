import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { ulid } from 'ulid';
import { keyDigest, requestFingerprint } from '../../lambdas/core/idempotency.ts';
import { idempotencySk, userPk } from '../../lambdas/core/keys.ts';
import { parseCreate } from '../../lambdas/core/transaction.ts';
import { config } from '../../lambdas/adapters/config.ts';
import { transactionService } from '../../lambdas/adapters/container.ts';
import { startTestStack, type TestStack } from '../support/stack.ts';

let stack: TestStack;
beforeAll(async () => {
  stack = await startTestStack({ stream: false });
});
afterAll(async () => {
  await stack?.stop();
});

const NAME = 'Adwoa Idempotent-Owusu';
const body = {
  full_name: NAME,
  transaction_date: '2026-12-01T09:30:00+01:00',
  transaction_amount: '125.50',
  transaction_type: 'credit',
};
const post = (user: string, key: string | undefined, payload: unknown = body) =>
  stack.request('POST', `/users/${user}/transactions`, { body: payload, ...(key === undefined ? {} : { headers: { 'idempotency-key': key } }) });

const itemsOf = async (user: string, prefix: 'TX#' | 'IDEM#') =>
  (await stack.scan()).filter((i) => i.PK === userPk(user) && String(i.SK).startsWith(prefix));

const fingerprintOf = (payload: Record<string, unknown>): string => {
  const parsed = parseCreate(payload);
  if (!parsed.ok) throw new Error('invalid test body');
  return requestFingerprint(config().cursorSecret, parsed.value);
};

/** The marker a container leaves when it dies after claiming a key. */
async function leaveMarker(user: string, key: string, transactionId: string, lockedUntilMs: number) {
  await stack.doc.send(
    new PutCommand({
      TableName: stack.info.tableName,
      Item: {
        PK: userPk(user),
        SK: idempotencySk(keyDigest(key)),
        entity: 'idempotency',
        status: 'in_progress',
        fingerprint: fingerprintOf(body),
        transaction_id: transactionId,
        locked_until: lockedUntilMs,
        expires_at: Math.floor(Date.now() / 1000) + 3600,
        created_at: new Date().toISOString(),
      },
    }),
  );
}

describe('Idempotency-Key on POST /users/{user_id}/transactions', () => {
  it('same key and body: one transaction, and a replay of the first response with Idempotent-Replayed: true', async () => {
    const first = await post('idem-a', 'order-1');
    expect(first.status).toBe(201);
    expect(first.headers.get('idempotent-replayed')).toBeNull();
    // Same body in another spelling: key order, a number for the amount, the date in UTC, padding in the name.
    const again = await post('idem-a', 'order-1', {
      transaction_type: 'credit',
      transaction_amount: 125.5,
      transaction_date: '2026-12-01T08:30:00Z',
      full_name: `  ${NAME} `,
    });
    expect(again.status).toBe(201);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(again.body).toEqual(first.body);
    expect(again.headers.get('location')).toBe(first.headers.get('location'));
    expect(again.headers.get('etag')).toBe(first.headers.get('etag'));
    expect(await itemsOf('idem-a', 'TX#')).toHaveLength(1);
  });

  it('same key, another body: 422 idempotency-key-reused, nothing created', async () => {
    expect((await post('idem-b', 'order-1')).status).toBe(201);
    const other = await post('idem-b', 'order-1', { ...body, transaction_amount: '125.51' });
    expect(other.status).toBe(422);
    expect(other.headers.get('content-type')).toBe('application/problem+json; charset=utf-8');
    expect(other.body.type).toBe('https://tally.dev/problems/idempotency-key-reused');
    expect(await itemsOf('idem-b', 'TX#')).toHaveLength(1);
  });

  it('50 concurrent POSTs with one key and body: exactly one 201, the rest 409 or replays, ONE transaction', async () => {
    const responses = await Promise.all(Array.from({ length: 50 }, () => post('idem-c', 'burst-1')));
    const fresh = responses.filter((r) => r.status === 201 && r.headers.get('idempotent-replayed') === null);
    const replays = responses.filter((r) => r.status === 201 && r.headers.get('idempotent-replayed') === 'true');
    const conflicts = responses.filter((r) => r.status === 409);
    expect(fresh).toHaveLength(1);
    expect(replays.length + conflicts.length).toBe(49);
    for (const r of replays) expect(r.body).toEqual(fresh[0]?.body);
    for (const r of conflicts) expect(r.body.type).toBe('https://tally.dev/problems/idempotency-key-in-progress');
    const stored = await itemsOf('idem-c', 'TX#');
    expect(stored).toHaveLength(1);
    expect(stored[0]?.transaction_id).toBe(fresh[0]?.body.transaction_id);
  });

  it('the same key used by another user is independent', async () => {
    const a = await post('idem-d1', 'shared-key');
    const b = await post('idem-d2', 'shared-key', { ...body, transaction_amount: '1.00' });
    expect(a.status).toBe(201);
    expect(b.status).toBe(201);
    expect(b.headers.get('idempotent-replayed')).toBeNull();
    expect(b.body.transaction_id).not.toBe(a.body.transaction_id);
  });

  it('after the record expired (TTL not yet swept), the key creates a new transaction', async () => {
    const first = await post('idem-e', 'order-exp');
    await stack.doc.send(
      new UpdateCommand({
        TableName: stack.info.tableName,
        Key: { PK: userPk('idem-e'), SK: idempotencySk(keyDigest('order-exp')) },
        UpdateExpression: 'SET expires_at = :past',
        ExpressionAttributeValues: { ':past': Math.floor(Date.now() / 1000) - 1 },
      }),
    );
    const second = await post('idem-e', 'order-exp');
    expect(second.status).toBe(201);
    expect(second.headers.get('idempotent-replayed')).toBeNull();
    expect(second.body.transaction_id).not.toBe(first.body.transaction_id);
    expect(await itemsOf('idem-e', 'TX#')).toHaveLength(2);
  });

  it('the record expires 24 h after the first request (expires_at, epoch seconds)', async () => {
    await post('idem-ttl', 'order-ttl');
    const [record] = await itemsOf('idem-ttl', 'IDEM#');
    const expected = Math.floor(Date.now() / 1000) + config().idempotencyTtlSeconds;
    expect(config().idempotencyTtlSeconds).toBe(24 * 3600);
    expect(Math.abs(Number(record?.expires_at) - expected)).toBeLessThan(10);
  });

  it('crash between marker and write: 409 while locked, then a retry creates exactly one, with the pre-assigned id', async () => {
    const preassigned = ulid();
    await leaveMarker('idem-f', 'order-crash', preassigned, Date.now() + 60_000);
    expect((await post('idem-f', 'order-crash')).status).toBe(409);
    await leaveMarker('idem-f', 'order-crash', preassigned, Date.now() - 1);
    const retry = await post('idem-f', 'order-crash');
    expect(retry.status).toBe(201);
    expect(retry.body.transaction_id).toBe(preassigned);
    const replay = await post('idem-f', 'order-crash');
    expect(replay.headers.get('idempotent-replayed')).toBe('true');
    expect(replay.body.transaction_id).toBe(preassigned);
    expect(await itemsOf('idem-f', 'TX#')).toHaveLength(1);
  });

  it('crash after the write but before completing the record: the retry returns that transaction and creates nothing', async () => {
    const preassigned = ulid();
    const parsed = parseCreate(body);
    if (!parsed.ok) throw new Error('invalid');
    await transactionService().create('idem-g', parsed.value, preassigned);
    await leaveMarker('idem-g', 'order-crash-2', preassigned, Date.now() - 1);
    const retry = await post('idem-g', 'order-crash-2');
    expect(retry.status).toBe(201);
    expect(retry.headers.get('idempotent-replayed')).toBe('true');
    expect(retry.body).toMatchObject({ transaction_id: preassigned, full_name: NAME, transaction_amount: '125.50' });
    expect(await itemsOf('idem-g', 'TX#')).toHaveLength(1);
    const [record] = await itemsOf('idem-g', 'IDEM#');
    expect(record?.status).toBe('completed');
    // What this retry answered is now the stored first response: a later PATCH does not change the replay.
    expect(record?.response).toMatchObject({ version: 1, amount_minor: 12_550 });
    await stack.request('PATCH', retry.headers.get('location')!, { body: { transaction_amount: '1.00' } });
    expect((await post('idem-g', 'order-crash-2')).body).toEqual(retry.body);
  });

  it('a request that fails validation stores no record, and the key stays usable', async () => {
    const bad = await post('idem-h', 'order-bad', { ...body, transaction_amount: '1.234' });
    expect(bad.status).toBe(422);
    expect(await itemsOf('idem-h', 'IDEM#')).toHaveLength(0);
    const good = await post('idem-h', 'order-bad');
    expect(good.status).toBe(201);
    expect(good.headers.get('idempotent-replayed')).toBeNull();
  });

  it.each([
    ['256 characters', 'k'.repeat(256)],
    ['an empty value', ''],
    ['a space', 'order 1'],
    ['non-ASCII', 'ordér-1'],
  ])('a key of %s is a 400 naming the header, and stores nothing', async (_what, key) => {
    const response = await post('idem-i', key);
    expect(response.status).toBe(400);
    expect(response.body.errors).toEqual([{ field: 'Idempotency-Key', message: expect.any(String) }]);
    expect(await itemsOf('idem-i', 'IDEM#')).toHaveLength(0);
    expect(await itemsOf('idem-i', 'TX#')).toHaveLength(0);
  });

  it('a key of exactly 255 visible characters is accepted', async () => {
    expect((await post('idem-j', `${'k'.repeat(250)}!~#$%`)).status).toBe(201);
  });

  /** The first 201 again: status, header, body, Location and ETag. */
  const expectReplayOf = (again: Awaited<ReturnType<typeof post>>, first: Awaited<ReturnType<typeof post>>) => {
    expect(again.status).toBe(201);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(again.body).toEqual(first.body);
    expect(again.headers.get('location')).toBe(first.headers.get('location'));
    expect(again.headers.get('etag')).toBe('"1"');
  };

  it('a replay after a PATCH is the first response (version 1, the first amount and name), not the current version', async () => {
    const first = await post('idem-p', 'order-patch');
    expect(first.body).toMatchObject({ version: 1, full_name: NAME, transaction_amount: '125.50' });
    const patched = await stack.request('PATCH', first.headers.get('location')!, { body: { transaction_amount: '9.99', full_name: 'Someone Else-Entirely' } });
    expect(patched.status).toBe(200);
    expect(patched.body).toMatchObject({ version: 2, transaction_amount: '9.99' });
    const again = await post('idem-p', 'order-patch');
    expectReplayOf(again, first);
    expect(again.body).toMatchObject({ version: 1, full_name: NAME, transaction_amount: '125.50' });
    // The transaction itself is untouched by the replay: still version 2, and still only one.
    expect((await stack.request('GET', first.headers.get('location')!)).body).toMatchObject({ version: 2, transaction_amount: '9.99' });
    expect(await itemsOf('idem-p', 'TX#')).toHaveLength(1);
  });

  it('a replay after a DELETE is still the first 201, and creates nothing', async () => {
    const first = await post('idem-k', 'order-del');
    expect((await stack.request('DELETE', first.headers.get('location')!)).status).toBe(204);
    const again = await post('idem-k', 'order-del');
    expectReplayOf(again, first);
    expect(again.body).toMatchObject({ full_name: NAME, transaction_amount: '125.50', version: 1 });
    expect(await itemsOf('idem-k', 'TX#')).toHaveLength(0);
    expect((await stack.request('GET', first.headers.get('location')!)).status).toBe(404);
  });

  it('a replay after the user\'s personal data was erased reads full_name null, erased — still the 201 replay', async () => {
    const first = await post('idem-x', 'order-erase');
    expect(first.body.full_name).toBe(NAME);
    expect((await stack.request('DELETE', '/users/idem-x/personal-data')).status).toBe(204);
    const again = await post('idem-x', 'order-erase');
    expect(again.status).toBe(201);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(again.headers.get('location')).toBe(first.headers.get('location'));
    expect(again.headers.get('etag')).toBe('"1"');
    const { full_name: _name, ...rest } = first.body;
    expect(again.body).toEqual({ ...rest, full_name: null, full_name_erased: true });
    // A later write starts a new data key; the replay's v1 ciphertext still does not open.
    expect((await post('idem-x', undefined, { ...body, full_name: 'Fresh Start-Name' })).status).toBe(201);
    expect((await post('idem-x', 'order-erase')).body).toMatchObject({ full_name: null, full_name_erased: true, version: 1 });
    expect(await itemsOf('idem-x', 'TX#')).toHaveLength(2);
  });

  it('a record completed by the code before the deploy (no stored response) replays by re-reading the transaction', async () => {
    const first = await post('idem-old', 'order-old');
    const keyOf = { PK: userPk('idem-old'), SK: idempotencySk(keyDigest('order-old')) };
    await stack.doc.send(new UpdateCommand({ TableName: stack.info.tableName, Key: keyOf, UpdateExpression: 'REMOVE #r', ExpressionAttributeNames: { '#r': 'response' } }));
    expect((await stack.request('PATCH', first.headers.get('location')!, { body: { transaction_amount: '7.00' } })).status).toBe(200);
    const again = await post('idem-old', 'order-old');
    expect(again.status).toBe(201);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(again.body).toMatchObject({ transaction_id: first.body.transaction_id, full_name: NAME, transaction_amount: '7.00', version: 2 });
    expect(again.headers.get('etag')).toBe('"2"');
    // …and if that transaction is gone, the old answer: 404, nothing created.
    expect((await stack.request('DELETE', first.headers.get('location')!)).status).toBe(204);
    expect((await post('idem-old', 'order-old')).status).toBe(404);
    expect(await itemsOf('idem-old', 'TX#')).toHaveLength(0);
  });

  it('without a key, every POST creates a transaction (no record)', async () => {
    await post('idem-l', undefined);
    await post('idem-l', undefined);
    expect(await itemsOf('idem-l', 'TX#')).toHaveLength(2);
    expect(await itemsOf('idem-l', 'IDEM#')).toHaveLength(0);
  });

  it('stored records hold no plaintext name and no key: ids, status, an HMAC fingerprint, times, and the first response with the name sealed', async () => {
    const items = await stack.scan();
    const records = items.filter((i) => String(i.SK).startsWith('IDEM#'));
    expect(records.length).toBeGreaterThan(5);
    const completed = records.filter((r) => r.status === 'completed' && r.response !== undefined);
    expect(completed.length).toBeGreaterThan(5);
    for (const record of records) {
      const text = JSON.stringify(record);
      for (const name of [NAME, 'Adwoa', 'Owusu', 'Someone Else', 'Fresh Start']) expect(text).not.toContain(name);
      expect(text).not.toContain('order-');
      expect(Object.keys(record).sort()).toEqual(
        expect.arrayContaining(['PK', 'SK', 'entity', 'status', 'fingerprint', 'transaction_id', 'locked_until', 'expires_at', 'created_at']),
      );
      expect(Object.keys(record).every((k) => ['PK', 'SK', 'entity', 'status', 'fingerprint', 'transaction_id', 'locked_until', 'expires_at', 'created_at', 'completed_at', 'response'].includes(k))).toBe(true);
      expect(record.SK).toMatch(/^IDEM#[0-9a-f]{64}$/);
    }
    for (const record of completed) {
      // Exactly the first response's facts, the name only as a v1 ciphertext (the transaction's own, when it still exists).
      const response = record.response as Record<string, unknown>;
      expect(Object.keys(response).sort()).toEqual(['amount_minor', 'created_at', 'date', 'full_name_ct', 'key_version', 'type', 'updated_at', 'version']);
      expect(response.full_name_ct).toMatch(/^v1\.\d+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/);
      const tx = items.find((i) => i.PK === record.PK && i.SK === `TX#${String(record.transaction_id)}`);
      if (tx !== undefined && tx.version === 1) expect(response.full_name_ct).toBe(tx.full_name_ct);
    }
  });
});
