import { historySk, transactionSk, userPk } from '../core/keys.ts';
import type { TransactionType } from '../core/transaction.ts';

/**
 * A transaction as stored in DynamoDB. The stream aggregator reads these attributes from the old and new
 * images, so this shape is a contract: `amount_minor`, `type`, `date` and `updated_at` must stay.
 */
export interface TransactionItem {
  PK: string;
  SK: string;
  /** Sort key of the `by-date` history index. */
  date_sk: string;
  entity: 'transaction';
  transaction_id: string;
  user_id: string;
  /** `v1.<key-version>.<iv>.<ciphertext+tag>`; never the plaintext name. */
  full_name_ct: string;
  /** Version of the user's data key that sealed `full_name_ct`. */
  key_version: number;
  amount_minor: number;
  type: TransactionType;
  /** UTC ISO instant, millisecond precision. */
  date: string;
  version: number;
  created_at: string;
  updated_at: string;
}

export function transactionKey(userId: string, transactionId: string): { PK: string; SK: string } {
  return { PK: userPk(userId), SK: transactionSk(transactionId) };
}

export function buildTransactionItem(fields: Omit<TransactionItem, 'PK' | 'SK' | 'date_sk' | 'entity'>): TransactionItem {
  return {
    ...transactionKey(fields.user_id, fields.transaction_id),
    date_sk: historySk(fields.date, fields.transaction_id),
    entity: 'transaction',
    ...fields,
  };
}
