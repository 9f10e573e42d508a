import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ulid } from 'ulid';
import type { TestStack } from '../support/stack.ts';

/**
 * Runs a representative flow through the gateway — with auth on, every route, replays, validation failures,
 * rejected tokens, the stream aggregator — with the logger at DEBUG, captures every line written to stdout
 * and stderr, and checks that none holds a full name, a token, a ciphertext or an idempotency key.
 *
 * The logger reads its level once, when its module is first imported (and resets to it on every invocation),
 * so the level is set before the stack — and through it every handler — is imported, dynamically.
 */
let stack: TestStack;
const lines: string[] = [];
const originals = { out: process.stdout.write.bind(process.stdout), err: process.stderr.write.bind(process.stderr) };
/** Keeps every chunk; stdout (the JSON log lines) is swallowed to keep the run quiet, stderr passes on. */
const capture =
  (original: typeof process.stdout.write | undefined) =>
  (chunk: unknown, ...rest: unknown[]): boolean => {
    lines.push(typeof chunk === 'string' ? chunk : Buffer.isBuffer(chunk) ? chunk.toString('utf8') : String(chunk));
    return original ? (original as (c: unknown, ...r: unknown[]) => boolean)(chunk, ...rest) : true;
  };

beforeAll(async () => {
  process.env.POWERTOOLS_LOG_LEVEL = 'DEBUG';
  const { startTestStack } = await import('../support/stack.ts');
  process.stdout.write = capture(undefined) as typeof process.stdout.write;
  process.stderr.write = capture(originals.err) as typeof process.stderr.write;
  stack = await startTestStack({ auth: true });
});
afterAll(async () => {
  process.stdout.write = originals.out;
  process.stderr.write = originals.err;
  await stack?.stop();
});

const NAMES = ['Efua Logcheck-Asante', 'Kwabena Renamed-Darko', 'Zoë Ünïcode-Mensah'];
const KEY = 'idem-log-check-key-7f3a';

describe('no personal data or secrets in any log line', () => {
  it('a representative flow logs lines, and none holds a name, a token, a ciphertext or an idempotency key', async () => {
    const user = 'log-user';
    const me = await stack.authHeaders({ user });
    const admin = await stack.authHeaders('admin');
    const tokens = [me.authorization!.slice(7), admin.authorization!.slice(7)];
    const base = { transaction_date: '2026-12-01T09:30:00Z', transaction_amount: '42.00', transaction_type: 'credit' };

    const created = await stack.request('POST', `/users/${user}/transactions`, { body: { ...base, full_name: NAMES[0] }, headers: { ...me, 'idempotency-key': KEY } });
    expect(created.status).toBe(201);
    const location = created.headers.get('location')!;
    expect((await stack.request('POST', `/users/${user}/transactions`, { body: { ...base, full_name: NAMES[0] }, headers: { ...me, 'idempotency-key': KEY } })).headers.get('idempotent-replayed')).toBe('true');
    expect((await stack.request('POST', `/users/${user}/transactions`, { body: { ...base, full_name: NAMES[1] }, headers: { ...me, 'idempotency-key': KEY } })).status).toBe(422);
    expect((await stack.request('POST', `/users/${user}/transactions`, { body: { ...base, full_name: NAMES[2], transaction_amount: '-1', extra: NAMES[1] }, headers: me })).status).toBe(422);
    expect((await stack.request('POST', `/users/${user}/transactions`, { raw: `{"full_name":"${NAMES[2]}",`, headers: { ...me, 'content-type': 'application/json' } })).status).toBe(400);
    expect((await stack.request('POST', `/users/${user}/transactions`, { body: { ...base, full_name: NAMES[2] }, headers: admin })).status).toBe(201);
    expect((await stack.request('GET', location, { headers: me })).status).toBe(200);
    expect((await stack.request('GET', `/users/${user}/transactions`, { headers: me })).status).toBe(200);
    expect((await stack.request('PATCH', location, { body: { full_name: NAMES[1] }, headers: me })).status).toBe(200);
    expect((await stack.request('GET', `/users/${user}/transactions/${ulid()}`, { headers: me })).status).toBe(404);
    expect((await stack.request('GET', `/users/someone-else/transactions`, { headers: me })).status).toBe(403);
    const expired = await stack.token({ user, expiresInSeconds: -5 });
    tokens.push(expired);
    expect((await stack.request('GET', location, { headers: { authorization: `Bearer ${expired}` } })).status).toBe(401);
    expect((await stack.request('GET', location, { headers: { authorization: `Bearer ${tokens[0]}x` } })).status).toBe(401);
    await stack.drained();
    expect((await stack.request('GET', `/users/${user}/analytics`, { headers: me })).status).toBe(200);
    expect((await stack.request('DELETE', location, { headers: me })).status).toBe(204);
    await stack.drained();
    expect((await stack.request('DELETE', `/users/${user}/personal-data`, { headers: admin })).status).toBe(204);
    expect((await stack.request('GET', '/health')).status).toBe(200);

    const ciphertexts = (await stack.scan()).map((i) => i.full_name_ct).filter((c): c is string => typeof c === 'string');
    const wrapped = (await stack.scan()).map((i) => i.wrapped_key).filter((k) => k !== undefined).map((k) => (typeof k === 'string' ? k : Buffer.from(k as Uint8Array).toString('base64')));

    const logLines = lines.join('').split('\n').filter((l) => l.trim() !== '');
    // The capture works: the handlers' structured lines are here (DEBUG), with their request ids.
    expect(logLines.length).toBeGreaterThan(5);
    expect(logLines.some((l) => l.includes('"request_id"'))).toBe(true);
    expect(logLines.some((l) => l.includes('request forbidden'))).toBe(true);
    const forbidden = [
      ...NAMES,
      ...NAMES.map((n) => JSON.stringify(n).slice(1, -1)),
      'Logcheck',
      'Renamed-Darko',
      ...tokens,
      ...tokens.map((t) => t.split('.')[2]!),
      ...ciphertexts,
      ...wrapped,
      KEY,
    ];
    const leaks = logLines.filter((line) => forbidden.some((secret) => secret.length >= 6 && line.includes(secret)));
    expect(leaks).toEqual([]);
  });
});
