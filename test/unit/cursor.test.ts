import { describe, expect, it } from 'vitest';
import { decodeCursor, encodeCursor } from '../../lambdas/core/cursor.ts';
import { parseHistoryQuery } from '../../lambdas/core/history-query.ts';

const scope = { userId: 'u1', from: '2026-11-01', to: undefined, type: 'debit' };
const position = { transactionId: '01JDZ8Q3V8K6E2M9W4T7A5B3CX', dateSk: '2026-11-02T00:00:00.000Z#01JDZ8Q3V8K6E2M9W4T7A5B3CX' };

describe('history cursors', () => {
  it('round-trip for the scope they were issued for', () => {
    expect(decodeCursor('s', scope, encodeCursor('s', scope, position))).toEqual(position);
  });
  it('are refused for another user, other filters, another secret, or when altered', () => {
    const cursor = encodeCursor('s', scope, position);
    expect(decodeCursor('s', { ...scope, userId: 'u2' }, cursor)).toBeUndefined();
    expect(decodeCursor('s', { ...scope, type: 'credit' }, cursor)).toBeUndefined();
    expect(decodeCursor('s', { ...scope, to: '2026-11-30' }, cursor)).toBeUndefined();
    expect(decodeCursor('other', scope, cursor)).toBeUndefined();
    const [payload, tag] = cursor.split('.') as [string, string];
    const flipped = `${payload.slice(0, -2)}${payload.at(-2) === 'A' ? 'B' : 'A'}${payload.at(-1)}`;
    expect(decodeCursor('s', scope, `${flipped}.${tag}`)).toBeUndefined();
    expect(decodeCursor('s', scope, `${payload}.`)).toBeUndefined();
    expect(decodeCursor('s', scope, 'garbage')).toBeUndefined();
    expect(decodeCursor('s', scope, `${cursor}.x`)).toBeUndefined();
  });
});

describe('parseHistoryQuery', () => {
  it('defaults to 20 per page', () => {
    expect(parseHistoryQuery({})).toEqual({ ok: true, value: { limit: 20 } });
  });
  it('reports every bad parameter at once', () => {
    const r = parseHistoryQuery({ limit: '0', from: '2026-02-30', type: 'x', sort: 'asc' });
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.errors.map((e) => e.field).sort()).toEqual(['from', 'limit', 'sort', 'type']);
  });
  it('accepts the full set', () => {
    expect(parseHistoryQuery({ limit: '100', cursor: 'c', from: '2026-01-01', to: '2026-12-31', type: 'credit' })).toEqual({
      ok: true,
      value: { limit: 100, cursor: 'c', from: '2026-01-01', to: '2026-12-31', type: 'credit' },
    });
  });
});
