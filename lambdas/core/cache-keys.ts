import { createHash } from 'node:crypto';

/**
 * The Redis key layout (docs/caching.md). Every key of a user starts with the hash tag `{u:<encoded id>}`, so
 * all of a user's keys live in one hash slot (ElastiCache Serverless and cluster mode need that for Lua scripts
 * and multi-key commands) and the key of one user can never be read as another's.
 *
 *   {u:<id>}:ver                        the user's cache version (INCR on every write and aggregator run)
 *   {u:<id>}:v<version>:h:<query hash>  a history page
 *   {u:<id>}:v<version>:a1:all          all-time analytics (`1` is ANALYTICS_KEY_SCHEMA)
 *   {u:<id>}:v<version>:a1:<from>~<to>  analytics of a period
 *   <key>:lock                          the single-flight lock of a key (same slot as the key)
 *
 * Keys never contain a name or a ciphertext; the user id is there, encoded.
 */

/** Bump to invalidate every cached history page at once (e.g. when the page's JSON shape changes). */
export const HISTORY_KEY_SCHEMA = 1;
/** Bump to invalidate every cached analytics result at once. */
export const ANALYTICS_KEY_SCHEMA = 1;

const SAFE = /[A-Za-z0-9_.-]/;

/**
 * An injective encoding into `[A-Za-z0-9_.%-]`: safe characters stay, every other UTF-16 code unit (including
 * `%` itself) becomes `%` + 4 hex digits. So the result never holds `{`, `}`, `:` or `~`, decoding is
 * unambiguous (two different ids never encode alike), and valid API ids (`[A-Za-z0-9_.-]{1,64}`) read as is.
 */
export function encodeKeyPart(value: string): string {
  let out = '';
  for (let i = 0; i < value.length; i += 1) {
    const ch = value[i] as string;
    out += SAFE.test(ch) ? ch : `%${value.charCodeAt(i).toString(16).padStart(4, '0')}`;
  }
  return out;
}

function userTag(userId: string): string {
  if (userId.length === 0) throw new Error('userId must not be empty');
  return `{u:${encodeKeyPart(userId)}}`;
}

function versionPart(version: string): string {
  if (!/^\d{1,20}$/.test(version)) throw new Error('cache version must be a decimal integer');
  return `v${version}`;
}

export const userVersionKey = (userId: string): string => `${userTag(userId)}:ver`;

/**
 * The canonical form of a query: parameters sorted by name, undefined ones dropped, as JSON (which escapes
 * every separator, so `{a: 'b&c'}` and `{a: 'b', c: ''}` differ).
 */
export function canonicalQuery(query: Readonly<Record<string, string | undefined>>): string {
  const entries = Object.entries(query)
    .filter((entry): entry is [string, string] => entry[1] !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return JSON.stringify(entries);
}

/** 128 bits of SHA-256, base64url (22 characters, no `:`): collisions are not a practical concern. */
function digest(text: string): string {
  return createHash('sha256').update(text).digest().subarray(0, 16).toString('base64url');
}

export function historyKey(userId: string, version: string, query: Readonly<Record<string, string | undefined>>): string {
  return `${userTag(userId)}:${versionPart(version)}:h:${digest(`history/${HISTORY_KEY_SCHEMA}\n${canonicalQuery(query)}`)}`;
}

export function analyticsKey(userId: string, version: string, period: { from: string; to: string } | null): string {
  const part = period === null ? 'all' : `${encodeKeyPart(period.from)}~${encodeKeyPart(period.to)}`;
  return `${userTag(userId)}:${versionPart(version)}:a${ANALYTICS_KEY_SCHEMA}:${part}`;
}

/** The single-flight lock of a cache key; it shares the key's hash tag, hence its slot. */
export const lockKey = (key: string): string => `${key}:lock`;

/**
 * A TTL spread ±10 % around `baseSeconds` so that entries filled together do not expire together (no
 * synchronised stampede on the database); an integer, never below 1 second.
 */
export function ttlWithJitter(baseSeconds: number, random: () => number = Math.random, spread = 0.1): number {
  if (!Number.isFinite(baseSeconds) || baseSeconds <= 0) return 1;
  const factor = 1 - spread + 2 * spread * Math.min(Math.max(random(), 0), 1);
  return Math.max(1, Math.round(baseSeconds * factor));
}
