import { IDEMPOTENCY_HEADER, parseIdempotencyKey } from '../core/idempotency.ts';
import { problems } from '../core/problems.ts';
import { parseCreate, toResource } from '../core/transaction.ts';
import { idempotentCreate } from '../adapters/container.ts';
import { httpHandler } from '../middleware/http.ts';
import { etag, userIdParam } from '../middleware/request.ts';

export const handler = httpHandler(
  async (request) => {
    const userId = userIdParam(request);
    // Both checks come before anything is stored: a bad key is a 400, a bad body a 422, and neither leaves a record.
    const key = parseIdempotencyKey(request.headers[IDEMPOTENCY_HEADER]);
    const input = parseCreate(request.body);
    if (!input.ok) throw problems.validation(input.errors);
    const { transaction, replayed } = await idempotentCreate().create(userId, input.value, key);
    return {
      statusCode: 201,
      headers: {
        location: `/users/${userId}/transactions/${transaction.transactionId}`,
        etag: etag(transaction.version),
        ...(replayed ? { 'idempotent-replayed': 'true' } : {}),
      },
      body: toResource(transaction),
    };
  },
  { body: true },
);
