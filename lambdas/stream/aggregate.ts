import { BatchProcessor, EventType, processPartialResponse } from '@aws-lambda-powertools/batch';
import type { Logger } from '@aws-lambda-powertools/logger';
import type { AttributeValue, Context, DynamoDBBatchResponse, DynamoDBRecord, DynamoDBStreamEvent } from 'aws-lambda';
import { deltaFromImages, domainEventsFor, isTransactionItem, isZeroDelta, type TxFacts } from '../core/aggregate-delta.ts';
import { TRANSACTION_SK_PREFIX, userIdFromPk } from '../core/keys.ts';
import { TRANSACTION_TYPES, type TransactionType } from '../core/transaction.ts';
import { AggregateStore, type ApplyInput, type ApplyOutcome } from '../adapters/aggregate-store.ts';
import { cache } from '../adapters/cache.ts';
import { dynamoClient } from '../adapters/clients.ts';
import { config } from '../adapters/config.ts';
import { logger } from '../adapters/logger.ts';
import { createDomainEventPublisher, type DomainEventPublisher } from '../adapters/event-publisher.ts';

/**
 * The stream aggregator. For each transaction record of a batch: delta → apply (exactly once, with the
 * marker) → refresh the derived fields → publish the domain events. Records of one user run one after the
 * other (fewer transaction conflicts on the same `AGG`), users in parallel. A failed record is reported in
 * `batchItemFailures`; the event source mapping retries from it.
 */

export interface AggregateWriter {
  applyRecord(input: ApplyInput): Promise<ApplyOutcome>;
  refreshDerived(input: Omit<ApplyInput, 'eventId'>): Promise<void>;
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

const isoFromSeconds = (seconds: number | undefined): string | undefined =>
  seconds === undefined ? undefined : new Date(seconds * 1000).toISOString();

type RecordOutcome = ApplyOutcome | 'skipped' | 'unchanged';

interface BatchState {
  changedUsers: Set<string>;
  userChains: Map<string, Promise<unknown>>;
  outcomes: Record<RecordOutcome, number>;
}

async function processRecord(record: DynamoDBRecord, deps: AggregatorDeps, state: BatchState): Promise<RecordOutcome> {
  const stream = record.dynamodb;
  const keys = stream?.Keys;
  const oldImage = stream?.OldImage;
  const newImage = stream?.NewImage;
  const sk = keys?.SK?.S;
  if (!isTransactionItem({ SK: sk, entity: (newImage ?? oldImage)?.entity?.S })) return 'skipped';
  const pk = keys?.PK?.S;
  const eventId = record.eventID;
  if (!pk || !eventId) throw new MalformedRecordError('record has no PK or eventID');
  const userId = userIdFromPk(pk);
  const transactionId = (newImage ?? oldImage)?.transaction_id?.S ?? (sk ?? '').slice(TRANSACTION_SK_PREFIX.length);
  const before = record.eventName !== 'INSERT' && oldImage ? factsFromImage(oldImage) : undefined;
  const after = record.eventName !== 'REMOVE' && newImage ? factsFromImage(newImage) : undefined;
  if (!before && !after) throw new MalformedRecordError(`${record.eventName ?? 'record'} without images (stream view must be NEW_AND_OLD_IMAGES)`);

  // When the change happened: the new image's updated_at; for a removal, the stream's time (never earlier
  // than the removed image's own update).
  const removedAt = isoFromSeconds(stream?.ApproximateCreationDateTime) ?? new Date().toISOString();
  const changedAt = after?.updatedAt ?? (before && before.updatedAt > removedAt ? before.updatedAt : removedAt);

  const delta = deltaFromImages(before, after);
  let outcome: RecordOutcome = 'unchanged';
  if (!isZeroDelta(delta)) {
    outcome = await deps.store.applyRecord({ eventId, userId, delta, changedAt });
    // Also on 'duplicate': a crash may have come between the apply and the refresh.
    await deps.store.refreshDerived({ userId, delta, changedAt });
  }
  // Published even on 'duplicate', so a retry after a failed publish publishes again (consumers de-dup on id).
  await deps.publisher.publish(
    domainEventsFor({
      eventId,
      userId,
      transactionId,
      oldImage: before,
      newImage: after,
      occurredAt: changedAt,
      largeAmountThresholdMinor: deps.largeAmountThresholdMinor,
    }),
  );
  state.changedUsers.add(userId);
  return outcome;
}

/** One user's records in order, different users in parallel. */
function serialised<T>(state: BatchState, key: string, work: () => Promise<T>): Promise<T> {
  const previous = state.userChains.get(key) ?? Promise.resolve();
  const next = previous.then(work, work);
  state.userChains.set(key, next.catch(() => undefined));
  return next;
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
      userChains: new Map(),
      outcomes: { applied: 0, duplicate: 0, skipped: 0, unchanged: 0 },
    };
    // A processor per invocation: it holds per-batch state, and the local poller may invoke concurrently.
    const processor = new BatchProcessor(EventType.DynamoDBStreams);
    const recordHandler = async (record: DynamoDBRecord): Promise<void> => {
      const partition = record.dynamodb?.Keys?.PK?.S ?? '';
      try {
        const outcome = await serialised(state, partition, () => processRecord(record, deps, state));
        state.outcomes[outcome] += 1;
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
