import { problems } from '../core/problems.ts';
import { parsePatch, toResource } from '../core/transaction.ts';
import { transactionService } from '../adapters/container.ts';
import { httpHandler } from '../middleware/http.ts';
import { etag, ifMatchVersion, transactionIdParam, userIdParam } from '../middleware/request.ts';

export const handler = httpHandler(
  async (request) => {
    const userId = userIdParam(request);
    const transactionId = transactionIdParam(request);
    const expected = ifMatchVersion(request);
    const patch = parsePatch(request.body);
    if (!patch.ok) throw problems.validation(patch.errors);
    const updated = await transactionService().update(userId, transactionId, patch.value, expected);
    return { statusCode: 200, headers: { etag: etag(updated.version) }, body: toResource(updated) };
  },
  { body: true },
);
