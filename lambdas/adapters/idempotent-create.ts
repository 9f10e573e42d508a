import { createOnce, keyDigest, requestFingerprint } from '../core/idempotency.ts';
import { Problem } from '../core/problems.ts';
import type { NewTransaction, StoredTransaction } from '../core/transaction.ts';
import { snapshotOf, type IdempotencyStore, type ReplaySnapshot } from './idempotency-store.ts';
import { logger } from './logger.ts';
import type { SealedTransaction, TransactionService } from './transaction-service.ts';
import { VersionConflict } from './transaction-repository.ts';

export interface CreateOutcome {
  transaction: StoredTransaction;
  /** The first response of an earlier request with the same key, rebuilt from its record. */
  replayed: boolean;
}

/**
 * `POST /users/{id}/transactions` with an `Idempotency-Key` (API.md, "Idempotency"): the decisions are in
 * core/idempotency.ts (`createOnce`), the record in the idempotency store, the transaction in the service.
 */
export class IdempotentCreate {
  constructor(
    private readonly deps: {
      transactions: TransactionService;
      ledger: IdempotencyStore;
      /** Keys the body fingerprint (domain-separated inside), so the record cannot confirm a guessed name. */
      fingerprintSecret: string;
      ttlSeconds: number;
      inProgressSeconds: number;
    },
  ) {}

  async create(userId: string, input: NewTransaction, key: string | undefined): Promise<CreateOutcome> {
    const { transactions } = this.deps;
    if (key === undefined) return { transaction: await transactions.create(userId, input), replayed: false };
    const outcome = await createOnce<StoredTransaction, ReplaySnapshot>(
      {
        ledger: this.deps.ledger,
        nowMs: Date.now,
        newId: () => transactions.newId(),
        ttlSeconds: this.deps.ttlSeconds,
        inProgressSeconds: this.deps.inProgressSeconds,
        create: async (transactionId) => {
          try {
            return withSnapshot(await transactions.createSealed(userId, input, transactionId));
          } catch (error) {
            if (error instanceof VersionConflict) return 'exists';
            throw error;
          }
        },
        read: (transactionId) =>
          transactions.getSealed(userId, transactionId).then(withSnapshot, (error: unknown) => {
            if (error instanceof Problem && error.status === 404) return undefined;
            throw error;
          }),
        // The first 201 again, from the record: the v1 facts, the name decrypted as any read does (null once erased).
        restore: (transactionId, snapshot) => transactions.openFacts({ ...snapshot, transaction_id: transactionId, user_id: userId }),
        warn: (message, detail) => logger.warn(message, detail),
      },
      { userId, keyDigest: keyDigest(key) },
      requestFingerprint(this.deps.fingerprintSecret, input),
    );
    if (outcome.replayed) logger.info('idempotent replay', { transaction_id: outcome.value.transactionId });
    return { transaction: outcome.value, replayed: outcome.replayed };
  }
}

/** The response and what the idempotency record keeps of it: the item's facts, the name only as ciphertext. */
function withSnapshot({ transaction, item }: SealedTransaction): { value: StoredTransaction; snapshot: ReplaySnapshot } {
  return { value: transaction, snapshot: snapshotOf(item) };
}
