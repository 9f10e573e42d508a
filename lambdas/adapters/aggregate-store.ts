import {
  BatchGetItemCommand,
  GetItemCommand,
  QueryCommand,
  TransactWriteItemsCommand,
  UpdateItemCommand,
  type AttributeValue,
  type BatchGetItemCommandOutput,
  type ConsumedCapacity,
  type DynamoDBClient,
  type TransactWriteItem,
} from '@aws-sdk/client-dynamodb';
import { coalesceChanges, transactionChunks, type CoalescedChange, type Delta, type RecordChange } from '../core/aggregate-delta.ts';
import {
  busiestOf,
  decideBusiest,
  allTimeAnalytics,
  periodAnalytics,
  type AggregateFigures,
  type AnalyticsResource,
  type BusiestDay,
  type DayFigures,
  type Period,
} from '../core/analytics.ts';
import { AGGREGATE_SK, DAY_SK_PREFIX, TABLE_KEYS, appliedSk, daySk, userPk } from '../core/keys.ts';

/**
 * The aggregates of one user: `AGG` (count, sum, credit, debit, busiest day, `as_of`, `rev`) and one `DAY#`
 * item per UTC day (count, credit, debit, `as_of`). Written only by the stream aggregator, read by analytics.
 *
 * It talks to the low-level `DynamoDBClient` (not the document client) so that every number is read as its
 * decimal text and turned into a bigint: sums can exceed 2^53, and the shared document client must not be
 * reconfigured with `wrapNumbers` for everyone else.
 */

export type ApplyOutcome = 'applied' | 'duplicate';

export interface ApplyInput extends RecordChange {
  userId: string;
}

/**
 * DynamoDB's limit on the items of one `TransactWriteItems`. Its other limit, 4 MB per transaction, is far
 * away: every item here is a key (a user id is at most 64 characters) and a few numbers, well under 1 KB.
 */
export const MAX_TRANSACTION_ITEMS = 100;
/** DynamoDB's limit on the keys of one `BatchGetItem`. */
const MAX_BATCH_GET_KEYS = 100;

export interface StoredAggregate extends AggregateFigures {
  sum: bigint;
  rev: number;
}

export interface Read<T> {
  value: T;
  /** Read capacity units the request consumed (ReturnConsumedCapacity TOTAL), summed over pages. */
  consumedReadUnits: number;
  /** DynamoDB requests made (1 for all time; pages of the Query for a period). */
  requests: number;
}

export interface AggregateStoreOptions {
  /** Lifetime of an applied marker; longer than the stream's 24 h retention. */
  markerTtlSeconds?: number;
  /** Attempts of the busiest-day refresh when concurrent appliers keep moving `rev`. */
  maxRefreshAttempts?: number;
  /** Attempts of the apply transaction when DynamoDB reports a TransactionConflict. */
  maxConflictAttempts?: number;
  now?: () => number;
}

/** Thrown when the refresh lost the `rev` race every time: the record fails and is retried. */
export class AggregateContentionError extends Error {
  constructor(userId: string) {
    super(`busiest-day refresh for user ${userId} kept losing to concurrent appliers`);
    this.name = 'AggregateContentionError';
  }
}

const n = (v: bigint | number): AttributeValue => ({ N: v.toString() });
const s = (v: string): AttributeValue => ({ S: v });
const big = (a: AttributeValue | undefined): bigint => (a?.N !== undefined ? BigInt(a.N) : 0n);
const int = (a: AttributeValue | undefined): number => (a?.N !== undefined ? Number(a.N) : 0);
const str = (a: AttributeValue | undefined): string | null => a?.S ?? null;
const units = (c: ConsumedCapacity | undefined): number => c?.CapacityUnits ?? c?.ReadCapacityUnits ?? 0;
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

interface NamedError {
  name?: string;
  CancellationReasons?: { Code?: string }[];
}
const errorName = (e: unknown): string | undefined => (e as NamedError | undefined)?.name;

export class AggregateStore {
  private readonly markerTtlSeconds: number;
  private readonly maxRefreshAttempts: number;
  private readonly maxConflictAttempts: number;
  private readonly now: () => number;

  constructor(
    private readonly dynamo: DynamoDBClient,
    private readonly tableName: string,
    options: AggregateStoreOptions = {},
  ) {
    this.markerTtlSeconds = options.markerTtlSeconds ?? 48 * 3600;
    this.maxRefreshAttempts = options.maxRefreshAttempts ?? 8;
    this.maxConflictAttempts = options.maxConflictAttempts ?? 6;
    this.now = options.now ?? Date.now;
  }

  private key(userId: string, sk: string): Record<string, AttributeValue> {
    return { [TABLE_KEYS.partitionKey]: s(userPk(userId)), [TABLE_KEYS.sortKey]: s(sk) };
  }

  /**
   * Applies one record's delta exactly once: the `APPLIED#<eventId>` marker (conditional on absence) and the
   * `ADD`s to `AGG` and to each touched `DAY#` item commit together or not at all. A marker that already
   * exists means the record was applied before: 'duplicate', nothing changes. Throttling and unavailability
   * propagate (the SDK retried them already): the record fails and the stream redelivers it.
   */
  async applyRecord(input: ApplyInput): Promise<ApplyOutcome> {
    return (await this.transact(input.userId, [input])) ? 'applied' : 'duplicate';
  }

  /**
   * Applies consecutive records of one user exactly once each, in as few writes as that allows, then makes
   * the derived fields once. Each chunk of records that fits one transaction (`transactionChunks`) commits
   * its markers and the summed `ADD`s together. If any marker of a chunk already exists (a redelivery), the
   * chunk changed nothing and its records are applied one by one, each 'applied' or 'duplicate'. Then one
   * refresh for the whole group. Any other error propagates: the caller fails the group's records, and their
   * redelivery finds the markers of the chunks that did commit.
   */
  async applyGroup(userId: string, changes: RecordChange[]): Promise<ApplyOutcome[]> {
    if (changes.length === 0) return [];
    const outcomes: ApplyOutcome[] = [];
    for (const chunk of transactionChunks(changes, MAX_TRANSACTION_ITEMS)) {
      if (await this.transact(userId, chunk)) outcomes.push(...chunk.map((): ApplyOutcome => 'applied'));
      else if (chunk.length === 1) outcomes.push('duplicate');
      else for (const change of chunk) outcomes.push(await this.applyRecord({ userId, ...change }));
    }
    await this.refresh(userId, coalesceChanges(changes));
    return outcomes;
  }

  /**
   * One `TransactWriteItems`: a marker per change (conditional on absence), the summed `ADD`s to `AGG`
   * (bumping `rev`) and to every touched `DAY#` item. True if it committed; false if a marker already existed
   * (nothing changed). Conflicts with concurrent transactions are retried with backoff.
   */
  private async transact(userId: string, changes: RecordChange[]): Promise<boolean> {
    const { delta, days } = coalesceChanges(changes);
    const expiresAt = Math.floor(this.now() / 1000) + this.markerTtlSeconds;
    const items: TransactWriteItem[] = [
      ...changes.map((change): TransactWriteItem => ({
        Put: {
          TableName: this.tableName,
          Item: { ...this.key(userId, appliedSk(change.eventId)), [TABLE_KEYS.ttl]: n(expiresAt), changed_at: s(change.changedAt) },
          ConditionExpression: 'attribute_not_exists(#pk)',
          ExpressionAttributeNames: { '#pk': TABLE_KEYS.partitionKey },
        },
      })),
      {
        Update: {
          TableName: this.tableName,
          Key: this.key(userId, AGGREGATE_SK),
          UpdateExpression: 'ADD #count :count, #sum :sum, #credit :credit, #debit :debit, #rev :one',
          ExpressionAttributeNames: { '#count': 'count', '#sum': 'sum', '#credit': 'credit', '#debit': 'debit', '#rev': 'rev' },
          ExpressionAttributeValues: {
            ':count': n(delta.count),
            ':sum': n(delta.credit + delta.debit),
            ':credit': n(delta.credit),
            ':debit': n(delta.debit),
            ':one': n(1),
          },
        },
      },
      ...Object.keys(days).map((day): TransactWriteItem => {
        // A day whose changes net to zero still gets its item, as one-by-one application would leave it.
        const d = delta.days[day] ?? { count: 0, credit: 0n, debit: 0n };
        return {
          Update: {
            TableName: this.tableName,
            Key: this.key(userId, daySk(day)),
            UpdateExpression: 'ADD #count :count, #credit :credit, #debit :debit',
            ExpressionAttributeNames: { '#count': 'count', '#credit': 'credit', '#debit': 'debit' },
            ExpressionAttributeValues: { ':count': n(d.count), ':credit': n(d.credit), ':debit': n(d.debit) },
          },
        };
      }),
    ];
    for (let attempt = 1; ; attempt++) {
      try {
        await this.dynamo.send(new TransactWriteItemsCommand({ TransactItems: items }));
        return true;
      } catch (error) {
        if (errorName(error) !== 'TransactionCanceledException') throw error;
        const reasons = (error as NamedError).CancellationReasons ?? [];
        // The markers come first; only they carry a condition.
        if (reasons.slice(0, changes.length).some((r) => r.Code === 'ConditionalCheckFailed')) return false;
        const conflict = reasons.some((r) => r.Code === 'TransactionConflict' || r.Code === 'ThrottlingError');
        if (!conflict || attempt >= this.maxConflictAttempts) throw error;
        await sleep(Math.random() * 20 * 2 ** attempt);
      }
    }
  }

  /**
   * The derived fields, made right after an apply (and after a 'duplicate': a crash may have come between).
   * Idempotent, so running it twice is harmless:
   * - `as_of` on `AGG` and on each touched day, as a max (conditional SET; a later value already there wins);
   * - the busiest day: read `AGG` (its `rev`), the current counts of the stored busiest day and of the touched
   *   days, decide (core `decideBusiest`; a decremented busiest day means a full recompute from the `DAY#`
   *   items), and write conditionally on `rev` unchanged, bumping it; on a lost race, start over.
   */
  async refreshDerived(input: { userId: string; delta: Delta; changedAt: string }): Promise<void> {
    await this.refresh(input.userId, coalesceChanges([input]));
  }

  /**
   * `refreshDerived` for several changes at once: each touched day's `as_of` is raised to the latest change
   * that touched it, and the busiest day is re-decided over the union of the touched days. One refresh after
   * a group of applies is as good as one after each: untouched days kept their counts.
   */
  private async refresh(userId: string, change: CoalescedChange): Promise<void> {
    const touched = Object.keys(change.days);
    await Promise.all([
      this.raiseAsOf(userId, AGGREGATE_SK, change.changedAt),
      ...touched.map((day) => this.raiseAsOf(userId, daySk(day), change.days[day]!)),
    ]);
    for (let attempt = 1; attempt <= this.maxRefreshAttempts; attempt++) {
      const agg = await this.dynamo.send(
        new GetItemCommand({
          TableName: this.tableName,
          Key: this.key(userId, AGGREGATE_SK),
          ConsistentRead: true,
          ProjectionExpression: '#rev, busiest_day, busiest_count',
          ExpressionAttributeNames: { '#rev': 'rev' },
        }),
      );
      if (!agg.Item) return;
      const seen = agg.Item.rev?.N ?? '0';
      const storedDay = str(agg.Item.busiest_day);
      const stored: BusiestDay | null = storedDay ? { day: storedDay, count: int(agg.Item.busiest_count) } : null;
      const counts = await this.dayCounts(userId, [...new Set([...(stored ? [stored.day] : []), ...touched])]);
      const decision = decideBusiest(stored, counts);
      if (decision.action === 'keep') return;
      let next: BusiestDay | null;
      if (decision.action === 'recompute') {
        next = busiestOf(await this.allDayCounts(userId));
        if (next?.day === stored?.day && next?.count === stored?.count) return;
      } else {
        next = decision.busiest;
      }
      try {
        await this.dynamo.send(
          new UpdateItemCommand({
            TableName: this.tableName,
            Key: this.key(userId, AGGREGATE_SK),
            UpdateExpression: next
              ? 'SET busiest_day = :day, busiest_count = :count, #rev = :next'
              : 'SET #rev = :next REMOVE busiest_day, busiest_count',
            ConditionExpression: '#rev = :seen',
            ExpressionAttributeNames: { '#rev': 'rev' },
            ExpressionAttributeValues: {
              ':seen': { N: seen },
              ':next': n(BigInt(seen) + 1n),
              ...(next ? { ':day': s(next.day), ':count': n(next.count) } : {}),
            },
          }),
        );
        return;
      } catch (error) {
        if (errorName(error) !== 'ConditionalCheckFailedException') throw error;
        await sleep(Math.random() * 10 * attempt);
      }
    }
    throw new AggregateContentionError(userId);
  }

  private async raiseAsOf(userId: string, sk: string, at: string): Promise<void> {
    try {
      await this.dynamo.send(
        new UpdateItemCommand({
          TableName: this.tableName,
          Key: this.key(userId, sk),
          UpdateExpression: 'SET as_of = :t',
          ConditionExpression: 'attribute_exists(#pk) AND (attribute_not_exists(as_of) OR as_of < :t)',
          ExpressionAttributeNames: { '#pk': TABLE_KEYS.partitionKey },
          ExpressionAttributeValues: { ':t': s(at) },
        }),
      );
    } catch (error) {
      if (errorName(error) !== 'ConditionalCheckFailedException') throw error;
    }
  }

  /** Current counts of some days (strongly consistent; 100 keys per request). Absent days count 0. */
  private async dayCounts(userId: string, days: string[]): Promise<Map<string, number>> {
    const counts = new Map<string, number>(days.map((d) => [d, 0]));
    for (let i = 0; i < days.length; i += MAX_BATCH_GET_KEYS) {
      await this.readDayCounts(userId, days.slice(i, i + MAX_BATCH_GET_KEYS), counts);
    }
    return counts;
  }

  private async readDayCounts(userId: string, days: string[], counts: Map<string, number>): Promise<void> {
    let request: Record<string, AttributeValue>[] | undefined = days.map((d) => this.key(userId, daySk(d)));
    for (let round = 0; request && request.length > 0; round++) {
      const out: BatchGetItemCommandOutput = await this.dynamo.send(
        new BatchGetItemCommand({
          RequestItems: {
            [this.tableName]: { Keys: request, ConsistentRead: true, ProjectionExpression: 'SK, #count', ExpressionAttributeNames: { '#count': 'count' } },
          },
        }),
      );
      for (const item of out.Responses?.[this.tableName] ?? []) {
        const sk = str(item.SK);
        if (sk) counts.set(sk.slice(DAY_SK_PREFIX.length), int(item.count));
      }
      request = out.UnprocessedKeys?.[this.tableName]?.Keys;
      if (request && request.length > 0) await sleep(Math.min(1000, 20 * 2 ** round));
    }
  }

  /** Every day's count, for a full busiest-day recompute: the period query over all days. */
  private async allDayCounts(userId: string): Promise<BusiestDay[]> {
    const { value } = await this.readPeriod(userId, '0000-00-00', '9999-99-99');
    return value.map((d) => ({ day: d.day, count: d.count }));
  }

  /**
   * All time: ONE strongly consistent GetItem of `AGG`. Strongly consistent (1 RCU instead of 0.5) because
   * the aggregator bumps the analytics cache version right after writing: an eventually consistent read
   * just after the bump could return the previous figures and cache them under the new version.
   */
  async readAllTime(userId: string): Promise<Read<StoredAggregate | null>> {
    const out = await this.dynamo.send(
      new GetItemCommand({
        TableName: this.tableName,
        Key: this.key(userId, AGGREGATE_SK),
        ConsistentRead: true,
        ProjectionExpression: '#count, #sum, credit, debit, busiest_day, busiest_count, as_of, #rev',
        ExpressionAttributeNames: { '#count': 'count', '#sum': 'sum', '#rev': 'rev' },
        ReturnConsumedCapacity: 'TOTAL',
      }),
    );
    const item = out.Item;
    const consumedReadUnits = units(out.ConsumedCapacity);
    if (!item) return { value: null, consumedReadUnits, requests: 1 };
    const busiest = str(item.busiest_day);
    const busiestCount = int(item.busiest_count);
    return {
      value: {
        count: int(item.count),
        sum: big(item.sum),
        credit: big(item.credit),
        debit: big(item.debit),
        busiestDay: busiest && busiestCount > 0 ? { day: busiest, count: busiestCount } : null,
        asOf: str(item.as_of),
        rev: int(item.rev),
      },
      consumedReadUnits,
      requests: 1,
    };
  }

  /** A period: ONE Query `SK BETWEEN DAY#from AND DAY#to` (strongly consistent; paginated past 1 MB). */
  async readPeriod(userId: string, from: string, to: string): Promise<Read<DayFigures[]>> {
    const days: DayFigures[] = [];
    let consumedReadUnits = 0;
    let requests = 0;
    let start: Record<string, AttributeValue> | undefined;
    do {
      const page = await this.dynamo.send(
        new QueryCommand({
          TableName: this.tableName,
          KeyConditionExpression: '#pk = :pk AND #sk BETWEEN :from AND :to',
          ExpressionAttributeNames: { '#pk': TABLE_KEYS.partitionKey, '#sk': TABLE_KEYS.sortKey, '#count': 'count' },
          ExpressionAttributeValues: { ':pk': s(userPk(userId)), ':from': s(daySk(from)), ':to': s(daySk(to)) },
          ProjectionExpression: '#sk, #count, credit, debit, as_of',
          ConsistentRead: true,
          ReturnConsumedCapacity: 'TOTAL',
          ExclusiveStartKey: start,
        }),
      );
      requests += 1;
      consumedReadUnits += units(page.ConsumedCapacity);
      for (const item of page.Items ?? []) {
        days.push({
          day: (str(item.SK) ?? '').slice(DAY_SK_PREFIX.length),
          count: int(item.count),
          credit: big(item.credit),
          debit: big(item.debit),
          asOf: str(item.as_of),
        });
      }
      start = page.LastEvaluatedKey;
    } while (start);
    return { value: days, consumedReadUnits, requests };
  }

  /** The analytics resource of API.md for all time (`period` null) or a validated period. */
  async analyticsFor(userId: string, period: Period | null): Promise<Read<AnalyticsResource>> {
    if (period === null) {
      const read = await this.readAllTime(userId);
      return { ...read, value: allTimeAnalytics(userId, read.value) };
    }
    const read = await this.readPeriod(userId, period.from, period.to);
    return { ...read, value: periodAnalytics(userId, period, read.value) };
  }
}
