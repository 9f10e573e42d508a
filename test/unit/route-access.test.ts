import { randomBytes } from 'node:crypto';
import {
  BatchGetItemCommand,
  ConditionalCheckFailedException,
  DynamoDBClient,
  GetItemCommand,
  QueryCommand as QueryItemsCommand,
  TransactWriteItemsCommand,
  UpdateItemCommand,
  type AttributeValue,
} from '@aws-sdk/client-dynamodb';
import { DecryptCommand, GenerateDataKeyCommand, KMSClient } from '@aws-sdk/client-kms';
import {
  DeleteCommand,
  DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
  TransactWriteCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import { marshall } from '@aws-sdk/util-dynamodb';
import type {
  APIGatewayProxyEventV2,
  APIGatewayProxyStructuredResultV2,
  Context,
  DynamoDBBatchResponse,
  DynamoDBStreamEvent,
} from 'aws-lambda';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { resetClients } from '../../lambdas/adapters/clients.ts';
import { config, resetConfig } from '../../lambdas/adapters/config.ts';
import { resetContainer } from '../../lambdas/adapters/container.ts';
import { storedTransactionItem } from '../support/fixtures.ts';
import type { TransactionItem } from '../../lambdas/adapters/transaction-item.ts';
import { requestFingerprint } from '../../lambdas/core/idempotency.ts';
import { TABLE_KEYS } from '../../lambdas/core/keys.ts';
import { parseCreate } from '../../lambdas/core/transaction.ts';
import { fallbackHandler, routes, streamHandler, type RouteAccess } from '../../lib/routes.ts';

/**
 * The code-level cross-check of lib/routes.ts `access` (the infra tests check the template against the same
 * lists). Every function runs, with its real middleware and services, against aws-sdk-client-mock mocks of
 * DynamoDBClient, DynamoDBDocumentClient and KMSClient, through its success paths; every DynamoDB command it
 * sends is recorded as the IAM action(s) it needs (TransactWriteItems expanded into its per-item actions, a
 * Query on an index recorded with the index). Each scenario must stay within the declared `table` /
 * `historyIndex` / `dataKeys`, and the scenarios of a function together must exercise every action it declares,
 * so a declaration can be neither too narrow nor (for what the scenarios reach) too broad.
 *
 * This is not a proof: a path no scenario takes is not checked. The scenarios below cover the success paths
 * and the retry / idempotency branches that use actions of their own.
 */
process.env.REDIS_URL = '';
process.env.TABLE_NAME = 'unit-table';
// Authorization stays on: every request carries the claims API Gateway's JWT authorizer would pass.
delete process.env.AUTH_MODE;
delete process.env.EVENT_BUS_NAME;
delete process.env.EVENTS_FILE;

const TABLE = 'unit-table';
const doc = mockClient(DynamoDBDocumentClient);
const ddb = mockClient(DynamoDBClient);
const kms = mockClient(KMSClient);

const KEY = randomBytes(32);
const WRAPPED = randomBytes(64);
const TX_ID = '01JDZ8Q3V8K6E2M9W4T7A5B3CX';
const OTHER_TX_ID = '01JDZ8Q3V8K6E2M9W4T7A5B3CY';
const validBody = { full_name: 'Ama Mensah', transaction_date: '2026-12-01T09:30:00Z', transaction_amount: '125.50', transaction_type: 'credit' };

// ---- the recorded actions -------------------------------------------------------------------------------

type Recorded = { actions: string[]; tables: string[]; kms: string[]; contexts: unknown[] };

/** `GetCommand` / `GetItemCommand` → `GetItem`; the document client drops the `Item(s)` suffix. */
const DOCUMENT_NAMES: Record<string, string> = {
  Get: 'GetItem',
  Put: 'PutItem',
  Update: 'UpdateItem',
  Delete: 'DeleteItem',
  BatchGet: 'BatchGetItem',
  BatchWrite: 'BatchWriteItem',
  TransactWrite: 'TransactWriteItems',
  TransactGet: 'TransactGetItems',
};
const TRANSACT_ITEM_ACTIONS: Record<string, string> = {
  ConditionCheck: 'ConditionCheckItem',
  Put: 'PutItem',
  Update: 'UpdateItem',
  Delete: 'DeleteItem',
  Get: 'GetItem',
};

/** The IAM action(s) one DynamoDB command needs, and the tables it names. */
function actionsOfCommand(command: { constructor: { name: string }; input: unknown }): { actions: string[]; tables: string[] } {
  const raw = command.constructor.name.replace(/Command$/, '');
  const name = DOCUMENT_NAMES[raw] ?? raw;
  const input = command.input as {
    TableName?: string;
    IndexName?: string;
    RequestItems?: Record<string, unknown>;
    TransactItems?: Array<Record<string, { TableName?: string }>>;
  };
  if (name === 'TransactWriteItems' || name === 'TransactGetItems') {
    const items = input.TransactItems ?? [];
    return {
      actions: items.flatMap((item) => Object.keys(item).map((kind) => TRANSACT_ITEM_ACTIONS[kind] ?? `${name}.${kind}`)),
      tables: items.flatMap((item) => Object.values(item).map((op) => op.TableName ?? '(none)')),
    };
  }
  if (name === 'BatchGetItem' || name === 'BatchWriteItem') return { actions: [name], tables: Object.keys(input.RequestItems ?? {}) };
  // A Query (or Scan) on an index is authorised on the index's ARN, not the table's.
  const action = input.IndexName === undefined ? name : `${name}@${input.IndexName}`;
  return { actions: [action], tables: [input.TableName ?? '(none)'] };
}

function recorded(): Recorded {
  const calls = [...doc.calls(), ...ddb.calls()].map((c) => actionsOfCommand(c.args[0] as never));
  const kmsCalls = kms.calls().map((c) => c.args[0] as unknown as { constructor: { name: string }; input: { EncryptionContext?: unknown } });
  return {
    actions: calls.flatMap((c) => c.actions),
    tables: calls.flatMap((c) => c.tables),
    kms: kmsCalls.map((c) => c.constructor.name.replace(/Command$/, '')),
    contexts: kmsCalls.map((c) => c.input.EncryptionContext),
  };
}

/** What a declaration allows, in the recorded form. */
function allowedBy(access: RouteAccess): { dynamo: string[]; kms: string[] } {
  return {
    dynamo: [...access.table, ...(access.historyIndex ? [`Query@${TABLE_KEYS.historyIndex}`] : [])],
    kms: { none: [], decrypt: ['Decrypt'], generate: ['Decrypt', 'GenerateDataKey'] }[access.dataKeys],
  };
}

// ---- the mocked world -----------------------------------------------------------------------------------

/** Users with a live key (version 1), users whose key was erased at version 1; anyone else has no KEY item. */
const LIVE = new Set(['u1']);
const ERASED = new Set(['erased-user']);
/** IDEM# items the ledger finds (keyed by PK), set by a scenario. */
let idempotencyRecords: Map<string, Record<string, unknown>>;

const userOf = (pk: unknown): string => String(pk).replace(/^USER#/, '');
const storedItem = (userId: string, overrides: Parameters<typeof storedTransactionItem>[2] = {}): TransactionItem =>
  storedTransactionItem(KEY, userId, overrides);
const conditionFailed = () => new ConditionalCheckFailedException({ message: 'The conditional request failed', $metadata: {} });

/** The aggregates the low-level client answers with, set by a scenario. */
let aggregate: Record<string, AttributeValue> | undefined;
let dayItems: Array<Record<string, AttributeValue>>;

function installWorld(): void {
  doc.reset();
  ddb.reset();
  kms.reset();
  idempotencyRecords = new Map();
  aggregate = undefined;
  dayItems = [];

  doc.on(GetCommand).callsFake((input: { Key: { PK: string; SK: string } }) => {
    const { PK, SK } = input.Key;
    const userId = userOf(PK);
    if (SK === 'KEY') {
      if (LIVE.has(userId)) return { Item: { key_version: 1, wrapped_key: WRAPPED.toString('base64') } };
      if (ERASED.has(userId)) return { Item: { key_version: 1 } };
      return {};
    }
    if (SK.startsWith('TX#')) return { Item: storedItem(userId, { transaction_id: SK.slice(3) }) };
    if (SK.startsWith('IDEM#')) {
      const record = idempotencyRecords.get(PK);
      return record ? { Item: { PK, SK, entity: 'idempotency', ...record } } : {};
    }
    return {};
  });
  doc.on(PutCommand).callsFake((input: { Item: { PK: string; SK: string } }) => {
    if (input.Item.SK.startsWith('IDEM#') && idempotencyRecords.has(input.Item.PK)) throw conditionFailed();
    return {};
  });
  doc.on(UpdateCommand).callsFake((input: { Key: { SK: string } }) => (input.Key.SK === 'KEY' ? { Attributes: { key_version: 1 } } : {}));
  doc.on(DeleteCommand).resolves({});
  doc.on(QueryCommand).callsFake((input: { ExpressionAttributeValues: { ':pk': string } }) => ({
    Items: [storedItem(userOf(input.ExpressionAttributeValues[':pk']))],
  }));
  doc.on(TransactWriteCommand).resolves({});

  ddb.on(GetItemCommand).callsFake(() => (aggregate ? { Item: aggregate } : {}));
  ddb.on(QueryItemsCommand).callsFake(() => ({ Items: dayItems }));
  ddb.on(BatchGetItemCommand).callsFake((input: { RequestItems: Record<string, { Keys: Array<Record<string, AttributeValue>> }> }) => {
    const wanted = new Set((input.RequestItems[TABLE]?.Keys ?? []).map((k) => k.SK?.S));
    return { Responses: { [TABLE]: dayItems.filter((d) => wanted.has(d.SK?.S)) } };
  });
  ddb.on(TransactWriteItemsCommand).resolves({});
  ddb.on(UpdateItemCommand).resolves({});

  kms.on(DecryptCommand).resolves({ Plaintext: new Uint8Array(KEY) });
  kms.on(GenerateDataKeyCommand).callsFake(() => ({
    Plaintext: new Uint8Array(randomBytes(32)),
    CiphertextBlob: new Uint8Array(WRAPPED),
  }));
}

// ---- events ---------------------------------------------------------------------------------------------

type HttpHandler = (event: APIGatewayProxyEventV2, context: Context) => Promise<APIGatewayProxyStructuredResultV2>;
type StreamHandler = (event: DynamoDBStreamEvent, context?: Context) => Promise<DynamoDBBatchResponse>;
const context = { functionName: 'unit', awsRequestId: 'req-1', getRemainingTimeInMillis: () => 3000 } as unknown as Context;

function httpEvent(init: {
  method: string;
  path: string;
  user?: string;
  params?: Record<string, string>;
  body?: unknown;
  headers?: Record<string, string>;
  query?: Record<string, string>;
  claims?: boolean;
}): APIGatewayProxyEventV2 {
  const user = init.user ?? 'u1';
  const claims = { sub: user, scope: 'tally/transactions', token_use: 'access', client_id: 'unit-client' };
  return {
    version: '2.0',
    routeKey: `${init.method} ${init.path}`,
    rawPath: init.path,
    rawQueryString: '',
    headers: { 'content-type': 'application/json', ...init.headers },
    ...(init.query ? { queryStringParameters: init.query } : {}),
    pathParameters: init.path.includes('{user_id}') ? { user_id: user, ...init.params } : { ...init.params },
    requestContext: {
      requestId: 'apigw-1',
      http: { method: init.method, path: init.path, protocol: 'HTTP/1.1', sourceIp: '127.0.0.1', userAgent: 'unit' },
      ...(init.claims === false ? {} : { authorizer: { jwt: { claims, scopes: ['tally/transactions'] } } }),
    } as unknown as APIGatewayProxyEventV2['requestContext'],
    ...(init.body !== undefined ? { body: JSON.stringify(init.body) } : {}),
    isBase64Encoded: false,
  } as APIGatewayProxyEventV2;
}

const txImage = (userId: string, overrides: Record<string, unknown> = {}) =>
  marshall({ ...storedItem(userId), ...overrides }, { removeUndefinedValues: true }) as Record<string, AttributeValue>;

function streamEvent(record: { eventName: 'INSERT' | 'MODIFY' | 'REMOVE'; newImage?: Record<string, AttributeValue>; oldImage?: Record<string, AttributeValue> }): DynamoDBStreamEvent {
  return {
    Records: [
      {
        eventID: `evt-${randomBytes(4).toString('hex')}`,
        eventName: record.eventName,
        eventSource: 'aws:dynamodb',
        dynamodb: {
          Keys: { PK: { S: 'USER#u1' }, SK: { S: `TX#${TX_ID}` } },
          ...(record.newImage ? { NewImage: record.newImage } : {}),
          ...(record.oldImage ? { OldImage: record.oldImage } : {}),
          ApproximateCreationDateTime: Date.parse('2026-12-02T00:00:00Z') / 1000,
          SequenceNumber: '1',
          StreamViewType: 'NEW_AND_OLD_IMAGES',
        },
      },
    ],
  } as unknown as DynamoDBStreamEvent;
}

const n = (v: number): AttributeValue => ({ N: String(v) });
const s = (v: string): AttributeValue => ({ S: v });

// ---- scenarios ------------------------------------------------------------------------------------------

interface Scenario {
  name: string;
  /** Runs the function once (after the world is installed); throws if it did not succeed. */
  run: () => Promise<void>;
}

const handlers = new Map<string, HttpHandler>();
let aggregator: StreamHandler;

async function http(functionName: string, event: APIGatewayProxyEventV2, status: number): Promise<APIGatewayProxyStructuredResultV2> {
  const result = await handlers.get(functionName)!(event, context);
  expect(result.statusCode, `${functionName}: ${result.body ?? ''}`).toBe(status);
  return result;
}

const createPath = '/users/{user_id}/transactions';
const itemPath = '/users/{user_id}/transactions/{transaction_id}';

const scenarios: Record<string, Scenario[]> = {
  CreateTransaction: [
    {
      name: 'existing user, no Idempotency-Key',
      run: async () => void (await http('CreateTransaction', httpEvent({ method: 'POST', path: createPath, body: validBody }), 201)),
    },
    {
      name: 'new user (the KEY is created) with an Idempotency-Key',
      run: async () => {
        await http('CreateTransaction', httpEvent({ method: 'POST', path: createPath, user: 'new-user', body: validBody, headers: { 'idempotency-key': 'k-1' } }), 201);
        expect(kms.calls().map((c) => c.args[0].constructor.name)).toContain('GenerateDataKeyCommand');
      },
    },
    {
      name: 'Idempotency-Key replay (completed record: the transaction is re-read and decrypted)',
      run: async () => {
        idempotencyRecords.set('USER#u1', idempotencyRecord('completed', TX_ID));
        const result = await http('CreateTransaction', httpEvent({ method: 'POST', path: createPath, body: validBody, headers: { 'idempotency-key': 'k-2' } }), 201);
        expect(result.headers?.['idempotent-replayed']).toBe('true');
      },
    },
    {
      name: 'Idempotency-Key take-over of a stale in-progress record',
      run: async () => {
        idempotencyRecords.set('USER#u1', idempotencyRecord('in_progress', OTHER_TX_ID));
        const result = await http('CreateTransaction', httpEvent({ method: 'POST', path: createPath, body: validBody, headers: { 'idempotency-key': 'k-3' } }), 201);
        expect(JSON.parse(result.body ?? '{}').transaction_id).toBe(OTHER_TX_ID);
      },
    },
  ],
  ListTransactions: [
    { name: 'first page', run: async () => void (await http('ListTransactions', httpEvent({ method: 'GET', path: createPath }), 200)) },
    {
      name: 'a date range and a type',
      run: async () =>
        void (await http('ListTransactions', httpEvent({ method: 'GET', path: createPath, query: { from: '2026-12-01', to: '2026-12-31', type: 'credit' } }), 200)),
    },
  ],
  GetTransaction: [
    { name: 'one transaction', run: async () => void (await http('GetTransaction', httpEvent({ method: 'GET', path: itemPath, params: { transaction_id: TX_ID } }), 200)) },
  ],
  UpdateTransaction: [
    {
      name: 'amount only (plain conditional put, the stored name decrypted)',
      run: async () =>
        void (await http('UpdateTransaction', httpEvent({ method: 'PATCH', path: itemPath, params: { transaction_id: TX_ID }, body: { transaction_amount: '1.00' } }), 200)),
    },
    {
      name: 'a new name with If-Match (resealed, key-checked transaction)',
      run: async () =>
        void (await http(
          'UpdateTransaction',
          httpEvent({ method: 'PATCH', path: itemPath, params: { transaction_id: TX_ID }, body: { full_name: 'Kofi' }, headers: { 'if-match': '"1"' } }),
          200,
        )),
    },
    {
      name: 'a new name after erasure (a new KEY is generated)',
      run: async () => {
        await http('UpdateTransaction', httpEvent({ method: 'PATCH', path: itemPath, user: 'erased-user', params: { transaction_id: TX_ID }, body: { full_name: 'Kofi' } }), 200);
        expect(kms.calls().map((c) => c.args[0].constructor.name)).toContain('GenerateDataKeyCommand');
      },
    },
  ],
  DeleteTransaction: [
    { name: 'delete', run: async () => void (await http('DeleteTransaction', httpEvent({ method: 'DELETE', path: itemPath, params: { transaction_id: TX_ID } }), 204)) },
    {
      name: 'delete with If-Match',
      run: async () =>
        void (await http('DeleteTransaction', httpEvent({ method: 'DELETE', path: itemPath, params: { transaction_id: TX_ID }, headers: { 'if-match': '"1"' } }), 204)),
    },
  ],
  GetAnalytics: [
    {
      name: 'all time',
      run: async () => {
        aggregate = { count: n(1), sum: n(12_550), credit: n(12_550), debit: n(0), rev: n(1), busiest_day: s('2026-12-01'), busiest_count: n(1) };
        await http('GetAnalytics', httpEvent({ method: 'GET', path: '/users/{user_id}/analytics' }), 200);
      },
    },
    {
      name: 'a period',
      run: async () => {
        dayItems = [{ SK: s('DAY#2026-12-01'), count: n(1), credit: n(12_550), debit: n(0) }];
        await http('GetAnalytics', httpEvent({ method: 'GET', path: '/users/{user_id}/analytics', query: { from: '2026-12-01', to: '2026-12-31' } }), 200);
      },
    },
  ],
  ErasePersonalData: [
    { name: 'erase', run: async () => void (await http('ErasePersonalData', httpEvent({ method: 'DELETE', path: '/users/{user_id}/personal-data' }), 204)) },
  ],
  Health: [{ name: 'liveness', run: async () => void (await http('Health', httpEvent({ method: 'GET', path: '/health', claims: false }), 200)) }],
  NotFound: [
    { name: 'unknown path', run: async () => void (await http('NotFound', httpEvent({ method: 'GET', path: '/nope', claims: false }), 404)) },
    { name: 'known path, other method', run: async () => void (await http('NotFound', httpEvent({ method: 'PUT', path: '/health', claims: false }), 405)) },
  ],
  Aggregator: [
    {
      name: 'INSERT (apply, as_of, busiest day set from the touched day)',
      run: async () => {
        aggregate = { count: n(1), rev: n(1) };
        dayItems = [{ SK: s('DAY#2026-12-01'), count: n(1) }];
        const out = await aggregator(streamEvent({ eventName: 'INSERT', newImage: txImage('u1') }), context);
        expect(out.batchItemFailures).toEqual([]);
      },
    },
    {
      name: 'REMOVE on the busiest day (full recompute from the DAY# items)',
      run: async () => {
        aggregate = { count: n(1), rev: n(4), busiest_day: s('2026-12-01'), busiest_count: n(2) };
        dayItems = [
          { SK: s('DAY#2026-12-01'), count: n(1) },
          { SK: s('DAY#2026-11-30'), count: n(1) },
        ];
        const out = await aggregator(streamEvent({ eventName: 'REMOVE', oldImage: txImage('u1') }), context);
        expect(out.batchItemFailures).toEqual([]);
      },
    },
  ],
};

/** An IDEM# record for the valid body under the server's fingerprint secret. */
function idempotencyRecord(status: 'completed' | 'in_progress', transactionId: string): Record<string, unknown> {
  const input = parseCreate(validBody);
  if (!input.ok) throw new Error('validBody does not parse');
  return {
    status,
    fingerprint: requestFingerprint(config().cursorSecret, input.value),
    transaction_id: transactionId,
    locked_until: 0,
    expires_at: Math.floor(Date.now() / 1000) + 3600,
    created_at: new Date().toISOString(),
  };
}

// ---- the checks -----------------------------------------------------------------------------------------

const declared: Array<{ functionName: string; entry: string; access: RouteAccess }> = [...routes, fallbackHandler, streamHandler];

beforeAll(async () => {
  for (const { functionName, entry } of declared) {
    // The entry is relative to the repository root (two levels up from here).
    const url = new URL(`../../${entry}`, import.meta.url).href;
    const module = (await import(/* @vite-ignore */ url)) as { handler: HttpHandler & StreamHandler };
    if (functionName === streamHandler.functionName) aggregator = module.handler;
    else handlers.set(functionName, module.handler);
  }
});

beforeEach(() => {
  resetConfig();
  resetClients();
  resetContainer();
  installWorld();
});

describe('route access: what each handler sends is what lib/routes.ts declares', () => {
  it('has scenarios for every function of the route table, and only for those', () => {
    expect(Object.keys(scenarios).sort()).toEqual(declared.map((d) => d.functionName).sort());
  });

  it('runs with authorization on (no claims: 401 and nothing sent)', async () => {
    await http('GetTransaction', httpEvent({ method: 'GET', path: itemPath, params: { transaction_id: TX_ID }, claims: false }), 401);
    expect(recorded().actions).toEqual([]);
  });

  it.each(declared.map((d) => [d.functionName, d] as const))(
    '%s sends only its declared actions, and its scenarios together exercise every one of them',
    async (functionName, { access }) => {
      const allowed = allowedBy(access);
      const exercised = { dynamo: new Set<string>(), kms: new Set<string>() };
      for (const scenario of scenarios[functionName] ?? []) {
        // Fresh clients and containers, so no data key cached by one scenario hides a call in the next.
        resetConfig();
        resetClients();
        resetContainer();
        installWorld();
        await scenario.run();
        const sent = recorded();
        const label = `${functionName} / ${scenario.name}`;
        expect([...new Set(sent.actions)].filter((a) => !allowed.dynamo.includes(a)), `${label}: DynamoDB actions not declared`).toEqual([]);
        expect([...new Set(sent.kms)].filter((a) => !allowed.kms.includes(a)), `${label}: KMS calls not declared`).toEqual([]);
        expect([...new Set(sent.tables)].filter((t) => t !== TABLE), `${label}: tables other than TABLE_NAME`).toEqual([]);
        for (const encryptionContext of sent.contexts) expect(Object.keys(encryptionContext as object), label).toEqual(['user_id']);
        sent.actions.forEach((a) => exercised.dynamo.add(a));
        sent.kms.forEach((a) => exercised.kms.add(a));
      }
      // Not broader than the code: every declared action is sent by at least one scenario.
      expect([...exercised.dynamo].sort(), `${functionName}: declared DynamoDB actions no scenario sends`).toEqual([...allowed.dynamo].sort());
      expect([...exercised.kms].sort(), `${functionName}: declared KMS calls no scenario makes`).toEqual([...allowed.kms].sort());
    },
  );
});
