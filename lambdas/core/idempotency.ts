import { createHash, createHmac } from 'node:crypto';
import { Problem, problems } from './problems.ts';
import type { NewTransaction } from './transaction.ts';

/**
 * Idempotent creates (API.md, "Idempotency"): the key's rules, the body fingerprint, the decision on an
 * existing record, and the create-once flow over a small ledger port. No AWS here; the DynamoDB ledger is
 * lambdas/adapters/idempotency-store.ts.
 *
 * The record holds the status, the fingerprint, the pre-assigned transaction id and two times, and — once
 * completed — a snapshot of the first response as the caller seals it (for transactions: the facts with the
 * name still encrypted, never the plaintext). A replay rebuilds the first response from that snapshot, so a
 * later change or delete of the transaction does not alter it. A completed record without a snapshot (written
 * before snapshots existed) replays by re-reading the transaction by id.
 */

export const IDEMPOTENCY_HEADER = 'idempotency-key';
/** 1–255 visible ASCII characters (RFC 5234 VCHAR, 0x21–0x7E). */
const KEY_PATTERN = /^[\x21-\x7E]{1,255}$/;

/** The header's key, undefined when absent, or a 400 naming the header (never a 5xx). */
export function parseIdempotencyKey(raw: string | undefined): string | undefined {
  if (raw === undefined) return undefined;
  if (!KEY_PATTERN.test(raw)) {
    throw problems.badRequest('The Idempotency-Key header is invalid', [
      { field: 'Idempotency-Key', message: 'must be 1–255 visible ASCII characters (no spaces)' },
    ]);
  }
  return raw;
}

/** The key as stored (in the sort key): its SHA-256, hex. The key itself is never stored or logged. */
export const keyDigest = (key: string): string => createHash('sha256').update(key, 'utf8').digest('hex');

/**
 * The body fingerprint: an HMAC-SHA256 of the canonical VALIDATED input, so bodies that mean the same
 * transaction are the same body — key order, `125.5` vs `"125.50"`, `+01:00` vs `Z`, surrounding spaces in the
 * name. Keyed with a server secret so a reader of the table cannot confirm a guessed name from it.
 */
export function requestFingerprint(secret: string, input: NewTransaction): string {
  const canonical = JSON.stringify(['tally.create.v1', input.type, input.amountMinor, input.date, input.fullName]);
  const key = createHmac('sha256', secret).update('tally/idempotency-fingerprint/v1').digest();
  return createHmac('sha256', key).update(canonical, 'utf8').digest('base64url');
}

export type IdempotencyStatus = 'in_progress' | 'completed';

export interface IdempotencyRecord<S = unknown> {
  status: IdempotencyStatus;
  fingerprint: string;
  /** Assigned when the key is first claimed; every later attempt under this key creates this id or nothing. */
  transactionId: string;
  /** Epoch ms until which an in-progress record blocks a duplicate (409); after it, a retry takes over. */
  lockedUntilMs: number;
  /** Epoch seconds (the table's TTL attribute); past it the record counts as absent. */
  expiresAtSeconds: number;
  /** The first response, as stored (sealed by the caller); set when the record is completed. */
  snapshot?: S;
}

export interface IdempotencyScope {
  userId: string;
  keyDigest: string;
}

export type ClaimDecision<S = unknown> =
  | { action: 'claim' }
  | { action: 'reject-mismatch' }
  | { action: 'reject-in-progress' }
  /** `snapshot` is absent for a record completed before snapshots were stored: replay by re-reading. */
  | { action: 'replay'; transactionId: string; snapshot?: S }
  | { action: 'take-over'; transactionId: string; lockedUntilMs: number };

export const isExpired = (record: IdempotencyRecord<unknown>, nowMs: number): boolean => record.expiresAtSeconds * 1000 <= nowMs;

/** What to do about the record already stored under a key. */
export function decide<S>(existing: IdempotencyRecord<S> | undefined, fingerprint: string, nowMs: number): ClaimDecision<S> {
  if (existing === undefined || isExpired(existing, nowMs)) return { action: 'claim' };
  if (existing.fingerprint !== fingerprint) return { action: 'reject-mismatch' };
  if (existing.status === 'completed') {
    return existing.snapshot === undefined
      ? { action: 'replay', transactionId: existing.transactionId }
      : { action: 'replay', transactionId: existing.transactionId, snapshot: existing.snapshot };
  }
  if (existing.lockedUntilMs > nowMs) return { action: 'reject-in-progress' };
  return { action: 'take-over', transactionId: existing.transactionId, lockedUntilMs: existing.lockedUntilMs };
}

export const idempotencyProblems = {
  reused: () =>
    problems.unprocessable(
      'idempotency-key-reused',
      'Idempotency-Key reused with a different body',
      'This Idempotency-Key was already used with a different request body; use a new key for a new transaction',
    ),
  inProgress: () =>
    new Problem({
      status: 409,
      slug: 'idempotency-key-in-progress',
      title: 'A request with this Idempotency-Key is in progress',
      detail: 'The first request with this Idempotency-Key has not finished; retry shortly',
      headers: { 'retry-after': '1' },
    }),
  /** Only for a record without a snapshot (written before snapshots existed) whose transaction was deleted. */
  gone: () =>
    problems.notFound(
      'The transaction created with this Idempotency-Key has since been deleted; nothing was created. Use a new key to create another',
    ),
};

/** The storage the flow needs; every write is conditional. `S` is the stored snapshot of the first response. */
export interface IdempotencyLedger<S = unknown> {
  /** Stores `record` unless a live (unexpired) record exists under the key; then returns that one. */
  putIfAbsent(
    scope: IdempotencyScope,
    record: IdempotencyRecord<S>,
    nowMs: number,
  ): Promise<{ stored: true } | { stored: false; existing: IdempotencyRecord<S> | undefined }>;
  /** Re-locks a stale in-progress record if it is still exactly the one seen (compare-and-set). */
  takeOver(scope: IdempotencyScope, transactionId: string, seenLockedUntilMs: number, lockedUntilMs: number): Promise<boolean>;
  /**
   * Marks the in-progress record completed and stores the first response's snapshot with it. A no-op if the
   * record is already completed (another attempt's snapshot stays: the first completion wins) or holds another id.
   */
  complete(scope: IdempotencyScope, transactionId: string, snapshot: S): Promise<void>;
  /** Unlocks the record after a failed attempt, keeping its transaction id, so a retry may take over at once. */
  release(scope: IdempotencyScope, transactionId: string): Promise<void>;
}

/** A response and the snapshot of it that the record stores (which must hold no plaintext personal data). */
export interface Snapshotted<T, S> {
  value: T;
  snapshot: S;
}

export interface CreateOnceDeps<T, S> {
  ledger: IdempotencyLedger<S>;
  nowMs: () => number;
  newId: () => string;
  ttlSeconds: number;
  inProgressSeconds: number;
  /** Creates the transaction with this id, conditional on it not existing; `'exists'` when it already does. */
  create: (transactionId: string) => Promise<Snapshotted<T, S> | 'exists'>;
  /** Reads the transaction by id as it is now; undefined when it does not exist. */
  read: (transactionId: string) => Promise<Snapshotted<T, S> | undefined>;
  /** Rebuilds the first response from the record's snapshot (whatever became of the transaction since). */
  restore: (transactionId: string, snapshot: S) => Promise<T>;
  warn?: (message: string, detail: Record<string, unknown>) => void;
}

export interface CreateOnceOutcome<T> {
  value: T;
  /** True when this request created nothing (the first request's transaction is returned). */
  replayed: boolean;
}

const MAX_CLAIM_ROUNDS = 3;

/**
 * Creates at most one transaction per (user, key) within the TTL. The claim is a conditional put of an
 * in-progress record with a pre-assigned transaction id; a takeover after a crash reuses that id, and the
 * transaction write is itself conditional on the id not existing — so however attempts interleave or die,
 * exactly one transaction can come of one key.
 */
export async function createOnce<T, S>(
  deps: CreateOnceDeps<T, S>,
  scope: IdempotencyScope,
  fingerprint: string,
): Promise<CreateOnceOutcome<T>> {
  for (let round = 0; round < MAX_CLAIM_ROUNDS; round++) {
    const now = deps.nowMs();
    const fresh: IdempotencyRecord<S> = {
      status: 'in_progress',
      fingerprint,
      transactionId: deps.newId(),
      lockedUntilMs: now + deps.inProgressSeconds * 1000,
      expiresAtSeconds: Math.floor(now / 1000) + deps.ttlSeconds,
    };
    const put = await deps.ledger.putIfAbsent(scope, fresh, now);
    if (put.stored) return runOwned(deps, scope, fresh.transactionId);
    const decision = decide(put.existing, fingerprint, now);
    switch (decision.action) {
      case 'claim':
        continue; // it expired or vanished between the put and the read: claim again
      case 'reject-mismatch':
        throw idempotencyProblems.reused();
      case 'reject-in-progress':
        throw idempotencyProblems.inProgress();
      case 'replay': {
        if (decision.snapshot !== undefined) {
          return { value: await deps.restore(decision.transactionId, decision.snapshot), replayed: true };
        }
        // A record completed before snapshots were stored: the old behaviour, re-read the transaction.
        const current = await deps.read(decision.transactionId);
        if (current === undefined) throw idempotencyProblems.gone();
        return { value: current.value, replayed: true };
      }
      case 'take-over': {
        const lockedUntil = now + deps.inProgressSeconds * 1000;
        if (await deps.ledger.takeOver(scope, decision.transactionId, decision.lockedUntilMs, lockedUntil)) {
          return runOwned(deps, scope, decision.transactionId);
        }
        continue; // another retry took it over first: look again
      }
    }
  }
  throw idempotencyProblems.inProgress();
}

async function runOwned<T, S>(deps: CreateOnceDeps<T, S>, scope: IdempotencyScope, transactionId: string): Promise<CreateOnceOutcome<T>> {
  let created: Snapshotted<T, S> | 'exists';
  try {
    created = await deps.create(transactionId);
  } catch (error) {
    // Unlock but keep the id: if the failed write did commit after all (a timeout), the retry finds it and
    // creates nothing; if it did not, the retry creates it. If even this fails, the lock expires on its own.
    await deps.ledger.release(scope, transactionId).catch(() => undefined);
    throw error;
  }
  let outcome: Snapshotted<T, S>;
  let replayed = false;
  if (created === 'exists') {
    // An earlier attempt under this key wrote it and died before completing the record. No response reached
    // the client then, so the one returned now is the first response, and the one the record keeps.
    const existing = await deps.read(transactionId);
    if (existing === undefined) throw idempotencyProblems.inProgress();
    outcome = existing;
    replayed = true;
  } else {
    outcome = created;
  }
  try {
    await deps.ledger.complete(scope, transactionId, outcome.snapshot);
  } catch (error) {
    // The transaction exists; a retry after the lock expiry finds it by id. Do not fail the create.
    deps.warn?.('idempotency record not completed', { error: error instanceof Error ? error.name : typeof error });
  }
  return { value: outcome.value, replayed };
}
