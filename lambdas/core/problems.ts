/**
 * Typed problems (RFC 9457). Code anywhere throws one of these; the error middleware renders it as
 * `application/problem+json`. Anything else that escapes a handler is a 500 with a generic body.
 */
export interface FieldError {
  field: string;
  message: string;
}

export const PROBLEM_BASE = 'https://tally.dev/problems/';

export class Problem extends Error {
  readonly status: number;
  readonly type: string;
  readonly title: string;
  readonly detail: string | undefined;
  readonly errors: FieldError[] | undefined;
  readonly headers: Record<string, string>;

  constructor(init: {
    status: number;
    slug: string;
    title: string;
    detail?: string;
    errors?: FieldError[];
    headers?: Record<string, string>;
    cause?: unknown;
  }) {
    super(init.detail ?? init.title, { cause: init.cause });
    this.name = 'Problem';
    this.status = init.status;
    this.type = PROBLEM_BASE + init.slug;
    this.title = init.title;
    this.detail = init.detail;
    this.errors = init.errors;
    this.headers = init.headers ?? {};
  }
}

const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? ' is' : 's are'}`;

export const problems = {
  badRequest: (detail: string, errors?: FieldError[]) =>
    new Problem({ status: 400, slug: 'bad-request', title: 'Bad request', detail, errors }),
  malformedJson: (detail: string) =>
    new Problem({ status: 400, slug: 'malformed-json', title: 'Malformed JSON body', detail }),
  invalidQuery: (errors: FieldError[]) =>
    new Problem({
      status: 400,
      slug: 'invalid-query',
      title: 'Invalid query parameters',
      detail: `${plural(errors.length, 'query parameter')} invalid`,
      errors,
    }),
  invalidCursor: () =>
    new Problem({
      status: 400,
      slug: 'invalid-cursor',
      title: 'Invalid cursor',
      detail: 'The cursor was not issued by this server for this user and these filters',
      errors: [{ field: 'cursor', message: 'must be a next_cursor returned for the same user and filters' }],
    }),
  /** 401 for a missing token (`invalid: false`) or a bad one (RFC 6750 `error="invalid_token"`). */
  unauthorized: (detail: string, invalid = true) =>
    new Problem({
      status: 401,
      slug: 'unauthorized',
      title: 'Authentication required',
      detail,
      headers: { 'www-authenticate': invalid ? 'Bearer realm="tally", error="invalid_token"' : 'Bearer realm="tally"' },
    }),
  /** 403 for a valid token that grants none of the needed scopes (RFC 6750 `insufficient_scope`). */
  insufficientScope: (detail: string, scopes?: readonly string[]) =>
    new Problem({
      status: 403,
      slug: 'forbidden',
      title: 'Forbidden',
      detail,
      headers: {
        'www-authenticate': `Bearer realm="tally", error="insufficient_scope"${scopes ? `, scope="${scopes.join(' ')}"` : ''}`,
      },
    }),
  forbidden: (detail: string) => new Problem({ status: 403, slug: 'forbidden', title: 'Forbidden', detail }),
  notFound: (detail: string) => new Problem({ status: 404, slug: 'not-found', title: 'Not found', detail }),
  methodNotAllowed: (allow: string[]) =>
    new Problem({
      status: 405,
      slug: 'method-not-allowed',
      title: 'Method not allowed',
      detail: `Allowed methods: ${allow.join(', ')}`,
      headers: { allow: allow.join(', ') },
    }),
  preconditionFailed: (detail: string) =>
    new Problem({ status: 412, slug: 'precondition-failed', title: 'Precondition failed', detail }),
  payloadTooLarge: (limitBytes: number) =>
    new Problem({
      status: 413,
      slug: 'payload-too-large',
      title: 'Payload too large',
      detail: `The body must be at most ${limitBytes} bytes`,
    }),
  unsupportedMediaType: () =>
    new Problem({
      status: 415,
      slug: 'unsupported-media-type',
      title: 'Unsupported media type',
      detail: 'The body must be sent with Content-Type: application/json',
    }),
  validation: (errors: FieldError[]) =>
    new Problem({
      status: 422,
      slug: 'validation-error',
      title: 'Request validation failed',
      detail: `${plural(errors.length, 'field')} invalid`,
      errors,
    }),
  unprocessable: (slug: string, title: string, detail: string) => new Problem({ status: 422, slug, title, detail }),
  dependencyUnavailable: (dependency: string, cause?: unknown) =>
    new Problem({
      status: 503,
      slug: 'dependency-unavailable',
      title: 'Service unavailable',
      detail: `A dependency (${dependency}) is unavailable; nothing was changed. Retry later.`,
      headers: { 'retry-after': '1' },
      cause,
    }),
  /** Concurrent writes kept winning over this one: nothing was changed, and a retry will most likely succeed. */
  contention: (detail: string) =>
    new Problem({
      status: 503,
      slug: 'contention',
      title: 'Service unavailable',
      detail: `${detail}; nothing was changed. Retry later.`,
      headers: { 'retry-after': '1' },
    }),
  /** A stored value failed its integrity check (e.g. a ciphertext moved to another row). Nothing is revealed. */
  integrity: (cause?: unknown) =>
    new Problem({
      status: 500,
      slug: 'integrity-error',
      title: 'Stored data failed an integrity check',
      detail: 'A stored field could not be authenticated; it has not been returned. The incident has been logged.',
      cause,
    }),
  internal: (cause?: unknown) =>
    new Problem({ status: 500, slug: 'internal-error', title: 'Internal server error', detail: 'An unexpected error occurred', cause }),
};
