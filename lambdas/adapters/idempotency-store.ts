import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { GetCommand, PutCommand, UpdateCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { IdempotencyLedger, IdempotencyRecord, IdempotencyScope, IdempotencyStatus } from '../core/idempotency.ts';
import { TABLE_KEYS, idempotencySk, userPk } from '../core/keys.ts';
import { dynamoDocumentClient } from './clients.ts';
import { config } from './config.ts';
import { dynamoFailure } from './dynamo-errors.ts';
import type { TransactionItem } from './transaction-item.ts';

/**
 * The first 201's facts as an idempotency record keeps them: the transaction item's own attributes, with the
 * name as its v1 ciphertext (`full_name_ct`, bound by AAD to this user and transaction, so it opens only
 * there, and reads null once the user's key is erased). Never the plaintext name.
 */
export const SNAPSHOT_FIELDS = ['full_name_ct', 'key_version', 'amount_minor', 'type', 'date', 'version', 'created_at', 'updated_at'] as const;
export type ReplaySnapshot = Pick<TransactionItem, (typeof SNAPSHOT_FIELDS)[number]>;

/** What a record keeps of a written transaction item. */
export function snapshotOf(item: TransactionItem): ReplaySnapshot {
  return Object.fromEntries(SNAPSHOT_FIELDS.map((field) => [field, item[field]])) as ReplaySnapshot;
}

/**
 * The idempotency records, as items of the one table: PK `USER#<id>`, SK `IDEM#<sha256(key)>`, TTL
 * `expires_at`. An item holds the status, the body fingerprint (an HMAC), the pre-assigned transaction id and
 * the lock time, and once completed the first response's facts (`response`, a {@link ReplaySnapshot}: the
 * name only as ciphertext) — no plaintext name, no key.
 *
 * Why not Powertools' idempotency utility: it stores the whole response (the decrypted name) unless told
 * otherwise, deletes the record when the handler throws (so a write that did commit before a timeout would be
 * repeated under a fresh id), and has no notion of a pre-assigned id reused by a takeover. The few
 * conditional writes below give all three guarantees.
 */
export interface IdempotencyItem {
  PK: string;
  SK: string;
  entity: 'idempotency';
  status: IdempotencyStatus;
  fingerprint: string;
  transaction_id: string;
  /** Epoch ms. */
  locked_until: number;
  /** Epoch seconds; the table's TTL attribute. */
  expires_at: number;
  created_at: string;
  completed_at?: string;
  /** Absent while in progress, and on records completed by code that predates it (they replay by re-reading). */
  response?: ReplaySnapshot;
}

const key = (scope: IdempotencyScope) => ({ PK: userPk(scope.userId), SK: idempotencySk(scope.keyDigest) });
const isConditionFailure = (error: unknown): boolean => error instanceof ConditionalCheckFailedException;

/** The stored snapshot, or undefined when it is absent or not whole (then the replay falls back to a re-read). */
export function toSnapshot(raw: unknown): ReplaySnapshot | undefined {
  if (typeof raw !== 'object' || raw === null) return undefined;
  const r = raw as Record<string, unknown>;
  const text = (v: unknown): v is string => typeof v === 'string' && v !== '';
  const integer = (v: unknown): boolean => (typeof v === 'number' || typeof v === 'string') && v !== '' && Number.isSafeInteger(Number(v));
  if (!text(r.full_name_ct) || !text(r.date) || !text(r.created_at) || !text(r.updated_at)) return undefined;
  if (!integer(r.key_version) || !integer(r.amount_minor) || !integer(r.version)) return undefined;
  if (r.type !== 'credit' && r.type !== 'debit') return undefined;
  return {
    full_name_ct: r.full_name_ct,
    key_version: Number(r.key_version),
    amount_minor: Number(r.amount_minor),
    type: r.type,
    date: r.date,
    version: Number(r.version),
    created_at: r.created_at,
    updated_at: r.updated_at,
  };
}

export function toRecord(item: IdempotencyItem): IdempotencyRecord<ReplaySnapshot> {
  const snapshot = item.status === 'completed' ? toSnapshot(item.response) : undefined;
  return {
    status: item.status,
    fingerprint: item.fingerprint,
    transactionId: item.transaction_id,
    lockedUntilMs: Number(item.locked_until),
    expiresAtSeconds: Number(item[TABLE_KEYS.ttl]),
    ...(snapshot === undefined ? {} : { snapshot }),
  };
}

export class IdempotencyStore implements IdempotencyLedger<ReplaySnapshot> {
  constructor(
    private readonly doc: DynamoDBDocumentClient,
    private readonly tableName: string,
  ) {}

  async putIfAbsent(
    scope: IdempotencyScope,
    record: IdempotencyRecord<ReplaySnapshot>,
    nowMs: number,
  ): Promise<{ stored: true } | { stored: false; existing: IdempotencyRecord<ReplaySnapshot> | undefined }> {
    const item: IdempotencyItem = {
      ...key(scope),
      entity: 'idempotency',
      status: record.status,
      fingerprint: record.fingerprint,
      transaction_id: record.transactionId,
      locked_until: record.lockedUntilMs,
      expires_at: record.expiresAtSeconds,
      created_at: new Date(nowMs).toISOString(),
    };
    try {
      await this.doc.send(
        new PutCommand({
          TableName: this.tableName,
          Item: item,
          // Absent, or expired but not yet swept by TTL (which lags by up to two days).
          ConditionExpression: 'attribute_not_exists(PK) OR #exp <= :now',
          ExpressionAttributeNames: { '#exp': TABLE_KEYS.ttl },
          ExpressionAttributeValues: { ':now': Math.floor(nowMs / 1000) },
        }),
      );
      return { stored: true };
    } catch (error) {
      if (!isConditionFailure(error)) throw dynamoFailure(error);
    }
    return { stored: false, existing: await this.get(scope) };
  }

  async get(scope: IdempotencyScope): Promise<IdempotencyRecord<ReplaySnapshot> | undefined> {
    try {
      const result = await this.doc.send(new GetCommand({ TableName: this.tableName, Key: key(scope), ConsistentRead: true }));
      return result.Item ? toRecord(result.Item as IdempotencyItem) : undefined;
    } catch (error) {
      throw dynamoFailure(error);
    }
  }

  async takeOver(scope: IdempotencyScope, transactionId: string, seenLockedUntilMs: number, lockedUntilMs: number): Promise<boolean> {
    return this.update(scope, {
      UpdateExpression: 'SET locked_until = :next',
      ConditionExpression: '#status = :in_progress AND transaction_id = :tx AND locked_until = :seen',
      ExpressionAttributeNames: { '#status': 'status' },
      ExpressionAttributeValues: { ':next': lockedUntilMs, ':in_progress': 'in_progress', ':tx': transactionId, ':seen': seenLockedUntilMs },
    });
  }

  async complete(scope: IdempotencyScope, transactionId: string, snapshot: ReplaySnapshot): Promise<void> {
    // Only from in progress: if another attempt under this key completed first, its snapshot is the first response.
    const response: ReplaySnapshot = {
      full_name_ct: snapshot.full_name_ct,
      key_version: snapshot.key_version,
      amount_minor: snapshot.amount_minor,
      type: snapshot.type,
      date: snapshot.date,
      version: snapshot.version,
      created_at: snapshot.created_at,
      updated_at: snapshot.updated_at,
    };
    await this.update(scope, {
      UpdateExpression: 'SET #status = :completed, completed_at = :at, #response = :response',
      ConditionExpression: '#status = :in_progress AND transaction_id = :tx',
      ExpressionAttributeNames: { '#status': 'status', '#response': 'response' },
      ExpressionAttributeValues: {
        ':completed': 'completed',
        ':in_progress': 'in_progress',
        ':at': new Date().toISOString(),
        ':tx': transactionId,
        ':response': response,
      },
    });
  }

  async release(scope: IdempotencyScope, transactionId: string): Promise<void> {
    await this.update(scope, {
      UpdateExpression: 'SET locked_until = :zero',
      ConditionExpression: '#status = :in_progress AND transaction_id = :tx',
      ExpressionAttributeNames: { '#status': 'status' },
      ExpressionAttributeValues: { ':zero': 0, ':in_progress': 'in_progress', ':tx': transactionId },
    });
  }

  /** A conditional update; false when the condition failed. */
  private async update(
    scope: IdempotencyScope,
    input: {
      UpdateExpression: string;
      ConditionExpression: string;
      ExpressionAttributeNames: Record<string, string>;
      ExpressionAttributeValues: Record<string, unknown>;
    },
  ): Promise<boolean> {
    try {
      await this.doc.send(new UpdateCommand({ TableName: this.tableName, Key: key(scope), ...input }));
      return true;
    } catch (error) {
      if (isConditionFailure(error)) return false;
      throw dynamoFailure(error);
    }
  }
}

let store: IdempotencyStore | undefined;

/** The container's store, built on first use. */
export function idempotencyStore(): IdempotencyStore {
  store ??= new IdempotencyStore(dynamoDocumentClient(), config().tableName);
  return store;
}
