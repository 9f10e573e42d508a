/**
 * Who the caller is, from the claims API Gateway's JWT authorizer passes on, and whether they may act on a
 * user's data. Pure: no AWS import, no I/O. The middleware (lambdas/middleware/auth.ts) calls these.
 *
 * Cognito access tokens carry `sub`, `client_id`, `token_use: "access"` and `scope` (space separated). API
 * Gateway forwards every claim as a string and the granted scopes as `scopes` (an array, or null when the
 * route lists no scopes), so both places are read.
 */

/** OAuth scopes of the `tally` resource server. lib/auth.ts declares the same; a unit test holds them equal. */
export const SCOPES = {
  /** Service callers (client-credentials flow): may act on any user. */
  admin: 'tally/admin',
  /** End users: may act on their own data only (`user_id == sub`). */
  transactions: 'tally/transactions',
} as const;

export type Principal =
  | { kind: 'service'; subject: string; clientId: string | undefined; scopes: string[] }
  | { kind: 'user'; subject: string; clientId: string | undefined; scopes: string[] };

export type ClaimValue = string | number | boolean | string[] | null | undefined;

export type PrincipalResult =
  | { ok: true; principal: Principal }
  | { ok: false; status: 401 | 403; reason: string };

const SCOPE_TOKEN = /^[\x21\x23-\x5B\x5D-\x7E]+$/;

/** `"a b"`, `["a","b"]`, or API Gateway's rendering of an array claim `"[a b]"` → `["a","b"]`. */
export function scopeList(value: ClaimValue): string[] {
  if (value === null || value === undefined) return [];
  if (Array.isArray(value)) return value.filter((s) => typeof s === 'string' && SCOPE_TOKEN.test(s));
  if (typeof value !== 'string') return [];
  const trimmed = value.trim().replace(/^\[(.*)\]$/, '$1');
  return trimmed.split(/\s+/).filter((s) => SCOPE_TOKEN.test(s));
}

const text = (value: ClaimValue): string | undefined => (typeof value === 'string' && value.length > 0 ? value : undefined);

/**
 * The principal of a request, or why there is none: 401 when the claims are missing or are not those of an
 * access token, 403 when the token grants none of Tally's scopes.
 */
export function principalFrom(
  claims: Record<string, ClaimValue> | null | undefined,
  grantedScopes: readonly string[] | null | undefined,
): PrincipalResult {
  if (!claims || typeof claims !== 'object') return { ok: false, status: 401, reason: 'no verified token claims' };
  const subject = text(claims.sub);
  if (!subject) return { ok: false, status: 401, reason: 'the token has no subject' };
  const tokenUse = text(claims.token_use);
  if (tokenUse !== undefined && tokenUse !== 'access') return { ok: false, status: 401, reason: 'an access token is required' };
  const scopes = [...new Set([...(grantedScopes ?? []).filter((s) => typeof s === 'string'), ...scopeList(claims.scope)])];
  const clientId = text(claims.client_id);
  if (scopes.includes(SCOPES.admin)) return { ok: true, principal: { kind: 'service', subject, clientId, scopes } };
  if (scopes.includes(SCOPES.transactions)) return { ok: true, principal: { kind: 'user', subject, clientId, scopes } };
  return { ok: false, status: 403, reason: `the token grants neither ${SCOPES.transactions} nor ${SCOPES.admin}` };
}

export type AccessDecision = { allowed: true } | { allowed: false; reason: string };

/**
 * May `principal` act on the data of `targetUserId` (the route's `user_id`)? A service with `tally/admin` may
 * act on anyone; an end user only on themselves. A route without a user in its path is open to any principal.
 * The decision depends on the path alone, never on whether the data exists, so it leaks nothing.
 */
export function mayActOn(principal: Principal, targetUserId: string | undefined): AccessDecision {
  if (targetUserId === undefined) return { allowed: true };
  if (principal.kind === 'service') return { allowed: true };
  if (principal.subject === targetUserId) return { allowed: true };
  return { allowed: false, reason: "an end user may only act on their own data (user_id must equal the token's sub)" };
}
