import { z } from 'zod';
import { parseAmount, formatMinor } from './money.ts';
import { parseTransactionDate } from './dates.ts';
import type { FieldError } from './problems.ts';

/**
 * The transaction schema: the single source of the request types, the validation messages and (through
 * `z.toJSONSchema`) the OpenAPI document.
 */
export const TRANSACTION_TYPES = ['credit', 'debit'] as const;
export type TransactionType = (typeof TRANSACTION_TYPES)[number];

export const USER_ID_PATTERN = /^[A-Za-z0-9_.-]{1,64}$/;
export const TRANSACTION_ID_PATTERN = /^[0-9A-HJKMNP-TV-Z]{26}$/;
const CONTROL_CHARACTERS = /\p{Cc}/u;

const required = (what: string) => (issue: { input: unknown }) => (issue.input === undefined ? 'is required' : what);

const fullName = z
  .string({ error: required('must be a string') })
  .transform((value, ctx) => {
    const trimmed = value.trim().normalize('NFC');
    const length = [...trimmed].length;
    if (length < 1) ctx.addIssue({ code: 'custom', message: 'must not be empty' });
    else if (length > 200) ctx.addIssue({ code: 'custom', message: 'must be at most 200 characters' });
    else if (CONTROL_CHARACTERS.test(trimmed)) ctx.addIssue({ code: 'custom', message: 'must not contain control characters' });
    return trimmed;
  })
  .meta({ description: 'The payer or payee name, 1–200 characters after trimming', examples: ['Ama Mensah'] });

const transactionDate = z
  .string({ error: required('must be an RFC 3339 date-time string') })
  .transform((value, ctx) => {
    const parsed = parseTransactionDate(value);
    if (!parsed.ok) {
      ctx.addIssue({ code: 'custom', message: parsed.message });
      return z.NEVER;
    }
    return parsed.iso;
  })
  .meta({
    description: 'RFC 3339 date-time with an offset; not before 1970, at most 24 h in the future. Normalised to UTC.',
    examples: ['2026-12-01T09:30:00Z'],
  });

const transactionAmount = z
  .union([z.number(), z.string()], { error: required('must be a number or a decimal string such as "125.50"') })
  .transform((value, ctx) => {
    const parsed = parseAmount(value);
    if (!parsed.ok) {
      ctx.addIssue({ code: 'custom', message: parsed.message });
      return z.NEVER;
    }
    return parsed.minor;
  })
  .meta({
    description: 'Greater than 0, at most 2 fraction digits, at most 1000000000.00. A decimal string avoids any float on the client.',
    examples: ['125.50'],
  });

const transactionType = z
  .enum(TRANSACTION_TYPES, { error: required(`must be one of: ${TRANSACTION_TYPES.join(', ')}`) })
  .meta({ description: 'credit or debit' });

const shape = {
  full_name: fullName,
  transaction_date: transactionDate,
  transaction_amount: transactionAmount,
  transaction_type: transactionType,
};

export const createTransactionBody = z.strictObject(shape).meta({ id: 'CreateTransaction' });
export const updateTransactionBody = z
  .strictObject({
    full_name: fullName.optional(),
    transaction_date: transactionDate.optional(),
    transaction_amount: transactionAmount.optional(),
    transaction_type: transactionType.optional(),
  })
  .meta({ id: 'UpdateTransaction', description: 'Any non-empty subset of the fields' });

/** A validated new transaction: amount in minor units, date as a UTC ISO instant. */
export interface NewTransaction {
  fullName: string;
  date: string;
  amountMinor: number;
  type: TransactionType;
}
export type TransactionPatch = Partial<NewTransaction>;

export interface Transaction extends NewTransaction {
  transactionId: string;
  userId: string;
  version: number;
  createdAt: string;
  updatedAt: string;
}

/** A transaction as read back: the name is `null` once the user's data key was destroyed. */
export interface StoredTransaction extends Omit<Transaction, 'fullName'> {
  fullName: string | null;
}

/** zod issues → the `errors` list of a problem, one entry per failing field. */
export function fieldErrors(error: z.ZodError): FieldError[] {
  const errors: FieldError[] = [];
  for (const issue of error.issues) {
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) errors.push({ field: key, message: 'is not a recognised field' });
      continue;
    }
    if (issue.code === 'invalid_type' && issue.path.length === 0) {
      errors.push({ field: '(body)', message: 'must be a JSON object' });
      continue;
    }
    errors.push({ field: issue.path.map(String).join('.') || '(body)', message: issue.message });
  }
  return errors;
}

type Parsed<T> = { ok: true; value: T } | { ok: false; errors: FieldError[] };

export function parseCreate(body: unknown): Parsed<NewTransaction> {
  const result = createTransactionBody.safeParse(body);
  if (!result.success) return { ok: false, errors: fieldErrors(result.error) };
  const v = result.data;
  return {
    ok: true,
    value: { fullName: v.full_name, date: v.transaction_date, amountMinor: v.transaction_amount, type: v.transaction_type },
  };
}

export function parsePatch(body: unknown): Parsed<TransactionPatch> {
  const result = updateTransactionBody.safeParse(body);
  if (!result.success) return { ok: false, errors: fieldErrors(result.error) };
  const v = result.data;
  const patch: TransactionPatch = {};
  if (v.full_name !== undefined) patch.fullName = v.full_name;
  if (v.transaction_date !== undefined) patch.date = v.transaction_date;
  if (v.transaction_amount !== undefined) patch.amountMinor = v.transaction_amount;
  if (v.transaction_type !== undefined) patch.type = v.transaction_type;
  if (Object.keys(patch).length === 0) {
    return { ok: false, errors: [{ field: '(body)', message: 'must contain at least one of: full_name, transaction_date, transaction_amount, transaction_type' }] };
  }
  return { ok: true, value: patch };
}

/** The resource of API.md. */
export interface TransactionResource {
  transaction_id: string;
  user_id: string;
  full_name: string | null;
  full_name_erased?: true;
  transaction_date: string;
  transaction_amount: string;
  transaction_type: TransactionType;
  version: number;
  created_at: string;
  updated_at: string;
}

export function toResource(tx: StoredTransaction): TransactionResource {
  return {
    transaction_id: tx.transactionId,
    user_id: tx.userId,
    full_name: tx.fullName,
    ...(tx.fullName === null ? { full_name_erased: true as const } : {}),
    transaction_date: tx.date,
    transaction_amount: formatMinor(tx.amountMinor),
    transaction_type: tx.type,
    version: tx.version,
    created_at: tx.createdAt,
    updated_at: tx.updatedAt,
  };
}
