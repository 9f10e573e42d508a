import { describe, expect, it } from 'vitest';
import {
  createOnce,
  decide,
  keyDigest,
  parseIdempotencyKey,
  requestFingerprint,
  type CreateOnceDeps,
  type IdempotencyLedger,
  type IdempotencyRecord,
  type IdempotencyScope,
} from '../../lambdas/core/idempotency.ts';
import { Problem } from '../../lambdas/core/problems.ts';
import { toRecord, toSnapshot, type IdempotencyItem, type ReplaySnapshot } from '../../lambdas/adapters/idempotency-store.ts';
import { parseCreate, type NewTransaction } from '../../lambdas/core/transaction.ts';

const NOW = Date.UTC(2026, 11, 3, 18, 0, 0);
const record = (over: Partial<IdempotencyRecord<string>> = {}): IdempotencyRecord<string> => ({
  status: 'in_progress',
  fingerprint: 'fp',
  transactionId: 'TX1',
  lockedUntilMs: NOW + 30_000,
  expiresAtSeconds: NOW / 1000 + 86_400,
  ...over,
});

describe('parseIdempotencyKey', () => {
  it('accepts 1–255 visible ASCII characters and absence', () => {
    expect(parseIdempotencyKey(undefined)).toBeUndefined();
    expect(parseIdempotencyKey('a')).toBe('a');
    expect(parseIdempotencyKey('k'.repeat(255))).toHaveLength(255);
    expect(parseIdempotencyKey('!~{}"#$%&\'()*+,-./:;<=>?@[\\]^_`|')).toBeTruthy();
  });

  it.each([
    ['empty', ''],
    ['256 characters', 'k'.repeat(256)],
    ['a space', 'a b'],
    ['a tab', 'a\tb'],
    ['non-ASCII', 'clé'],
    ['a control character', 'a\u0000b'],
  ])('rejects %s with a 400 naming the header', (_what, raw) => {
    try {
      parseIdempotencyKey(raw);
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(Problem);
      expect((error as Problem).status).toBe(400);
      expect((error as Problem).errors?.[0]?.field).toBe('Idempotency-Key');
    }
  });

  it('stores a fixed-length digest of the key, never the key', () => {
    expect(keyDigest('order-1')).toMatch(/^[0-9a-f]{64}$/);
    expect(keyDigest('order-1')).not.toBe(keyDigest('order-2'));
  });
});

describe('requestFingerprint (the canonical validated body)', () => {
  const parsed = (body: Record<string, unknown>): NewTransaction => {
    const result = parseCreate(body);
    if (!result.ok) throw new Error('invalid');
    return result.value;
  };
  const base = { full_name: 'Ama Mensah', transaction_date: '2026-12-01T09:30:00+01:00', transaction_amount: '125.50', transaction_type: 'credit' };

  it('is the same for bodies that mean the same transaction: key order, 125.5 vs "125.50", offsets, padding', () => {
    const fp = requestFingerprint('s', parsed(base));
    expect(requestFingerprint('s', parsed({ transaction_type: 'credit', transaction_amount: 125.5, transaction_date: '2026-12-01T08:30:00Z', full_name: '  Ama Mensah ' }))).toBe(fp);
  });

  it('differs when any field differs', () => {
    const fp = requestFingerprint('s', parsed(base));
    expect(requestFingerprint('s', parsed({ ...base, transaction_amount: '125.51' }))).not.toBe(fp);
    expect(requestFingerprint('s', parsed({ ...base, transaction_type: 'debit' }))).not.toBe(fp);
    expect(requestFingerprint('s', parsed({ ...base, full_name: 'Ama Mensa' }))).not.toBe(fp);
    expect(requestFingerprint('s', parsed({ ...base, transaction_date: '2026-12-01T09:30:00Z' }))).not.toBe(fp);
  });

  it('is keyed: without the server secret a guessed name cannot be confirmed, and the name is not in it', () => {
    const fp = requestFingerprint('s', parsed(base));
    expect(requestFingerprint('other-secret', parsed(base))).not.toBe(fp);
    expect(fp).not.toContain('Ama');
  });
});

describe('decide (an existing record under the key)', () => {
  it('claims when there is none or it expired (TTL sweeping lags)', () => {
    expect(decide(undefined, 'fp', NOW)).toEqual({ action: 'claim' });
    expect(decide(record({ status: 'completed', expiresAtSeconds: NOW / 1000 }), 'fp', NOW)).toEqual({ action: 'claim' });
    expect(decide(record({ fingerprint: 'other', expiresAtSeconds: NOW / 1000 - 1 }), 'fp', NOW)).toEqual({ action: 'claim' });
  });

  it('rejects another body under the same key, in progress or completed (422)', () => {
    expect(decide(record({ fingerprint: 'other' }), 'fp', NOW)).toEqual({ action: 'reject-mismatch' });
    expect(decide(record({ fingerprint: 'other', status: 'completed' }), 'fp', NOW)).toEqual({ action: 'reject-mismatch' });
  });

  it('replays a completed record from its snapshot of the first response', () => {
    expect(decide(record({ status: 'completed', snapshot: 'first' }), 'fp', NOW)).toEqual({ action: 'replay', transactionId: 'TX1', snapshot: 'first' });
  });

  it('replays a completed record without a snapshot (written before snapshots) by its transaction id alone', () => {
    expect(decide(record({ status: 'completed' }), 'fp', NOW)).toEqual({ action: 'replay', transactionId: 'TX1' });
  });

  it('is a 409 while the lock holds, a takeover of the same id once it lapsed', () => {
    expect(decide(record(), 'fp', NOW)).toEqual({ action: 'reject-in-progress' });
    expect(decide(record({ lockedUntilMs: NOW }), 'fp', NOW)).toEqual({ action: 'take-over', transactionId: 'TX1', lockedUntilMs: NOW });
  });
});

/** The DynamoDB ledger's conditional semantics, in memory (each operation is atomic). */
class MemoryLedger implements IdempotencyLedger<string> {
  readonly records = new Map<string, IdempotencyRecord<string>>();
  failComplete = false;
  private id = (s: IdempotencyScope) => `${s.userId}/${s.keyDigest}`;
  async putIfAbsent(scope: IdempotencyScope, rec: IdempotencyRecord<string>, nowMs: number) {
    const existing = this.records.get(this.id(scope));
    if (existing && existing.expiresAtSeconds * 1000 > nowMs) return { stored: false as const, existing: { ...existing } };
    this.records.set(this.id(scope), { ...rec });
    return { stored: true as const };
  }
  async takeOver(scope: IdempotencyScope, transactionId: string, seen: number, next: number) {
    const r = this.records.get(this.id(scope));
    if (!r || r.status !== 'in_progress' || r.transactionId !== transactionId || r.lockedUntilMs !== seen) return false;
    r.lockedUntilMs = next;
    return true;
  }
  async complete(scope: IdempotencyScope, transactionId: string, snapshot: string) {
    if (this.failComplete) throw new Error('dynamodb down');
    const r = this.records.get(this.id(scope));
    if (r && r.status === 'in_progress' && r.transactionId === transactionId) {
      r.status = 'completed';
      r.snapshot = snapshot;
    }
  }
  async release(scope: IdempotencyScope, transactionId: string) {
    const r = this.records.get(this.id(scope));
    if (r && r.status === 'in_progress' && r.transactionId === transactionId) r.lockedUntilMs = 0;
  }
}

/**
 * The table holds each transaction's CURRENT state (a test may change or delete it); the snapshot a record keeps
 * is the state the response was built from, and `restore` rebuilds the response from it alone.
 */
function world() {
  const ledger = new MemoryLedger();
  const table = new Map<string, string>();
  const restored: string[] = [];
  let clock = NOW;
  let ids = 0;
  let failNextCreate: 'before-write' | 'after-write' | undefined;
  const deps: CreateOnceDeps<string, string> = {
    ledger,
    nowMs: () => clock,
    newId: () => `TX${++ids}`,
    ttlSeconds: 86_400,
    inProgressSeconds: 30,
    create: async (id) => {
      await Promise.resolve();
      if (failNextCreate === 'before-write') {
        failNextCreate = undefined;
        throw new Error('KMS unavailable');
      }
      if (table.has(id)) return 'exists';
      table.set(id, `tx:${id}`);
      if (failNextCreate === 'after-write') {
        failNextCreate = undefined;
        throw new Error('timed out after the write committed');
      }
      return { value: `tx:${id}`, snapshot: `tx:${id}` };
    },
    read: async (id) => {
      const current = table.get(id);
      return current === undefined ? undefined : { value: current, snapshot: current };
    },
    restore: async (id, snapshot) => {
      restored.push(id);
      return snapshot;
    },
  };
  return {
    ledger,
    table,
    restored,
    deps,
    advance: (ms: number) => (clock += ms),
    failNext: (how: 'before-write' | 'after-write') => (failNextCreate = how),
  };
}
const scope = { userId: 'u1', keyDigest: 'k1' };
const status = (p: Promise<unknown>) => p.then(() => 'ok', (e: Problem) => e.status);

describe('createOnce (the flow over the ledger)', () => {
  it('creates once, then replays the same transaction', async () => {
    const w = world();
    expect(await createOnce(w.deps, scope, 'fp')).toEqual({ value: 'tx:TX1', replayed: false });
    expect(await createOnce(w.deps, scope, 'fp')).toEqual({ value: 'tx:TX1', replayed: true });
    expect(w.table.size).toBe(1);
  });

  it('50 concurrent attempts with one key create exactly one transaction', async () => {
    const w = world();
    const outcomes = await Promise.allSettled(Array.from({ length: 50 }, () => createOnce(w.deps, scope, 'fp')));
    const created = outcomes.filter((o) => o.status === 'fulfilled' && !o.value.replayed);
    const rejected = outcomes.filter((o): o is PromiseRejectedResult => o.status === 'rejected');
    expect(created).toHaveLength(1);
    expect(rejected.every((o) => (o.reason as Problem).status === 409)).toBe(true);
    expect(w.table.size).toBe(1);
  });

  it('is a 422 for another body under the key', async () => {
    const w = world();
    await createOnce(w.deps, scope, 'fp');
    expect(await status(createOnce(w.deps, scope, 'other'))).toBe(422);
  });

  it('after a crash between marker and write, a retry after the lock expiry creates the pre-assigned id, once', async () => {
    const w = world();
    // A marker left by a container that died: in progress, nothing written.
    await w.ledger.putIfAbsent(scope, { status: 'in_progress', fingerprint: 'fp', transactionId: 'TX-PRE', lockedUntilMs: NOW + 30_000, expiresAtSeconds: NOW / 1000 + 86_400 }, NOW);
    expect(await status(createOnce(w.deps, scope, 'fp'))).toBe(409);
    w.advance(30_001);
    expect(await createOnce(w.deps, scope, 'fp')).toEqual({ value: 'tx:TX-PRE', replayed: false });
    expect([...w.table.keys()]).toEqual(['TX-PRE']);
    expect(await createOnce(w.deps, scope, 'fp')).toEqual({ value: 'tx:TX-PRE', replayed: true });
  });

  it('after a crash between the write and the completion, the retry finds the transaction and creates nothing', async () => {
    const w = world();
    await w.ledger.putIfAbsent(scope, { status: 'in_progress', fingerprint: 'fp', transactionId: 'TX-PRE', lockedUntilMs: NOW - 1, expiresAtSeconds: NOW / 1000 + 86_400 }, NOW);
    w.table.set('TX-PRE', 'tx:TX-PRE');
    expect(await createOnce(w.deps, scope, 'fp')).toEqual({ value: 'tx:TX-PRE', replayed: true });
    expect(w.table.size).toBe(1);
    expect(w.ledger.records.get('u1/k1')?.status).toBe('completed');
  });

  it('a failed create unlocks the key at once, keeping the id: the retry creates it', async () => {
    const w = world();
    w.failNext('before-write');
    await expect(createOnce(w.deps, scope, 'fp')).rejects.toThrow('KMS unavailable');
    expect(w.ledger.records.get('u1/k1')).toMatchObject({ status: 'in_progress', transactionId: 'TX1', lockedUntilMs: 0 });
    expect(await createOnce(w.deps, scope, 'fp')).toEqual({ value: 'tx:TX1', replayed: false });
    expect(w.table.size).toBe(1);
  });

  it('a create that failed after its write committed (a timeout) is not repeated by the retry', async () => {
    const w = world();
    w.failNext('after-write');
    await expect(createOnce(w.deps, scope, 'fp')).rejects.toThrow('timed out');
    expect(await createOnce(w.deps, scope, 'fp')).toEqual({ value: 'tx:TX1', replayed: true });
    expect(w.table.size).toBe(1);
  });

  it('two retries racing for a stale lock: one takes over, the other gets a 409, one transaction', async () => {
    const w = world();
    await w.ledger.putIfAbsent(scope, { status: 'in_progress', fingerprint: 'fp', transactionId: 'TX-PRE', lockedUntilMs: NOW - 1, expiresAtSeconds: NOW / 1000 + 86_400 }, NOW);
    const results = await Promise.allSettled([createOnce(w.deps, scope, 'fp'), createOnce(w.deps, scope, 'fp')]);
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    expect(w.table.size).toBe(1);
  });

  it('still answers 201 when only the completion write fails (the transaction exists)', async () => {
    const w = world();
    w.ledger.failComplete = true;
    const warnings: string[] = [];
    expect(await createOnce({ ...w.deps, warn: (m) => warnings.push(m) }, scope, 'fp')).toEqual({ value: 'tx:TX1', replayed: false });
    expect(warnings).toHaveLength(1);
    w.ledger.failComplete = false;
    w.advance(30_001);
    expect(await createOnce(w.deps, scope, 'fp')).toEqual({ value: 'tx:TX1', replayed: true });
    expect(w.table.size).toBe(1);
  });

  it('after the TTL the key starts afresh: a new transaction', async () => {
    const w = world();
    await createOnce(w.deps, scope, 'fp');
    w.advance(86_400_000);
    expect(await createOnce(w.deps, scope, 'other-body-is-fine-now')).toEqual({ value: 'tx:TX2', replayed: false });
  });

  it('the completed record keeps the snapshot of the first response', async () => {
    const w = world();
    await createOnce(w.deps, scope, 'fp');
    expect(w.ledger.records.get('u1/k1')).toMatchObject({ status: 'completed', transactionId: 'TX1', snapshot: 'tx:TX1' });
  });

  it('a replay after the transaction changed is still the first response, rebuilt from the record, not re-read', async () => {
    const w = world();
    await createOnce(w.deps, scope, 'fp');
    w.table.set('TX1', 'tx:TX1:v2');
    expect(await createOnce(w.deps, scope, 'fp')).toEqual({ value: 'tx:TX1', replayed: true });
    expect(w.restored).toEqual(['TX1']);
  });

  it('a replay after the transaction was deleted is still the first response, and creates nothing', async () => {
    const w = world();
    await createOnce(w.deps, scope, 'fp');
    w.table.clear();
    expect(await createOnce(w.deps, scope, 'fp')).toEqual({ value: 'tx:TX1', replayed: true });
    expect(w.table.size).toBe(0);
  });

  it('a record completed without a snapshot (before the deploy) replays by re-reading the transaction', async () => {
    const w = world();
    await w.ledger.putIfAbsent(scope, { status: 'completed', fingerprint: 'fp', transactionId: 'TX-OLD', lockedUntilMs: NOW - 1, expiresAtSeconds: NOW / 1000 + 86_400 }, NOW);
    w.table.set('TX-OLD', 'tx:TX-OLD:v2');
    expect(await createOnce(w.deps, scope, 'fp')).toEqual({ value: 'tx:TX-OLD:v2', replayed: true });
    expect(w.restored).toEqual([]);
    expect(w.table.size).toBe(1);
  });

  it('a record completed without a snapshot whose transaction was deleted since is a 404, and creates nothing', async () => {
    const w = world();
    await w.ledger.putIfAbsent(scope, { status: 'completed', fingerprint: 'fp', transactionId: 'TX-OLD', lockedUntilMs: NOW - 1, expiresAtSeconds: NOW / 1000 + 86_400 }, NOW);
    expect(await status(createOnce(w.deps, scope, 'fp'))).toBe(404);
    expect(w.table.size).toBe(0);
  });

  it('after a crash between the write and the completion, the retry stores what it returned as the first response', async () => {
    const w = world();
    await w.ledger.putIfAbsent(scope, { status: 'in_progress', fingerprint: 'fp', transactionId: 'TX-PRE', lockedUntilMs: NOW - 1, expiresAtSeconds: NOW / 1000 + 86_400 }, NOW);
    w.table.set('TX-PRE', 'tx:TX-PRE');
    expect(await createOnce(w.deps, scope, 'fp')).toEqual({ value: 'tx:TX-PRE', replayed: true });
    expect(w.ledger.records.get('u1/k1')?.snapshot).toBe('tx:TX-PRE');
    w.table.set('TX-PRE', 'tx:TX-PRE:v2');
    expect(await createOnce(w.deps, scope, 'fp')).toEqual({ value: 'tx:TX-PRE', replayed: true });
  });

  it('a late completion by a stalled attempt does not replace the snapshot of the first completion', async () => {
    const w = world();
    await createOnce(w.deps, scope, 'fp');
    await w.ledger.complete(scope, 'TX1', 'tx:TX1:late');
    expect(w.ledger.records.get('u1/k1')?.snapshot).toBe('tx:TX1');
  });

  it('keys are scoped per user', async () => {
    const w = world();
    await createOnce(w.deps, scope, 'fp');
    expect(await createOnce(w.deps, { ...scope, userId: 'u2' }, 'other')).toEqual({ value: 'tx:TX2', replayed: false });
  });
});

describe('the stored record (idempotency-store)', () => {
  const snapshot: ReplaySnapshot = {
    full_name_ct: 'v1.1.aXY.Y3Q',
    key_version: 1,
    amount_minor: 12_550,
    type: 'credit',
    date: '2026-12-01T08:30:00.000Z',
    version: 1,
    created_at: '2026-12-03T18:00:00.000Z',
    updated_at: '2026-12-03T18:00:00.000Z',
  };
  const item = (over: Partial<IdempotencyItem> = {}): IdempotencyItem => ({
    PK: 'USER#u1',
    SK: `IDEM#${'0'.repeat(64)}`,
    entity: 'idempotency',
    status: 'completed',
    fingerprint: 'fp',
    transaction_id: 'TX1',
    locked_until: NOW,
    expires_at: NOW / 1000 + 86_400,
    created_at: '2026-12-03T18:00:00.000Z',
    response: snapshot,
    ...over,
  });

  it('reads the snapshot of a completed record', () => {
    expect(toRecord(item()).snapshot).toEqual(snapshot);
  });

  it('reads a record without one (written before snapshots) as having none, so the replay re-reads', () => {
    const { response: _omitted, ...old } = item();
    expect(toRecord(old as IdempotencyItem)).not.toHaveProperty('snapshot');
  });

  it('ignores a snapshot that is not whole, rather than replaying a broken response', () => {
    expect(toSnapshot({ ...snapshot, full_name_ct: undefined })).toBeUndefined();
    expect(toSnapshot({ ...snapshot, version: 'one' })).toBeUndefined();
    expect(toSnapshot({ ...snapshot, type: 'refund' })).toBeUndefined();
    expect(toSnapshot('a string')).toBeUndefined();
    expect(toSnapshot(null)).toBeUndefined();
    expect(toRecord(item({ status: 'in_progress' }))).not.toHaveProperty('snapshot');
  });
});
