import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { FieldDecryptionError, openField, sealField, storedKeyVersion, type FieldContext } from '../../lambdas/adapters/field-cipher.ts';

const key = randomBytes(32);
const ctx: FieldContext = { userId: 'user-42', transactionId: '01JDZ8Q3V8K6E2M9W4T7A5B3CX', field: 'full_name' };
const NAME = 'Ama Mensah';

/** Flips one bit of the decoded bytes of a base64url part and re-encodes it. */
function flipBit(part: string, byteIndex: number): string {
  const bytes = Buffer.from(part, 'base64url');
  const index = byteIndex < 0 ? bytes.length + byteIndex : byteIndex;
  bytes[index] = (bytes[index] ?? 0) ^ 0x01;
  return bytes.toString('base64url');
}

function parts(stored: string): [string, string, string, string] {
  const split = stored.split('.');
  expect(split).toHaveLength(4);
  return split as [string, string, string, string];
}

function expectRejected(stored: string, context: FieldContext = ctx, withKey: Uint8Array = key): FieldDecryptionError {
  let caught: unknown;
  try {
    openField(withKey, context, stored);
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(FieldDecryptionError);
  const message = (caught as Error).message;
  expect(message).not.toContain(NAME);
  if (stored.length > 8) expect(message).not.toContain(stored);
  expect(message).not.toContain(key.toString('base64'));
  expect(message).not.toContain(key.toString('hex'));
  return caught as FieldDecryptionError;
}

describe('field cipher (AES-256-GCM)', () => {
  it('round-trips a name and writes the documented stored form', () => {
    const stored = sealField(key, 3, ctx, NAME);
    expect(stored).toMatch(/^v1\.3\.[A-Za-z0-9_-]{16}\.[A-Za-z0-9_-]+$/);
    expect(stored).not.toContain(NAME);
    expect(stored).not.toContain(Buffer.from(NAME).toString('base64'));
    expect(openField(key, ctx, stored)).toBe(NAME);
    expect(storedKeyVersion(stored)).toBe(3);
  });

  it('uses a fresh 96-bit IV on every call, so equal names never give equal ciphertexts', () => {
    const seen = new Set<string>();
    const ivs = new Set<string>();
    for (let i = 0; i < 200; i += 1) {
      const stored = sealField(key, 1, ctx, NAME);
      const [, , iv] = parts(stored);
      expect(Buffer.from(iv, 'base64url')).toHaveLength(12);
      ivs.add(iv);
      seen.add(stored);
    }
    expect(ivs.size).toBe(200);
    expect(seen.size).toBe(200);
  });

  it('round-trips the empty string', () => {
    const stored = sealField(key, 1, ctx, '');
    expect(openField(key, ctx, stored)).toBe('');
  });

  it('round-trips a 200-character name of mixed scripts and emoji', () => {
    const pieces = ['Ама', 'Μένσα', '明子', 'أمة', 'עמה', 'अमा', 'ᐊᒪ', 'Zoë', '👩🏽‍💻', '🇬🇭', 'ñ', 'ß', '한국'];
    let name = '';
    for (let i = 0; [...name].length < 200; i += 1) name += pieces[i % pieces.length];
    name = [...name].slice(0, 200).join('');
    expect([...name]).toHaveLength(200);
    const stored = sealField(key, 7, ctx, name);
    expect(openField(key, ctx, stored)).toBe(name);
  });

  describe('rejects a tampered stored form', () => {
    const stored = sealField(key, 2, ctx, NAME);
    const [format, version, iv, body] = parts(stored);

    it('format prefix changed', () => {
      expectRejected(['v2', version, iv, body].join('.'));
      expectRejected(['V1', version, iv, body].join('.'));
    });

    it('key version changed (bound into the AAD)', () => {
      expectRejected([format, '3', iv, body].join('.'));
      expectRejected([format, '02', iv, body].join('.'));
      expectRejected([format, '0', iv, body].join('.'));
      expectRejected([format, '-2', iv, body].join('.'));
    });

    it('IV changed', () => {
      expectRejected([format, version, flipBit(iv, 0), body].join('.'));
      expectRejected([format, version, flipBit(iv, -1), body].join('.'));
      expectRejected([format, version, iv.slice(0, -2), body].join('.'));
    });

    it('ciphertext changed', () => {
      expectRejected([format, version, iv, flipBit(body, 0)].join('.'));
    });

    it('tag changed or truncated', () => {
      expectRejected([format, version, iv, flipBit(body, -1)].join('.'));
      expectRejected([format, version, iv, flipBit(body, -16)].join('.'));
      const truncated = Buffer.from(body, 'base64url').subarray(0, -1).toString('base64url');
      expectRejected([format, version, iv, truncated].join('.'));
    });

    it('malformed: wrong number of parts, bad base64url, padding, empty', () => {
      expectRejected('');
      expectRejected('v1.2');
      expectRejected([format, version, iv, body, 'x'].join('.'));
      expectRejected([format, version, iv, body + '='].join('.'));
      expectRejected([format, version, iv, body.slice(0, -1) + '+'].join('.'));
      expectRejected([format, version, iv, ''].join('.'));
      expect(() => storedKeyVersion('not a ciphertext')).toThrow(FieldDecryptionError);
      expect(() => storedKeyVersion('v1.x.aaaa.bbbb')).toThrow(FieldDecryptionError);
    });
  });

  describe('rejects a ciphertext under the wrong AAD (moved to another row)', () => {
    const stored = sealField(key, 1, ctx, NAME);
    it('other user', () => expectRejected(stored, { ...ctx, userId: 'user-43' }));
    it('other transaction', () => expectRejected(stored, { ...ctx, transactionId: '01JDZ8Q3V8K6E2M9W4T7A5B3CY' }));
    it('other field', () => expectRejected(stored, { ...ctx, field: 'note' }));
    it('no ambiguity between fields that a naive concatenation would merge', () => {
      const a = sealField(key, 1, { userId: 'ab', transactionId: 'c', field: 'full_name' }, NAME);
      expectRejected(a, { userId: 'a', transactionId: 'bc', field: 'full_name' });
      const b = sealField(key, 1, { userId: 'a|b', transactionId: 'c', field: 'f' }, NAME);
      expectRejected(b, { userId: 'a', transactionId: 'b|c', field: 'f' });
    });
  });

  it('rejects the wrong key, and a key of the wrong length', () => {
    const stored = sealField(key, 1, ctx, NAME);
    expectRejected(stored, ctx, randomBytes(32));
    expectRejected(stored, ctx, randomBytes(16));
  });

  it('refuses to seal with a bad key or key version, without echoing the input', () => {
    expect(() => sealField(randomBytes(16), 1, ctx, NAME)).toThrow(RangeError);
    expect(() => sealField(key, 0, ctx, NAME)).toThrow(RangeError);
    expect(() => sealField(key, 1.5, ctx, NAME)).toThrow(RangeError);
    try {
      sealField(key, 0, ctx, NAME);
    } catch (error) {
      expect((error as Error).message).not.toContain(NAME);
    }
  });
});
