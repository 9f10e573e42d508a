import { createHash } from 'node:crypto';
import type { HttpRequest, HttpResponse } from './http.ts';

/**
 * Conditional GET for per-user reads (history pages, analytics): a weak ETag over the response body, and
 * `If-None-Match` → 304 with no body. `Cache-Control: private, no-cache` lets a client or proxy keep the
 * response but makes it revalidate every time, so freshness stays the server's decision.
 */
export function conditionalResponse(request: HttpRequest, response: HttpResponse): HttpResponse {
  const tag = `W/"${createHash('sha256').update(JSON.stringify(response.body)).digest('base64url').slice(0, 27)}"`;
  const headers = { ...response.headers, etag: tag, 'cache-control': 'private, no-cache' };
  const ifNoneMatch = request.headers['if-none-match'];
  if (ifNoneMatch !== undefined && matches(ifNoneMatch, tag)) return { statusCode: 304, headers };
  return { ...response, headers };
}

function matches(header: string, tag: string): boolean {
  const opaque = (t: string) => t.trim().replace(/^W\//, '');
  if (header.trim() === '*') return true;
  return header.split(',').some((candidate) => opaque(candidate) === opaque(tag));
}
