import { daysInclusive, parseDay } from './dates.ts';
import { divideHalfEven, formatMinor } from './money.ts';
import type { FieldError } from './problems.ts';

/**
 * The analytics arithmetic of API.md ("Analytics"): from the all-time aggregate counters, or from the day
 * items of a period, to the analytics resource. Integers throughout (bigint for money: sums can exceed 2^53).
 */

export const MAX_PERIOD_DAYS = 3660;

export interface Period {
  from: string;
  to: string;
}

/** One UTC day's figures (a `DAY#` item). */
export interface DayFigures {
  day: string;
  count: number;
  credit: bigint;
  debit: bigint;
  /** Latest change included in this day's figures. */
  asOf?: string | null;
}

export interface BusiestDay {
  day: string;
  count: number;
}

/** The all-time counters (the `AGG` item). */
export interface AggregateFigures {
  count: number;
  credit: bigint;
  debit: bigint;
  busiestDay: BusiestDay | null;
  asOf: string | null;
}

export interface AnalyticsResource {
  user_id: string;
  period: Period | null;
  transaction_count: number;
  average_transaction_value: string | null;
  busiest_day: { date: string; transaction_count: number } | null;
  totals: { credit: string; debit: string; net: string };
  as_of: string | null;
}

/** Does `a` beat `b` as the busiest day? More transactions wins; on a tie, the more recent day. */
export function beatsAsBusiest(a: BusiestDay, b: BusiestDay | null): boolean {
  if (a.count <= 0) return false;
  if (!b || b.count <= 0) return true;
  return a.count > b.count || (a.count === b.count && a.day > b.day);
}

/** The busiest of the given days; days with count 0 (or less) never qualify. */
export function busiestOf(days: Iterable<BusiestDay>): BusiestDay | null {
  let best: BusiestDay | null = null;
  for (const d of days) if (beatsAsBusiest(d, best)) best = { day: d.day, count: d.count };
  return best;
}

const maxIso = (a: string | null | undefined, b: string | null | undefined): string | null =>
  a && b ? (a > b ? a : b) : (a ?? b ?? null);

/** Folds day items into all-time-style figures (count, sums, busiest day, latest as_of). */
export function figuresFromDays(days: Iterable<DayFigures>): AggregateFigures {
  let count = 0;
  let credit = 0n;
  let debit = 0n;
  let asOf: string | null = null;
  const list: DayFigures[] = [];
  for (const d of days) {
    count += d.count;
    credit += d.credit;
    debit += d.debit;
    asOf = maxIso(asOf, d.asOf);
    list.push(d);
  }
  return { count, credit, debit, busiestDay: busiestOf(list), asOf };
}

export function toAnalyticsResource(userId: string, period: Period | null, figures: AggregateFigures | null): AnalyticsResource {
  const count = figures?.count ?? 0;
  const credit = figures?.credit ?? 0n;
  const debit = figures?.debit ?? 0n;
  const busiest = count > 0 ? (figures?.busiestDay ?? null) : null;
  return {
    user_id: userId,
    period,
    transaction_count: count,
    average_transaction_value: count > 0 ? formatMinor(divideHalfEven(credit + debit, BigInt(count))) : null,
    busiest_day: busiest && busiest.count > 0 ? { date: busiest.day, transaction_count: busiest.count } : null,
    totals: { credit: formatMinor(credit), debit: formatMinor(debit), net: formatMinor(credit - debit) },
    as_of: figures?.asOf ?? null,
  };
}

/** All time, from the `AGG` item (`null` for a user with no aggregate yet: count 0, not 404). */
export const allTimeAnalytics = (userId: string, aggregate: AggregateFigures | null): AnalyticsResource =>
  toAnalyticsResource(userId, null, aggregate);

/** A period, from the `DAY#from … DAY#to` items. Days outside the period are ignored defensively. */
export const periodAnalytics = (userId: string, period: Period, days: Iterable<DayFigures>): AnalyticsResource =>
  toAnalyticsResource(userId, period, figuresFromDays([...days].filter((d) => d.day >= period.from && d.day <= period.to)));

export type PeriodQueryResult = { ok: true; period: Period | null } | { ok: false; errors: FieldError[] };

/**
 * The `from`/`to` query of the analytics endpoint. Neither: all time. Both: an inclusive UTC period of at
 * most 3,660 days with `from` ≤ `to`. Only one of them is an error too (the period would be ambiguous).
 * The handler turns `errors` into a 400 with `problems.invalidQuery`.
 */
export function parsePeriodQuery(query: { from?: string | undefined; to?: string | undefined }): PeriodQueryResult {
  const { from, to } = query;
  if (from === undefined && to === undefined) return { ok: true, period: null };
  const errors: FieldError[] = [];
  const check = (field: 'from' | 'to', value: string | undefined, other: 'from' | 'to'): string | undefined => {
    if (value === undefined) {
      errors.push({ field, message: `is required when ${other} is given` });
      return undefined;
    }
    const parsed = parseDay(value);
    if (!parsed.ok) {
      errors.push({ field, message: parsed.message });
      return undefined;
    }
    return parsed.day;
  };
  const f = check('from', from, 'to');
  const t = check('to', to, 'from');
  if (f !== undefined && t !== undefined) {
    if (f > t) errors.push({ field: 'from', message: 'must not be after to' });
    else if (daysInclusive(f, t) > MAX_PERIOD_DAYS) errors.push({ field: 'to', message: `the period must be at most ${MAX_PERIOD_DAYS} days` });
  }
  if (errors.length > 0 || f === undefined || t === undefined) return { ok: false, errors };
  return { ok: true, period: { from: f, to: t } };
}

export type BusiestDecision = { action: 'keep' } | { action: 'set'; busiest: BusiestDay | null } | { action: 'recompute' };

/**
 * Keeping the stored busiest day right after a change, without reading every day when that is not needed.
 * `current` holds the current counts of the stored busiest day and of the days the change touched. If the
 * stored busiest day lost transactions it may have been dethroned by any day: recompute from all days.
 * Otherwise only a touched day can have overtaken it. Correct under any interleaving of changes as long as
 * every change is followed by one refresh and each refresh runs on a consistent snapshot (the `rev` check).
 */
export function decideBusiest(stored: BusiestDay | null, current: ReadonlyMap<string, number>): BusiestDecision {
  const candidates: BusiestDay[] = [];
  if (stored) {
    const now = current.get(stored.day) ?? 0;
    if (now < stored.count) return { action: 'recompute' };
    candidates.push({ day: stored.day, count: now });
  }
  for (const [day, count] of current) if (!stored || day !== stored.day) candidates.push({ day, count });
  const best = busiestOf(candidates);
  if (best === null && stored === null) return { action: 'keep' };
  if (best && stored && best.day === stored.day && best.count === stored.count) return { action: 'keep' };
  return { action: 'set', busiest: best };
}
