/**
 * The route table: the single source for the CDK routes and functions, the local gateway and the OpenAPI
 * document. Adding an endpoint is one row here plus its handler file.
 *
 * `access` says what the handler's code touches, so the stack can grant exactly that and nothing more.
 */
export type HttpMethod = 'GET' | 'POST' | 'PATCH' | 'DELETE';

export interface RouteAccess {
  /** `read`: GetItem/Query; `write`: also Put/Update/Delete on the user's items. */
  table: 'none' | 'read' | 'write';
  /** `generate`: may create a user's data key (GenerateDataKey) and unwrap it; `decrypt`: unwrap only. */
  dataKeys: 'none' | 'decrypt' | 'generate';
  /** Talks to Redis (and so runs inside the VPC). */
  cache: boolean;
}

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
    access: { table: 'write', dataKeys: 'generate', cache: true },
  },
  {
    method: 'GET',
    path: '/users/{user_id}/transactions',
    entry: 'lambdas/http/list-transactions.ts',
    functionName: 'ListTransactions',
    auth: true,
    summary: "A page of the user's history, newest first",
    access: { table: 'read', dataKeys: 'decrypt', cache: true },
  },
  {
    method: 'GET',
    path: '/users/{user_id}/transactions/{transaction_id}',
    entry: 'lambdas/http/get-transaction.ts',
    functionName: 'GetTransaction',
    auth: true,
    summary: 'Read one transaction',
    access: { table: 'read', dataKeys: 'decrypt', cache: false },
  },
  {
    method: 'PATCH',
    path: '/users/{user_id}/transactions/{transaction_id}',
    entry: 'lambdas/http/update-transaction.ts',
    functionName: 'UpdateTransaction',
    auth: true,
    summary: 'Change some fields of a transaction',
    access: { table: 'write', dataKeys: 'generate', cache: true },
  },
  {
    method: 'DELETE',
    path: '/users/{user_id}/transactions/{transaction_id}',
    entry: 'lambdas/http/delete-transaction.ts',
    functionName: 'DeleteTransaction',
    auth: true,
    summary: 'Delete a transaction',
    access: { table: 'write', dataKeys: 'none', cache: true },
  },
  {
    method: 'GET',
    path: '/users/{user_id}/analytics',
    entry: 'lambdas/http/get-analytics.ts',
    functionName: 'GetAnalytics',
    auth: true,
    summary: "The user's analytics, all time or for a period",
    access: { table: 'read', dataKeys: 'none', cache: true },
  },
  {
    method: 'DELETE',
    path: '/users/{user_id}/personal-data',
    entry: 'lambdas/http/erase-personal-data.ts',
    functionName: 'ErasePersonalData',
    auth: true,
    summary: "Erase the user's personal data by destroying their data key",
    access: { table: 'write', dataKeys: 'none', cache: true },
  },
  {
    method: 'GET',
    path: '/health',
    entry: 'lambdas/http/health.ts',
    functionName: 'Health',
    auth: false,
    summary: 'Liveness',
    access: { table: 'none', dataKeys: 'none', cache: false },
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
  access: { table: 'none', dataKeys: 'none', cache: false },
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

/** The aggregator is not an HTTP route but is built and deployed the same way. */
export const streamHandler = {
  entry: 'lambdas/stream/aggregate.ts',
  functionName: 'Aggregator',
} as const;
