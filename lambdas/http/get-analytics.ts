import { parsePeriodQuery } from '../core/analytics.ts';
import { problems } from '../core/problems.ts';
import { analyticsService } from '../adapters/container.ts';
import { conditionalResponse } from '../middleware/conditional.ts';
import { httpHandler } from '../middleware/http.ts';
import { userIdParam } from '../middleware/request.ts';

const KNOWN = new Set(['from', 'to']);

export const handler = httpHandler(async (request) => {
  const userId = userIdParam(request);
  const unknown = Object.keys(request.query).filter((name) => !KNOWN.has(name));
  const period = parsePeriodQuery(request.query);
  const errors = [
    ...unknown.map((field) => ({ field, message: 'is not a recognised query parameter (from, to)' })),
    ...(period.ok ? [] : period.errors),
  ];
  if (errors.length > 0 || !period.ok) throw problems.invalidQuery(errors);
  const analytics = await analyticsService().analytics(userId, period.period);
  return conditionalResponse(request, { statusCode: 200, body: analytics });
});
