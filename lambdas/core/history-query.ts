import { parseDay } from './dates.ts';
import { TRANSACTION_TYPES, type TransactionType } from './transaction.ts';
import type { FieldError } from './problems.ts';

export interface HistoryQuery {
  limit: number;
  cursor?: string | undefined;
  from?: string | undefined;
  to?: string | undefined;
  type?: TransactionType | undefined;
}

export const DEFAULT_PAGE_SIZE = 20;
export const MAX_PAGE_SIZE = 100;
const KNOWN = new Set(['limit', 'cursor', 'from', 'to', 'type']);

/** Validates the history query string; every bad parameter is reported, unknown ones included. */
export function parseHistoryQuery(params: Record<string, string | undefined>): { ok: true; value: HistoryQuery } | { ok: false; errors: FieldError[] } {
  const errors: FieldError[] = [];
  const query: HistoryQuery = { limit: DEFAULT_PAGE_SIZE };
  for (const name of Object.keys(params)) {
    if (!KNOWN.has(name)) errors.push({ field: name, message: 'is not a recognised query parameter (limit, cursor, from, to, type)' });
  }
  const { limit, cursor, from, to, type } = params;
  if (limit !== undefined) {
    if (!/^\d{1,3}$/.test(limit) || Number(limit) < 1 || Number(limit) > MAX_PAGE_SIZE) {
      errors.push({ field: 'limit', message: `must be an integer from 1 to ${MAX_PAGE_SIZE}` });
    } else query.limit = Number(limit);
  }
  if (cursor !== undefined) {
    if (cursor === '') errors.push({ field: 'cursor', message: 'must not be empty' });
    else query.cursor = cursor;
  }
  for (const [field, value] of [['from', from], ['to', to]] as const) {
    if (value === undefined) continue;
    const day = parseDay(value);
    if (!day.ok) errors.push({ field, message: day.message });
    else query[field] = value;
  }
  if (query.from && query.to && query.from > query.to) errors.push({ field: 'from', message: 'must not be after to' });
  if (type !== undefined) {
    if (!(TRANSACTION_TYPES as readonly string[]).includes(type)) errors.push({ field: 'type', message: `must be one of: ${TRANSACTION_TYPES.join(', ')}` });
    else query.type = type as TransactionType;
  }
  return errors.length > 0 ? { ok: false, errors } : { ok: true, value: query };
}
