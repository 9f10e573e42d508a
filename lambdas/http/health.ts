import { httpHandler } from '../middleware/http.ts';

export const handler = httpHandler(async () => ({ statusCode: 200, body: { status: 'ok' } }));
