import { dayOf } from './dates.ts';
import { busiestOf, type AggregateFigures, type DayFigures } from './analytics.ts';
import type { TxFacts } from './aggregate-delta.ts';

/**
 * The ground truth: aggregates recomputed from a user's current transactions, and the comparison with what
 * the aggregator maintains. Used by the reconciliation command, the tests and the bench loader.
 */

export interface Recomputed {
  aggregate: AggregateFigures;
  /** Only days with at least one transaction. */
  days: Map<string, DayFigures>;
  /** Latest `updated_at` among the transactions: the aggregate's `as_of` must be at least this. */
  latestUpdate: string | null;
}

export function recompute(transactions: Iterable<TxFacts>): Recomputed {
  const days = new Map<string, DayFigures>();
  let count = 0;
  let credit = 0n;
  let debit = 0n;
  let latestUpdate: string | null = null;
  for (const tx of transactions) {
    const amount = typeof tx.amountMinor === 'bigint' ? tx.amountMinor : BigInt(tx.amountMinor);
    const day = dayOf(tx.date);
    let d = days.get(day);
    if (!d) {
      d = { day, count: 0, credit: 0n, debit: 0n };
      days.set(day, d);
    }
    d.count += 1;
    count += 1;
    if (tx.type === 'credit') {
      d.credit += amount;
      credit += amount;
    } else {
      d.debit += amount;
      debit += amount;
    }
    if (latestUpdate === null || tx.updatedAt > latestUpdate) latestUpdate = tx.updatedAt;
  }
  return { aggregate: { count, credit, debit, busiestDay: busiestOf(days.values()), asOf: latestUpdate }, days, latestUpdate };
}

export interface Difference {
  /** `aggregate.<field>` or `day.<yyyy-mm-dd>.<field>`. */
  path: string;
  expected: string | number | null;
  actual: string | number | null;
}

const str = (v: bigint | number | null | undefined): string | number | null =>
  v === null || v === undefined ? null : typeof v === 'bigint' ? v.toString() : v;

/**
 * Compares stored aggregates with the recompute. A missing `AGG` equals an all-zero one; a stored day with
 * count 0 and zero sums equals an absent day (the aggregator may leave emptied days behind). `as_of` must be
 * at or after the latest `updated_at` (deletions make it later, which is fine).
 */
export function compareAggregates(
  expected: Recomputed,
  actual: { aggregate: (AggregateFigures & { sum?: bigint }) | null; days: Iterable<DayFigures> },
): Difference[] {
  const diffs: Difference[] = [];
  const e = expected.aggregate;
  const a = actual.aggregate ?? { count: 0, credit: 0n, debit: 0n, busiestDay: null, asOf: null };
  const check = (path: string, x: bigint | number | null | undefined, y: bigint | number | null | undefined): void => {
    if (str(x) !== str(y)) diffs.push({ path, expected: str(x), actual: str(y) });
  };
  check('aggregate.count', e.count, a.count);
  check('aggregate.credit', e.credit, a.credit);
  check('aggregate.debit', e.debit, a.debit);
  if (actual.aggregate?.sum !== undefined) check('aggregate.sum', e.credit + e.debit, actual.aggregate.sum);
  const eb = e.busiestDay;
  const ab = a.count > 0 || a.busiestDay ? a.busiestDay : null;
  if ((eb?.day ?? null) !== (ab?.day ?? null)) diffs.push({ path: 'aggregate.busiest_day', expected: eb?.day ?? null, actual: ab?.day ?? null });
  check('aggregate.busiest_count', eb?.count ?? null, ab?.count ?? null);
  if (expected.latestUpdate !== null && (a.asOf === null || a.asOf < expected.latestUpdate)) {
    diffs.push({ path: 'aggregate.as_of', expected: `>= ${expected.latestUpdate}`, actual: a.asOf });
  }
  const seen = new Set<string>();
  for (const d of actual.days) {
    seen.add(d.day);
    const x = expected.days.get(d.day) ?? { day: d.day, count: 0, credit: 0n, debit: 0n };
    check(`day.${d.day}.count`, x.count, d.count);
    check(`day.${d.day}.credit`, x.credit, d.credit);
    check(`day.${d.day}.debit`, x.debit, d.debit);
  }
  for (const [day, x] of expected.days) {
    if (seen.has(day)) continue;
    diffs.push({ path: `day.${day}`, expected: `${x.count} transactions`, actual: null });
  }
  return diffs;
}
