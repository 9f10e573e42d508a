import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

/**
 * Opaque history cursors. A cursor carries the position after the last item of a page and a digest of the
 * user and filters it was issued for, signed with HMAC-SHA256, so a forged, tampered or re-used-elsewhere
 * cursor is rejected instead of silently walking another position.
 */
export interface CursorPosition {
  transactionId: string;
  /** The history index sort key of the last item returned. */
  dateSk: string;
}

export interface CursorScope {
  userId: string;
  from?: string | undefined;
  to?: string | undefined;
  type?: string | undefined;
}

const scopeDigest = (scope: CursorScope): string =>
  createHash('sha256')
    .update(JSON.stringify([scope.userId, scope.from ?? null, scope.to ?? null, scope.type ?? null]))
    .digest('base64url')
    .slice(0, 16);

const sign = (secret: string, payload: string): Buffer => createHmac('sha256', secret).update(payload).digest();

export function encodeCursor(secret: string, scope: CursorScope, position: CursorPosition): string {
  const payload = Buffer.from(
    JSON.stringify({ v: 1, s: scopeDigest(scope), t: position.transactionId, d: position.dateSk }),
  ).toString('base64url');
  return `${payload}.${sign(secret, payload).toString('base64url')}`;
}

/** The position a cursor points at, or `undefined` if it was not issued by us for exactly this scope. */
export function decodeCursor(secret: string, scope: CursorScope, cursor: string): CursorPosition | undefined {
  const [payload, tag, extra] = cursor.split('.');
  if (!payload || !tag || extra !== undefined || cursor.length > 1024) return undefined;
  const expected = sign(secret, payload);
  const given = Buffer.from(tag, 'base64url');
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return undefined;
  let decoded: unknown;
  try {
    decoded = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
  } catch {
    return undefined;
  }
  if (typeof decoded !== 'object' || decoded === null) return undefined;
  const { v, s, t, d } = decoded as Record<string, unknown>;
  if (v !== 1 || s !== scopeDigest(scope) || typeof t !== 'string' || typeof d !== 'string') return undefined;
  return { transactionId: t, dateSk: d };
}
