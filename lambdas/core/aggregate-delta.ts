import { dayOf } from './dates.ts';
import { formatMinor } from './money.ts';
import { TRANSACTION_SK_PREFIX } from './keys.ts';
import type { TransactionType } from './transaction.ts';

/**
 * Stream record → delta. A transaction's contribution to the aggregates is a function of its amount, type and
 * UTC day only, so the delta of a change is "minus the old contribution, plus the new one". Deltas are plain
 * sums, hence commutative: applying any set of them in any order gives the same aggregates.
 */

/** The facts of a transaction image that the aggregates depend on. */
export interface TxFacts {
  amountMinor: bigint | number;
  type: TransactionType;
  /** UTC ISO instant. */
  date: string;
  /** UTC ISO instant of the change that produced this image. */
  updatedAt: string;
}

/** Changes to one UTC day. `count` may be negative (a removal). Money in minor units. */
export interface DayDelta {
  count: number;
  credit: bigint;
  debit: bigint;
}

export interface Delta {
  /** Only days whose count or sums change; keyed by `YYYY-MM-DD`. */
  days: Record<string, DayDelta>;
  count: number;
  credit: bigint;
  debit: bigint;
}

const big = (v: bigint | number): bigint => (typeof v === 'bigint' ? v : BigInt(v));

function addContribution(delta: Delta, facts: TxFacts, sign: 1 | -1): void {
  const amount = big(facts.amountMinor) * BigInt(sign);
  const day = dayOf(facts.date);
  const entry = (delta.days[day] ??= { count: 0, credit: 0n, debit: 0n });
  entry.count += sign;
  delta.count += sign;
  if (facts.type === 'credit') {
    entry.credit += amount;
    delta.credit += amount;
  } else {
    entry.debit += amount;
    delta.debit += amount;
  }
}

export const emptyDelta = (): Delta => ({ days: {}, count: 0, credit: 0n, debit: 0n });

/**
 * INSERT (new only) adds the new contribution, REMOVE (old only) subtracts the old one, MODIFY subtracts the
 * old and adds the new. Days whose figures net to zero are dropped, so a change of neither amount, type nor
 * date (a name change) is the zero delta.
 */
export function deltaFromImages(oldImage?: TxFacts, newImage?: TxFacts): Delta {
  const delta = emptyDelta();
  if (oldImage) addContribution(delta, oldImage, -1);
  if (newImage) addContribution(delta, newImage, 1);
  for (const [day, d] of Object.entries(delta.days)) {
    if (d.count === 0 && d.credit === 0n && d.debit === 0n) delete delta.days[day];
  }
  return delta;
}

export const isZeroDelta = (delta: Delta): boolean =>
  Object.keys(delta.days).length === 0 && delta.count === 0 && delta.credit === 0n && delta.debit === 0n;

/** Sum of deltas (used to coalesce or to fold a history in tests). */
export function addDeltas(a: Delta, b: Delta): Delta {
  const out: Delta = { days: {}, count: a.count + b.count, credit: a.credit + b.credit, debit: a.debit + b.debit };
  for (const src of [a, b]) {
    for (const [day, d] of Object.entries(src.days)) {
      const e = (out.days[day] ??= { count: 0, credit: 0n, debit: 0n });
      e.count += d.count;
      e.credit += d.credit;
      e.debit += d.debit;
    }
  }
  for (const [day, d] of Object.entries(out.days)) {
    if (d.count === 0 && d.credit === 0n && d.debit === 0n) delete out.days[day];
  }
  return out;
}

/** One stream record's effect on its user's aggregates. */
export interface RecordChange {
  /** The stream record's eventID: the applied marker's key. */
  eventId: string;
  delta: Delta;
  /** UTC ISO instant of the change; folded into `as_of` as a max. */
  changedAt: string;
}

/** Several changes of one user taken together: what one transaction adds and one refresh looks at. */
export interface CoalescedChange {
  /** The sum of the deltas. */
  delta: Delta;
  /**
   * Every day any of the changes touched, with the latest change time among those that touched it. It keeps
   * the days whose figures net to zero (a create and a delete on one day), so coalescing leaves the same
   * `DAY#` items and `as_of` values as applying the changes one by one.
   */
  days: Record<string, string>;
  /** The latest change time of all. */
  changedAt: string;
}

export function coalesceChanges(changes: readonly Pick<RecordChange, 'delta' | 'changedAt'>[]): CoalescedChange {
  if (changes.length === 0) throw new Error('coalesceChanges needs at least one change');
  let delta = emptyDelta();
  const days: Record<string, string> = {};
  let changedAt = changes[0]!.changedAt;
  for (const change of changes) {
    delta = addDeltas(delta, change.delta);
    for (const day of Object.keys(change.delta.days)) {
      const seen = days[day];
      if (seen === undefined || change.changedAt > seen) days[day] = change.changedAt;
    }
    if (change.changedAt > changedAt) changedAt = change.changedAt;
  }
  return { delta, days, changedAt };
}

/**
 * Splits one user's changes, in order, into runs that each fit one `TransactWriteItems` of at most `maxItems`
 * items: a marker per change, one `AGG` update, one update per day the run touches. Two changes with the same
 * eventId never share a run (a transaction cannot write one item twice).
 */
export function transactionChunks<T extends RecordChange>(changes: readonly T[], maxItems: number): T[][] {
  const chunks: T[][] = [];
  let chunk: T[] = [];
  let days = new Set<string>();
  for (const change of changes) {
    const changeDays = Object.keys(change.delta.days);
    const itemsWith = chunk.length + 1 + 1 + new Set([...days, ...changeDays]).size;
    if (chunk.length > 0 && (itemsWith > maxItems || chunk.some((c) => c.eventId === change.eventId))) {
      chunks.push(chunk);
      chunk = [];
      days = new Set();
    }
    chunk.push(change);
    for (const day of changeDays) days.add(day);
  }
  if (chunk.length > 0) chunks.push(chunk);
  return chunks;
}

/** Days whose count goes down: they may dethrone the busiest day. */
export const decrementedDays = (delta: Delta): string[] =>
  Object.entries(delta.days).filter(([, d]) => d.count < 0).map(([day]) => day);

/**
 * Whether an item (its stream Keys or image, unmarshalled to strings) is a transaction. The aggregator's
 * own items (`AGG`, `DAY#…`, `APPLIED#…`), data keys (`KEY`) and idempotency records (`IDEM#…`) are not, so
 * its writes never feed back into the aggregates.
 */
export function isTransactionItem(item: { SK?: unknown; entity?: unknown } | undefined): boolean {
  if (!item) return false;
  if (typeof item.SK === 'string') return item.SK.startsWith(TRANSACTION_SK_PREFIX);
  return item.entity === 'transaction';
}

// ---- Domain events -------------------------------------------------------------------------------------

export type DomainEventType =
  | 'transaction.created'
  | 'transaction.updated'
  | 'transaction.deleted'
  | 'transaction.large_amount';

/** What consumers learn about one side of a change: no name, no ciphertext. */
export interface TxEventFacts {
  /** Decimal string with 2 fraction digits. */
  amount: string;
  type: TransactionType;
  date: string;
}

export interface DomainEvent {
  /** Unique per event; consumers de-duplicate on it. The stream eventID (`:large` suffix for the alert). */
  id: string;
  type: DomainEventType;
  user_id: string;
  transaction_id: string;
  old: TxEventFacts | null;
  new: TxEventFacts | null;
  /** When the change happened (the new image's `updated_at`, or the removal time). */
  occurred_at: string;
  /** For `transaction.large_amount`: the threshold crossed. */
  threshold?: string;
}

const eventFacts = (f: TxFacts | undefined): TxEventFacts | null =>
  f ? { amount: formatMinor(big(f.amountMinor)), type: f.type, date: f.date } : null;

/**
 * The events of one change. A large-amount alert accompanies a change whose new amount is at or above the
 * threshold while the old one (if any) was below it: the amount *crossed* the threshold, so a later name
 * change of a large transaction does not alert again.
 */
export function domainEventsFor(input: {
  eventId: string;
  userId: string;
  transactionId: string;
  oldImage?: TxFacts;
  newImage?: TxFacts;
  occurredAt: string;
  largeAmountThresholdMinor: number;
}): DomainEvent[] {
  const { oldImage, newImage } = input;
  const type: DomainEventType = !oldImage ? 'transaction.created' : !newImage ? 'transaction.deleted' : 'transaction.updated';
  const base = {
    user_id: input.userId,
    transaction_id: input.transactionId,
    old: eventFacts(oldImage),
    new: eventFacts(newImage),
    occurred_at: input.occurredAt,
  };
  const events: DomainEvent[] = [{ id: input.eventId, type, ...base }];
  const threshold = BigInt(input.largeAmountThresholdMinor);
  if (newImage && big(newImage.amountMinor) >= threshold && !(oldImage && big(oldImage.amountMinor) >= threshold)) {
    events.push({ id: `${input.eventId}:large`, type: 'transaction.large_amount', ...base, threshold: formatMinor(threshold) });
  }
  return events;
}
