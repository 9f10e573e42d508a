import { problems } from '../core/problems.ts';
import { TRANSACTION_ID_PATTERN, USER_ID_PATTERN } from '../core/transaction.ts';
import type { HttpRequest } from './http.ts';

/** The `user_id` path parameter, or a 400 naming it. */
export function userIdParam(request: HttpRequest): string {
  const userId = request.params.user_id ?? '';
  if (!USER_ID_PATTERN.test(userId)) {
    throw problems.badRequest('The user_id path parameter is invalid', [
      { field: 'user_id', message: 'must be 1–64 characters of A-Z, a-z, 0-9, _, . or -' },
    ]);
  }
  return userId;
}

/** The `transaction_id` path parameter. An id we could never have issued cannot exist: 404. */
export function transactionIdParam(request: HttpRequest): string {
  const id = request.params.transaction_id ?? '';
  if (!TRANSACTION_ID_PATTERN.test(id)) throw problems.notFound(`Transaction ${id.slice(0, 40)} does not exist for this user`);
  return id;
}

/** `If-Match: "3"` (or `W/"3"`) → 3; absent or `*` → undefined; anything else → 400. */
export function ifMatchVersion(request: HttpRequest): number | undefined {
  const raw = request.headers['if-match']?.trim();
  if (raw === undefined || raw === '*') return undefined;
  const match = /^(?:W\/)?"(\d{1,15})"$/.exec(raw) ?? /^(\d{1,15})$/.exec(raw);
  if (!match) {
    throw problems.badRequest('The If-Match header must be a version in quotes, e.g. If-Match: "3"', [
      { field: 'If-Match', message: 'must be a quoted version number such as "3"' },
    ]);
  }
  return Number(match[1]);
}

export const etag = (version: number): string => `"${version}"`;
