import { personalDataService } from '../adapters/container.ts';
import { httpHandler } from '../middleware/http.ts';
import { userIdParam } from '../middleware/request.ts';

/** Crypto-shredding: destroys the user's data key, so every stored name of theirs becomes unreadable. */
export const handler = httpHandler(async (request) => {
  await personalDataService().erase(userIdParam(request));
  return { statusCode: 204 };
});
