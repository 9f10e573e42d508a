import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  MAX_PERIOD_DAYS,
  allTimeAnalytics,
  beatsAsBusiest,
  busiestOf,
  decideBusiest,
  figuresFromDays,
  parsePeriodQuery,
  periodAnalytics,
  type DayFigures,
} from '../../lambdas/core/analytics.ts';
import { compareAggregates, recompute } from '../../lambdas/core/reconcile.ts';

const day = (d: string, count: number, credit: bigint, debit: bigint, asOf: string | null = null): DayFigures => ({ day: d, count, credit, debit, asOf });

describe('allTimeAnalytics', () => {
  it('renders the API.md resource with 2-digit strings and a negative net', () => {
    expect(
      allTimeAnalytics('user-42', {
        count: 3,
        credit: 1000n,
        debit: 2200n,
        busiestDay: { day: '2026-11-14', count: 2 },
        asOf: '2026-12-03T18:00:01.250Z',
      }),
    ).toEqual({
      user_id: 'user-42',
      period: null,
      transaction_count: 3,
      average_transaction_value: '10.67',
      busiest_day: { date: '2026-11-14', transaction_count: 2 },
      totals: { credit: '10.00', debit: '22.00', net: '-12.00' },
      as_of: '2026-12-03T18:00:01.250Z',
    });
  });

  it('an unknown user (no aggregate) gets count 0, null average, null busiest day', () => {
    expect(allTimeAnalytics('nobody', null)).toEqual({
      user_id: 'nobody',
      period: null,
      transaction_count: 0,
      average_transaction_value: null,
      busiest_day: null,
      totals: { credit: '0.00', debit: '0.00', net: '0.00' },
      as_of: null,
    });
  });

  it('an aggregate emptied by deletes has a null average and no busiest day, but keeps its as_of', () => {
    const r = allTimeAnalytics('u', { count: 0, credit: 0n, debit: 0n, busiestDay: { day: '2026-01-01', count: 0 }, asOf: 't' });
    expect(r.average_transaction_value).toBeNull();
    expect(r.busiest_day).toBeNull();
    expect(r.as_of).toBe('t');
  });

  it.each([
    // sum, count, average: half-to-even on exact halves of a cent
    [1n, 2, '0.00'], // 0.5 cent → 0
    [3n, 2, '0.02'], // 1.5 → 2
    [5n, 2, '0.02'], // 2.5 → 2
    [7n, 2, '0.04'], // 3.5 → 4
    [10n, 3, '0.03'], // 3.33 → 3
    [20n, 3, '0.07'], // 6.67 → 7
    [12550n, 1, '125.50'],
  ])('average of sum %s over %s is %s (half-to-even)', (sum, count, expected) => {
    expect(allTimeAnalytics('u', { count, credit: sum, debit: 0n, busiestDay: null, asOf: null }).average_transaction_value).toBe(expected);
  });

  it('credits and debits alike count toward the average; sums beyond 2^53 stay exact', () => {
    const huge = 2n ** 62n;
    const r = allTimeAnalytics('u', { count: 2, credit: huge, debit: huge + 2n, busiestDay: null, asOf: null });
    expect(r.totals.net).toBe('-0.02');
    expect(r.average_transaction_value).toBe(`${(huge + 1n) / 100n}.${((huge + 1n) % 100n).toString().padStart(2, '0')}`);
  });
});

describe('busiest day', () => {
  it('the most transactions wins; a tie goes to the most recent day; count 0 never qualifies', () => {
    expect(busiestOf([{ day: '2026-01-02', count: 2 }, { day: '2026-01-05', count: 3 }, { day: '2026-01-09', count: 1 }])).toEqual({ day: '2026-01-05', count: 3 });
    expect(busiestOf([{ day: '2026-01-09', count: 2 }, { day: '2025-12-31', count: 2 }])).toEqual({ day: '2026-01-09', count: 2 });
    expect(busiestOf([{ day: '2026-01-09', count: 0 }])).toBeNull();
    expect(busiestOf([])).toBeNull();
    expect(beatsAsBusiest({ day: '2026-01-01', count: 0 }, null)).toBe(false);
  });

  it('is order-independent', () => {
    fc.assert(
      fc.property(fc.array(fc.record({ day: fc.constantFrom('2026-01-01', '2026-01-02', '2026-01-03'), count: fc.nat(3) })), (days) => {
        const a = busiestOf(days);
        expect(busiestOf([...days].reverse())).toEqual(a);
      }),
    );
  });
});

describe('decideBusiest', () => {
  const cur = (o: Record<string, number>) => new Map(Object.entries(o));
  it('keeps the stored day when nothing touched beats it', () => {
    expect(decideBusiest({ day: '2026-01-05', count: 3 }, cur({ '2026-01-05': 3, '2026-01-01': 3 }))).toEqual({ action: 'keep' });
  });
  it('a touched day that ties and is more recent takes over', () => {
    expect(decideBusiest({ day: '2026-01-05', count: 3 }, cur({ '2026-01-05': 3, '2026-01-07': 3 }))).toEqual({
      action: 'set',
      busiest: { day: '2026-01-07', count: 3 },
    });
  });
  it('an increment of the stored day updates its count', () => {
    expect(decideBusiest({ day: '2026-01-05', count: 3 }, cur({ '2026-01-05': 4 }))).toEqual({ action: 'set', busiest: { day: '2026-01-05', count: 4 } });
  });
  it('a decrement of the stored day (delete or date move) forces a recompute', () => {
    expect(decideBusiest({ day: '2026-01-05', count: 3 }, cur({ '2026-01-05': 2, '2026-01-09': 5 }))).toEqual({ action: 'recompute' });
  });
  it('with nothing stored, the best touched day is set, and zero days are not', () => {
    expect(decideBusiest(null, cur({ '2026-01-05': 1 }))).toEqual({ action: 'set', busiest: { day: '2026-01-05', count: 1 } });
    expect(decideBusiest(null, cur({ '2026-01-05': 0 }))).toEqual({ action: 'keep' });
  });
});

describe('periodAnalytics', () => {
  const days = [
    day('2025-12-31', 2, 1000n, 0n, '2026-01-02T00:00:00.000Z'),
    day('2026-01-01', 1, 0n, 500n, '2026-01-03T00:00:00.000Z'),
    day('2026-01-31', 2, 300n, 0n, '2026-01-01T00:00:00.000Z'),
    day('2026-02-01', 0, 0n, 0n, '2026-02-05T00:00:00.000Z'), // emptied by a delete
  ];

  it('sums the days of the period; busiest ties go to the most recent; as_of is the latest day change', () => {
    expect(periodAnalytics('u', { from: '2025-12-31', to: '2026-02-01' }, days)).toEqual({
      user_id: 'u',
      period: { from: '2025-12-31', to: '2026-02-01' },
      transaction_count: 5,
      average_transaction_value: '3.60',
      busiest_day: { date: '2026-01-31', transaction_count: 2 },
      totals: { credit: '13.00', debit: '5.00', net: '8.00' },
      as_of: '2026-02-05T00:00:00.000Z',
    });
  });

  it('ignores days outside the period (defensive: the query already bounds them)', () => {
    const r = periodAnalytics('u', { from: '2026-01-01', to: '2026-01-01' }, days);
    expect(r.transaction_count).toBe(1);
    expect(r.busiest_day).toEqual({ date: '2026-01-01', transaction_count: 1 });
    expect(r.totals.net).toBe('-5.00');
  });

  it('an empty period is count 0 with null average and busiest day', () => {
    const r = periodAnalytics('u', { from: '2030-01-01', to: '2030-01-31' }, []);
    expect(r).toMatchObject({ transaction_count: 0, average_transaction_value: null, busiest_day: null, as_of: null });
  });

  it('a period of only emptied days has no busiest day', () => {
    expect(periodAnalytics('u', { from: '2026-02-01', to: '2026-02-01' }, days).busiest_day).toBeNull();
  });

  it('equals the all-time figures when the period covers every day', () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ day: fc.constantFrom('2026-01-01', '2026-01-02', '2026-03-01'), count: fc.integer({ min: 1, max: 5 }), credit: fc.bigInt({ min: 0n, max: 10n ** 15n }), debit: fc.bigInt({ min: 0n, max: 10n ** 15n }) }), { maxLength: 3 }),
        (list) => {
          const unique = [...new Map(list.map((d) => [d.day, d])).values()];
          const all = allTimeAnalytics('u', figuresFromDays(unique));
          expect({ ...periodAnalytics('u', { from: '1970-01-01', to: '2026-12-31' }, unique), period: null }).toEqual(all);
        },
      ),
    );
  });
});

describe('parsePeriodQuery', () => {
  it('neither from nor to is all time', () => {
    expect(parsePeriodQuery({})).toEqual({ ok: true, period: null });
  });
  it('accepts an inclusive period, a single day, and exactly 3,660 days', () => {
    expect(parsePeriodQuery({ from: '2026-11-01', to: '2026-11-30' })).toEqual({ ok: true, period: { from: '2026-11-01', to: '2026-11-30' } });
    expect(parsePeriodQuery({ from: '2026-11-01', to: '2026-11-01' }).ok).toBe(true);
    // 2016-01-01 … 2026-01-07 is 3,660 days inclusive
    expect(parsePeriodQuery({ from: '2016-01-01', to: '2026-01-07' }).ok).toBe(true);
  });
  it('3,661 days is an error on to', () => {
    expect(parsePeriodQuery({ from: '2016-01-01', to: '2026-01-08' })).toEqual({
      ok: false,
      errors: [{ field: 'to', message: `the period must be at most ${MAX_PERIOD_DAYS} days` }],
    });
  });
  it('from after to is an error on from', () => {
    expect(parsePeriodQuery({ from: '2026-12-02', to: '2026-12-01' })).toEqual({ ok: false, errors: [{ field: 'from', message: 'must not be after to' }] });
  });
  it('malformed and impossible dates name the field', () => {
    expect(parsePeriodQuery({ from: '2026-1-01', to: '2026-02-30' })).toEqual({
      ok: false,
      errors: [
        { field: 'from', message: 'must be a date in the form YYYY-MM-DD' },
        { field: 'to', message: 'is not a valid calendar date' },
      ],
    });
    expect(parsePeriodQuery({ from: '2026-01-01T00:00:00Z', to: '2026-01-02' }).ok).toBe(false);
  });
  it('only one of from/to is an error on the missing one', () => {
    expect(parsePeriodQuery({ from: '2026-01-01' })).toEqual({ ok: false, errors: [{ field: 'to', message: 'is required when from is given' }] });
    expect(parsePeriodQuery({ to: '2026-01-01' })).toEqual({ ok: false, errors: [{ field: 'from', message: 'is required when to is given' }] });
  });
});

describe('reconcile: recompute and compareAggregates', () => {
  const txs = [
    { amountMinor: 100, type: 'credit' as const, date: '2026-01-01T10:00:00.000Z', updatedAt: '2026-01-05T00:00:00.000Z' },
    { amountMinor: 50, type: 'debit' as const, date: '2026-01-01T11:00:00.000Z', updatedAt: '2026-01-04T00:00:00.000Z' },
    { amountMinor: 7, type: 'debit' as const, date: '2026-01-02T11:00:00.000Z', updatedAt: '2026-01-03T00:00:00.000Z' },
  ];
  const truth = recompute(txs);

  it('recomputes counts, sums, days, the busiest day and the latest update', () => {
    expect(truth.aggregate).toEqual({ count: 3, credit: 100n, debit: 57n, busiestDay: { day: '2026-01-01', count: 2 }, asOf: '2026-01-05T00:00:00.000Z' });
    expect(truth.days.get('2026-01-02')).toEqual({ day: '2026-01-02', count: 1, credit: 0n, debit: 7n });
  });

  it('matching aggregates (plus an emptied day left behind) report no difference', () => {
    expect(
      compareAggregates(truth, {
        aggregate: { ...truth.aggregate, sum: 157n, asOf: '2026-01-06T00:00:00.000Z' },
        days: [...truth.days.values(), day('2025-01-01', 0, 0n, 0n)],
      }),
    ).toEqual([]);
  });

  it('reports each differing field, a missing day and a stale as_of', () => {
    const diffs = compareAggregates(truth, {
      aggregate: { count: 3, credit: 100n, debit: 58n, sum: 158n, busiestDay: { day: '2026-01-02', count: 1 }, asOf: '2026-01-01T00:00:00.000Z' },
      days: [day('2026-01-01', 2, 100n, 50n)],
    });
    expect(diffs.map((d) => d.path)).toEqual([
      'aggregate.debit',
      'aggregate.sum',
      'aggregate.busiest_day',
      'aggregate.busiest_count',
      'aggregate.as_of',
      'day.2026-01-02',
    ]);
  });

  it('no transactions and no aggregate is no difference', () => {
    expect(compareAggregates(recompute([]), { aggregate: null, days: [] })).toEqual([]);
  });
});
