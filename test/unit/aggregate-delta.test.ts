import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { mockClient } from 'aws-sdk-client-mock';
import { EventBridgeClient, PutEventsCommand } from '@aws-sdk/client-eventbridge';
import { EventBridgePublisher, FileEventPublisher, createDomainEventPublisher } from '../../lambdas/adapters/event-publisher.ts';
import {
  addDeltas,
  coalesceChanges,
  decrementedDays,
  deltaFromImages,
  domainEventsFor,
  emptyDelta,
  isTransactionItem,
  isZeroDelta,
  transactionChunks,
  type Delta,
  type RecordChange,
  type TxFacts,
} from '../../lambdas/core/aggregate-delta.ts';
import { allTimeAnalytics, busiestOf, decideBusiest, figuresFromDays, type BusiestDay } from '../../lambdas/core/analytics.ts';
import { recompute } from '../../lambdas/core/reconcile.ts';

const tx = (amountMinor: number | bigint, type: 'credit' | 'debit', date: string, updatedAt = '2026-01-01T00:00:00.000Z'): TxFacts => ({
  amountMinor,
  type,
  date,
  updatedAt,
});

describe('deltaFromImages', () => {
  it('an INSERT adds the new transaction to its day and to the totals', () => {
    expect(deltaFromImages(undefined, tx(12550, 'credit', '2026-12-01T09:30:00.000Z'))).toEqual({
      days: { '2026-12-01': { count: 1, credit: 12550n, debit: 0n } },
      count: 1,
      credit: 12550n,
      debit: 0n,
    });
  });

  it('a REMOVE subtracts the old transaction', () => {
    expect(deltaFromImages(tx(300, 'debit', '2026-12-01T23:59:59.999Z'), undefined)).toEqual({
      days: { '2026-12-01': { count: -1, credit: 0n, debit: -300n } },
      count: -1,
      credit: 0n,
      debit: -300n,
    });
  });

  it('a MODIFY of the amount changes the sums but not the count', () => {
    const d = deltaFromImages(tx(100, 'credit', '2026-12-01T10:00:00.000Z'), tx(250, 'credit', '2026-12-01T10:00:00.000Z'));
    expect(d).toEqual({ days: { '2026-12-01': { count: 0, credit: 150n, debit: 0n } }, count: 0, credit: 150n, debit: 0n });
    expect(decrementedDays(d)).toEqual([]);
  });

  it('a MODIFY of the type moves the amount from credit to debit', () => {
    const d = deltaFromImages(tx(100, 'credit', '2026-12-01T10:00:00.000Z'), tx(100, 'debit', '2026-12-01T10:00:00.000Z'));
    expect(d).toEqual({ days: { '2026-12-01': { count: 0, credit: -100n, debit: 100n } }, count: 0, credit: -100n, debit: 100n });
  });

  it('a MODIFY of the date moves the transaction between days (across a year boundary)', () => {
    const d = deltaFromImages(tx(100, 'debit', '2025-12-31T23:59:59.999Z'), tx(100, 'debit', '2026-01-01T00:00:00.000Z'));
    expect(d).toEqual({
      days: { '2025-12-31': { count: -1, credit: 0n, debit: -100n }, '2026-01-01': { count: 1, credit: 0n, debit: 100n } },
      count: 0,
      credit: 0n,
      debit: 0n,
    });
    expect(decrementedDays(d)).toEqual(['2025-12-31']);
  });

  it('a MODIFY of the time within the same UTC day is the zero delta', () => {
    expect(isZeroDelta(deltaFromImages(tx(100, 'debit', '2026-01-01T00:00:00.000Z'), tx(100, 'debit', '2026-01-01T23:00:00.000Z')))).toBe(true);
  });

  it('a MODIFY that changes neither amount, type nor date (a name change) is the zero delta', () => {
    const d = deltaFromImages(tx(100, 'credit', '2026-12-01T10:00:00.000Z', 'a'), tx(100, 'credit', '2026-12-01T10:00:00.000Z', 'b'));
    expect(d).toEqual(emptyDelta());
    expect(isZeroDelta(d)).toBe(true);
  });

  it('amounts beyond 2^53 stay exact (bigint)', () => {
    const big = 2n ** 60n + 1n;
    expect(deltaFromImages(undefined, tx(big, 'credit', '2026-01-01T00:00:00.000Z')).credit).toBe(big);
  });

  it('neither image is the zero delta', () => {
    expect(isZeroDelta(deltaFromImages())).toBe(true);
  });
});

describe('coalesceChanges', () => {
  const create = (day: string, amount: number) => deltaFromImages(undefined, tx(amount, 'credit', `${day}T10:00:00.000Z`));
  const remove = (day: string, amount: number) => deltaFromImages(tx(amount, 'credit', `${day}T10:00:00.000Z`), undefined);

  it('sums the deltas and keeps, per touched day, the latest change time', () => {
    const c = coalesceChanges([
      { delta: create('2026-01-01', 100), changedAt: '2026-06-01T00:00:03.000Z' },
      { delta: create('2026-01-02', 50), changedAt: '2026-06-01T00:00:01.000Z' },
      { delta: create('2026-01-01', 7), changedAt: '2026-06-01T00:00:02.000Z' },
    ]);
    expect(c.delta).toEqual(addDeltas(addDeltas(create('2026-01-01', 100), create('2026-01-02', 50)), create('2026-01-01', 7)));
    expect(c.delta.count).toBe(3);
    expect(c.days).toEqual({ '2026-01-01': '2026-06-01T00:00:03.000Z', '2026-01-02': '2026-06-01T00:00:01.000Z' });
    expect(c.changedAt).toBe('2026-06-01T00:00:03.000Z');
  });

  it('a day whose changes net to zero stays touched (its item and as_of as one by one), with no figures', () => {
    const c = coalesceChanges([
      { delta: create('2026-01-01', 100), changedAt: '2026-06-01T00:00:01.000Z' },
      { delta: remove('2026-01-01', 100), changedAt: '2026-06-01T00:00:02.000Z' },
    ]);
    expect(isZeroDelta(c.delta)).toBe(true);
    expect(c.days).toEqual({ '2026-01-01': '2026-06-01T00:00:02.000Z' });
  });

  it('needs at least one change', () => {
    expect(() => coalesceChanges([])).toThrow();
  });
});

describe('transactionChunks', () => {
  const change = (i: number, day: string): RecordChange => ({
    eventId: `ev-${i}`,
    delta: deltaFromImages(undefined, tx(100, 'debit', `${day}T10:00:00.000Z`)),
    changedAt: '2026-06-01T00:00:00.000Z',
  });
  const itemsOf = (chunk: RecordChange[]) => chunk.length + 1 + Object.keys(coalesceChanges(chunk).days).length;

  it('records on one day: 98 markers + AGG + DAY per transaction', () => {
    const chunks = transactionChunks(Array.from({ length: 150 }, (_, i) => change(i, '2026-01-01')), 100);
    expect(chunks.map((c) => c.length)).toEqual([98, 52]);
    expect(chunks.map(itemsOf)).toEqual([100, 54]);
  });

  it('records on distinct days: a marker and a day each, plus AGG', () => {
    const chunks = transactionChunks(Array.from({ length: 100 }, (_, i) => change(i, new Date(Date.UTC(2026, 0, 1 + i)).toISOString().slice(0, 10))), 100);
    expect(chunks.map((c) => c.length)).toEqual([49, 49, 2]);
  });

  it('a repeated eventId starts a new transaction (one transaction cannot write an item twice)', () => {
    expect(transactionChunks([change(1, '2026-01-01'), change(2, '2026-01-01'), change(1, '2026-01-01')], 100).map((c) => c.map((x) => x.eventId))).toEqual([
      ['ev-1', 'ev-2'],
      ['ev-1'],
    ]);
  });

  it('property: in order, nothing lost, every transaction within the limit', () => {
    const changeArb = fc.record({ old: fc.option(dateArb, { nil: undefined }), new: fc.option(dateArb, { nil: undefined }), id: fc.nat(300) });
    fc.assert(
      fc.property(fc.array(changeArb, { maxLength: 400 }), fc.integer({ min: 4, max: 100 }), (specs, max) => {
        const changes: RecordChange[] = specs.map((c) => ({
          eventId: `ev-${c.id}`,
          delta: deltaFromImages(c.old ? tx(1, 'credit', c.old) : undefined, c.new ? tx(1, 'credit', c.new) : undefined),
          changedAt: '2026-06-01T00:00:00.000Z',
        }));
        const chunks = transactionChunks(changes, max);
        expect(chunks.flat()).toEqual(changes);
        for (const chunk of chunks) {
          expect(chunk.length).toBeGreaterThan(0);
          expect(itemsOf(chunk)).toBeLessThanOrEqual(max);
          expect(new Set(chunk.map((c) => c.eventId)).size).toBe(chunk.length);
        }
      }),
      { numRuns: 300 },
    );
  });
});

describe('isTransactionItem', () => {
  it.each([
    [{ SK: 'TX#01JDZ8Q3V8K6E2M9W4T7A5B3CX' }, true],
    [{ SK: 'AGG' }, false],
    [{ SK: 'DAY#2026-01-01' }, false],
    [{ SK: 'APPLIED#abc' }, false],
    [{ SK: 'KEY' }, false],
    [{ SK: 'IDEM#digest' }, false],
    [{ SK: 'AGG', entity: 'transaction' }, false],
    [{ entity: 'transaction' }, true],
    [{ entity: 'day' }, false],
    [{}, false],
    [undefined, false],
  ])('%j → %s', (item, expected) => {
    expect(isTransactionItem(item)).toBe(expected);
  });
});

describe('domainEventsFor', () => {
  const base = { eventId: 'ev-1', userId: 'u1', transactionId: 't1', occurredAt: '2026-01-01T00:00:00.000Z', largeAmountThresholdMinor: 1_000_000 };

  it('a create is transaction.created with the stream eventID as id, amounts as decimal strings, no name', () => {
    const events = domainEventsFor({ ...base, newImage: tx(12550, 'credit', '2026-12-01T09:30:00.000Z') });
    expect(events).toEqual([
      {
        id: 'ev-1',
        type: 'transaction.created',
        user_id: 'u1',
        transaction_id: 't1',
        old: null,
        new: { amount: '125.50', type: 'credit', date: '2026-12-01T09:30:00.000Z' },
        occurred_at: '2026-01-01T00:00:00.000Z',
      },
    ]);
    expect(JSON.stringify(events)).not.toMatch(/full_name|_ct/);
  });

  it('an update carries old and new; a delete carries only old', () => {
    const old = tx(100, 'credit', '2026-01-01T00:00:00.000Z');
    expect(domainEventsFor({ ...base, oldImage: old, newImage: tx(200, 'debit', '2026-01-02T00:00:00.000Z') })[0]).toMatchObject({
      type: 'transaction.updated',
      old: { amount: '1.00', type: 'credit' },
      new: { amount: '2.00', type: 'debit' },
    });
    expect(domainEventsFor({ ...base, oldImage: old })).toEqual([expect.objectContaining({ type: 'transaction.deleted', new: null })]);
  });

  it('a large amount alerts once when it crosses the threshold, with a derived id', () => {
    const large = tx(1_000_000, 'debit', '2026-01-01T00:00:00.000Z');
    const events = domainEventsFor({ ...base, newImage: large });
    expect(events.map((e) => [e.id, e.type])).toEqual([
      ['ev-1', 'transaction.created'],
      ['ev-1:large', 'transaction.large_amount'],
    ]);
    expect(events[1]?.threshold).toBe('10000.00');
    expect(domainEventsFor({ ...base, newImage: tx(999_999, 'debit', '2026-01-01T00:00:00.000Z') })).toHaveLength(1);
    // already large before: a name change or a further increase does not alert again
    expect(domainEventsFor({ ...base, oldImage: large, newImage: tx(2_000_000, 'debit', '2026-01-01T00:00:00.000Z') })).toHaveLength(1);
    // raised from below: alerts
    expect(domainEventsFor({ ...base, oldImage: tx(5, 'debit', '2026-01-01T00:00:00.000Z'), newImage: large })).toHaveLength(2);
    // a delete never alerts
    expect(domainEventsFor({ ...base, oldImage: large })).toHaveLength(1);
  });
});

// ---- property: any history folded through the deltas equals the recompute -----------------------------

type Op =
  | { kind: 'create'; id: number; facts: Omit<TxFacts, 'updatedAt'> }
  | { kind: 'update'; id: number; amount?: number; type?: 'credit' | 'debit'; date?: string }
  | { kind: 'delete'; id: number };

// Few days and few ids so collisions (ties, same-day moves, updates of deleted ids) are frequent.
const dayArb = fc.constantFrom('2025-12-31', '2026-01-01', '2026-01-31', '2026-02-01', '2026-02-28', '2024-02-29');
const dateArb = fc.tuple(dayArb, fc.integer({ min: 0, max: 86_399_999 })).map(
  ([day, ms]) => new Date(Date.parse(`${day}T00:00:00.000Z`) + ms).toISOString(),
);
const amountArb = fc.oneof(fc.integer({ min: 1, max: 1000 }), fc.integer({ min: 1, max: 100_000_000_000 }));
const typeArb = fc.constantFrom<'credit' | 'debit'>('credit', 'debit');
const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ kind: fc.constant('create' as const), id: fc.nat(7), facts: fc.record({ amountMinor: amountArb, type: typeArb, date: dateArb }) }),
  fc.record(
    { kind: fc.constant('update' as const), id: fc.nat(7), amount: amountArb, type: typeArb, date: dateArb },
    { requiredKeys: ['kind', 'id'] },
  ),
  fc.record({ kind: fc.constant('delete' as const), id: fc.nat(7) }),
);

interface Change {
  oldImage?: TxFacts;
  newImage?: TxFacts;
}

/** Runs the operations against an in-memory table and returns the stream's changes and the final set. */
function play(ops: Op[]): { changes: Change[]; final: TxFacts[] } {
  const table = new Map<number, TxFacts>();
  const changes: Change[] = [];
  ops.forEach((op, i) => {
    const updatedAt = new Date(Date.UTC(2026, 5, 1) + i * 1000).toISOString();
    const current = table.get(op.id);
    if (op.kind === 'create') {
      if (current) return; // ids are unique: a create of an existing id is a conditional-check failure
      const next = { ...op.facts, updatedAt };
      table.set(op.id, next);
      changes.push({ newImage: next });
    } else if (op.kind === 'update') {
      if (!current) return;
      const next: TxFacts = {
        amountMinor: op.amount ?? current.amountMinor,
        type: op.type ?? current.type,
        date: op.date ?? current.date,
        updatedAt,
      };
      table.set(op.id, next);
      changes.push({ oldImage: current, newImage: next });
    } else {
      if (!current) return;
      table.delete(op.id);
      changes.push({ oldImage: current });
    }
  });
  return { changes, final: [...table.values()] };
}

function fold(deltas: Delta[]): Delta {
  return deltas.reduce(addDeltas, emptyDelta());
}

const historyArb = fc.array(opArb, { maxLength: 60 }).chain((ops) => {
  const { changes, final } = play(ops);
  return fc.record({ changes: fc.constant(changes), final: fc.constant(final), order: fc.shuffledSubarray(changes.map((_, i) => i), { minLength: changes.length }) });
});

describe('property: deltas folded in any order equal the recompute of the final set', () => {
  it('count, credit, debit, per-day figures, busiest day (ties → most recent) and the average', () => {
    fc.assert(
      fc.property(historyArb, ({ changes, final, order }) => {
        const deltas = order.map((i) => deltaFromImages(changes[i]!.oldImage, changes[i]!.newImage));
        const folded = fold(deltas);
        const truth = recompute(final);
        expect(folded.count).toBe(truth.aggregate.count);
        expect(folded.credit).toBe(truth.aggregate.credit);
        expect(folded.debit).toBe(truth.aggregate.debit);
        const foldedDays = Object.entries(folded.days).filter(([, d]) => d.count !== 0 || d.credit !== 0n || d.debit !== 0n);
        expect(Object.fromEntries(foldedDays)).toEqual(
          Object.fromEntries([...truth.days].map(([day, d]) => [day, { count: d.count, credit: d.credit, debit: d.debit }])),
        );
        const fromDays = figuresFromDays(Object.entries(folded.days).map(([day, d]) => ({ day, ...d })));
        expect(fromDays.busiestDay).toEqual(truth.aggregate.busiestDay);
        const viaDeltas = allTimeAnalytics('u', fromDays);
        const viaRecompute = allTimeAnalytics('u', truth.aggregate);
        expect({ ...viaDeltas, as_of: null }).toEqual({ ...viaRecompute, as_of: null });
      }),
      { numRuns: 500 },
    );
  });

  it('applying the same delta twice would double-count: the marker, not the arithmetic, makes redelivery safe', () => {
    const d = deltaFromImages(undefined, tx(100, 'credit', '2026-01-01T00:00:00.000Z'));
    expect(fold([d, d]).count).toBe(2);
  });

  it('the incremental busiest-day refresh ends right under any interleaving of applies and refreshes', () => {
    // Model of the store: apply(i) adds delta i to the day counts (and bumps rev); refresh(i) runs after its
    // apply at any later point, atomically (the rev check makes it so), and follows decideBusiest.
    const scheduleArb = historyArb.chain(({ changes, final, order }) =>
      fc.record({
        changes: fc.constant(changes),
        final: fc.constant(final),
        order: fc.constant(order),
        // for each apply, how many later steps its refresh is delayed by
        delays: fc.array(fc.nat(10), { minLength: order.length, maxLength: order.length }),
      }),
    );
    fc.assert(
      fc.property(scheduleArb, ({ changes, final, order, delays }) => {
        const counts = new Map<string, number>();
        let stored: BusiestDay | null = null;
        const queue: { at: number; delta: Delta }[] = [];
        const refresh = (delta: Delta): void => {
          const current = new Map<string, number>();
          if (stored) current.set(stored.day, counts.get(stored.day) ?? 0);
          for (const day of Object.keys(delta.days)) current.set(day, counts.get(day) ?? 0);
          const decision = decideBusiest(stored, current);
          if (decision.action === 'recompute') stored = busiestOf([...counts].map(([day, count]) => ({ day, count })));
          else if (decision.action === 'set') stored = decision.busiest;
        };
        order.forEach((i, step) => {
          const delta = deltaFromImages(changes[i]!.oldImage, changes[i]!.newImage);
          for (const [day, d] of Object.entries(delta.days)) counts.set(day, (counts.get(day) ?? 0) + d.count);
          queue.push({ at: step + (delays[step] ?? 0), delta });
          queue.sort((a, b) => a.at - b.at);
          while (queue.length > 0 && queue[0]!.at <= step) refresh(queue.shift()!.delta);
        });
        for (const q of queue) refresh(q.delta);
        expect(stored).toEqual(recompute(final).aggregate.busiestDay);
      }),
      { numRuns: 500 },
    );
  });
});

describe('property: one refresh per coalesced group', () => {
  it('groups of applies, each followed (at any later point) by one refresh over the union of its days, end at the true busiest day', () => {
    // As the interleaving property above, with the applies cut into consecutive groups (one aggregator batch
    // per user): a group's deltas are applied, then one refresh over coalesceChanges(group).days.
    const scheduleArb = historyArb.chain(({ changes, final, order }) =>
      fc.record({
        changes: fc.constant(changes),
        final: fc.constant(final),
        order: fc.constant(order),
        cuts: fc.array(fc.boolean(), { minLength: order.length, maxLength: order.length }),
        delays: fc.array(fc.nat(4), { minLength: order.length, maxLength: order.length }),
      }),
    );
    fc.assert(
      fc.property(scheduleArb, ({ changes, final, order, cuts, delays }) => {
        const counts = new Map<string, number>();
        let stored: BusiestDay | null = null;
        const refresh = (days: string[]): void => {
          const current = new Map<string, number>();
          if (stored) current.set(stored.day, counts.get(stored.day) ?? 0);
          for (const day of days) current.set(day, counts.get(day) ?? 0);
          const decision = decideBusiest(stored, current);
          if (decision.action === 'recompute') stored = busiestOf([...counts].map(([day, count]) => ({ day, count })));
          else if (decision.action === 'set') stored = decision.busiest;
        };
        const groups: Delta[][] = [];
        order.forEach((i, step) => {
          if (step === 0 || cuts[step]) groups.push([]);
          groups.at(-1)!.push(deltaFromImages(changes[i]!.oldImage, changes[i]!.newImage));
        });
        const queue: { at: number; days: string[] }[] = [];
        groups.forEach((group, step) => {
          for (const delta of group) for (const [day, d] of Object.entries(delta.days)) counts.set(day, (counts.get(day) ?? 0) + d.count);
          queue.push({ at: step + (delays[step] ?? 0), days: Object.keys(coalesceChanges(group.map((delta) => ({ delta, changedAt: '' }))).days) });
          queue.sort((a, b) => a.at - b.at);
          while (queue.length > 0 && queue[0]!.at <= step) refresh(queue.shift()!.days);
        });
        for (const q of queue) refresh(q.days);
        expect(stored).toEqual(recompute(final).aggregate.busiestDay);
      }),
      { numRuns: 500 },
    );
  });
});

// ---- the publishers (no network: aws-sdk-client-mock) --------------------------------------------------

describe('domain event publishers', () => {
  const event = domainEventsFor({
    eventId: 'ev-9',
    userId: 'u1',
    transactionId: 't1',
    newImage: tx(1_500_000, 'debit', '2026-01-01T00:00:00.000Z'),
    occurredAt: '2026-01-01T00:00:01.000Z',
    largeAmountThresholdMinor: 1_000_000,
  });

  it('EventBridge: source tally.transactions, detail-type per event, the event as detail', async () => {
    const mock = mockClient(EventBridgeClient);
    mock.on(PutEventsCommand).resolves({ FailedEntryCount: 0, Entries: [{ EventId: 'a' }, { EventId: 'b' }] });
    await new EventBridgePublisher(new EventBridgeClient({ region: 'us-east-1' }), 'tally-bus').publish(event);
    const entries = mock.commandCalls(PutEventsCommand)[0]!.args[0].input.Entries!;
    expect(entries.map((e) => [e.Source, e.DetailType, e.EventBusName])).toEqual([
      ['tally.transactions', 'transaction.created', 'tally-bus'],
      ['tally.transactions', 'transaction.large_amount', 'tally-bus'],
    ]);
    expect(JSON.parse(entries[0]!.Detail!)).toMatchObject({ id: 'ev-9', user_id: 'u1', transaction_id: 't1', new: { amount: '15000.00' } });
    mock.restore();
  });

  it('EventBridge: FailedEntryCount > 0 throws (the record fails and is retried)', async () => {
    const mock = mockClient(EventBridgeClient);
    mock.on(PutEventsCommand).resolves({ FailedEntryCount: 1, Entries: [{ EventId: 'a' }, { ErrorCode: 'InternalFailure' }] });
    await expect(new EventBridgePublisher(new EventBridgeClient({ region: 'us-east-1' }), 'bus').publish(event)).rejects.toThrow(/InternalFailure/);
    mock.restore();
  });

  it('EventBridge: more than 10 events go in chunks of 10', async () => {
    const mock = mockClient(EventBridgeClient);
    mock.on(PutEventsCommand).resolves({ FailedEntryCount: 0 });
    const many = Array.from({ length: 23 }, (_, i) => ({ ...event[0]!, id: `ev-${i}` }));
    await new EventBridgePublisher(new EventBridgeClient({ region: 'us-east-1' }), 'bus').publish(many);
    expect(mock.commandCalls(PutEventsCommand).map((c) => c.args[0].input.Entries!.length)).toEqual([10, 10, 3]);
    mock.restore();
  });

  it('the factory picks EventBridge, then the file, then a no-op that says so once', async () => {
    expect(createDomainEventPublisher({ eventBusName: 'bus', eventsFile: 'x', region: 'us-east-1' })).toBeInstanceOf(EventBridgePublisher);
    expect(createDomainEventPublisher({ eventBusName: '', eventsFile: '.local/events.jsonl', region: 'us-east-1' })).toBeInstanceOf(FileEventPublisher);
    const warnings: string[] = [];
    const noop = createDomainEventPublisher({ eventBusName: '', eventsFile: '', region: 'us-east-1' }, { warn: (m) => warnings.push(m) });
    await noop.publish(event);
    await noop.publish(event);
    expect(warnings).toHaveLength(1);
  });
});
