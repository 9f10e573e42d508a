import { randomBytes } from 'node:crypto';
import { DecryptCommand, GenerateDataKeyCommand, KMSClient } from '@aws-sdk/client-kms';
import { DeleteCommand, DynamoDBDocumentClient, GetCommand, PutCommand, QueryCommand, TransactWriteCommand } from '@aws-sdk/lib-dynamodb';
import { ConditionalCheckFailedException, ProvisionedThroughputExceededException, TransactionCanceledException } from '@aws-sdk/client-dynamodb';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Context } from 'aws-lambda';
import { mockClient } from 'aws-sdk-client-mock';
import 'aws-sdk-client-mock-vitest/extend';
import { beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { storedTransactionItem } from '../support/fixtures.ts';

/**
 * Each HTTP handler in isolation: the AWS SDK is mocked (no network), Redis is off, and the handler runs
 * with its real middleware stack and services.
 */
process.env.REDIS_URL = '';
process.env.TABLE_NAME = 'unit-table';
process.env.AUTH_MODE = 'off';

const ddb = mockClient(DynamoDBDocumentClient);
const kms = mockClient(KMSClient);
const KEY = randomBytes(32);
const WRAPPED = randomBytes(64);
const TX_ID = '01JDZ8Q3V8K6E2M9W4T7A5B3CX';

type Handler = (event: APIGatewayProxyEventV2, context: Context) => Promise<APIGatewayProxyStructuredResultV2>;
const handlers: Record<string, Handler> = {};
beforeAll(async () => {
  for (const name of ['create-transaction', 'get-transaction', 'list-transactions', 'update-transaction', 'delete-transaction', 'erase-personal-data', 'health']) {
    handlers[name] = ((await import(`../../lambdas/http/${name}.ts`)) as { handler: Handler }).handler;
  }
});

const context = { functionName: 'unit', awsRequestId: 'req-1', getRemainingTimeInMillis: () => 3000 } as unknown as Context;
function event(init: { method: string; path?: Record<string, string>; body?: unknown; headers?: Record<string, string>; query?: Record<string, string> }): APIGatewayProxyEventV2 {
  return {
    version: '2.0',
    routeKey: `${init.method} /test`,
    rawPath: '/test',
    rawQueryString: '',
    headers: { 'content-type': 'application/json', ...init.headers },
    ...(init.query ? { queryStringParameters: init.query } : {}),
    pathParameters: { user_id: 'u1', ...init.path },
    requestContext: {
      requestId: 'apigw-1',
      http: { method: init.method, path: '/test', protocol: 'HTTP/1.1', sourceIp: '127.0.0.1', userAgent: 'unit' },
      authorizer: { jwt: { claims: { sub: 'u1', scope: 'tally/transactions' }, scopes: ['tally/transactions'] } },
    } as unknown as APIGatewayProxyEventV2['requestContext'],
    ...(init.body !== undefined ? { body: JSON.stringify(init.body) } : {}),
    isBase64Encoded: false,
  } as APIGatewayProxyEventV2;
}
const json = (result: APIGatewayProxyStructuredResultV2) => JSON.parse(result.body ?? 'null');

const storedItem = (overrides: Parameters<typeof storedTransactionItem>[2] = {}) => storedTransactionItem(KEY, 'u1', overrides);

const validBody = { full_name: 'Ama Mensah', transaction_date: '2026-12-01T09:30:00Z', transaction_amount: '125.50', transaction_type: 'credit' };

beforeEach(() => {
  ddb.reset();
  kms.reset();
  ddb.on(GetCommand, { Key: { PK: 'USER#u1', SK: 'KEY' } }).resolves({ Item: { PK: 'USER#u1', SK: 'KEY', key_version: 1, wrapped_key: WRAPPED.toString('base64') } });
  kms.on(DecryptCommand).resolves({ Plaintext: new Uint8Array(KEY) });
});

describe('create-transaction handler', () => {
  it('seals the name, writes once with a key check, and answers 201 with Location', async () => {
    ddb.on(TransactWriteCommand).resolves({});
    const result = await handlers['create-transaction']!(event({ method: 'POST', body: validBody }), context);
    expect(result.statusCode).toBe(201);
    const body = json(result);
    expect(body).toMatchObject({ user_id: 'u1', full_name: 'Ama Mensah', transaction_amount: '125.50', version: 1 });
    expect(result.headers?.location).toBe(`/users/u1/transactions/${body.transaction_id}`);
    expect(ddb).toHaveReceivedCommandTimes(TransactWriteCommand, 1);
    const write = ddb.commandCalls(TransactWriteCommand)[0]!.args[0].input.TransactItems!;
    expect(write[0]!.ConditionCheck!.Key).toEqual({ PK: 'USER#u1', SK: 'KEY' });
    const item = write[1]!.Put!.Item!;
    expect(item.amount_minor).toBe(12_550);
    expect(JSON.stringify(item)).not.toContain('Ama Mensah');
  });

  it('creates the user key with GenerateDataKey bound to the user when there is none', async () => {
    ddb.on(GetCommand, { Key: { PK: 'USER#new-user', SK: 'KEY' } }).resolves({});
    ddb.on(PutCommand).resolves({});
    ddb.on(TransactWriteCommand).resolves({});
    kms.on(GenerateDataKeyCommand).resolves({ Plaintext: new Uint8Array(randomBytes(32)), CiphertextBlob: new Uint8Array(WRAPPED) });
    const result = await handlers['create-transaction']!(event({ method: 'POST', path: { user_id: 'new-user' }, body: validBody }), context);
    expect(result.statusCode).toBe(201);
    expect(kms).toHaveReceivedCommandWith(GenerateDataKeyCommand, { KeySpec: 'AES_256', EncryptionContext: { user_id: 'new-user' } });
  });

  it('answers 422 listing the fields and calls no AWS service', async () => {
    const result = await handlers['create-transaction']!(event({ method: 'POST', body: { ...validBody, transaction_amount: 0.001, extra: true } }), context);
    expect(result.statusCode).toBe(422);
    expect(json(result).errors).toEqual([
      { field: 'transaction_amount', message: 'must have at most 2 fraction digits' },
      { field: 'extra', message: 'is not a recognised field' },
    ]);
    expect(ddb.calls()).toHaveLength(0);
    expect(kms.calls()).toHaveLength(0);
  });

  it('turns DynamoDB throttling into a 503 with Retry-After and no raw message', async () => {
    ddb.on(TransactWriteCommand).rejects(new ProvisionedThroughputExceededException({ message: 'internal detail xyz', $metadata: { httpStatusCode: 400 } }));
    const result = await handlers['create-transaction']!(event({ method: 'POST', body: validBody }), context);
    expect(result.statusCode).toBe(503);
    expect(result.headers?.['retry-after']).toBe('1');
    expect(result.body).not.toContain('xyz');
  });

  const conflict = () =>
    new TransactionCanceledException({
      message: 'Transaction cancelled',
      $metadata: { httpStatusCode: 400 },
      CancellationReasons: [{ Code: 'TransactionConflict' }, { Code: 'None' }],
    });

  it('retries a write that DynamoDB cancelled for a conflicting transaction of the same user', async () => {
    ddb.on(TransactWriteCommand).rejectsOnce(conflict()).rejectsOnce(conflict()).resolves({});
    const result = await handlers['create-transaction']!(event({ method: 'POST', body: validBody }), context);
    expect(result.statusCode).toBe(201);
    expect(ddb).toHaveReceivedCommandTimes(TransactWriteCommand, 3);
  });

  it('answers 503 with Retry-After when the conflicts outlast the retry budget', async () => {
    ddb.on(TransactWriteCommand).rejects(conflict());
    const result = await handlers['create-transaction']!(event({ method: 'POST', body: validBody }), context);
    expect(result.statusCode).toBe(503);
    expect(result.headers?.['retry-after']).toBe('1');
    expect(ddb).toHaveReceivedCommandTimes(TransactWriteCommand, 5);
  });

  it('turns an unexpected error into a generic 500 without a stack trace', async () => {
    ddb.on(TransactWriteCommand).rejects(new TypeError('cannot read properties of undefined (secret internals)'));
    const result = await handlers['create-transaction']!(event({ method: 'POST', body: validBody }), context);
    expect(result.statusCode).toBe(500);
    expect(json(result)).toEqual({
      type: 'https://tally.dev/problems/internal-error',
      title: 'Internal server error',
      status: 500,
      detail: 'An unexpected error occurred',
      request_id: 'apigw-1',
    });
  });
});

describe('get-transaction handler', () => {
  it('reads consistently, decrypts, and sets the ETag', async () => {
    ddb.on(GetCommand, { Key: { PK: 'USER#u1', SK: `TX#${TX_ID}` } }).resolves({ Item: storedItem({ version: 3 }) });
    const result = await handlers['get-transaction']!(event({ method: 'GET', path: { transaction_id: TX_ID } }), context);
    expect(result.statusCode).toBe(200);
    expect(result.headers?.etag).toBe('"3"');
    expect(json(result)).toMatchObject({ transaction_id: TX_ID, full_name: 'Ama Mensah', transaction_amount: '125.50', version: 3 });
    expect(ddb).toHaveReceivedCommandWith(GetCommand, { Key: { PK: 'USER#u1', SK: `TX#${TX_ID}` }, ConsistentRead: true });
  });

  it('answers 404 for a missing transaction and for an id we could not have issued', async () => {
    ddb.on(GetCommand, { Key: { PK: 'USER#u1', SK: `TX#${TX_ID}` } }).resolves({});
    expect((await handlers['get-transaction']!(event({ method: 'GET', path: { transaction_id: TX_ID } }), context)).statusCode).toBe(404);
    expect((await handlers['get-transaction']!(event({ method: 'GET', path: { transaction_id: 'not-an-id' } }), context)).statusCode).toBe(404);
  });
});

describe('list-transactions handler', () => {
  it('queries the by-date index newest first with a consistent read and no scan', async () => {
    ddb.on(QueryCommand).resolves({ Items: [storedItem()] });
    const result = await handlers['list-transactions']!(event({ method: 'GET', query: { limit: '5', from: '2026-11-01', type: 'credit' } }), context);
    expect(result.statusCode).toBe(200);
    expect(json(result)).toMatchObject({ data: [{ transaction_id: TX_ID, full_name: 'Ama Mensah' }], next_cursor: null });
    const input = ddb.commandCalls(QueryCommand)[0]!.args[0].input;
    expect(input).toMatchObject({ IndexName: 'by-date', ScanIndexForward: false, ConsistentRead: true, FilterExpression: '#type = :type' });
    expect(input.KeyConditionExpression).toBe('#pk = :pk AND #sk >= :lo');
  });

  it('answers 400 for bad query parameters without touching DynamoDB', async () => {
    const result = await handlers['list-transactions']!(event({ method: 'GET', query: { limit: '0' } }), context);
    expect(result.statusCode).toBe(400);
    expect(ddb.calls()).toHaveLength(0);
  });
});

describe('update-transaction handler', () => {
  it('writes the next version conditionally on the version it read', async () => {
    ddb.on(GetCommand, { Key: { PK: 'USER#u1', SK: `TX#${TX_ID}` } }).resolves({ Item: storedItem({ version: 2 }) });
    ddb.on(PutCommand).resolves({});
    const result = await handlers['update-transaction']!(event({ method: 'PATCH', path: { transaction_id: TX_ID }, body: { transaction_amount: 1 }, headers: { 'if-match': '"2"' } }), context);
    expect(result.statusCode).toBe(200);
    expect(json(result)).toMatchObject({ version: 3, transaction_amount: '1.00', full_name: 'Ama Mensah' });
    expect(ddb).toHaveReceivedCommandWith(PutCommand, { ConditionExpression: 'version = :expected', ExpressionAttributeValues: { ':expected': 2 } });
  });

  it('answers 412 when If-Match is not the stored version, writing nothing', async () => {
    ddb.on(GetCommand, { Key: { PK: 'USER#u1', SK: `TX#${TX_ID}` } }).resolves({ Item: storedItem({ version: 5 }) });
    const result = await handlers['update-transaction']!(event({ method: 'PATCH', path: { transaction_id: TX_ID }, body: { transaction_amount: 1 }, headers: { 'if-match': '"4"' } }), context);
    expect(result.statusCode).toBe(412);
    expect(ddb).not.toHaveReceivedCommand(PutCommand);
  });

  it('answers 412 when a concurrent write wins the conditional put', async () => {
    ddb.on(GetCommand, { Key: { PK: 'USER#u1', SK: `TX#${TX_ID}` } }).resolves({ Item: storedItem({ version: 2 }) });
    ddb.on(PutCommand).rejects(new ConditionalCheckFailedException({ message: 'failed', $metadata: {} }));
    const result = await handlers['update-transaction']!(event({ method: 'PATCH', path: { transaction_id: TX_ID }, body: { transaction_amount: 1 }, headers: { 'if-match': '"2"' } }), context);
    expect(result.statusCode).toBe(412);
  });
});

describe('delete-transaction handler', () => {
  it('deletes conditionally and answers 204 with no body', async () => {
    ddb.on(DeleteCommand).resolves({});
    const result = await handlers['delete-transaction']!(event({ method: 'DELETE', path: { transaction_id: TX_ID } }), context);
    expect(result.statusCode).toBe(204);
    expect(result.body).toBeUndefined();
    expect(ddb).toHaveReceivedCommandWith(DeleteCommand, { ConditionExpression: 'attribute_exists(PK)' });
  });

  it('answers 404 when there was nothing to delete', async () => {
    ddb.on(DeleteCommand).rejects(new ConditionalCheckFailedException({ message: 'failed', $metadata: {} }));
    expect((await handlers['delete-transaction']!(event({ method: 'DELETE', path: { transaction_id: TX_ID } }), context)).statusCode).toBe(404);
  });

  it('answers 412 when the stored version is not the If-Match one', async () => {
    const failure = new ConditionalCheckFailedException({ message: 'failed', $metadata: {} });
    failure.Item = { version: { N: '3' } };
    ddb.on(DeleteCommand).rejects(failure);
    const result = await handlers['delete-transaction']!(event({ method: 'DELETE', path: { transaction_id: TX_ID }, headers: { 'if-match': '"2"' } }), context);
    expect(result.statusCode).toBe(412);
    expect(ddb).toHaveReceivedCommandWith(DeleteCommand, { ConditionExpression: 'attribute_exists(PK) AND version = :v', ExpressionAttributeValues: { ':v': 2 } });
  });
});

describe('erase-personal-data handler', () => {
  it('removes the wrapped key and answers 204', async () => {
    ddb.onAnyCommand().resolves({});
    const result = await handlers['erase-personal-data']!(event({ method: 'DELETE' }), context);
    expect(result.statusCode).toBe(204);
    const update = ddb.calls().map((c) => c.args[0].input as { UpdateExpression?: string }).find((i) => i.UpdateExpression);
    expect(update?.UpdateExpression).toContain('REMOVE wrapped_key');
  });
});

describe('health handler', () => {
  it('answers ok without touching any service', async () => {
    const result = await handlers.health!(event({ method: 'GET' }), context);
    expect(result.statusCode).toBe(200);
    expect(json(result)).toEqual({ status: 'ok' });
    expect(ddb.calls()).toHaveLength(0);
  });
});
