import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Context } from 'aws-lambda';
import { ulid } from 'ulid';
import { routes, type RouteDefinition } from '../../lib/routes.ts';
import { loadLocalIssuer, type LocalIssuer } from '../../local/auth.ts';
import { toEvent } from '../../local/gateway.ts';
import { startTestStack, type TestStack } from '../support/stack.ts';

let stack: TestStack;
let forger: LocalIssuer;
let stranger: LocalIssuer;
const forgerDirs: string[] = [];
beforeAll(async () => {
  stack = await startTestStack({ stream: false, auth: true });
  const dir = (name: string) => {
    const d = mkdtempSync(join(tmpdir(), `tally-${name}-`));
    forgerDirs.push(d);
    return d;
  };
  // Same issuer and key id as the stack's, another private key: only the signature is wrong.
  forger = await loadLocalIssuer(dir('forger'), { kid: stack.issuer!.kid });
  // Another key with another id: a key the JWKS does not know.
  stranger = await loadLocalIssuer(dir('stranger'));
});
afterAll(async () => {
  await stack?.stop();
  for (const d of forgerDirs) rmSync(d, { recursive: true, force: true });
});

const OWNER = 'auth-owner';
const OTHER = 'auth-other';
const authRoutes = routes.filter((r) => r.auth);

function pathFor(route: RouteDefinition, userId: string, transactionId = ulid()): string {
  return route.path.replace('{user_id}', userId).replace('{transaction_id}', transactionId);
}
const bodyFor = (route: RouteDefinition): unknown =>
  route.method === 'POST'
    ? { full_name: 'Auth Matrix Person', transaction_date: '2026-12-01T09:30:00Z', transaction_amount: '1.00', transaction_type: 'debit' }
    : route.method === 'PATCH'
      ? { transaction_amount: '2.00' }
      : undefined;
const call = (route: RouteDefinition, userId: string, headers: Record<string, string> = {}) => {
  const body = bodyFor(route);
  return stack.request(route.method, pathFor(route, userId), { headers, ...(body === undefined ? {} : { body }) });
};
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
const label = (r: RouteDefinition) => `${r.method} ${r.path}`;

/** A token with `alg: none`: no signature at all. */
const unsigned = (payload: Record<string, unknown>) =>
  `${Buffer.from(JSON.stringify({ alg: 'none', typ: 'JWT' })).toString('base64url')}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}.`;

describe('the auth matrix, over every route of lib/routes.ts', () => {
  it('the table has the routes this matrix expects (all but /health need auth)', () => {
    expect(authRoutes.length).toBe(routes.length - 1);
    expect(routes.filter((r) => !r.auth).map(label)).toEqual(['GET /health']);
  });

  const rejected: Array<[string, () => Promise<Record<string, string>>]> = [
    ['no Authorization header', async () => ({})],
    ['an expired token', async () => bearer(await stack.token({ user: OWNER, expiresInSeconds: -60 }))],
    ['a token from another issuer', async () => bearer(await stack.token({ user: OWNER, issuer: 'https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_evil' }))],
    ['a token for another audience (client_id)', async () => bearer(await stack.token({ user: OWNER, clientId: 'another-app' }))],
    ['a token for another audience (aud)', async () => bearer(await stack.token({ user: OWNER, clientId: 'another-app', audience: 'another-app' }))],
    ['a token signed by another key (same kid)', async () => bearer(await forger.mint({ user: OWNER }))],
    ['a token signed by an unknown key', async () => bearer(await stranger.mint({ admin: true }))],
    ['an unsigned token (alg none)', async () => bearer(unsigned({ sub: OWNER, iss: stack.issuer!.issuer, client_id: 'tally-local-users', scope: 'tally/admin', exp: 9_999_999_999, iat: 1 }))],
    ['a malformed header: "Bearer" alone', async () => ({ authorization: 'Bearer' })],
    ['a malformed header: Basic credentials', async () => ({ authorization: 'Basic dXNlcjpwYXNz' })],
    ['a malformed header: not a JWT', async () => ({ authorization: 'Bearer not-a-jwt' })],
    ['a malformed header: three garbage segments', async () => ({ authorization: 'Bearer e30.e30.@@@' })],
    ['a malformed header: base64 that is not JSON', async () => ({ authorization: 'Bearer aGVsbG8.d29ybGQ.c2ln' })],
    ['a malformed header: a 9 KiB token', async () => ({ authorization: `Bearer ${'a'.repeat(9 * 1024)}.b.c` })],
    ['the token without "Bearer"', async () => ({ authorization: await stack.token({ user: OWNER }) })],
  ];

  for (const route of authRoutes) {
    describe(label(route), () => {
      it.each(rejected)('401 for %s (problem+json, WWW-Authenticate: Bearer)', async (_what, headers) => {
        const response = await call(route, OWNER, await headers());
        expect(response.status).toBe(401);
        expect(response.headers.get('content-type')).toBe('application/problem+json; charset=utf-8');
        expect(response.headers.get('www-authenticate')).toMatch(/^Bearer realm="tally"/);
        expect(response.body.type).toBe('https://tally.dev/problems/unauthorized');
      });

      it('401 with error="invalid_token" for a bad token', async () => {
        const response = await call(route, OWNER, bearer(await stack.token({ user: OWNER, expiresInSeconds: -1 })));
        expect(response.headers.get('www-authenticate')).toContain('error="invalid_token"');
        expect(response.body.detail).toBe('The token has expired');
      });

      it('403 for a valid token without a Tally scope', async () => {
        const response = await call(route, OWNER, bearer(await stack.token({ user: OWNER, scope: 'openid email' })));
        expect(response.status).toBe(403);
      });

      it('403 for another user’s data, decided in the handler’s middleware', async () => {
        const response = await call(route, OTHER, await stack.authHeaders({ user: OWNER }));
        expect(response.status).toBe(403);
        expect(response.body.type).toBe('https://tally.dev/problems/forbidden');
      });

      it('the owner is let through (neither 401/403 nor 5xx)', async () => {
        const response = await call(route, OWNER, await stack.authHeaders({ user: OWNER }));
        expect([401, 403]).not.toContain(response.status);
        expect(response.status).toBeLessThan(500);
      });

      it('a tally/admin service token is let through for any user', async () => {
        for (const user of [OWNER, OTHER, 'someone-else']) {
          const response = await call(route, user, await stack.authHeaders('admin'));
          expect([401, 403]).not.toContain(response.status);
          expect(response.status).toBeLessThan(500);
        }
      });
    });
  }

  it('GET /health needs no token, and ignores a bad one', async () => {
    expect((await stack.request('GET', '/health')).status).toBe(200);
    expect((await stack.request('GET', '/health', { headers: { authorization: 'Bearer garbage' } })).status).toBe(200);
  });

  it('an end user reads their own transaction; another user gets 403, an admin gets it', async () => {
    const created = await stack.request('POST', `/users/${OWNER}/transactions`, {
      body: bodyFor(authRoutes[0]!),
      headers: await stack.authHeaders({ user: OWNER }),
    });
    expect(created.status).toBe(201);
    const location = created.headers.get('location')!;
    expect((await stack.request('GET', location, { headers: await stack.authHeaders({ user: OWNER }) })).status).toBe(200);
    expect((await stack.request('GET', location, { headers: await stack.authHeaders({ user: OTHER }) })).status).toBe(403);
    expect((await stack.request('GET', location, { headers: await stack.authHeaders('admin') })).body.transaction_id).toBe(created.body.transaction_id);
  });

  it('a 403 for another user does not depend on whether the data exists (nothing leaks)', async () => {
    const created = await stack.request('POST', `/users/${OTHER}/transactions`, { body: bodyFor(authRoutes[0]!), headers: await stack.authHeaders('admin') });
    const existing = await stack.request('GET', created.headers.get('location')!, { headers: await stack.authHeaders({ user: OWNER }) });
    const missing = await stack.request('GET', `/users/${OTHER}/transactions/${ulid()}`, { headers: await stack.authHeaders({ user: OWNER }) });
    expect([existing.status, missing.status]).toEqual([403, 403]);
    expect(existing.body.detail).toBe(missing.body.detail);
  });

  it('authorization comes before the body: a stranger gets 403, not a validation answer', async () => {
    const raw = { raw: '{"full_name":', headers: { 'content-type': 'application/json', ...(await stack.authHeaders({ user: OWNER })) } };
    expect((await stack.request('POST', `/users/${OTHER}/transactions`, raw)).status).toBe(403);
    expect((await stack.request('POST', `/users/${OWNER}/transactions`, raw)).status).toBe(400);
  });

  it('Idempotency-Key works with auth on, scoped to the path user whoever the caller (user or admin)', async () => {
    const headers = { ...(await stack.authHeaders({ user: OWNER })), 'idempotency-key': 'auth-idem-1' };
    const first = await stack.request('POST', `/users/${OWNER}/transactions`, { body: bodyFor(authRoutes[0]!), headers });
    const byAdmin = await stack.request('POST', `/users/${OWNER}/transactions`, {
      body: bodyFor(authRoutes[0]!),
      headers: { ...(await stack.authHeaders('admin')), 'idempotency-key': 'auth-idem-1' },
    });
    expect(first.status).toBe(201);
    expect(byAdmin.headers.get('idempotent-replayed')).toBe('true');
    expect(byAdmin.body.transaction_id).toBe(first.body.transaction_id);
    expect((await stack.request('POST', `/users/${OTHER}/transactions`, { body: bodyFor(authRoutes[0]!), headers })).status).toBe(403);
  });
});

describe('every handler fails closed without verified claims (a route deployed without the authorizer)', () => {
  const context = { functionName: 'test', awsRequestId: 'r', getRemainingTimeInMillis: () => 10_000 } as unknown as Context;
  for (const route of routes) {
    it(`${label(route)} → ${route.auth ? '401' : '200'} when invoked directly with no claims`, async () => {
      const { handler } = (await import(pathToFileURL(resolve(route.entry)).href)) as {
        handler: (e: APIGatewayProxyEventV2, c: Context) => Promise<APIGatewayProxyStructuredResultV2>;
      };
      const body = bodyFor(route);
      const params = Object.fromEntries(
        [...route.path.matchAll(/\{(\w+)\}/g)].map((m) => [m[1]!, m[1] === 'user_id' ? OWNER : ulid()]),
      );
      const event = toEvent(
        {
          method: route.method,
          url: pathFor(route, OWNER, params.transaction_id),
          headers: { 'content-type': 'application/json', authorization: `Bearer ${await stack.token({ admin: true })}` },
          body: Buffer.from(body === undefined ? '' : JSON.stringify(body)),
        },
        route,
        params,
      );
      const result = await handler(event, context);
      expect(result.statusCode).toBe(route.auth ? 401 : 200);
    });
  }
});

describe('rejections the gateway answers itself', () => {
  it('echo the caller’s x-request-id in the problem body and header', async () => {
    const r = await stack.request('GET', '/users/u-echo/transactions', { headers: { 'x-request-id': 'client-trace-77' } });
    expect(r.status).toBe(401);
    expect(r.headers.get('x-request-id')).toBe('client-trace-77');
    expect(r.body.request_id).toBe('client-trace-77');
  });
});
