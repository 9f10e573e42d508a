import { toResource } from '../core/transaction.ts';
import { transactionService } from '../adapters/container.ts';
import { httpHandler } from '../middleware/http.ts';
import { etag, transactionIdParam, userIdParam } from '../middleware/request.ts';

export const handler = httpHandler(async (request) => {
  const userId = userIdParam(request);
  const transaction = await transactionService().get(userId, transactionIdParam(request));
  return { statusCode: 200, headers: { etag: etag(transaction.version) }, body: toResource(transaction) };
});
