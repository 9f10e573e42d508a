/**
 * `npm start`: the whole of Tally on one machine. Ctrl-C stops everything it started.
 *   npm start -- --persist     keep DynamoDB data in .local/ across restarts
 *   npm start -- --no-auth     no token verification and no authorization (quick experiments only)
 */
import { parseArgs } from 'node:util';
import { JavaMissingError } from './dynamodb-local.ts';
import { startLocalStack, writeStackFile } from './stack.ts';

const { values } = parseArgs({
  options: { persist: { type: 'boolean', default: false }, 'no-auth': { type: 'boolean', default: false } },
  allowPositionals: false,
});

const dataDir = '.local';
const port = Number(process.env.PORT ?? 3000);

try {
  const stack = await startLocalStack({
    port,
    dataDir,
    persist: values.persist,
    auth: !values['no-auth'],
    log: (line) => console.log(line),
    onRequest: ({ method, path, status, ms }) => console.log(`${method} ${path} → ${status} (${ms} ms)`),
  });
  const file = writeStackFile(dataDir, { ...stack.info });
  const { info } = stack;
  const authLine =
    info.auth.mode === 'jwt'
      ? `${info.auth.issuer} (ES256 key in .local/auth/); get a token: npm run token -- --user <user_id>  |  --admin`
      : 'OFF (--no-auth): every request is accepted, no token is checked';
  console.log(`
Tally is running.
  API          ${info.apiUrl}
  DynamoDB     ${info.dynamodbEndpoint}  (table ${info.tableName}, region ${info.region}${values.persist ? ', persisted in .local/dynamodb' : ', in memory'})
  KMS          ${info.kmsEndpoint}  (key ${info.kmsKeyId}, root key in .local/)
  Redis        ${info.redisUrl ?? 'off (redis-server not installed)'}
  Auth         ${authLine}
  Events       ${info.eventsFile}
  Stack file   ${file}
Try: curl ${info.apiUrl}/health${
    info.auth.mode === 'jwt'
      ? `
     curl -H "Authorization: Bearer $(npm run -s token -- --user user-42)" ${info.apiUrl}/users/user-42/transactions`
      : ''
  }
Press Ctrl-C to stop.`);
  if (info.auth.mode === 'off') {
    const banner = [
      '',
      '!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!',
      '!!  AUTH IS OFF (--no-auth): no token is verified and any caller may    !!',
      '!!  read and change any user\'s data. For quick local experiments only. !!',
      '!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!',
      '',
    ].join('\n');
    console.error(banner);
  }
  let stopping = false;
  const shutdown = async () => {
    if (stopping) return;
    stopping = true;
    console.log('\nStopping…');
    await stack.stop();
    process.exit(0);
  };
  process.on('SIGINT', shutdown);
  process.on('SIGTERM', shutdown);
} catch (error) {
  if (error instanceof JavaMissingError) console.error(error.message);
  else console.error(`Could not start the local stack: ${(error as Error).message}`);
  process.exit(1);
}
