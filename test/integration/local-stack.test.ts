import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DynamoDBClient, GetItemCommand, PutItemCommand } from '@aws-sdk/client-dynamodb';
import { afterAll, describe, expect, it } from 'vitest';
import { JavaMissingError, startDynamoDbLocal } from '../../local/dynamodb-local.ts';
import { ensureTable } from '../../local/table.ts';
import { startTestStack } from '../support/stack.ts';
import { writeStackFile } from '../../local/stack.ts';

const dirs: string[] = [];
const tempDir = () => {
  const dir = mkdtempSync(join(tmpdir(), 'tally-local-'));
  dirs.push(dir);
  return dir;
};
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

describe('the one-machine stack', () => {
  it('keeps DynamoDB data across restarts with --persist (a dbPath instead of -inMemory)', async () => {
    const persistDir = tempDir();
    const item = { PK: { S: 'USER#persisted' }, SK: { S: 'TX#1' } };
    const first = await startDynamoDbLocal({ persistDir });
    try {
      const client = new DynamoDBClient({ region: 'us-east-1', endpoint: first.endpoint });
      await ensureTable(client, 'tally');
      await client.send(new PutItemCommand({ TableName: 'tally', Item: item }));
      client.destroy();
    } finally {
      await first.process.stop();
    }
    const second = await startDynamoDbLocal({ persistDir });
    try {
      const client = new DynamoDBClient({ region: 'us-east-1', endpoint: second.endpoint });
      await ensureTable(client, 'tally'); // exists already: no error, nothing recreated
      const read = await client.send(new GetItemCommand({ TableName: 'tally', Key: item }));
      expect(read.Item).toEqual(item);
      client.destroy();
    } finally {
      await second.process.stop();
    }
  });

  it('says that Java is missing and how to install it', async () => {
    const path = process.env.PATH;
    process.env.PATH = tempDir();
    try {
      const error = await startDynamoDbLocal().catch((e: unknown) => e);
      expect(error).toBeInstanceOf(JavaMissingError);
      expect((error as Error).message).toMatch(/Java was not found.*apt-get install -y openjdk-17-jre-headless.*brew install openjdk@17/s);
    } finally {
      process.env.PATH = path;
    }
  });

  it('writes .local/stack.json with every endpoint a client or a tool needs', async () => {
    const stack = await startTestStack({ stream: false });
    try {
      const dataDir = tempDir();
      const file = writeStackFile(dataDir, { ...stack.info });
      const written = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
      expect(written).toMatchObject({
        apiUrl: stack.url,
        dynamodbEndpoint: expect.stringMatching(/^http:\/\/127\.0\.0\.1:\d+$/),
        kmsEndpoint: expect.stringMatching(/^http:\/\/127\.0\.0\.1:\d+$/),
        region: 'us-east-1',
        tableName: stack.info.tableName,
        kmsKeyId: expect.any(String),
      });
      expect(written).toHaveProperty('redisUrl');
      expect((await stack.request('GET', '/health')).body).toEqual({ status: 'ok' });
    } finally {
      await stack.stop();
    }
  });
});
