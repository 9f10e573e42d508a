import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { GetCommand, PutCommand, UpdateCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { IdempotencyLedger, IdempotencyRecord, IdempotencyScope, IdempotencyStatus } from '../core/idempotency.ts';
import { TABLE_KEYS, idempotencySk, userPk } from '../core/keys.ts';
import { dynamoDocumentClient } from './clients.ts';
import { config } from './config.ts';
import { dynamoFailure } from './dynamo-errors.ts';

/**
 * The idempotency records, as items of the one table: PK `USER#<id>`, SK `IDEM#<sha256(key)>`, TTL
 * `expires_at`. An item holds the status, the body fingerprint (an HMAC), the pre-assigned transaction id and
 * the lock time — no name, no key, no response body.
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
}

const key = (scope: IdempotencyScope) => ({ PK: userPk(scope.userId), SK: idempotencySk(scope.keyDigest) });
const isConditionFailure = (error: unknown): boolean => error instanceof ConditionalCheckFailedException;

export function toRecord(item: IdempotencyItem): IdempotencyRecord {
  return {
    status: item.status,
    fingerprint: item.fingerprint,
    transactionId: item.transaction_id,
    lockedUntilMs: Number(item.locked_until),
    expiresAtSeconds: Number(item[TABLE_KEYS.ttl]),
  };
}

export class IdempotencyStore implements IdempotencyLedger {
  constructor(
    private readonly doc: DynamoDBDocumentClient,
    private readonly tableName: string,
  ) {}

  async putIfAbsent(
    scope: IdempotencyScope,
    record: IdempotencyRecord,
    nowMs: number,
  ): Promise<{ stored: true } | { stored: false; existing: IdempotencyRecord | undefined }> {
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

  async get(scope: IdempotencyScope): Promise<IdempotencyRecord | undefined> {
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

  async complete(scope: IdempotencyScope, transactionId: string): Promise<void> {
    await this.update(scope, {
      UpdateExpression: 'SET #status = :completed, completed_at = :at',
      ConditionExpression: 'transaction_id = :tx',
      ExpressionAttributeNames: { '#status': 'status' },
      ExpressionAttributeValues: { ':completed': 'completed', ':at': new Date().toISOString(), ':tx': transactionId },
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
