import { parseHistoryQuery } from '../core/history-query.ts';
import { problems } from '../core/problems.ts';
import { toResource } from '../core/transaction.ts';
import { transactionService } from '../adapters/container.ts';
import { conditionalResponse } from '../middleware/conditional.ts';
import { httpHandler } from '../middleware/http.ts';
import { userIdParam } from '../middleware/request.ts';

export const handler = httpHandler(async (request) => {
  const userId = userIdParam(request);
  const query = parseHistoryQuery(request.query);
  if (!query.ok) throw problems.invalidQuery(query.errors);
  const service = transactionService();
  const page = await service.openPage(await service.cachedPage(userId, query.value));
  return conditionalResponse(request, { statusCode: 200, body: { data: page.items.map(toResource), next_cursor: page.nextCursor } });
});
