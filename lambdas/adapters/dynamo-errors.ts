import { problems, type Problem } from '../core/problems.ts';

/**
 * The one classification of AWS SDK failures that mean "unavailable right now" (a 503 with Retry-After and
 * nothing changed), as opposed to "this request is wrong" or "this is a bug". KMS-specific names are in
 * data-keys.ts, on top of `isTransportFailure`.
 */
const DYNAMO_TRANSIENT = new Set([
  'ProvisionedThroughputExceededException',
  'ThrottlingException',
  'RequestLimitExceeded',
  'InternalServerError',
  'ServiceUnavailable',
  'ServiceUnavailableException',
  'LimitExceededException',
  // A single-item write that met an in-flight transaction on the same item: retryable.
  'TransactionConflictException',
  'TransactionInProgressException',
  'TimeoutError',
  'RequestTimeout',
  'RequestTimeoutException',
]);

const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ECONNABORTED',
]);

interface SdkErrorShape {
  name?: unknown;
  code?: unknown;
  $metadata?: { httpStatusCode?: unknown };
  CancellationReasons?: Array<{ Code?: string }>;
}

const shape = (error: unknown): SdkErrorShape => (typeof error === 'object' && error !== null ? (error as SdkErrorShape) : {});

/** No HTTP response at all (refused, reset, timed out), a 5xx or a 429: the service could not serve us. */
export function isTransportFailure(error: unknown): boolean {
  const e = shape(error);
  if (typeof e.code === 'string' && NETWORK_CODES.has(e.code)) return true;
  if (e.name === 'TimeoutError' || e.name === 'AbortError') return true;
  if (typeof e.$metadata !== 'object' || e.$metadata === null) return false;
  const status = e.$metadata.httpStatusCode;
  // Thrown by the SDK without any HTTP response: the connection failed or timed out.
  if (typeof status !== 'number') return true;
  return status >= 500 || status === 429;
}

/** DynamoDB is throttling, unreachable, or busy with a conflicting transaction. */
export function isDynamoUnavailable(error: unknown): boolean {
  const e = shape(error);
  if (typeof e.name === 'string' && DYNAMO_TRANSIENT.has(e.name)) return true;
  if (e.name === 'ConditionalCheckFailedException') return false;
  if (e.name === 'TransactionCanceledException') {
    return (e.CancellationReasons ?? []).some((r) =>
      ['ThrottlingError', 'ProvisionedThroughputExceeded', 'TransactionConflict'].includes(r.Code ?? ''),
    );
  }
  return isTransportFailure(error);
}

/** DynamoDB unavailability as a 503 problem; anything else unchanged. */
export function dynamoFailure(error: unknown): Problem | unknown {
  return isDynamoUnavailable(error) ? problems.dependencyUnavailable('DynamoDB', error) : error;
}

/** The per-item cancellation codes of a cancelled transaction, in request order. */
export function cancellationCodes(error: unknown): string[] | undefined {
  const e = shape(error);
  if (e.name !== 'TransactionCanceledException') return undefined;
  return (e.CancellationReasons ?? []).map((r) => r.Code ?? 'None');
}
