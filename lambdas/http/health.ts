import { httpHandler } from '../middleware/http.ts';

// The only route without auth (lib/routes.ts: `auth: false`): liveness for load balancers and humans.
export const handler = httpHandler(async () => ({ statusCode: 200, body: { status: 'ok' } }), { auth: 'none' });
