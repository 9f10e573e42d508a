/**
 * Reconciliation (offline admin tool): recomputes each user's aggregates from their transaction items and
 * compares them with the `AGG` and `DAY#` items the aggregator maintains.
 *
 *   npx tsx scripts/reconcile.ts --user <id>     one user
 *   npx tsx scripts/reconcile.ts                 every user (a Scan of keys: offline only)
 *
 * Endpoint and table: AWS_ENDPOINT_URL_DYNAMODB / TABLE_NAME, or `.local/stack.json`
 * ({ dynamodbEndpoint, region, tableName }) when present. Prints JSON; exit code 1 when anything differs.
 */
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { DynamoDBClient, QueryCommand, ScanCommand, type AttributeValue } from '@aws-sdk/client-dynamodb';
import { AggregateStore } from '../lambdas/adapters/aggregate-store.ts';
import type { TxFacts } from '../lambdas/core/aggregate-delta.ts';
import { AGGREGATE_SK, TRANSACTION_SK_PREFIX, userIdFromPk, userPk } from '../lambdas/core/keys.ts';
import { compareAggregates, recompute, type Difference } from '../lambdas/core/reconcile.ts';
import type { TransactionType } from '../lambdas/core/transaction.ts';

export { compareAggregates } from '../lambdas/core/reconcile.ts';

export interface UserReport {
  user_id: string;
  transactions: number;
  differences: Difference[];
}

/** The user's current transactions (Query of `TX#` items; only the fields the aggregates depend on). */
export async function readTransactions(dynamo: DynamoDBClient, tableName: string, userId: string): Promise<TxFacts[]> {
  const out: TxFacts[] = [];
  let start: Record<string, AttributeValue> | undefined;
  do {
    const page = await dynamo.send(
      new QueryCommand({
        TableName: tableName,
        KeyConditionExpression: 'PK = :pk AND begins_with(SK, :tx)',
        ExpressionAttributeValues: { ':pk': { S: userPk(userId) }, ':tx': { S: TRANSACTION_SK_PREFIX } },
        ProjectionExpression: 'amount_minor, #type, #date, updated_at',
        ExpressionAttributeNames: { '#type': 'type', '#date': 'date' },
        ConsistentRead: true,
        ExclusiveStartKey: start,
      }),
    );
    for (const item of page.Items ?? []) {
      out.push({
        amountMinor: BigInt(item.amount_minor?.N ?? '0'),
        type: (item.type?.S ?? 'credit') as TransactionType,
        date: item.date?.S ?? '',
        updatedAt: item.updated_at?.S ?? '',
      });
    }
    start = page.LastEvaluatedKey;
  } while (start);
  return out;
}

export async function reconcileUser(dynamo: DynamoDBClient, tableName: string, userId: string): Promise<UserReport> {
  const store = new AggregateStore(dynamo, tableName);
  const [transactions, aggregate, days] = await Promise.all([
    readTransactions(dynamo, tableName, userId),
    store.readAllTime(userId),
    store.readPeriod(userId, '0000-00-00', '9999-99-99'),
  ]);
  const differences = compareAggregates(recompute(transactions), { aggregate: aggregate.value, days: days.value });
  return { user_id: userId, transactions: transactions.length, differences };
}

/** Every user with a transaction or an aggregate (a keys-only Scan: an offline tool, never the API). */
export async function listUsers(dynamo: DynamoDBClient, tableName: string): Promise<string[]> {
  const users = new Set<string>();
  let start: Record<string, AttributeValue> | undefined;
  do {
    const page = await dynamo.send(
      new ScanCommand({
        TableName: tableName,
        ProjectionExpression: 'PK, SK',
        FilterExpression: 'SK = :agg OR begins_with(SK, :tx)',
        ExpressionAttributeValues: { ':agg': { S: AGGREGATE_SK }, ':tx': { S: TRANSACTION_SK_PREFIX } },
        ExclusiveStartKey: start,
      }),
    );
    for (const item of page.Items ?? []) {
      const pk = item.PK?.S;
      if (pk?.startsWith('USER#')) users.add(userIdFromPk(pk));
    }
    start = page.LastEvaluatedKey;
  } while (start);
  return [...users].sort();
}

export async function reconcile(dynamo: DynamoDBClient, tableName: string, userIds?: string[]): Promise<UserReport[]> {
  const ids = userIds ?? (await listUsers(dynamo, tableName));
  const reports: UserReport[] = [];
  for (const id of ids) reports.push(await reconcileUser(dynamo, tableName, id));
  return reports;
}

function connection(): { endpoint?: string; region: string; tableName: string } {
  const stackFile = resolve('.local/stack.json');
  const stack = existsSync(stackFile)
    ? (JSON.parse(readFileSync(stackFile, 'utf8')) as { dynamodbEndpoint?: string; region?: string; tableName?: string })
    : {};
  const endpoint = process.env.AWS_ENDPOINT_URL_DYNAMODB ?? process.env.AWS_ENDPOINT_URL ?? stack.dynamodbEndpoint;
  return {
    ...(endpoint ? { endpoint } : {}),
    region: process.env.AWS_REGION ?? stack.region ?? 'us-east-1',
    tableName: process.env.TABLE_NAME ?? stack.tableName ?? 'tally',
  };
}

async function main(argv: string[]): Promise<number> {
  const at = argv.indexOf('--user');
  const user = at >= 0 ? argv[at + 1] : undefined;
  if (at >= 0 && !user) {
    console.error('usage: reconcile [--user <id>]');
    return 2;
  }
  const { endpoint, region, tableName } = connection();
  const local = endpoint !== undefined && /127\.0\.0\.1|localhost/.test(endpoint);
  const dynamo = new DynamoDBClient({
    region,
    ...(endpoint ? { endpoint } : {}),
    ...(local && !process.env.AWS_ACCESS_KEY_ID ? { credentials: { accessKeyId: 'local', secretAccessKey: 'local' } } : {}),
  });
  const reports = await reconcile(dynamo, tableName, user ? [user] : undefined);
  const differing = reports.filter((r) => r.differences.length > 0);
  console.log(
    JSON.stringify({ table: tableName, users: reports.length, differing: differing.length, reports: user ? reports : differing }, null, 2),
  );
  return differing.length > 0 ? 1 : 0;
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (error: unknown) => {
      console.error(error);
      process.exit(2);
    },
  );
}
