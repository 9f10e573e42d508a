/**
 * The one-table model (DESIGN.md, "Data model"). Every item of a user lives in the partition `USER#<id>`.
 * These builders are the only place that spells a key; the CDK stack repeats the attribute names and the
 * infra tests hold the two together.
 */
export const TABLE_KEYS = {
  partitionKey: 'PK',
  sortKey: 'SK',
  /** Local secondary index over `USER#<id>` × `<transaction_date>#<transaction_id>`: history by date. */
  historyIndex: 'by-date',
  historySortKey: 'date_sk',
  /** TTL attribute (epoch seconds) used by applied markers and idempotency records. */
  ttl: 'expires_at',
} as const;

export const userPk = (userId: string): string => `USER#${userId}`;
export const transactionSk = (transactionId: string): string => `TX#${transactionId}`;
export const historySk = (isoDate: string, transactionId: string): string => `${isoDate}#${transactionId}`;
export const DATA_KEY_SK = 'KEY';
export const AGGREGATE_SK = 'AGG';
export const daySk = (day: string): string => `DAY#${day}`;
export const appliedSk = (eventId: string): string => `APPLIED#${eventId}`;
export const idempotencySk = (keyDigest: string): string => `IDEM#${keyDigest}`;

export const TRANSACTION_SK_PREFIX = 'TX#';
export const DAY_SK_PREFIX = 'DAY#';

export function userIdFromPk(pk: string): string {
  if (!pk.startsWith('USER#')) throw new Error('not a user partition key');
  return pk.slice('USER#'.length);
}
