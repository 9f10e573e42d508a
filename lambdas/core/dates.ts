/**
 * RFC 3339 date-times with an explicit offset, normalised to UTC with millisecond precision, and the
 * `YYYY-MM-DD` calendar days used by filters and analytics.
 */
const DATE_TIME = /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(?:([Zz])|([+-])(\d{2}):(\d{2}))$/;
const DAY = /^(\d{4})-(\d{2})-(\d{2})$/;
export const MAX_FUTURE_MS = 24 * 3600 * 1000;

export type DateResult = { ok: true; iso: string; epochMs: number } | { ok: false; message: string };

const isLeap = (y: number): boolean => (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0;
export function daysInMonth(year: number, month: number): number {
  return [31, isLeap(year) ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1] ?? 0;
}

function validCalendarDay(y: number, m: number, d: number): boolean {
  return m >= 1 && m <= 12 && d >= 1 && d <= daysInMonth(y, m);
}

/** Parses an RFC 3339 date-time; `now` bounds how far in the future it may be. */
export function parseTransactionDate(input: unknown, now: number = Date.now()): DateResult {
  const format = 'must be an RFC 3339 date-time with an offset, e.g. 2026-12-01T09:30:00Z';
  if (typeof input !== 'string') return { ok: false, message: format };
  const m = DATE_TIME.exec(input);
  if (!m) return { ok: false, message: format };
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map(Number) as [number, number, number, number, number, number];
  if (!validCalendarDay(year, month, day)) return { ok: false, message: 'is not a valid calendar date' };
  if (hour > 23 || minute > 59 || second > 59) return { ok: false, message: 'is not a valid time of day' };
  // Before any offset could bring it to 1970 (and before Date.UTC would read years 0–99 as 1900–1999).
  if (year < 1969) return { ok: false, message: 'must not be before 1970-01-01T00:00:00Z' };
  let offsetMinutes = 0;
  if (m[9]) {
    const oh = Number(m[10]);
    const om = Number(m[11]);
    if (oh > 23 || om > 59) return { ok: false, message: 'has an invalid UTC offset' };
    offsetMinutes = (m[9] === '-' ? -1 : 1) * (oh * 60 + om);
  }
  const millis = Number((m[7] ?? '').padEnd(3, '0').slice(0, 3));
  const epochMs = Date.UTC(year, month - 1, day, hour, minute, second, millis) - offsetMinutes * 60_000;
  if (epochMs < 0) return { ok: false, message: 'must not be before 1970-01-01T00:00:00Z' };
  if (epochMs > now + MAX_FUTURE_MS) return { ok: false, message: 'must not be more than 24 hours in the future' };
  return { ok: true, iso: new Date(epochMs).toISOString(), epochMs };
}

/** Parses a `YYYY-MM-DD` calendar day (UTC). */
export function parseDay(input: string): { ok: true; day: string } | { ok: false; message: string } {
  const m = DAY.exec(input);
  if (!m) return { ok: false, message: 'must be a date in the form YYYY-MM-DD' };
  const [y, mo, d] = m.slice(1, 4).map(Number) as [number, number, number];
  if (!validCalendarDay(y, mo, d)) return { ok: false, message: 'is not a valid calendar date' };
  return { ok: true, day: input };
}

/** The UTC calendar day of an ISO instant (`2026-12-01T09:30:00.000Z` → `2026-12-01`). */
export const dayOf = (iso: string): string => iso.slice(0, 10);

/** Whole days from `from` to `to`, inclusive of both. */
export function daysInclusive(from: string, to: string): number {
  return Math.round((Date.parse(`${to}T00:00:00Z`) - Date.parse(`${from}T00:00:00Z`)) / 86_400_000) + 1;
}
