import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { BatchWriteItemCommand, DeleteItemCommand, DeleteTableCommand, DynamoDBClient, GetItemCommand, PutItemCommand } from '@aws-sdk/client-dynamodb';
import { marshall } from '@aws-sdk/util-dynamodb';
import type { DynamoDBRecord, DynamoDBStreamEvent } from 'aws-lambda';
import { ensureTable } from '../../local/table.ts';
import { startStreamPoller, type StreamPoller } from '../../local/stream-poller.ts';
import { AggregateStore, type ApplyInput, type ApplyOutcome } from '../../lambdas/adapters/aggregate-store.ts';
import { FileEventPublisher, type DomainEventPublisher } from '../../lambdas/adapters/event-publisher.ts';
import { buildTransactionItem, type TransactionItem } from '../../lambdas/adapters/transaction-item.ts';
import type { DomainEvent } from '../../lambdas/core/aggregate-delta.ts';
import { periodAnalytics } from '../../lambdas/core/analytics.ts';
import { appliedSk, userPk } from '../../lambdas/core/keys.ts';
import { recompute } from '../../lambdas/core/reconcile.ts';
import { createAggregatorHandler, type AggregateWriter } from '../../lambdas/stream/aggregate.ts';
import { reconcileUser, readTransactions } from '../../scripts/reconcile.ts';

/**
 * The aggregator end to end on DynamoDB Local: transaction items written to the table, the real stream,
 * the local poller (the event source mapping), the handler, the store. Faults are injected by wrapping the
 * store and the publisher.
 */

const dynamo = new DynamoDBClient({});
let tableName: string;
let dir: string;
let eventsFile: string;
let store: AggregateStore;
let poller: StreamPoller;
const deliveries: DynamoDBStreamEvent[] = [];
const changedUsers: string[][] = [];

/** Fault injection: fail `applyRecord` once for a chosen (user, nth distinct event) and record outcomes. */
class FaultyStore implements AggregateWriter {
  readonly outcomes = new Map<string, (ApplyOutcome | 'threw')[]>();
  failNthEventOf: { userId: string; nth: number } | undefined;
  private readonly seenByUser = new Map<string, string[]>();
  private failed = new Set<string>();
  constructor(private readonly inner: AggregateStore) {}
  async applyRecord(input: ApplyInput): Promise<ApplyOutcome> {
    const seen = this.seenByUser.get(input.userId) ?? [];
    if (!seen.includes(input.eventId)) seen.push(input.eventId);
    this.seenByUser.set(input.userId, seen);
    const log = this.outcomes.get(input.eventId) ?? [];
    this.outcomes.set(input.eventId, log);
    const f = this.failNthEventOf;
    if (f && f.userId === input.userId && seen.indexOf(input.eventId) === f.nth - 1 && !this.failed.has(input.eventId)) {
      this.failed.add(input.eventId);
      log.push('threw');
      throw new Error('injected fault');
    }
    const outcome = await this.inner.applyRecord(input);
    log.push(outcome);
    return outcome;
  }
  refreshDerived(input: Omit<ApplyInput, 'eventId'>): Promise<void> {
    return this.inner.refreshDerived(input);
  }
  eventsOf(userId: string): string[] {
    return this.seenByUser.get(userId) ?? [];
  }
}

/** Writes through to the file, then fails once for a chosen transaction (a lost acknowledgement). */
class FlakyPublisher implements DomainEventPublisher {
  failOnceFor: string | undefined;
  constructor(private readonly inner: DomainEventPublisher) {}
  async publish(events: DomainEvent[]): Promise<void> {
    await this.inner.publish(events);
    if (this.failOnceFor && events.some((e) => e.transaction_id === this.failOnceFor)) {
      this.failOnceFor = undefined;
      throw new Error('injected publish failure');
    }
  }
}

let faulty: FaultyStore;
let flaky: FlakyPublisher;
let handler: ReturnType<typeof createAggregatorHandler>;

beforeAll(async () => {
  tableName = `aggregator-${randomUUID()}`;
  const streamArn = await ensureTable(dynamo, tableName);
  dir = await mkdtemp(join(tmpdir(), 'tally-agg-'));
  eventsFile = join(dir, 'events.jsonl');
  store = new AggregateStore(dynamo, tableName);
  faulty = new FaultyStore(store);
  flaky = new FlakyPublisher(new FileEventPublisher(eventsFile));
  handler = createAggregatorHandler({
    store: faulty,
    publisher: flaky,
    largeAmountThresholdMinor: 1_000_000,
    onUsersChanged: async (ids) => {
      changedUsers.push(ids);
    },
  });
  poller = startStreamPoller({
    streamArn,
    handler: async (event) => {
      deliveries.push(event);
      return handler(event);
    },
    batchSize: 10,
    batchingWindowMs: 100,
    maxRetries: 3,
    deadLetterFile: join(dir, 'dlq.jsonl'),
    pollIntervalMs: 100,
  });
});

afterAll(async () => {
  await poller?.stop();
  await dynamo.send(new DeleteTableCommand({ TableName: tableName }));
  await rm(dir, { recursive: true, force: true });
});

// ---- writing transaction items directly (the HTTP handlers are not involved) ---------------------------

let clock = Date.UTC(2026, 5, 1);
const nextStamp = (): string => new Date((clock += 1000)).toISOString();
let idCounter = 0;
const newId = (): string => `01J${String(++idCounter).padStart(23, '0')}`;

interface Tx {
  userId: string;
  transactionId: string;
  amountMinor: number;
  type: 'credit' | 'debit';
  date: string;
  version: number;
  createdAt: string;
}

function itemOf(tx: Tx, updatedAt: string): TransactionItem {
  return buildTransactionItem({
    transaction_id: tx.transactionId,
    user_id: tx.userId,
    full_name_ct: 'v1.1.aXY.Y2lwaGVy',
    key_version: 1,
    amount_minor: tx.amountMinor,
    type: tx.type,
    date: tx.date,
    version: tx.version,
    created_at: tx.createdAt,
    updated_at: updatedAt,
  });
}

async function put(tx: Tx): Promise<void> {
  await dynamo.send(new PutItemCommand({ TableName: tableName, Item: marshall(itemOf(tx, nextStamp())) }));
}
async function create(userId: string, amountMinor: number, type: 'credit' | 'debit', date: string): Promise<Tx> {
  const tx: Tx = { userId, transactionId: newId(), amountMinor, type, date, version: 1, createdAt: new Date(clock).toISOString() };
  await put(tx);
  return tx;
}
async function update(tx: Tx, patch: Partial<Pick<Tx, 'amountMinor' | 'type' | 'date'>>): Promise<void> {
  Object.assign(tx, patch, { version: tx.version + 1 });
  await put(tx);
}
async function remove(tx: Tx): Promise<void> {
  await dynamo.send(new DeleteItemCommand({ TableName: tableName, Key: marshall({ PK: userPk(tx.userId), SK: `TX#${tx.transactionId}` }) }));
}

async function expectReconciled(userId: string): Promise<void> {
  const report = await reconcileUser(dynamo, tableName, userId);
  expect(report.differences).toEqual([]);
}

const recordsOf = (userId: string): DynamoDBRecord[] =>
  deliveries.flatMap((e) => e.Records).filter((r) => r.dynamodb?.Keys?.PK?.S === userPk(userId));

async function readEvents(): Promise<{ id: string; 'detail-type': string; detail: DomainEvent }[]> {
  const text = await readFile(eventsFile, 'utf8').catch(() => '');
  return text.trim() ? text.trim().split('\n').map((l) => JSON.parse(l)) : [];
}

// A small deterministic PRNG so a failure can be replayed.
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('aggregator through the real stream and poller', () => {
  const mixUsers = ['mix-a', 'mix-b', 'mix-c', 'mix-d'].map((u) => `${u}-${randomUUID().slice(0, 8)}`);

  it('random creates, updates (amount, type, date) and deletes for several users equal the recompute', async () => {
    const rand = prng(20261201);
    const pick = <T,>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
    const days = ['2025-12-31', '2026-01-01', '2026-01-15', '2026-01-31', '2026-02-01'];
    const dateOf = () => `${pick(days)}T${String(Math.floor(rand() * 24)).padStart(2, '0')}:00:00.000Z`;
    const live = new Map<string, Tx[]>(mixUsers.map((u) => [u, []]));
    const writes: Promise<void>[] = [];
    for (let i = 0; i < 120; i++) {
      const userId = pick(mixUsers);
      const txs = live.get(userId)!;
      const r = rand();
      if (txs.length === 0 || r < 0.45) {
        txs.push(await create(userId, 1 + Math.floor(rand() * 200_000), pick(['credit', 'debit'] as const), dateOf()));
      } else if (r < 0.8) {
        const tx = pick(txs);
        const what = pick(['amount', 'type', 'date', 'all'] as const);
        await update(tx, {
          ...(what === 'amount' || what === 'all' ? { amountMinor: 1 + Math.floor(rand() * 200_000) } : {}),
          ...(what === 'type' || what === 'all' ? { type: tx.type === 'credit' ? ('debit' as const) : ('credit' as const) } : {}),
          ...(what === 'date' || what === 'all' ? { date: dateOf() } : {}),
        });
      } else {
        const tx = txs.splice(Math.floor(rand() * txs.length), 1)[0]!;
        await remove(tx);
      }
    }
    await Promise.all(writes);
    await poller.drained();
    for (const userId of mixUsers) {
      await expectReconciled(userId);
      const truth = recompute(await readTransactions(dynamo, tableName, userId));
      const read = await store.analyticsFor(userId, null);
      expect(read.value.transaction_count).toBe(truth.aggregate.count);
      expect(read.value.busiest_day?.date ?? null).toBe(truth.aggregate.busiestDay?.day ?? null);
      expect(read.requests).toBe(1);
    }
    expect(changedUsers.flat()).toEqual(expect.arrayContaining(mixUsers));
  });

  it('the same stream batches delivered again, twice and out of order, change nothing', async () => {
    const before = await Promise.all(mixUsers.map((u) => store.readAllTime(u)));
    const records = mixUsers.flatMap(recordsOf);
    expect(records.length).toBeGreaterThan(50);
    const shuffled = [...records].sort(() => Math.random() - 0.5);
    for (const batch of [shuffled.slice(0, 40), shuffled.slice(40), [...records].reverse(), shuffled]) {
      for (let i = 0; i < batch.length; i += 25) {
        const response = await handler({ Records: batch.slice(i, i + 25) });
        expect(response.batchItemFailures).toEqual([]);
      }
    }
    const after = await Promise.all(mixUsers.map((u) => store.readAllTime(u)));
    for (let i = 0; i < mixUsers.length; i++) {
      const { rev: _r1, ...b } = before[i]!.value!;
      const { rev: _r2, ...a } = after[i]!.value!;
      expect(a).toEqual(b);
      await expectReconciled(mixUsers[i]!);
    }
  });

  it('a batch whose third record fails leaves the first two applied exactly once after the retry', async () => {
    const userId = `fault-${randomUUID().slice(0, 8)}`;
    faulty.failNthEventOf = { userId, nth: 3 };
    const txs: Tx[] = Array.from({ length: 5 }, (_, i) => ({
      userId,
      transactionId: newId(),
      amountMinor: 100 * (i + 1),
      type: 'credit' as const,
      date: `2026-03-0${i + 1}T10:00:00.000Z`,
      version: 1,
      createdAt: nextStamp(),
    }));
    // one BatchWriteItem: the five records reach the poller together and form one batch
    await dynamo.send(
      new BatchWriteItemCommand({ RequestItems: { [tableName]: txs.map((tx) => ({ PutRequest: { Item: marshall(itemOf(tx, tx.createdAt)) } })) } }),
    );
    await poller.drained();
    const events = faulty.eventsOf(userId);
    expect(events).toHaveLength(5);
    const firstDelivery = deliveries.find((d) => d.Records.some((r) => r.eventID === events[0]))!;
    expect(firstDelivery.Records.filter((r) => r.dynamodb?.Keys?.PK?.S === userPk(userId))).toHaveLength(5);
    expect(events.map((id) => faulty.outcomes.get(id))).toEqual([
      ['applied'],
      ['applied'],
      ['threw', 'applied'],
      ['applied', 'duplicate'],
      ['applied', 'duplicate'],
    ]);
    const agg = (await store.readAllTime(userId)).value!;
    expect(agg.count).toBe(5);
    expect(agg.credit).toBe(1500n);
    await expectReconciled(userId);
    // the markers exist, with the 48 h TTL
    const marker = await dynamo.send(new GetItemCommand({ TableName: tableName, Key: marshall({ PK: userPk(userId), SK: appliedSk(events[0]!) }) }));
    const ttl = Number(marker.Item?.expires_at?.N);
    expect(ttl - Date.now() / 1000).toBeGreaterThan(47 * 3600);
    expect(ttl - Date.now() / 1000).toBeLessThanOrEqual(48 * 3600);
  });

  it('the busiest day is dethroned by a delete and by a date move', async () => {
    const userId = `busiest-${randomUUID().slice(0, 8)}`;
    const a = await Promise.all([1, 2, 3].map(() => create(userId, 100, 'debit', '2026-01-05T10:00:00.000Z')));
    const b = await Promise.all([1, 2].map(() => create(userId, 100, 'debit', '2026-01-10T10:00:00.000Z')));
    await poller.drained();
    expect((await store.analyticsFor(userId, null)).value.busiest_day).toEqual({ date: '2026-01-05', transaction_count: 3 });
    await remove(a[0]!); // 2 vs 2: the tie goes to the more recent day
    await poller.drained();
    expect((await store.analyticsFor(userId, null)).value.busiest_day).toEqual({ date: '2026-01-10', transaction_count: 2 });
    await update(b[0]!, { date: '2025-12-31T23:00:00.000Z' }); // moved out: 01-05 has 2, 01-10 has 1
    await poller.drained();
    expect((await store.analyticsFor(userId, null)).value.busiest_day).toEqual({ date: '2026-01-05', transaction_count: 2 });
    await remove(a[1]!);
    await remove(a[2]!);
    await remove(b[1]!);
    await poller.drained();
    // only the moved one is left
    expect((await store.analyticsFor(userId, null)).value.busiest_day).toEqual({ date: '2025-12-31', transaction_count: 1 });
    await remove(b[0]!);
    await poller.drained();
    const empty = (await store.analyticsFor(userId, null)).value;
    expect(empty).toMatchObject({ transaction_count: 0, busiest_day: null, average_transaction_value: null });
    expect(empty.as_of).not.toBeNull();
    await expectReconciled(userId);
  });

  it('period reads at the edges and across month and year boundaries', async () => {
    const userId = `period-${randomUUID().slice(0, 8)}`;
    const dates = [
      '2024-02-29T12:00:00.000Z',
      '2025-12-31T23:59:59.999Z',
      '2026-01-01T00:00:00.000Z',
      '2026-01-31T12:00:00.000Z',
      '2026-01-31T13:00:00.000Z',
      '2026-02-01T00:00:00.000Z',
    ];
    const txs = [];
    for (const [i, date] of dates.entries()) txs.push(await create(userId, 1000 + i, i % 2 ? 'debit' : 'credit', date));
    await poller.drained();
    const truth = [...recompute(await readTransactions(dynamo, tableName, userId)).days.values()];
    const cases: [string, string, number][] = [
      ['2025-12-31', '2025-12-31', 1],
      ['2026-01-01', '2026-01-01', 1],
      ['2026-01-01', '2026-01-31', 3],
      ['2025-12-01', '2026-02-01', 5],
      ['2024-02-29', '2024-02-29', 1],
      ['2024-03-01', '2025-12-30', 0],
      ['2026-02-02', '2026-03-01', 0],
      ['2016-01-01', '2026-01-07', 3],
    ];
    for (const [from, to, count] of cases) {
      const read = await store.analyticsFor(userId, { from, to });
      expect(read.value).toEqual({ ...periodAnalytics(userId, { from, to }, truth), as_of: read.value.as_of });
      expect(read.value.transaction_count).toBe(count);
      expect(read.requests).toBe(1);
      if (count > 0) expect(read.value.as_of).not.toBeNull();
    }
    const jan = (await store.analyticsFor(userId, { from: '2026-01-01', to: '2026-01-31' })).value;
    expect(jan.busiest_day).toEqual({ date: '2026-01-31', transaction_count: 2 });
  });

  it('a failed publish fails the record; its retry publishes again with the same event id', async () => {
    const userId = `publish-${randomUUID().slice(0, 8)}`;
    const tx: Tx = { userId, transactionId: newId(), amountMinor: 2_000_000, type: 'credit', date: '2026-04-01T10:00:00.000Z', version: 1, createdAt: nextStamp() };
    flaky.failOnceFor = tx.transactionId;
    await put(tx);
    await poller.drained();
    const mine = (await readEvents()).filter((e) => e.detail.transaction_id === tx.transactionId);
    const created = mine.filter((e) => e['detail-type'] === 'transaction.created');
    expect(created).toHaveLength(2); // published, publish "failed", record retried, published again
    expect(new Set(created.map((e) => e.id)).size).toBe(1); // consumers de-duplicate on the id
    expect(created[0]!.id).toBe(recordsOf(userId)[0]!.eventID);
    expect(mine.filter((e) => e['detail-type'] === 'transaction.large_amount').map((e) => e.id)).toEqual([`${created[0]!.id}:large`, `${created[0]!.id}:large`]);
    expect(JSON.stringify(mine)).not.toMatch(/full_name|v1\.1\./);
    expect(created[0]!.detail).toMatchObject({ user_id: userId, old: null, new: { amount: '20000.00', type: 'credit', date: tx.date } });
    // applied exactly once
    expect((await store.readAllTime(userId)).value?.count).toBe(1);
    await expectReconciled(userId);
  });

  it('the aggregator ignores its own items and other non-transaction items (no feedback)', async () => {
    const userId = `other-${randomUUID().slice(0, 8)}`;
    await dynamo.send(new PutItemCommand({ TableName: tableName, Item: marshall({ PK: userPk(userId), SK: 'KEY', wrapped: 'x' }) }));
    await dynamo.send(new PutItemCommand({ TableName: tableName, Item: marshall({ PK: userPk(userId), SK: 'IDEM#d', state: 'done' }) }));
    await poller.drained();
    expect((await store.readAllTime(userId)).value).toBeNull();
  });
});

describe('coalescing: the real AggregateStore applies one user\'s records of a batch in few transactions', () => {
  // Its own table and poller (batches of 100, as the stack's mapping), so every request of the store is counted.
  const userId = `coalesced-${randomUUID().slice(0, 8)}`;
  const sent = new Map<string, number>();
  const groupDeliveries: DynamoDBStreamEvent[] = [];
  let groupTable: string;
  let groupStore: AggregateStore;
  let groupHandler: ReturnType<typeof createAggregatorHandler>;
  let groupPoller: StreamPoller;
  const requestsSent = () => [...sent.values()].reduce((a, b) => a + b, 0);
  const transactWrites = () => sent.get('TransactWriteItemsCommand') ?? 0;
  const userRecords = () =>
    groupDeliveries.flatMap((e) => e.Records).filter((r) => r.dynamodb?.Keys?.PK?.S === userPk(userId) && r.dynamodb?.Keys?.SK?.S?.startsWith('TX#'));

  beforeAll(async () => {
    groupTable = `coalescing-${randomUUID()}`;
    const streamArn = await ensureTable(dynamo, groupTable);
    const counted = new DynamoDBClient({});
    counted.middlewareStack.add(
      (next, context) => async (args) => {
        sent.set(context.commandName ?? '?', (sent.get(context.commandName ?? '?') ?? 0) + 1);
        return next(args);
      },
      { step: 'initialize', name: 'countRequests' },
    );
    groupStore = new AggregateStore(counted, groupTable);
    groupHandler = createAggregatorHandler({
      store: groupStore,
      publisher: new FileEventPublisher(join(dir, 'coalesced-events.jsonl')),
      largeAmountThresholdMinor: 1_000_000,
    });
    groupPoller = startStreamPoller({
      streamArn,
      handler: async (event) => {
        groupDeliveries.push(event);
        return groupHandler(event);
      },
      batchSize: 100,
      batchingWindowMs: 200,
      maxRetries: 3,
      deadLetterFile: join(dir, 'coalesced-dlq.jsonl'),
      pollIntervalMs: 100,
    });
  });

  afterAll(async () => {
    await groupPoller?.stop();
    await dynamo.send(new DeleteTableCommand({ TableName: groupTable }));
  });

  const batchWrite = async (requests: object[]) => {
    for (let i = 0; i < requests.length; i += 25) {
      await dynamo.send(new BatchWriteItemCommand({ RequestItems: { [groupTable]: requests.slice(i, i + 25) as never } }));
    }
  };

  it('150 transactions of one user written with BatchWriteItem, then updates and deletes: exact, in far fewer than 150 transactions', async () => {
    const txs: Tx[] = Array.from({ length: 150 }, (_, i) => ({
      userId,
      transactionId: newId(),
      amountMinor: 100 + i,
      type: i % 3 ? ('debit' as const) : ('credit' as const),
      date: `2026-05-${String(1 + (i % 20)).padStart(2, '0')}T10:00:00.000Z`,
      version: 1,
      createdAt: nextStamp(),
    }));
    await batchWrite(txs.map((tx) => ({ PutRequest: { Item: marshall(itemOf(tx, tx.createdAt)) } })));
    await groupPoller.drained();
    expect(userRecords()).toHaveLength(150);
    await expect(reconcileUser(dynamo, groupTable, userId)).resolves.toMatchObject({ transactions: 150, differences: [] });
    const afterCreates = { transactWrites: transactWrites(), requests: requestsSent() };
    expect(afterCreates.transactWrites).toBeGreaterThan(0);
    expect(afterCreates.transactWrites).toBeLessThan(150 / 10);

    // 40 updates (amount, type, date: days gain, lose and swap transactions) and 20 deletes, again in batches
    for (const [i, tx] of txs.slice(0, 40).entries()) {
      Object.assign(tx, { version: tx.version + 1 }, i % 2 ? { amountMinor: tx.amountMinor * 3 } : { date: '2026-04-30T12:00:00.000Z', type: 'credit' });
    }
    await batchWrite([
      ...txs.slice(0, 40).map((tx) => ({ PutRequest: { Item: marshall(itemOf(tx, nextStamp())) } })),
      ...txs.slice(130).map((tx) => ({ DeleteRequest: { Key: marshall({ PK: userPk(userId), SK: `TX#${tx.transactionId}` }) } })),
    ]);
    await groupPoller.drained();
    expect(userRecords()).toHaveLength(210);
    await expect(reconcileUser(dynamo, groupTable, userId)).resolves.toMatchObject({ transactions: 130, differences: [] });
    const truth = recompute(await readTransactions(dynamo, groupTable, userId));
    expect((await groupStore.analyticsFor(userId, null)).value.busiest_day).toEqual({
      date: truth.aggregate.busiestDay!.day,
      transaction_count: truth.aggregate.busiestDay!.count,
    });
    expect(transactWrites()).toBeLessThan(210 / 10);
    console.log(
      `coalesced aggregator: 210 records (150 creates, 40 updates, 20 deletes) in ${groupDeliveries.length} deliveries: ` +
        `${transactWrites()} TransactWriteItems, ${requestsSent()} DynamoDB requests (${(requestsSent() / 210).toFixed(2)} per record; ` +
        `creates alone ${(afterCreates.requests / 150).toFixed(2)})`,
    );
  });

  it('the same records delivered again, in order and shuffled, fall back record by record and change nothing', async () => {
    const before = (await groupStore.readAllTime(userId)).value!;
    const records = userRecords();
    const shuffled = [...records].sort(() => Math.random() - 0.5);
    for (const batch of [records, shuffled]) {
      for (let i = 0; i < batch.length; i += 100) {
        expect((await groupHandler({ Records: batch.slice(i, i + 100) })).batchItemFailures).toEqual([]);
      }
    }
    const { rev: _r1, ...b } = before;
    const { rev: _r2, ...a } = (await groupStore.readAllTime(userId)).value!;
    expect(a).toEqual(b);
    await expect(reconcileUser(dynamo, groupTable, userId)).resolves.toMatchObject({ differences: [] });
  });
});
