/**
 * Prints an access token from the local issuer (the key pair in .local/auth/, created on first use and
 * reused by `npm start`), shaped like a Cognito access token:
 *
 *   npx tsx scripts/token.ts --user user-42      an end user's token (scope tally/transactions, sub user-42)
 *   npx tsx scripts/token.ts --admin             a service token (scope tally/admin: any user)
 *   options: --ttl <seconds> (default 3600), --data-dir <dir> (default .local)
 *
 * Only the token goes to stdout, so `TOKEN=$(npx tsx scripts/token.ts --user user-42)` works.
 */
import { parseArgs } from 'node:util';
import { loadLocalIssuer } from '../local/auth.ts';
import { USER_ID_PATTERN } from '../lambdas/core/transaction.ts';

const usage = 'usage: token --user <user_id> | --admin  [--ttl <seconds>] [--data-dir .local]';

function fail(message: string): never {
  console.error(`${message}\n${usage}`);
  process.exit(2);
}

let values: { user?: string; admin?: boolean; ttl?: string; 'data-dir'?: string };
try {
  ({ values } = parseArgs({
    options: {
      user: { type: 'string' },
      admin: { type: 'boolean', default: false },
      ttl: { type: 'string', default: '3600' },
      'data-dir': { type: 'string', default: '.local' },
    },
    allowPositionals: false,
  }));
} catch (error) {
  fail((error as Error).message);
}

if (values.admin === (values.user !== undefined)) fail('give exactly one of --user <user_id> or --admin');
if (values.user !== undefined && !USER_ID_PATTERN.test(values.user)) fail('the user id must be 1–64 characters of A-Z, a-z, 0-9, _, . or -');
const ttl = Number(values.ttl);
if (!Number.isSafeInteger(ttl) || ttl <= 0 || ttl > 24 * 3600) fail('--ttl must be 1–86400 seconds');

const issuer = await loadLocalIssuer(values['data-dir'] ?? '.local');
const token = values.admin ? await issuer.mint({ admin: true, expiresInSeconds: ttl }) : await issuer.mint({ user: values.user as string, expiresInSeconds: ttl });
process.stdout.write(`${token}\n`);
