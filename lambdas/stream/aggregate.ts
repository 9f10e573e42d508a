import { BatchProcessor, EventType, processPartialResponse } from '@aws-lambda-powertools/batch';
import type { Logger } from '@aws-lambda-powertools/logger';
import type { AttributeValue, Context, DynamoDBBatchResponse, DynamoDBRecord, DynamoDBStreamEvent } from 'aws-lambda';
import {
  deltaFromImages,
  domainEventsFor,
  isTransactionItem,
  isZeroDelta,
  type RecordChange,
  type TxFacts,
} from '../core/aggregate-delta.ts';
import { TRANSACTION_SK_PREFIX, userIdFromPk } from '../core/keys.ts';
import { TRANSACTION_TYPES, type TransactionType } from '../core/transaction.ts';
import { AggregateStore, type ApplyInput, type ApplyOutcome } from '../adapters/aggregate-store.ts';
import { cache } from '../adapters/cache.ts';
import { dynamoClient } from '../adapters/clients.ts';
import { config } from '../adapters/config.ts';
import { logger } from '../adapters/logger.ts';
import { createDomainEventPublisher, type DomainEventPublisher } from '../adapters/event-publisher.ts';

/**
 * The stream aggregator. The transaction records of a batch are grouped by user, in stream order; users run in
 * parallel. A user's group is applied exactly once per record with as few writes as that allows (the store's
 * `applyGroup`: one transaction per chunk of records, one refresh of the derived fields), then each record's
 * domain events are published. Failed records are reported in `batchItemFailures`; the event source mapping
 * retries from the lowest one, and what comes back applied already is a 'duplicate'.
 */

export interface AggregateWriter {
  applyRecord(input: ApplyInput): Promise<ApplyOutcome>;
  refreshDerived(input: Omit<ApplyInput, 'eventId'>): Promise<void>;
  /**
   * Applies consecutive records of one user, exactly once each, and refreshes the derived fields once; an
   * outcome per change, in order. A writer without it gets each record applied and refreshed on its own.
   */
  applyGroup?(userId: string, changes: RecordChange[]): Promise<ApplyOutcome[]>;
}

export interface AggregatorDeps {
  store: AggregateWriter;
  publisher: DomainEventPublisher;
  /** Called after the batch with the users whose records were processed (the analytics cache bump). */
  onUsersChanged?: (userIds: string[]) => Promise<void>;
  largeAmountThresholdMinor: number;
  logger?: Logger;
}

type Image = Record<string, AttributeValue>;

export class MalformedRecordError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MalformedRecordError';
  }
}

/** The facts the aggregates need, read from a stream image (the stored `TransactionItem` shape). */
export function factsFromImage(image: Image): TxFacts {
  const amount = image.amount_minor?.N;
  const type = image.type?.S;
  const date = image.date?.S;
  const updatedAt = image.updated_at?.S;
  if (amount === undefined || !/^-?\d+$/.test(amount)) throw new MalformedRecordError('image has no integer amount_minor');
  if (!type || !(TRANSACTION_TYPES as readonly string[]).includes(type)) throw new MalformedRecordError('image has no valid type');
  if (!date || !updatedAt) throw new MalformedRecordError('image has no date or updated_at');
  return { amountMinor: BigInt(amount), type: type as TransactionType, date, updatedAt };
}

const latest = (a: string | undefined, b: string): string => (a !== undefined && a > b ? a : b);

const isoFromSeconds = (seconds: number | undefined): string | undefined =>
  seconds === undefined ? undefined : new Date(seconds * 1000).toISOString();

type RecordOutcome = ApplyOutcome | 'skipped' | 'unchanged';

/** A transaction record of the batch, read: whose change it is, the facts before and after, the change. */
interface TransactionRecord {
  userId: string;
  transactionId: string;
  before: TxFacts | undefined;
  after: TxFacts | undefined;
  change: RecordChange;
}

type Settled = { ok: true; outcome: RecordOutcome } | { ok: false; error: unknown };

interface BatchState {
  changedUsers: Set<string>;
  outcomes: Record<RecordOutcome, number>;
}

/** Reads a stream record; undefined if it is not a transaction (the aggregator's own items, keys, …). */
function readRecord(record: DynamoDBRecord): TransactionRecord | undefined {
  const stream = record.dynamodb;
  const keys = stream?.Keys;
  const oldImage = stream?.OldImage;
  const newImage = stream?.NewImage;
  const sk = keys?.SK?.S;
  if (!isTransactionItem({ SK: sk, entity: (newImage ?? oldImage)?.entity?.S })) return undefined;
  const pk = keys?.PK?.S;
  const eventId = record.eventID;
  if (!pk || !eventId) throw new MalformedRecordError('record has no PK or eventID');
  const transactionId = (newImage ?? oldImage)?.transaction_id?.S ?? (sk ?? '').slice(TRANSACTION_SK_PREFIX.length);
  const before = record.eventName !== 'INSERT' && oldImage ? factsFromImage(oldImage) : undefined;
  const after = record.eventName !== 'REMOVE' && newImage ? factsFromImage(newImage) : undefined;
  if (!before && !after) throw new MalformedRecordError(`${record.eventName ?? 'record'} without images (stream view must be NEW_AND_OLD_IMAGES)`);

  // When the change happened: the new image's updated_at; for a removal, the stream record's creation time
  // (to the second), never earlier than the removed item's own last update. Both are in the record, so a
  // redelivery gives the same time.
  const removedAt = isoFromSeconds(stream?.ApproximateCreationDateTime) ?? before?.updatedAt ?? new Date().toISOString();
  const changedAt = after?.updatedAt ?? latest(before?.updatedAt, removedAt);
  return { userId: userIdFromPk(pk), transactionId, before, after, change: { eventId, delta: deltaFromImages(before, after), changedAt } };
}

/**
 * Applies one group of a user's records and returns their outcomes, in order. Zero deltas (a name change)
 * write nothing: 'unchanged'. Throws if the apply failed (then every record of the group fails).
 */
async function applyRecords(store: AggregateWriter, userId: string, group: TransactionRecord[]): Promise<RecordOutcome[]> {
  const changed = group.filter((r) => !isZeroDelta(r.change.delta));
  const outcomes = new Map<TransactionRecord, ApplyOutcome>();
  if (store.applyGroup) {
    const applied = changed.length > 0 ? await store.applyGroup(userId, changed.map((r) => r.change)) : [];
    changed.forEach((r, i) => outcomes.set(r, applied[i]!));
  } else {
    for (const r of changed) {
      const { delta, changedAt } = r.change;
      outcomes.set(r, await store.applyRecord({ userId, ...r.change }));
      // Also on 'duplicate': a crash may have come between the apply and the refresh.
      await store.refreshDerived({ userId, delta, changedAt });
    }
  }
  return group.map((r) => outcomes.get(r) ?? 'unchanged');
}

/**
 * One user's transaction records of the batch, in stream order: one group (the store coalesces), or a group
 * per record for a writer without `applyGroup`. A failed apply fails every record of its group (the event
 * source mapping retries from the first; what did commit comes back as 'duplicate'). After the apply, each
 * record's events are published — also on 'duplicate', so a retry after a failed publish publishes again
 * (consumers de-duplicate on the id); a failed publish fails that record only. Never rejects.
 */
async function processUser(
  userId: string,
  records: TransactionRecord[],
  deps: AggregatorDeps,
  state: BatchState,
): Promise<Map<TransactionRecord, Settled>> {
  const settled = new Map<TransactionRecord, Settled>();
  const groups = deps.store.applyGroup ? [records] : records.map((r) => [r]);
  for (const group of groups) {
    let outcomes: RecordOutcome[];
    try {
      outcomes = await applyRecords(deps.store, userId, group);
    } catch (error) {
      for (const r of group) settled.set(r, { ok: false, error });
      continue;
    }
    state.changedUsers.add(userId);
    for (const [i, r] of group.entries()) {
      try {
        await deps.publisher.publish(
          domainEventsFor({
            eventId: r.change.eventId,
            userId,
            transactionId: r.transactionId,
            oldImage: r.before,
            newImage: r.after,
            occurredAt: r.change.changedAt,
            largeAmountThresholdMinor: deps.largeAmountThresholdMinor,
          }),
        );
        settled.set(r, { ok: true, outcome: outcomes[i]! });
      } catch (error) {
        settled.set(r, { ok: false, error });
      }
    }
  }
  return settled;
}

/**
 * Reads the batch and starts every user's processing. The returned function gives a record's outcome, or
 * throws its error (a malformed record fails on its own).
 */
function startBatch(records: DynamoDBRecord[], deps: AggregatorDeps, state: BatchState): (record: DynamoDBRecord) => Promise<RecordOutcome> {
  const read = new Map<DynamoDBRecord, TransactionRecord | Error>();
  const byUser = new Map<string, TransactionRecord[]>();
  for (const record of records) {
    try {
      const tx = readRecord(record);
      if (!tx) continue;
      read.set(record, tx);
      const mine = byUser.get(tx.userId) ?? [];
      mine.push(tx);
      byUser.set(tx.userId, mine);
    } catch (error) {
      read.set(record, error as Error);
    }
  }
  const runs = new Map([...byUser].map(([userId, txs]) => [userId, processUser(userId, txs, deps, state)] as const));
  return async (record) => {
    const tx = read.get(record);
    if (tx === undefined) return 'skipped';
    if (tx instanceof Error) throw tx;
    const settled = (await runs.get(tx.userId)!).get(tx)!;
    if (!settled.ok) throw settled.error;
    return settled.outcome;
  };
}

export type AggregatorHandler = (event: DynamoDBStreamEvent, context?: Context) => Promise<DynamoDBBatchResponse>;

export function createAggregatorHandler(resolveDeps: AggregatorDeps | (() => AggregatorDeps)): AggregatorHandler {
  return async (event, context) => {
    const deps = typeof resolveDeps === 'function' ? resolveDeps() : resolveDeps;
    const logger = deps.logger ?? defaultLogger();
    if (context) {
      logger.resetKeys();
      logger.addContext(context);
    }
    const state: BatchState = {
      changedUsers: new Set(),
      outcomes: { applied: 0, duplicate: 0, skipped: 0, unchanged: 0 },
    };
    const outcomeOf = startBatch(event.Records, deps, state);
    // A processor per invocation: it holds per-batch state, and the local poller may invoke concurrently.
    // For DynamoDB Streams it hands each record object of the event to the handler as it is.
    const processor = new BatchProcessor(EventType.DynamoDBStreams);
    const recordHandler = async (record: DynamoDBRecord): Promise<void> => {
      try {
        state.outcomes[await outcomeOf(record)] += 1;
      } catch (error) {
        logger.error('stream record failed', {
          eventId: record.eventID,
          eventName: record.eventName,
          sequenceNumber: record.dynamodb?.SequenceNumber,
          error: { name: (error as Error).name, message: (error as Error).message },
        });
        throw error;
      }
    };
    const response = await processPartialResponse(event, recordHandler, processor, {
      ...(context ? { context } : {}),
      throwOnFullBatchFailure: false,
    });
    if (state.changedUsers.size > 0 && deps.onUsersChanged) {
      try {
        await deps.onUsersChanged([...state.changedUsers]);
      } catch (error) {
        logger.warn('onUsersChanged failed; analytics caches expire by TTL', { error: (error as Error).message });
      }
    }
    // A batch of only the aggregator's own items (AGG, DAY#, markers) is routine: debug, not info.
    const changed = state.outcomes.applied + state.outcomes.duplicate + response.batchItemFailures.length > 0;
    logger[changed ? 'info' : 'debug']('stream batch processed', {
      records: event.Records.length,
      ...state.outcomes,
      failed: response.batchItemFailures.length,
      users: state.changedUsers.size,
    });
    return response;
  };
}

const defaultLogger = (): Logger => logger;

/** One set of clients per container, created on first use. */
let defaults: AggregatorDeps | undefined;
function defaultDeps(): AggregatorDeps {
  if (!defaults) {
    const cfg = config();
    defaults = {
      store: new AggregateStore(dynamoClient(), cfg.tableName),
      publisher: createDomainEventPublisher(cfg, { warn: (m) => logger.warn(m) }),
      // Re-keys the users' cached analytics (and history pages) so they follow the applied records.
      onUsersChanged: async (userIds) => {
        await Promise.all(userIds.map((userId) => cache().bumpUserVersion(userId)));
      },
      largeAmountThresholdMinor: cfg.largeAmountThresholdMinor,
      logger,
    };
  }
  return defaults;
}

export const handler: AggregatorHandler = createAggregatorHandler(defaultDeps);
