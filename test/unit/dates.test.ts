import { describe, expect, it } from 'vitest';
import { daysInclusive, parseDay, parseTransactionDate } from '../../lambdas/core/dates.ts';

const NOW = Date.UTC(2026, 11, 3, 18, 0, 0);
const iso = (input: string) => {
  const r = parseTransactionDate(input, NOW);
  if (!r.ok) throw new Error(r.message);
  return r.iso;
};
const rejects = (input: unknown) => {
  const r = parseTransactionDate(input, NOW);
  return r.ok ? undefined : r.message;
};

describe('parseTransactionDate', () => {
  it.each([
    ['2026-12-01T09:30:00Z', '2026-12-01T09:30:00.000Z'],
    ['2026-12-01T09:30:00+01:00', '2026-12-01T08:30:00.000Z'],
    ['2026-12-01T00:30:00-05:30', '2026-12-01T06:00:00.000Z'],
    ['2026-12-01T23:30:00-01:00', '2026-12-02T00:30:00.000Z'],
    ['2026-12-01t09:30:00z', '2026-12-01T09:30:00.000Z'],
    ['2026-12-01T09:30:00.5Z', '2026-12-01T09:30:00.500Z'],
    ['2026-12-01T09:30:00.123456789Z', '2026-12-01T09:30:00.123Z'],
    ['2024-02-29T12:00:00Z', '2024-02-29T12:00:00.000Z'],
    ['2000-02-29T12:00:00Z', '2000-02-29T12:00:00.000Z'],
    ['1970-01-01T00:00:00Z', '1970-01-01T00:00:00.000Z'],
    ['1970-01-01T01:00:00+01:00', '1970-01-01T00:00:00.000Z'],
    ['1969-12-31T23:30:00-01:00', '1970-01-01T00:30:00.000Z'],
    ['2026-12-04T17:59:59Z', '2026-12-04T17:59:59.000Z'],
  ])('%s → %s', (input, expected) => {
    expect(iso(input)).toBe(expected);
  });

  it.each([
    ['2026-12-01T09:30:00', 'must be an RFC 3339 date-time with an offset, e.g. 2026-12-01T09:30:00Z'],
    ['2026-12-01', 'must be an RFC 3339 date-time with an offset, e.g. 2026-12-01T09:30:00Z'],
    ['yesterday', 'must be an RFC 3339 date-time with an offset, e.g. 2026-12-01T09:30:00Z'],
    [1733045400000, 'must be an RFC 3339 date-time with an offset, e.g. 2026-12-01T09:30:00Z'],
    ['2025-02-29T00:00:00Z', 'is not a valid calendar date'],
    ['1900-02-29T00:00:00Z', 'is not a valid calendar date'],
    ['2026-04-31T00:00:00Z', 'is not a valid calendar date'],
    ['2026-13-01T00:00:00Z', 'is not a valid calendar date'],
    ['2026-12-01T24:00:00Z', 'is not a valid time of day'],
    ['2026-12-01T09:60:00Z', 'is not a valid time of day'],
    ['2026-12-01T09:30:00+24:00', 'has an invalid UTC offset'],
    ['1969-12-31T23:59:59Z', 'must not be before 1970-01-01T00:00:00Z'],
    ['1970-01-01T00:30:00+01:00', 'must not be before 1970-01-01T00:00:00Z'],
    ['0070-01-01T00:00:00Z', 'must not be before 1970-01-01T00:00:00Z'],
    ['0099-06-01T00:00:00+00:00', 'must not be before 1970-01-01T00:00:00Z'],
    ['0000-01-01T00:00:00Z', 'must not be before 1970-01-01T00:00:00Z'],
    ['2026-12-04T18:00:00.001Z', 'must not be more than 24 hours in the future'],
    ['9999-12-31T23:59:59Z', 'must not be more than 24 hours in the future'],
  ])('%j is rejected: %s', (input, expected) => {
    expect(rejects(input)).toBe(expected);
  });
});

describe('parseDay and daysInclusive', () => {
  it('accepts real days only', () => {
    expect(parseDay('2024-02-29')).toEqual({ ok: true, day: '2024-02-29' });
    expect(parseDay('2025-02-29').ok).toBe(false);
    expect(parseDay('2026-1-01').ok).toBe(false);
  });
  it('counts both ends, across a leap year', () => {
    expect(daysInclusive('2026-11-01', '2026-11-30')).toBe(30);
    expect(daysInclusive('2024-01-01', '2024-12-31')).toBe(366);
    expect(daysInclusive('2026-12-01', '2026-12-01')).toBe(1);
  });
});
