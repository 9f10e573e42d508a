import { z } from 'zod';
import { TRANSACTION_TYPES } from './transaction.ts';

/**
 * The response bodies of API.md as zod schemas: the OpenAPI document is generated from them, and the
 * contract tests parse real responses with them, so the document cannot drift from what the API sends.
 */
const money = z.string().regex(/^-?\d+\.\d{2}$/).meta({ description: 'Decimal string with exactly 2 fraction digits', examples: ['125.50'] });
const instant = z.string().regex(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/).meta({ description: 'UTC instant, millisecond precision' });
const day = z.string().regex(/^\d{4}-\d{2}-\d{2}$/).meta({ description: 'UTC calendar day' });

export const transactionResource = z
  .strictObject({
    transaction_id: z.string().regex(/^[0-9A-HJKMNP-TV-Z]{26}$/).meta({ description: 'ULID assigned by the server' }),
    user_id: z.string(),
    full_name: z.string().nullable().meta({ description: 'The decrypted name; null once the user’s personal data was erased' }),
    full_name_erased: z.literal(true).optional(),
    transaction_date: instant,
    transaction_amount: money,
    transaction_type: z.enum(TRANSACTION_TYPES),
    version: z.number().int().min(1),
    created_at: instant,
    updated_at: instant,
  })
  .meta({ id: 'Transaction' });

export const historyPage = z
  .strictObject({
    data: z.array(transactionResource),
    next_cursor: z.string().nullable().meta({ description: 'Opaque; pass as `cursor` for the next page; null on the last page' }),
  })
  .meta({ id: 'TransactionPage' });

export const analyticsResource = z
  .strictObject({
    user_id: z.string(),
    period: z.strictObject({ from: day, to: day }).nullable(),
    transaction_count: z.number().int().min(0),
    average_transaction_value: money.nullable(),
    busiest_day: z.strictObject({ date: day, transaction_count: z.number().int().min(1) }).nullable(),
    totals: z.strictObject({ credit: money, debit: money, net: money }),
    as_of: instant.nullable().meta({ description: 'Time of the latest change the figures include; null when there is none' }),
  })
  .meta({ id: 'Analytics' });

export const problemResource = z
  .strictObject({
    type: z.url(),
    title: z.string(),
    status: z.number().int().min(400).max(599),
    detail: z.string().optional(),
    errors: z.array(z.strictObject({ field: z.string(), message: z.string() })).optional(),
    request_id: z.string(),
  })
  .meta({ id: 'Problem' });

export const healthResource = z.strictObject({ status: z.literal('ok') }).meta({ id: 'Health' });

export type TransactionResourceBody = z.infer<typeof transactionResource>;
export type AnalyticsResourceBody = z.infer<typeof analyticsResource>;
