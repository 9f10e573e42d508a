import { createOnce, IDEMPOTENCY_HEADER, keyDigest, parseIdempotencyKey, requestFingerprint } from '../core/idempotency.ts';
import { Problem, problems } from '../core/problems.ts';
import { parseCreate, toResource, type StoredTransaction } from '../core/transaction.ts';
import { config } from '../adapters/config.ts';
import { transactionService } from '../adapters/container.ts';
import { idempotencyStore, type ReplaySnapshot } from '../adapters/idempotency-store.ts';
import type { SealedTransaction } from '../adapters/transaction-service.ts';
import { logger } from '../adapters/logger.ts';
import { VersionConflict } from '../adapters/transaction-repository.ts';
import { httpHandler } from '../middleware/http.ts';
import { etag, userIdParam } from '../middleware/request.ts';

export const handler = httpHandler(
  async (request) => {
    const userId = userIdParam(request);
    // Both checks come before anything is stored: a bad key is a 400, a bad body a 422, and neither leaves a record.
    const key = parseIdempotencyKey(request.headers[IDEMPOTENCY_HEADER]);
    const input = parseCreate(request.body);
    if (!input.ok) throw problems.validation(input.errors);
    const service = transactionService();

    let created: StoredTransaction;
    let replayed = false;
    if (key === undefined) {
      created = await service.create(userId, input.value);
    } else {
      const c = config();
      const outcome = await createOnce<StoredTransaction, ReplaySnapshot>(
        {
          ledger: idempotencyStore(),
          nowMs: Date.now,
          newId: () => service.newId(),
          ttlSeconds: c.idempotencyTtlSeconds,
          inProgressSeconds: c.idempotencyInProgressSeconds,
          create: async (transactionId) => {
            try {
              return withSnapshot(await service.createSealed(userId, input.value, transactionId));
            } catch (error) {
              if (error instanceof VersionConflict) return 'exists';
              throw error;
            }
          },
          read: (transactionId) =>
            service.getSealed(userId, transactionId).then(withSnapshot, (error: unknown) => {
              if (error instanceof Problem && error.status === 404) return undefined;
              throw error;
            }),
          // The first 201 again, from the record: the v1 facts, the name decrypted as any read does (null once erased).
          restore: (transactionId, snapshot) => service.openFacts({ ...snapshot, transaction_id: transactionId, user_id: userId }),
          warn: (message, detail) => logger.warn(message, detail),
        },
        { userId, keyDigest: keyDigest(key) },
        // The server's HMAC secret keys the fingerprint (domain-separated inside), so it cannot confirm a guessed name.
        requestFingerprint(c.cursorSecret, input.value),
      );
      created = outcome.value;
      replayed = outcome.replayed;
      if (replayed) logger.info('idempotent replay', { transaction_id: created.transactionId });
    }
    return {
      statusCode: 201,
      headers: {
        location: `/users/${userId}/transactions/${created.transactionId}`,
        etag: etag(created.version),
        ...(replayed ? { 'idempotent-replayed': 'true' } : {}),
      },
      body: toResource(created),
    };
  },
  { body: true },
);

/** The response and what the idempotency record keeps of it: the item's facts, the name only as ciphertext. */
function withSnapshot({ transaction, item }: SealedTransaction): { value: StoredTransaction; snapshot: ReplaySnapshot } {
  return {
    value: transaction,
    snapshot: {
      full_name_ct: item.full_name_ct,
      key_version: item.key_version,
      amount_minor: item.amount_minor,
      type: item.type,
      date: item.date,
      version: item.version,
      created_at: item.created_at,
      updated_at: item.updated_at,
    },
  };
}
