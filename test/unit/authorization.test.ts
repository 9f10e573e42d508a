import { describe, expect, it } from 'vitest';
import { mayActOn, principalFrom, scopeList, SCOPES } from '../../lambdas/core/authorization.ts';
import { authEnforced } from '../../lambdas/middleware/auth.ts';
import { ROUTE_SCOPES as LOCAL_ROUTE_SCOPES } from '../../local/auth.ts';
import { ROUTE_SCOPES as STACK_ROUTE_SCOPES } from '../../lib/auth.ts';

const userClaims = { sub: 'user-42', client_id: 'users-client', token_use: 'access', scope: 'openid tally/transactions' };
const serviceClaims = { sub: 'svc-client', client_id: 'svc-client', token_use: 'access', scope: 'tally/admin' };

describe('principalFrom (claims of the JWT authorizer → who is calling)', () => {
  it('reads an end user from a Cognito access token (scope string, sub)', () => {
    expect(principalFrom(userClaims, null)).toEqual({
      ok: true,
      principal: { kind: 'user', subject: 'user-42', clientId: 'users-client', scopes: ['openid', 'tally/transactions'] },
    });
  });

  it('reads a service from the tally/admin scope, from the scopes array or the claim', () => {
    expect(principalFrom({ ...serviceClaims, scope: undefined }, ['tally/admin'])).toMatchObject({ ok: true, principal: { kind: 'service' } });
    expect(principalFrom(serviceClaims, undefined)).toMatchObject({ ok: true, principal: { kind: 'service', subject: 'svc-client' } });
  });

  it('admin wins when a token carries both scopes', () => {
    expect(principalFrom({ ...userClaims, scope: 'tally/transactions tally/admin' }, null)).toMatchObject({ principal: { kind: 'service' } });
  });

  it('is a 401 without claims, without a subject, or for a non-access token', () => {
    expect(principalFrom(undefined, undefined)).toMatchObject({ ok: false, status: 401 });
    expect(principalFrom(null, ['tally/admin'])).toMatchObject({ ok: false, status: 401 });
    expect(principalFrom({ ...userClaims, sub: '' }, null)).toMatchObject({ ok: false, status: 401 });
    expect(principalFrom({ ...userClaims, token_use: 'id' }, null)).toMatchObject({ ok: false, status: 401 });
  });

  it('is a 403 for a verified token that grants none of Tally’s scopes', () => {
    expect(principalFrom({ ...userClaims, scope: 'openid email' }, [])).toMatchObject({ ok: false, status: 403 });
    expect(principalFrom({ ...userClaims, scope: 'tally/transactionsX' }, null)).toMatchObject({ ok: false, status: 403 });
  });

  it('parses API Gateway’s renderings of the scope claim', () => {
    expect(scopeList('a b  c')).toEqual(['a', 'b', 'c']);
    expect(scopeList('[a b]')).toEqual(['a', 'b']);
    expect(scopeList(['a', 'b'])).toEqual(['a', 'b']);
    expect(scopeList(42)).toEqual([]);
    expect(scopeList(undefined)).toEqual([]);
  });
});

describe('mayActOn (the path’s user_id against the principal)', () => {
  const user = { kind: 'user' as const, subject: 'user-42', clientId: undefined, scopes: [SCOPES.transactions] };
  const service = { kind: 'service' as const, subject: 'svc', clientId: 'svc', scopes: [SCOPES.admin] };

  it('lets an end user act on their own data only', () => {
    expect(mayActOn(user, 'user-42')).toEqual({ allowed: true });
    expect(mayActOn(user, 'user-43')).toMatchObject({ allowed: false });
    expect(mayActOn(user, 'USER-42')).toMatchObject({ allowed: false });
    expect(mayActOn(user, 'user-42 ')).toMatchObject({ allowed: false });
  });

  it('lets a tally/admin service act on any user', () => {
    expect(mayActOn(service, 'user-42')).toEqual({ allowed: true });
    expect(mayActOn(service, 'anyone')).toEqual({ allowed: true });
  });

  it('lets any principal call a route without a user in its path', () => {
    expect(mayActOn(user, undefined)).toEqual({ allowed: true });
  });
});

describe('authEnforced (the AUTH_MODE switch)', () => {
  it('is on by default and for any value but "off"', () => {
    expect(authEnforced({})).toBe(true);
    expect(authEnforced({ AUTH_MODE: 'on' })).toBe(true);
    expect(authEnforced({ AUTH_MODE: 'OFF' })).toBe(true);
    expect(authEnforced({ AUTH_MODE: 'false' })).toBe(true);
  });

  it('can be switched off locally but never inside a Lambda runtime', () => {
    expect(authEnforced({ AUTH_MODE: 'off' })).toBe(false);
    expect(authEnforced({ AUTH_MODE: 'off', AWS_LAMBDA_FUNCTION_NAME: 'tally-CreateTransaction' })).toBe(true);
  });
});

describe('scope names', () => {
  it('are the same in the handlers, the local verifier and the CDK stack', () => {
    expect([...LOCAL_ROUTE_SCOPES].sort()).toEqual([...STACK_ROUTE_SCOPES].sort());
    expect([SCOPES.admin, SCOPES.transactions].sort()).toEqual([...STACK_ROUTE_SCOPES].sort());
  });
});

describe('the shared middleware on API Gateway-shaped events', async () => {
  const { httpHandler } = await import('../../lambdas/middleware/http.ts');
  const echo = httpHandler(async (request) => ({ statusCode: 200, body: { kind: request.principal?.kind ?? null, sub: request.principal?.subject ?? null } }));
  const open = httpHandler(async () => ({ statusCode: 200, body: {} }), { auth: 'none' });
  const context = { functionName: 'unit', awsRequestId: 'r', getRemainingTimeInMillis: () => 1000 } as never;
  // What API Gateway HTTP API (payload 2.0) passes for a Cognito access token: every claim a string, scopes
  // null when the route lists none.
  const event = (userId: string, jwt?: { claims: Record<string, string>; scopes: string[] | null }) =>
    ({
      version: '2.0',
      routeKey: 'GET /users/{user_id}/transactions',
      rawPath: `/users/${userId}/transactions`,
      rawQueryString: '',
      headers: {},
      pathParameters: { user_id: userId },
      requestContext: { requestId: 'req-1', routeKey: 'GET /users/{user_id}/transactions', ...(jwt ? { authorizer: { jwt } } : {}) },
      isBase64Encoded: false,
    }) as never;
  const cognitoUser = { sub: 'user-42', client_id: 'abc', token_use: 'access', scope: 'tally/transactions', exp: '1999999999', iat: '1999990000' };

  const withEnv = async <T>(env: Record<string, string | undefined>, run: () => Promise<T>): Promise<T> => {
    const saved = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]));
    Object.assign(process.env, env);
    for (const [k, v] of Object.entries(env)) if (v === undefined) delete process.env[k];
    try {
      return await run();
    } finally {
      for (const [k, v] of Object.entries(saved)) if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  };

  it('lets the owner through and hands the principal to the handler', async () => {
    const result = (await echo(event('user-42', { claims: cognitoUser, scopes: null }), context)) as { statusCode: number; body: string };
    expect(result.statusCode).toBe(200);
    expect(JSON.parse(result.body)).toEqual({ kind: 'user', sub: 'user-42' });
  });

  it('is a 403 problem for another user, a 401 without claims, 403 without a Tally scope', async () => {
    expect(((await echo(event('user-43', { claims: cognitoUser, scopes: null }), context)) as { statusCode: number }).statusCode).toBe(403);
    const unauthenticated = (await echo(event('user-42'), context)) as { statusCode: number; headers: Record<string, string> };
    expect(unauthenticated.statusCode).toBe(401);
    expect(unauthenticated.headers['www-authenticate']).toContain('Bearer');
    expect(((await echo(event('user-42', { claims: { ...cognitoUser, scope: 'openid' }, scopes: [] }), context)) as { statusCode: number }).statusCode).toBe(403);
  });

  it('lets an admin service act on any user, from the scopes array', async () => {
    const claims = { sub: 'svc', client_id: 'svc', token_use: 'access', scope: 'tally/admin' };
    const result = (await echo(event('anyone', { claims, scopes: ['tally/admin'] }), context)) as { statusCode: number; body: string };
    expect(JSON.parse(result.body)).toEqual({ kind: 'service', sub: 'svc' });
  });

  it('AUTH_MODE=off opens it only outside a Lambda runtime', async () => {
    await withEnv({ AUTH_MODE: 'off', AWS_LAMBDA_FUNCTION_NAME: undefined }, async () => {
      expect(((await echo(event('user-42'), context)) as { statusCode: number }).statusCode).toBe(200);
    });
    await withEnv({ AUTH_MODE: 'off', AWS_LAMBDA_FUNCTION_NAME: 'tally-ListTransactions' }, async () => {
      expect(((await echo(event('user-42'), context)) as { statusCode: number }).statusCode).toBe(401);
    });
  });

  it('a route that opts out (health) needs no claims', async () => {
    expect(((await open(event('x'), context)) as { statusCode: number }).statusCode).toBe(200);
  });
});
