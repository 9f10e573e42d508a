import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestStack, type TestStack } from '../support/stack.ts';

let stack: TestStack;
beforeAll(async () => {
  stack = await startTestStack({ stream: false });
});
afterAll(async () => {
  await stack?.stop();
});

const valid = {
  full_name: 'Ama Mensah',
  transaction_date: '2026-12-01T09:30:00+01:00',
  transaction_amount: '125.50',
  transaction_type: 'credit',
};

const create = (user: string, body: Record<string, unknown> = valid, headers?: Record<string, string>) =>
  stack.request('POST', `/users/${user}/transactions`, { body, ...(headers ? { headers } : {}) });

describe('transactions CRUD through the local gateway', () => {
  it('creates, reads, updates and deletes one transaction with the exact API.md shapes', async () => {
    const created = await create('crud-user');
    expect(created.status).toBe(201);
    expect(created.headers.get('content-type')).toBe('application/json; charset=utf-8');
    const tx = created.body;
    expect(tx).toEqual({
      transaction_id: expect.stringMatching(/^[0-9A-HJKMNP-TV-Z]{26}$/),
      user_id: 'crud-user',
      full_name: 'Ama Mensah',
      transaction_date: '2026-12-01T08:30:00.000Z',
      transaction_amount: '125.50',
      transaction_type: 'credit',
      version: 1,
      created_at: expect.stringMatching(/Z$/),
      updated_at: expect.stringMatching(/Z$/),
    });
    expect(created.headers.get('location')).toBe(`/users/crud-user/transactions/${tx.transaction_id}`);
    expect(created.headers.get('x-request-id')).toBeTruthy();

    const read = await stack.request('GET', created.headers.get('location')!);
    expect(read.status).toBe(200);
    expect(read.headers.get('etag')).toBe('"1"');
    expect(read.body).toEqual(tx);

    const patched = await stack.request('PATCH', `/users/crud-user/transactions/${tx.transaction_id}`, {
      body: { transaction_amount: 99.99, transaction_type: 'debit' },
      headers: { 'if-match': '"1"' },
    });
    expect(patched.status).toBe(200);
    expect(patched.body).toMatchObject({ transaction_amount: '99.99', transaction_type: 'debit', version: 2, full_name: 'Ama Mensah' });
    expect(patched.body.created_at).toBe(tx.created_at);
    expect(patched.headers.get('etag')).toBe('"2"');

    const stale = await stack.request('PATCH', `/users/crud-user/transactions/${tx.transaction_id}`, {
      body: { transaction_amount: 1 },
      headers: { 'if-match': '"1"' },
    });
    expect(stale.status).toBe(412);
    expect(stale.headers.get('content-type')).toBe('application/problem+json; charset=utf-8');

    const renamed = await stack.request('PATCH', `/users/crud-user/transactions/${tx.transaction_id}`, { body: { full_name: '  Kofi Boateng ' } });
    expect(renamed.body).toMatchObject({ full_name: 'Kofi Boateng', version: 3, transaction_amount: '99.99' });

    const deleted = await stack.request('DELETE', `/users/crud-user/transactions/${tx.transaction_id}`);
    expect(deleted.status).toBe(204);
    expect(deleted.text).toBe('');
    expect((await stack.request('GET', `/users/crud-user/transactions/${tx.transaction_id}`)).status).toBe(404);
    expect((await stack.request('DELETE', `/users/crud-user/transactions/${tx.transaction_id}`)).status).toBe(404);
  });

  it('hides another user’s transaction behind a 404', async () => {
    const created = await create('owner-a');
    const other = await stack.request('GET', `/users/owner-b/transactions/${created.body.transaction_id}`);
    expect(other.status).toBe(404);
    expect(other.body.type).toBe('https://tally.dev/problems/not-found');
  });

  it('echoes a valid x-request-id and replaces an invalid one', async () => {
    const mine = await stack.request('GET', '/health', { headers: { 'x-request-id': 'client-req-123' } });
    expect(mine.body).toEqual({ status: 'ok' });
    expect(mine.headers.get('x-request-id')).toBe('client-req-123');
    const bad = await stack.request('GET', '/health', { headers: { 'x-request-id': 'has spaces and ünïcode' } });
    expect(bad.headers.get('x-request-id')).not.toBe('has spaces and ünïcode');
  });

  it('keeps exactly one winner among concurrent PATCHes with the same If-Match', async () => {
    const created = await create('race-user');
    const path = `/users/race-user/transactions/${created.body.transaction_id}`;
    const results = await Promise.all(
      ['10.00', '20.00', '30.00', '40.00'].map((amount) =>
        stack.request('PATCH', path, { body: { transaction_amount: amount }, headers: { 'if-match': '"1"' } }),
      ),
    );
    const statuses = results.map((r) => r.status).sort();
    expect(statuses).toEqual([200, 412, 412, 412]);
    const winner = results.find((r) => r.status === 200)!;
    const final = await stack.request('GET', path);
    expect(final.body.version).toBe(2);
    expect(final.body.transaction_amount).toBe(winner.body.transaction_amount);
  });

  it('loses no update among concurrent PATCHes without If-Match', async () => {
    const created = await create('no-lost-update');
    const path = `/users/no-lost-update/transactions/${created.body.transaction_id}`;
    const results = await Promise.all([1, 2, 3].map((n) => stack.request('PATCH', path, { body: { transaction_amount: `${n}.00` } })));
    expect(results.map((r) => r.status)).toEqual([200, 200, 200]);
    const versions = results.map((r) => r.body.version).sort();
    expect(versions).toEqual([2, 3, 4]);
    expect((await stack.request('GET', path)).body.version).toBe(4);
  });

  it('walks a 57-item history in pages of 10, every item exactly once, newest date first', async () => {
    const user = 'walker';
    const base = Date.UTC(2026, 10, 1);
    const created: string[] = [];
    for (let i = 0; i < 57; i++) {
      // Three items share each date, so ties are ordered by transaction id.
      const date = new Date(base + Math.floor(i / 3) * 3_600_000).toISOString();
      const r = await create(user, { ...valid, transaction_date: date, transaction_amount: `${i + 1}.00` });
      expect(r.status).toBe(201);
      created.push(r.body.transaction_id);
    }
    const seen: Array<{ id: string; date: string }> = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const query: string = cursor ? `?limit=10&cursor=${encodeURIComponent(cursor)}` : '?limit=10';
      const page = await stack.request('GET', `/users/${user}/transactions${query}`);
      expect(page.status).toBe(200);
      pages++;
      expect(page.body.data.length).toBe(pages < 6 ? 10 : 7);
      seen.push(...page.body.data.map((t: { transaction_id: string; transaction_date: string }) => ({ id: t.transaction_id, date: t.transaction_date })));
      cursor = page.body.next_cursor;
    } while (cursor);
    expect(pages).toBe(6);
    expect(new Set(seen.map((s) => s.id)).size).toBe(57);
    expect(seen.map((s) => s.id).sort()).toEqual([...created].sort());
    const expectedOrder = [...seen].sort((a, b) => (a.date === b.date ? (a.id < b.id ? 1 : -1) : a.date < b.date ? 1 : -1));
    expect(seen).toEqual(expectedOrder);
  });

  it('filters history by date range and type, inclusive of both days', async () => {
    const user = 'filterer';
    const rows: Array<[string, string]> = [
      ['2026-10-31T23:59:59.999Z', 'credit'],
      ['2026-11-01T00:00:00.000Z', 'debit'],
      ['2026-11-15T12:00:00.000Z', 'credit'],
      ['2026-11-30T23:59:59.999Z', 'debit'],
      ['2026-12-01T00:00:00.000Z', 'credit'],
    ];
    for (const [date, type] of rows) await create(user, { ...valid, transaction_date: date, transaction_type: type });
    const november = await stack.request('GET', `/users/${user}/transactions?from=2026-11-01&to=2026-11-30`);
    expect(november.body.data.map((t: { transaction_date: string }) => t.transaction_date)).toEqual([
      '2026-11-30T23:59:59.999Z',
      '2026-11-15T12:00:00.000Z',
      '2026-11-01T00:00:00.000Z',
    ]);
    const debits = await stack.request('GET', `/users/${user}/transactions?type=debit&limit=1`);
    expect(debits.body.data).toHaveLength(1);
    expect(debits.body.data[0].transaction_date).toBe('2026-11-30T23:59:59.999Z');
    const next = await stack.request('GET', `/users/${user}/transactions?type=debit&limit=1&cursor=${encodeURIComponent(debits.body.next_cursor)}`);
    expect(next.body.data[0].transaction_date).toBe('2026-11-01T00:00:00.000Z');
    expect(next.body.next_cursor).toBeNull();
    const from = await stack.request('GET', `/users/${user}/transactions?from=2026-11-30`);
    expect(from.body.data).toHaveLength(2);
    const to = await stack.request('GET', `/users/${user}/transactions?to=2026-10-31`);
    expect(to.body.data).toHaveLength(1);
  });

  it('gives an unknown user an empty history, not a 404', async () => {
    const page = await stack.request('GET', '/users/nobody-here/transactions');
    expect(page.status).toBe(200);
    expect(page.body).toEqual({ data: [], next_cursor: null });
  });

  it('rejects a tampered, forged or re-scoped cursor with a 400', async () => {
    const user = 'cursor-user';
    for (let i = 0; i < 3; i++) await create(user);
    const first = await stack.request('GET', `/users/${user}/transactions?limit=1`);
    const cursor: string = first.body.next_cursor;
    expect(cursor).toBeTruthy();
    const [payload, tag] = cursor.split('.');
    expect(Buffer.from(payload!, 'base64url').toString()).toContain('"t":"0');
    const tampered = `${Buffer.from(Buffer.from(payload!, 'base64url').toString().replace(/"t":"0/, '"t":"7')).toString('base64url')}.${tag}`;
    for (const [query, why] of [
      [`cursor=${encodeURIComponent(tampered)}`, 'tampered'],
      ['cursor=not-a-cursor', 'forged'],
      [`cursor=${encodeURIComponent(cursor)}&type=credit`, 'other filters'],
    ] as const) {
      const r = await stack.request('GET', `/users/${user}/transactions?limit=1&${query}`);
      expect(r.status, why).toBe(400);
      expect(r.body.type).toBe('https://tally.dev/problems/invalid-cursor');
    }
    const otherUser = await stack.request('GET', `/users/someone-else/transactions?limit=1&cursor=${encodeURIComponent(cursor)}`);
    expect(otherUser.status).toBe(400);
  });
});

describe('bad requests: the right 4xx, problem+json, and nothing written', () => {
  const tooBig = JSON.stringify({ ...valid, full_name: 'x'.repeat(17 * 1024) });
  const cases: Array<{ name: string; method: string; path: string; body?: unknown; raw?: string; headers?: Record<string, string>; status: number; field?: string }> = [
    { name: 'malformed JSON', method: 'POST', path: '/users/u1/transactions', raw: '{"full_name": ', headers: { 'content-type': 'application/json' }, status: 400 },
    { name: 'empty body', method: 'POST', path: '/users/u1/transactions', raw: '', headers: { 'content-type': 'application/json' }, status: 400 },
    { name: 'not JSON content type', method: 'POST', path: '/users/u1/transactions', raw: 'a=b', headers: { 'content-type': 'application/x-www-form-urlencoded' }, status: 415 },
    { name: 'body over 16 KiB', method: 'POST', path: '/users/u1/transactions', raw: tooBig, headers: { 'content-type': 'application/json' }, status: 413 },
    { name: 'array body', method: 'POST', path: '/users/u1/transactions', body: [valid], status: 422, field: '(body)' },
    { name: 'missing fields', method: 'POST', path: '/users/u1/transactions', body: {}, status: 422, field: 'full_name' },
    { name: 'unknown field', method: 'POST', path: '/users/u1/transactions', body: { ...valid, transaction_id: 'x' }, status: 422, field: 'transaction_id' },
    { name: 'version in body', method: 'POST', path: '/users/u1/transactions', body: { ...valid, version: 3 }, status: 422, field: 'version' },
    { name: 'three fraction digits', method: 'POST', path: '/users/u1/transactions', body: { ...valid, transaction_amount: '10.005' }, status: 422, field: 'transaction_amount' },
    { name: 'negative amount', method: 'POST', path: '/users/u1/transactions', body: { ...valid, transaction_amount: -5 }, status: 422, field: 'transaction_amount' },
    { name: 'zero amount', method: 'POST', path: '/users/u1/transactions', body: { ...valid, transaction_amount: 0 }, status: 422, field: 'transaction_amount' },
    { name: 'huge amount', method: 'POST', path: '/users/u1/transactions', body: { ...valid, transaction_amount: '1000000000.01' }, status: 422, field: 'transaction_amount' },
    { name: 'non-numeric amount', method: 'POST', path: '/users/u1/transactions', body: { ...valid, transaction_amount: 'ten' }, status: 422, field: 'transaction_amount' },
    { name: 'bad type', method: 'POST', path: '/users/u1/transactions', body: { ...valid, transaction_type: 'refund' }, status: 422, field: 'transaction_type' },
    { name: 'date without offset', method: 'POST', path: '/users/u1/transactions', body: { ...valid, transaction_date: '2026-12-01T09:30:00' }, status: 422, field: 'transaction_date' },
    { name: 'date far in the future', method: 'POST', path: '/users/u1/transactions', body: { ...valid, transaction_date: '2999-01-01T00:00:00Z' }, status: 422, field: 'transaction_date' },
    { name: 'date before 1970', method: 'POST', path: '/users/u1/transactions', body: { ...valid, transaction_date: '1969-12-31T23:59:59Z' }, status: 422, field: 'transaction_date' },
    { name: 'not a leap day', method: 'POST', path: '/users/u1/transactions', body: { ...valid, transaction_date: '2025-02-29T00:00:00Z' }, status: 422, field: 'transaction_date' },
    { name: 'blank name', method: 'POST', path: '/users/u1/transactions', body: { ...valid, full_name: '   ' }, status: 422, field: 'full_name' },
    { name: 'name over 200 characters', method: 'POST', path: '/users/u1/transactions', body: { ...valid, full_name: 'é'.repeat(201) }, status: 422, field: 'full_name' },
    { name: 'bad user id', method: 'POST', path: '/users/bad%20user/transactions', body: valid, status: 400, field: 'user_id' },
    { name: 'user id too long', method: 'POST', path: `/users/${'u'.repeat(65)}/transactions`, body: valid, status: 400, field: 'user_id' },
    { name: 'empty PATCH', method: 'PATCH', path: '/users/u1/transactions/01JDZ8Q3V8K6E2M9W4T7A5B3CX', body: {}, status: 422, field: '(body)' },
    { name: 'PATCH of a missing transaction', method: 'PATCH', path: '/users/u1/transactions/01JDZ8Q3V8K6E2M9W4T7A5B3CX', body: { transaction_amount: 1 }, status: 404 },
    { name: 'malformed If-Match', method: 'PATCH', path: '/users/u1/transactions/01JDZ8Q3V8K6E2M9W4T7A5B3CX', body: { transaction_amount: 1 }, headers: { 'if-match': 'v1' }, status: 400, field: 'If-Match' },
    { name: 'limit out of range', method: 'GET', path: '/users/u1/transactions?limit=101', status: 400, field: 'limit' },
    { name: 'limit not a number', method: 'GET', path: '/users/u1/transactions?limit=ten', status: 400, field: 'limit' },
    { name: 'bad from date', method: 'GET', path: '/users/u1/transactions?from=2026-13-01', status: 400, field: 'from' },
    { name: 'from after to', method: 'GET', path: '/users/u1/transactions?from=2026-12-02&to=2026-12-01', status: 400, field: 'from' },
    { name: 'bad type filter', method: 'GET', path: '/users/u1/transactions?type=refund', status: 400, field: 'type' },
    { name: 'unknown query parameter', method: 'GET', path: '/users/u1/transactions?limt=5', status: 400, field: 'limt' },
    { name: 'unknown route', method: 'GET', path: '/nope', status: 404 },
    { name: 'unsupported method', method: 'PUT', path: '/users/u1/transactions', body: valid, status: 405 },
  ];

  it.each(cases)('$name → $status', async ({ method, path, body, raw, headers, status, field }) => {
    const before = await stack.scan();
    const response = await stack.request(method, path, { ...(body !== undefined ? { body } : {}), ...(raw !== undefined ? { raw } : {}), ...(headers ? { headers } : {}) });
    expect(response.status).toBe(status);
    expect(response.headers.get('content-type')).toBe('application/problem+json; charset=utf-8');
    expect(response.body).toMatchObject({ type: expect.stringMatching(/^https:\/\/tally\.dev\/problems\//), status, title: expect.any(String) });
    expect(response.text).not.toMatch(/at .*\.ts:\d+|Error:/);
    if (field) expect(response.body.errors.map((e: { field: string }) => e.field)).toContain(field);
    if (status === 405) expect(response.headers.get('allow')).toBe('POST, GET');
    expect(await stack.scan()).toEqual(before);
  });

  it('lists every failing field at once', async () => {
    const r = await create('u1', { full_name: '', transaction_date: 'yesterday', transaction_amount: '1.001', transaction_type: 'x' });
    expect(r.status).toBe(422);
    expect(r.body.detail).toBe('4 fields are invalid');
    expect(r.body.errors).toEqual([
      { field: 'full_name', message: 'must not be empty' },
      { field: 'transaction_date', message: expect.stringContaining('RFC 3339') },
      { field: 'transaction_amount', message: 'must have at most 2 fraction digits' },
      { field: 'transaction_type', message: 'must be one of: credit, debit' },
    ]);
  });
});
