import { transactionService } from '../adapters/container.ts';
import { httpHandler } from '../middleware/http.ts';
import { ifMatchVersion, transactionIdParam, userIdParam } from '../middleware/request.ts';

export const handler = httpHandler(async (request) => {
  const userId = userIdParam(request);
  const transactionId = transactionIdParam(request);
  await transactionService().delete(userId, transactionId, ifMatchVersion(request));
  return { statusCode: 204 };
});
