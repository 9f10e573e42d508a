import { sealField } from '../../lambdas/adapters/field-cipher.ts';
import { buildTransactionItem, type TransactionItem } from '../../lambdas/adapters/transaction-item.ts';

export const FIXTURE_TX_ID = '01JDZ8Q3V8K6E2M9W4T7A5B3CX';

/** A stored transaction of `userId` whose name ("Ama Mensah") is sealed under `key` (key version 1). */
export function storedTransactionItem(
  key: Uint8Array,
  userId: string,
  overrides: Partial<Parameters<typeof buildTransactionItem>[0]> = {},
): TransactionItem {
  const transactionId = overrides.transaction_id ?? FIXTURE_TX_ID;
  return buildTransactionItem({
    transaction_id: transactionId,
    user_id: userId,
    full_name_ct: sealField(key, 1, { userId, transactionId, field: 'full_name' }, 'Ama Mensah'),
    key_version: 1,
    amount_minor: 12_550,
    type: 'credit',
    date: '2026-12-01T09:30:00.000Z',
    version: 1,
    created_at: '2026-12-02T00:00:00.000Z',
    updated_at: '2026-12-02T00:00:00.000Z',
    ...overrides,
  });
}
