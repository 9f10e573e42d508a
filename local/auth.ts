import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { randomUUID } from 'node:crypto';
import { SignJWT, createLocalJWKSet, errors, exportJWK, generateKeyPair, importJWK, jwtVerify, type JSONWebKeySet, type JWK, type JWTPayload } from 'jose';
import type { RouteDefinition } from '../lib/routes.ts';
import { SCOPES } from '../lambdas/core/authorization.ts';
import { problems } from '../lambdas/core/problems.ts';
import type { Authorizer } from './gateway.ts';

/**
 * The local stand-in for Cognito and API Gateway's JWT authorizer. A local issuer signs ES256 access tokens
 * shaped like Cognito's (`sub`, `client_id`, `scope`, `token_use: "access"`, no `aud`) with a key pair kept
 * in `<dataDir>/auth/` (created on first use, reused after); the authorizer verifies a bearer token against
 * the issuer's JWKS exactly as the JWT authorizer does — signature (ES256 only), issuer, `aud` or `client_id`
 * in the allowed audience, expiry, and one of the route scopes — and hands the claims on as strings.
 */
export const LOCAL_ISSUER = 'https://auth.tally.local';
export const LOCAL_CLIENTS = {
  /** End users' app client: tokens carry `tally/transactions`, `sub` = the user id. */
  users: 'tally-local-users',
  /** Service callers' app client (client credentials): tokens carry `tally/admin`, `sub` = the client id. */
  service: 'tally-local-service',
} as const;
/** What every authenticated route accepts (either one), as lib/auth.ts's ROUTE_SCOPES. */
export const ROUTE_SCOPES: readonly string[] = [SCOPES.admin, SCOPES.transactions];
const ALGORITHM = 'ES256';
/** API Gateway's header limit is ~10 KiB; a Cognito access token is ~1 KiB. */
const MAX_TOKEN_LENGTH = 8 * 1024;
const BEARER = /^Bearer +([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*) *$/i;

export interface MintOptions {
  /** An end user's token for this user id (scope `tally/transactions`). */
  user?: string;
  /** A service token (scope `tally/admin`). */
  admin?: boolean;
  /** Overrides, for tests of rejected tokens. */
  scope?: string;
  clientId?: string;
  subject?: string;
  issuer?: string;
  audience?: string;
  tokenUse?: string;
  /** Lifetime; negative gives a token that expired that many seconds ago. Default 3600. */
  expiresInSeconds?: number;
}

interface KeyFile {
  issuer: string;
  audience: string[];
  kid: string;
  alg: typeof ALGORITHM;
  private_jwk: JWK;
  public_jwk: JWK;
  created_at: string;
}

export interface LocalIssuer {
  issuer: string;
  /** The app client ids accepted as `aud` or `client_id` (the JWT authorizer's audience list). */
  audience: string[];
  kid: string;
  jwks: JSONWebKeySet;
  /** Where the key pair and the JWKS live. */
  keyFile: string;
  jwksFile: string;
  mint(options: MintOptions): Promise<string>;
  /** The gateway hook that verifies tokens like API Gateway's JWT authorizer. */
  authorizer(): Authorizer;
}

/** The issuer of `dataDir`: its key pair is created on first use and reused after. `kid` only for tests. */
export async function loadLocalIssuer(dataDir: string, options: { kid?: string } = {}): Promise<LocalIssuer> {
  const dir = join(resolve(dataDir), 'auth');
  const keyFile = join(dir, 'signing-key.json');
  const jwksFile = join(dir, 'jwks.json');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  let stored: KeyFile;
  try {
    stored = JSON.parse(readFileSync(keyFile, 'utf8')) as KeyFile;
  } catch {
    const pair = await generateKeyPair(ALGORITHM, { extractable: true });
    const kid = options.kid ?? `tally-local-${randomUUID()}`;
    const created: KeyFile = {
      issuer: LOCAL_ISSUER,
      audience: [LOCAL_CLIENTS.users, LOCAL_CLIENTS.service],
      kid,
      alg: ALGORITHM,
      private_jwk: { ...(await exportJWK(pair.privateKey)), kid, alg: ALGORITHM, use: 'sig' },
      public_jwk: { ...(await exportJWK(pair.publicKey)), kid, alg: ALGORITHM, use: 'sig' },
      created_at: new Date().toISOString(),
    };
    try {
      writeFileSync(keyFile, `${JSON.stringify(created, null, 2)}\n`, { mode: 0o600, flag: 'wx' });
      stored = created;
    } catch {
      // Another process created it first: use theirs.
      stored = JSON.parse(readFileSync(keyFile, 'utf8')) as KeyFile;
    }
  }
  const jwks: JSONWebKeySet = { keys: [stored.public_jwk] };
  writeFileSync(jwksFile, `${JSON.stringify(jwks, null, 2)}\n`);
  const privateKey = await importJWK(stored.private_jwk, ALGORITHM);

  const mint = async (o: MintOptions): Promise<string> => {
    const admin = o.admin === true;
    const clientId = o.clientId ?? (admin ? LOCAL_CLIENTS.service : LOCAL_CLIENTS.users);
    const subject = o.subject ?? (admin ? clientId : o.user);
    if (!subject) throw new Error('mint needs --user <id> or --admin');
    const now = Math.floor(Date.now() / 1000);
    const lifetime = o.expiresInSeconds ?? 3600;
    const payload: JWTPayload = {
      client_id: clientId,
      token_use: o.tokenUse ?? 'access',
      scope: o.scope ?? (admin ? SCOPES.admin : SCOPES.transactions),
      auth_time: lifetime < 0 ? now + lifetime - 3600 : now,
      ...(admin ? {} : { username: subject }),
    };
    const jwt = new SignJWT(payload)
      .setProtectedHeader({ alg: ALGORITHM, kid: stored.kid, typ: 'JWT' })
      .setIssuer(o.issuer ?? stored.issuer)
      .setSubject(subject)
      .setJti(randomUUID())
      .setIssuedAt(lifetime < 0 ? now + lifetime - 3600 : now)
      .setExpirationTime(now + lifetime);
    if (o.audience !== undefined) jwt.setAudience(o.audience);
    return jwt.sign(privateKey);
  };

  const issuer: LocalIssuer = {
    issuer: stored.issuer,
    audience: stored.audience,
    kid: stored.kid,
    jwks,
    keyFile,
    jwksFile,
    mint,
    authorizer: () => jwtAuthorizer({ issuer: stored.issuer, audience: stored.audience, jwks }),
  };
  return issuer;
}

const invalidToken = (detail: string) => problems.unauthorized(detail);
const missingToken = () => problems.unauthorized('Send an access token: Authorization: Bearer <token>', false);
const insufficientScope = () =>
  problems.insufficientScope(`The token grants none of the route's scopes (${ROUTE_SCOPES.join(', ')})`, ROUTE_SCOPES);

/** Why a token failed, in words that never repeat the token. */
function describeFailure(error: unknown): string {
  if (error instanceof errors.JWTExpired) return 'The token has expired';
  if (error instanceof errors.JWTClaimValidationFailed) {
    if (error.claim === 'iss') return 'The token was not issued by this API’s issuer';
    if (error.claim === 'nbf' || error.claim === 'iat') return 'The token is not valid yet';
    return `The token's ${error.claim} claim is invalid`;
  }
  if (error instanceof errors.JWSSignatureVerificationFailed) return 'The token signature is invalid';
  if (error instanceof errors.JWKSNoMatchingKey) return 'The token was signed by an unknown key';
  if (error instanceof errors.JOSEAlgNotAllowed || error instanceof errors.JOSENotSupported) return 'The token algorithm is not accepted';
  return 'The token is malformed';
}

/** API Gateway forwards every claim as a string; arrays as `[a b]`. */
function asGatewayClaims(payload: JWTPayload): Record<string, string> {
  const claims: Record<string, string> = {};
  for (const [name, value] of Object.entries(payload)) {
    if (value === undefined || value === null) continue;
    claims[name] = Array.isArray(value) ? `[${value.map(String).join(' ')}]` : typeof value === 'object' ? JSON.stringify(value) : String(value);
  }
  return claims;
}

/**
 * Verifies `Authorization: Bearer <jwt>` like the HTTP API's JWT authorizer: 401 for a missing, malformed,
 * expired, foreign or forged token; 403 when it carries none of the route scopes. Never throws.
 */
export function jwtAuthorizer(options: { issuer: string; audience: readonly string[]; jwks: JSONWebKeySet }): Authorizer {
  const keySet = createLocalJWKSet(options.jwks);
  return async (_route: RouteDefinition, headers: Record<string, string>) => {
    const header = headers.authorization;
    if (header === undefined || header.trim() === '') return { ok: false, problem: missingToken() };
    const match = header.length <= MAX_TOKEN_LENGTH + 16 ? BEARER.exec(header) : null;
    if (!match?.[1]) return { ok: false, problem: invalidToken('The Authorization header must be "Bearer <access token>"') };
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(match[1], keySet, {
        issuer: options.issuer,
        algorithms: [ALGORITHM],
        requiredClaims: ['exp', 'iat', 'sub'],
      }));
    } catch (error) {
      return { ok: false, problem: invalidToken(describeFailure(error)) };
    }
    const audiences = payload.aud === undefined ? [] : Array.isArray(payload.aud) ? payload.aud : [payload.aud];
    const clientId = typeof payload.client_id === 'string' ? payload.client_id : undefined;
    const accepted = audiences.some((a) => options.audience.includes(a)) || (clientId !== undefined && options.audience.includes(clientId));
    if (!accepted) return { ok: false, problem: invalidToken('The token was not issued for this API (aud / client_id)') };
    const scopes = typeof payload.scope === 'string' ? payload.scope.split(/\s+/).filter(Boolean) : [];
    if (!scopes.some((s) => ROUTE_SCOPES.includes(s))) return { ok: false, problem: insufficientScope() };
    return { ok: true, claims: asGatewayClaims(payload), scopes };
  };
}
