import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  analyticsKey,
  canonicalQuery,
  encodeKeyPart,
  historyKey,
  lockKey,
  ttlWithJitter,
  userVersionKey,
} from '../../lambdas/core/cache-keys.ts';

/** The hash tag Redis Cluster hashes (the cluster spec's rule): between the first `{` and the next `}`, if non-empty. */
function hashTag(key: string): string {
  const open = key.indexOf('{');
  if (open === -1) return key;
  const close = key.indexOf('}', open + 1);
  if (close === -1 || close === open + 1) return key;
  return key.slice(open + 1, close);
}

const anyUserId = fc.string({ minLength: 1, maxLength: 40, unit: 'binary' });
const apiUserId = fc.string({ minLength: 1, maxLength: 64, unit: fc.constantFrom(...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-') });
const baseQuery = { limit: '20', cursor: 'abc', from: '2026-01-01', to: '2026-01-31', type: 'credit' };

describe('cache keys', () => {
  it('spell the documented layout for an ordinary user id', () => {
    expect(userVersionKey('user-42')).toBe('{u:user-42}:ver');
    expect(historyKey('user-42', '7', { limit: '20' })).toMatch(/^\{u:user-42\}:v7:h:[A-Za-z0-9_-]{22}$/);
    expect(analyticsKey('user-42', '7', null)).toBe('{u:user-42}:v7:a1:all');
    expect(analyticsKey('user-42', '7', { from: '2026-11-01', to: '2026-11-30' })).toBe('{u:user-42}:v7:a1:2026-11-01~2026-11-30');
    expect(lockKey('{u:user-42}:v7:a1:all')).toBe('{u:user-42}:v7:a1:all:lock');
  });

  it('put every key of a user, locks included, in the same hash slot: the tag is exactly u:<encoded id>', () => {
    fc.assert(
      fc.property(anyUserId, fc.nat({ max: 1_000 }), (userId, n) => {
        const version = String(n);
        const tag = `u:${encodeKeyPart(userId)}`;
        const keys = [
          userVersionKey(userId),
          historyKey(userId, version, baseQuery),
          analyticsKey(userId, version, null),
          analyticsKey(userId, version, { from: '2026-01-01', to: '2026-02-01' }),
        ];
        for (const key of [...keys, ...keys.map(lockKey)]) expect(hashTag(key)).toBe(tag);
      }),
    );
  });

  it('never let two different user ids share a tag, even ids holding }, {, :, %, ~ or non-ASCII', () => {
    fc.assert(
      fc.property(anyUserId, anyUserId, (a, b) => {
        fc.pre(a !== b);
        expect(encodeKeyPart(a)).not.toBe(encodeKeyPart(b));
        expect(userVersionKey(a)).not.toBe(userVersionKey(b));
        expect(historyKey(a, '1', baseQuery)).not.toBe(historyKey(b, '1', baseQuery));
        expect(analyticsKey(a, '1', null)).not.toBe(analyticsKey(b, '1', null));
      }),
    );
    // The classic attempts to break out of the tag or to impersonate a prefix.
    const tricky = ['a}', 'a}:ver', '{u:a}', 'a:v1', 'a%007d', 'a%', '}', ':', 'a}{u:b', 'é', '\u{1F600}', '\uD800'];
    const tags = tricky.map((id) => hashTag(userVersionKey(id)));
    expect(new Set(tags).size).toBe(tricky.length);
    for (const id of tricky) expect(userVersionKey(id)).toMatch(/^\{u:[A-Za-z0-9_.%-]+\}:ver$/);
  });

  it('leave ids valid for the API (the [A-Za-z0-9_.-] alphabet) readable as they are', () => {
    fc.assert(fc.property(apiUserId, (userId) => {
      expect(encodeKeyPart(userId)).toBe(userId);
    }));
  });

  it('change the history key when any single query parameter changes, is added or is removed', () => {
    const base = historyKey('u1', '3', baseQuery);
    for (const name of Object.keys(baseQuery) as (keyof typeof baseQuery)[]) {
      expect(historyKey('u1', '3', { ...baseQuery, [name]: `${baseQuery[name]}x` }), `changed ${name}`).not.toBe(base);
      expect(historyKey('u1', '3', { ...baseQuery, [name]: undefined }), `removed ${name}`).not.toBe(base);
    }
    expect(historyKey('u1', '3', { ...baseQuery, extra: '1' })).not.toBe(base);
  });

  it('give the same history key whatever the parameter order, and ignore parameters that are undefined', () => {
    fc.assert(
      fc.property(fc.shuffledSubarray(Object.entries(baseQuery), { minLength: 5, maxLength: 5 }), (entries) => {
        expect(historyKey('u1', '3', Object.fromEntries(entries))).toBe(historyKey('u1', '3', baseQuery));
      }),
    );
    expect(historyKey('u1', '3', { limit: '20', type: undefined })).toBe(historyKey('u1', '3', { limit: '20' }));
  });

  it('give different history keys to different queries (canonical form is injective: no separator confusion)', () => {
    const query = fc.dictionary(fc.string({ maxLength: 6 }), fc.option(fc.string({ maxLength: 6 }), { nil: undefined }), { maxKeys: 4 });
    fc.assert(
      fc.property(query, query, (a, b) => {
        fc.pre(canonicalQuery(a) !== canonicalQuery(b));
        expect(historyKey('u1', '1', a)).not.toBe(historyKey('u1', '1', b));
      }),
    );
    expect(historyKey('u1', '1', { a: 'b&c=d' })).not.toBe(historyKey('u1', '1', { a: 'b', c: 'd' }));
    expect(historyKey('u1', '1', { a: '' })).not.toBe(historyKey('u1', '1', {}));
  });

  it('carry the version, so a bumped version never reads an old entry', () => {
    expect(historyKey('u1', '1', baseQuery)).not.toBe(historyKey('u1', '2', baseQuery));
    expect(analyticsKey('u1', '1', null)).not.toBe(analyticsKey('u1', '2', null));
    expect(historyKey('u1', '1', baseQuery)).not.toBe(historyKey('u1', '11', baseQuery));
  });

  it('keep history, analytics, all-time and period keys of one user apart, and periods apart from each other', () => {
    const keys = [
      historyKey('u1', '1', {}),
      analyticsKey('u1', '1', null),
      analyticsKey('u1', '1', { from: '2026-01-01', to: '2026-01-02' }),
      analyticsKey('u1', '1', { from: '2026-01-01', to: '2026-01-03' }),
      analyticsKey('u1', '1', { from: '2026-01-02', to: '2026-01-02' }),
      userVersionKey('u1'),
    ];
    expect(new Set([...keys, ...keys.map(lockKey)]).size).toBe(keys.length * 2);
  });

  it('refuse a version that is not a decimal integer (it would let a key spell another layout)', () => {
    expect(() => historyKey('u1', '1:h', {})).toThrow();
    expect(() => analyticsKey('u1', '', null)).toThrow();
    expect(() => userVersionKey('')).toThrow();
  });
});

describe('ttlWithJitter', () => {
  it('stays within ±10 % of the base (rounded) for any random draw', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 86_400 }), fc.double({ min: 0, max: 1, noNaN: true }), (base, r) => {
        const ttl = ttlWithJitter(base, () => r);
        expect(Number.isInteger(ttl)).toBe(true);
        expect(ttl).toBeGreaterThanOrEqual(Math.max(1, Math.round(base * 0.9)));
        expect(ttl).toBeLessThanOrEqual(Math.round(base * 1.1));
      }),
    );
  });

  it('spreads the defaults: 300 s → 270..330, 60 s → 54..66', () => {
    expect(ttlWithJitter(300, () => 0)).toBe(270);
    expect(ttlWithJitter(300, () => 1)).toBe(330);
    expect(ttlWithJitter(300, () => 0.5)).toBe(300);
    expect(ttlWithJitter(60, () => 0)).toBe(54);
    expect(ttlWithJitter(60, () => 1)).toBe(66);
  });

  it('is never below 1 second, even for a tiny, zero or invalid base or an out-of-range random', () => {
    expect(ttlWithJitter(1, () => 0)).toBe(1);
    expect(ttlWithJitter(0, () => 0.5)).toBe(1);
    expect(ttlWithJitter(-5)).toBe(1);
    expect(ttlWithJitter(Number.NaN)).toBe(1);
    expect(ttlWithJitter(100, () => -3)).toBe(90);
    expect(ttlWithJitter(100, () => 7)).toBe(110);
  });
});
