import { matchRoute } from '../../lib/routes.ts';
import { problems } from '../core/problems.ts';
import { httpHandler } from '../middleware/http.ts';

/**
 * API Gateway's `$default` route: every request that matches no row of the route table. A known path with
 * another method is a 405 with `Allow`; anything else a 404. Both as problem+json, like every other error.
 */
export const handler = httpHandler(
  async (request) => {
    const { method, path } = request.event.requestContext.http;
    const match = matchRoute(method, path);
    if ('allow' in match && match.allow.length > 0) throw problems.methodNotAllowed(match.allow);
    throw problems.notFound(`No route for ${method} ${path}`);
  },
  { auth: 'none' },
);
