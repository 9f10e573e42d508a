import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';

/**
 * AES-256-GCM for one field of one row (DESIGN.md, "Encryption").
 *
 * Stored form: `v1.<keyVersion>.<iv>.<ciphertext+tag>` (base64url, no padding), with a fresh 96-bit random IV
 * per call and a 128-bit tag. The AAD binds the format version, the key version, `userId`, `transactionId` and
 * the field name as a JSON array, so no two different contexts share an AAD and a ciphertext copied to another
 * row, user or field — or relabelled with another key version — fails authentication.
 *
 * Errors never carry the plaintext, the key or the ciphertext.
 */
export interface FieldContext {
  userId: string;
  transactionId: string;
  field: string;
}

export class FieldDecryptionError extends Error {
  constructor(message = 'The field could not be decrypted') {
    super(message);
    this.name = 'FieldDecryptionError';
  }
}

const FORMAT = 'v1';
const ALGORITHM = 'aes-256-gcm';
const KEY_BYTES = 32;
const IV_BYTES = 12;
const TAG_BYTES = 16;
const BASE64URL = /^[A-Za-z0-9_-]+$/;
const KEY_VERSION = /^[1-9][0-9]{0,14}$/;

function assertKey(key: Uint8Array): void {
  if (key.byteLength !== KEY_BYTES) throw new RangeError(`A field key must be ${KEY_BYTES} bytes`);
}

function aad(keyVersion: number, ctx: FieldContext): Buffer {
  return Buffer.from(JSON.stringify([FORMAT, keyVersion, ctx.userId, ctx.transactionId, ctx.field]), 'utf8');
}

/** Strict base64url: only the URL alphabet, no padding, and canonical (re-encodes to the same text). */
function decodeBase64url(text: string): Buffer | null {
  if (!BASE64URL.test(text)) return null;
  const bytes = Buffer.from(text, 'base64url');
  return bytes.toString('base64url') === text ? bytes : null;
}

interface Parsed {
  keyVersion: number;
  iv: Buffer;
  sealed: Buffer;
}

function parse(stored: string): Parsed {
  if (typeof stored !== 'string') throw new FieldDecryptionError('The stored field is malformed');
  const parts = stored.split('.');
  if (parts.length !== 4) throw new FieldDecryptionError('The stored field is malformed');
  const [format, version, ivText, sealedText] = parts as [string, string, string, string];
  if (format !== FORMAT) throw new FieldDecryptionError('The stored field has an unknown format version');
  if (!KEY_VERSION.test(version)) throw new FieldDecryptionError('The stored field is malformed');
  const keyVersion = Number(version);
  if (!Number.isSafeInteger(keyVersion)) throw new FieldDecryptionError('The stored field is malformed');
  const iv = decodeBase64url(ivText);
  const sealed = decodeBase64url(sealedText);
  if (iv === null || iv.length !== IV_BYTES || sealed === null || sealed.length < TAG_BYTES) {
    throw new FieldDecryptionError('The stored field is malformed');
  }
  return { keyVersion, iv, sealed };
}

export function sealField(key: Uint8Array, keyVersion: number, ctx: FieldContext, plaintext: string): string {
  assertKey(key);
  if (!Number.isSafeInteger(keyVersion) || keyVersion < 1) throw new RangeError('A key version must be a positive integer');
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv(ALGORITHM, key, iv, { authTagLength: TAG_BYTES });
  cipher.setAAD(aad(keyVersion, ctx));
  const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final(), cipher.getAuthTag()]);
  return `${FORMAT}.${keyVersion}.${iv.toString('base64url')}.${body.toString('base64url')}`;
}

export function openField(key: Uint8Array, ctx: FieldContext, stored: string): string {
  const { keyVersion, iv, sealed } = parse(stored);
  if (key.byteLength !== KEY_BYTES) throw new FieldDecryptionError('The field key has the wrong length');
  const tag = sealed.subarray(sealed.length - TAG_BYTES);
  const body = sealed.subarray(0, sealed.length - TAG_BYTES);
  try {
    const decipher = createDecipheriv(ALGORITHM, key, iv, { authTagLength: TAG_BYTES });
    decipher.setAAD(aad(keyVersion, ctx));
    decipher.setAuthTag(tag);
    const plain = Buffer.concat([decipher.update(body), decipher.final()]);
    // Sealed text is always valid UTF-8; `fatal` turns anything else into an error, not U+FFFD.
    return new TextDecoder('utf-8', { fatal: true }).decode(plain);
  } catch {
    // The OpenSSL message says nothing useful and nothing secret either, but do not pass it on.
    throw new FieldDecryptionError('The field failed authentication (tampered, moved, or under another key)');
  }
}

/** The data-key version a stored field was sealed under; throws `FieldDecryptionError` when malformed. */
export function storedKeyVersion(stored: string): number {
  return parse(stored).keyVersion;
}
