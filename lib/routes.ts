/**
 * The route table: the single source for the CDK routes and functions, the local gateway and the OpenAPI
 * document. Adding an endpoint is one row here plus its handler file.
 *
 * `access` says what the handler's code touches, so the stack can grant exactly that and nothing more
 * (lib/permissions.ts). test/infra holds the template to these lists; test/unit/route-access.test.ts runs each
 * handler against mocked SDK clients and checks that what it sends is within them.
 */
export type HttpMethod = 'GET' | 'POST' | 'PATCH' | 'DELETE';

/**
 * DynamoDB actions a handler may send to the table, as IAM names them (without `dynamodb:`). TransactWriteItems
 * has no IAM action of its own: each item in it is authorised as the action it performs (ConditionCheck →
 * ConditionCheckItem, Put → PutItem, Update → UpdateItem, Delete → DeleteItem). A condition expression or
 * `ReturnValues` on a write needs no read action.
 */
export const TABLE_ACTIONS = ['GetItem', 'BatchGetItem', 'Query', 'PutItem', 'UpdateItem', 'DeleteItem', 'ConditionCheckItem'] as const;
export type TableAction = (typeof TABLE_ACTIONS)[number];
/** The actions that change items: a function with any of them also needs the table key for encryption. */
export const TABLE_WRITE_ACTIONS = ['PutItem', 'UpdateItem', 'DeleteItem'] as const satisfies readonly TableAction[];

export interface RouteAccess {
  /**
   * Exactly the DynamoDB actions the handler's code sends to the base table (every code path, including the
   * data-key store, the idempotency ledger and retries); empty when it never touches the table.
   */
  table: readonly TableAction[];
  /** Queries the `by-date` history index (dynamodb:Query on the index, and nothing else there). */
  historyIndex: boolean;
  /** `generate`: may create a user's data key (GenerateDataKey) and unwrap it; `decrypt`: unwrap only. */
  dataKeys: 'none' | 'decrypt' | 'generate';
  /** Talks to Redis (and so runs inside the VPC). */
  cache: boolean;
}

/** Reaches the table at all (base table or index): gets TABLE_NAME and the table key. */
export const usesTable = (access: Pick<RouteAccess, 'table' | 'historyIndex'>): boolean =>
  access.table.length > 0 || access.historyIndex;

/** Changes items (Put/Update/Delete), so DynamoDB encrypts with the table key on its behalf. */
export const writesTable = (access: Pick<RouteAccess, 'table'>): boolean =>
  access.table.some((action) => (TABLE_WRITE_ACTIONS as readonly TableAction[]).includes(action));

export interface RouteDefinition {
  method: HttpMethod;
  /** API Gateway path with `{param}` placeholders. */
  path: string;
  /** Handler entry, relative to the repository root; the module exports `handler`. */
  entry: string;
  /** Logical function name, also used for the construct id. */
  functionName: string;
  /** Requires a bearer token (JWT authorizer in AWS, the local verifier on the local stack). */
  auth: boolean;
  summary: string;
  access: RouteAccess;
}

export const routes: readonly RouteDefinition[] = [
  {
    method: 'POST',
    path: '/users/{user_id}/transactions',
    entry: 'lambdas/http/create-transaction.ts',
    functionName: 'CreateTransaction',
    auth: true,
    summary: 'Create a transaction',
    // Without Idempotency-Key: the KEY item (GetItem; if none or erased, GenerateDataKey and a conditional
    // PutItem), then TransactWriteItems [ConditionCheck KEY, Put TX]. With one, also the IDEM# record:
    // conditional PutItem, GetItem when it exists, UpdateItem to take over / complete / release, and on a
    // replay GetItem of the transaction and of the KEY (Decrypt).
    access: { table: ['ConditionCheckItem', 'GetItem', 'PutItem', 'UpdateItem'], historyIndex: false, dataKeys: 'generate', cache: true },
  },
  {
    method: 'GET',
    path: '/users/{user_id}/transactions',
    entry: 'lambdas/http/list-transactions.ts',
    functionName: 'ListTransactions',
    auth: true,
    summary: "A page of the user's history, newest first",
    // Query on the by-date index (pages, filter loop), then GetItem of the KEY and Decrypt per key version.
    access: { table: ['GetItem'], historyIndex: true, dataKeys: 'decrypt', cache: true },
  },
  {
    method: 'GET',
    path: '/users/{user_id}/transactions/{transaction_id}',
    entry: 'lambdas/http/get-transaction.ts',
    functionName: 'GetTransaction',
    auth: true,
    summary: 'Read one transaction',
    // GetItem of the transaction, GetItem of the KEY and Decrypt.
    access: { table: ['GetItem'], historyIndex: false, dataKeys: 'decrypt', cache: false },
  },
  {
    method: 'PATCH',
    path: '/users/{user_id}/transactions/{transaction_id}',
    entry: 'lambdas/http/update-transaction.ts',
    functionName: 'UpdateTransaction',
    auth: true,
    summary: 'Change some fields of a transaction',
    // GetItem of the transaction (each optimistic retry); a new name: the KEY as on create (GetItem, maybe
    // GenerateDataKey + conditional PutItem), then TransactWriteItems [ConditionCheck KEY, Put TX]; no new name:
    // a conditional PutItem, then GetItem of the KEY and Decrypt to answer with the stored name.
    access: { table: ['ConditionCheckItem', 'GetItem', 'PutItem'], historyIndex: false, dataKeys: 'generate', cache: true },
  },
  {
    method: 'DELETE',
    path: '/users/{user_id}/transactions/{transaction_id}',
    entry: 'lambdas/http/delete-transaction.ts',
    functionName: 'DeleteTransaction',
    auth: true,
    summary: 'Delete a transaction',
    // One conditional DeleteItem (ReturnValuesOnConditionCheckFailure tells missing from conflict).
    access: { table: ['DeleteItem'], historyIndex: false, dataKeys: 'none', cache: true },
  },
  {
    method: 'GET',
    path: '/users/{user_id}/analytics',
    entry: 'lambdas/http/get-analytics.ts',
    functionName: 'GetAnalytics',
    auth: true,
    summary: "The user's analytics, all time or for a period",
    // All time: GetItem of AGG; a period: Query of the DAY# items on the base table.
    access: { table: ['GetItem', 'Query'], historyIndex: false, dataKeys: 'none', cache: true },
  },
  {
    method: 'DELETE',
    path: '/users/{user_id}/personal-data',
    entry: 'lambdas/http/erase-personal-data.ts',
    functionName: 'ErasePersonalData',
    auth: true,
    summary: "Erase the user's personal data by destroying their data key",
    // One conditional UpdateItem of the KEY item (REMOVE wrapped_key); never calls KMS.
    access: { table: ['UpdateItem'], historyIndex: false, dataKeys: 'none', cache: true },
  },
  {
    method: 'GET',
    path: '/health',
    entry: 'lambdas/http/health.ts',
    functionName: 'Health',
    auth: false,
    summary: 'Liveness',
    access: { table: [], historyIndex: false, dataKeys: 'none', cache: false },
  },
];

/**
 * What answers every request no row matches (API Gateway's `$default` route, and the local gateway's
 * fallback): 404 for an unknown path, 405 with `Allow` for a known path and another method, as problem+json.
 */
export const fallbackHandler = {
  entry: 'lambdas/http/not-found.ts',
  functionName: 'NotFound',
  summary: 'Unknown routes (404) and unsupported methods (405)',
  access: { table: [], historyIndex: false, dataKeys: 'none', cache: false },
} as const satisfies Pick<RouteDefinition, 'entry' | 'functionName' | 'summary' | 'access'>;

const compiled = routes.map((route) => {
  const params: string[] = [];
  const source = route.path.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace(/\{(\w+)\}/g, (_m, name: string) => {
    params.push(name);
    return '([^/]+)';
  });
  return { route, pattern: new RegExp(`^${source}$`), params };
});

/** The row for a method and path with its decoded path parameters, or the methods the path does support. */
export function matchRoute(method: string, path: string): { route: RouteDefinition; params: Record<string, string> } | { allow: string[] } {
  const allow: string[] = [];
  for (const { route, pattern, params } of compiled) {
    const m = pattern.exec(path);
    if (!m) continue;
    if (route.method !== method) {
      allow.push(route.method);
      continue;
    }
    const values: Record<string, string> = {};
    params.forEach((name, i) => {
      const raw = m[i + 1] ?? '';
      try {
        values[name] = decodeURIComponent(raw);
      } catch {
        values[name] = raw;
      }
    });
    return { route, params: values };
  }
  return { allow };
}

/**
 * The aggregator is not an HTTP route but is built and deployed the same way, and declares its access the same
 * way. Reading the stream is granted by the event source; publishing to the bus by the stack.
 */
export const streamHandler = {
  entry: 'lambdas/stream/aggregate.ts',
  functionName: 'Aggregator',
  // AggregateStore: applyRecord is TransactWriteItems [Put APPLIED# (conditional), Update AGG, Update DAY#…];
  // refreshDerived is UpdateItem (as_of, busiest day), GetItem of AGG, BatchGetItem of DAY# items and, for a
  // full busiest-day recompute, Query of the DAY# items on the base table.
  access: { table: ['BatchGetItem', 'GetItem', 'PutItem', 'Query', 'UpdateItem'], historyIndex: false, dataKeys: 'none', cache: true },
} as const satisfies Pick<RouteDefinition, 'entry' | 'functionName' | 'access'>;
