import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DynamoDBClient, DeleteTableCommand } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, ScanCommand } from '@aws-sdk/lib-dynamodb';
import { namesIn, rememberRequestSecrets } from './log-guard.ts';
import { startLocalStack, type LocalStack, type LocalStackOptions } from '../../local/stack.ts';
import type { MintOptions } from '../../local/auth.ts';

export interface TestStack extends LocalStack {
  url: string;
  doc: DynamoDBDocumentClient;
  /** Every item of the table, raw. */
  scan(): Promise<Record<string, unknown>[]>;
  request(method: string, path: string, init?: { body?: unknown; headers?: Record<string, string>; raw?: string }): Promise<TestResponse>;
  /** A token from this stack's local issuer (`startTestStack({ auth: true })` only). */
  token(options: MintOptions): Promise<string>;
  /** `{ authorization: 'Bearer …' }` for an end user, or for a service with `'admin'`. */
  authHeaders(who: { user: string } | 'admin'): Promise<Record<string, string>>;
}

export interface TestResponse {
  status: number;
  headers: Headers;
  body: any;
  text: string;
}

let counter = 0;

/**
 * A local stack for one test file: the run's shared DynamoDB Local, KMS endpoint and Redis (from
 * global-setup), and this file's own table, gateway and stream poller. `stop()` deletes the table.
 * `services` overrides single services of the run's.
 *
 * Auth is OFF unless `auth: true` (then the gateway verifies tokens from a local issuer whose key lives in the
 * stack's temporary dataDir, and the handlers authorize). The switch is process-wide (`AUTH_MODE`), so keep
 * one auth mode per test file.
 */
export async function startTestStack(options: Partial<LocalStackOptions> = {}): Promise<TestStack> {
  const tableName = `tally-test-${process.pid}-${++counter}-${Date.now().toString(36)}`;
  const dataDir = mkdtempSync(join(tmpdir(), 'tally-test-'));
  const services = {
    AWS_ENDPOINT_URL_DYNAMODB: process.env.AWS_ENDPOINT_URL_DYNAMODB,
    AWS_ENDPOINT_URL_KMS: process.env.AWS_ENDPOINT_URL_KMS,
    REDIS_URL: process.env.REDIS_URL,
    KMS_KEY_ID: process.env.KMS_KEY_ID,
    // A file may bring its own service (e.g. a KMS endpoint or redis-server it stops mid-test).
    ...options.services,
  };
  const stack = await startLocalStack({
    port: 0,
    dataDir,
    tableName,
    ...options,
    services: Object.fromEntries(Object.entries(services).filter(([, v]) => v)) as LocalStackOptions['services'],
    auth: options.auth ?? false,
  });
  const client = new DynamoDBClient({ region: stack.info.region, endpoint: stack.info.dynamodbEndpoint });
  const doc = DynamoDBDocumentClient.from(client);
  const url = stack.info.apiUrl;
  const scanTable = async (): Promise<Record<string, unknown>[]> => {
    const items: Record<string, unknown>[] = [];
    let start: Record<string, unknown> | undefined;
    do {
      const page = await doc.send(new ScanCommand({ TableName: tableName, ExclusiveStartKey: start, ConsistentRead: true }));
      items.push(...(page.Items ?? []));
      start = page.LastEvaluatedKey;
    } while (start);
    return items;
  };
  const token = async (mint: MintOptions): Promise<string> => {
    if (!stack.issuer) throw new Error('startTestStack({ auth: true }) is needed for tokens');
    return stack.issuer.mint(mint);
  };
  return {
    ...stack,
    url,
    doc,
    scan: scanTable,
    async request(method, path, init = {}) {
      const headers: Record<string, string> = { ...init.headers };
      let body: string | undefined = init.raw;
      if (init.body !== undefined) {
        body = JSON.stringify(init.body);
        headers['content-type'] ??= 'application/json';
      }
      rememberRequestSecrets(init.body, headers);
      const response = await fetch(url + path, { method, headers, ...(body === undefined ? {} : { body }) });
      const text = await response.text();
      let parsed: unknown;
      try {
        parsed = text ? JSON.parse(text) : undefined;
      } catch {
        parsed = undefined;
      }
      return { status: response.status, headers: response.headers, body: parsed, text };
    },
    token,
    async authHeaders(who) {
      return { authorization: `Bearer ${await token(who === 'admin' ? { admin: true } : { user: who.user })}` };
    },
    async stop() {
      await stack.stop();
      try {
        // Whatever the file did, no name it ever sent may be in the table in plaintext (nor in base64).
        const leaked = namesIn(JSON.stringify(await scanTable()));
        if (leaked.length > 0) throw new Error(`plaintext names found in the table: ${leaked.map((n) => `${n.slice(0, 3)}…`).join(', ')}`);
      } finally {
        await client.send(new DeleteTableCommand({ TableName: tableName })).catch(() => undefined);
        client.destroy();
        rmSync(dataDir, { recursive: true, force: true });
      }
    },
  };
}
