import { problems } from '../core/problems.ts';
import { parseCreate, toResource } from '../core/transaction.ts';
import { transactionService } from '../adapters/container.ts';
import { httpHandler } from '../middleware/http.ts';
import { etag, userIdParam } from '../middleware/request.ts';

export const handler = httpHandler(
  async (request) => {
    const userId = userIdParam(request);
    const input = parseCreate(request.body);
    if (!input.ok) throw problems.validation(input.errors);
    const created = await transactionService().create(userId, input.value);
    return {
      statusCode: 201,
      headers: { location: `/users/${userId}/transactions/${created.transactionId}`, etag: etag(created.version) },
      body: toResource(created),
    };
  },
  { body: true },
);
