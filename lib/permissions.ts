import * as iam from 'aws-cdk-lib/aws-iam';
import type { RouteAccess } from './routes.ts';

/** What a function's access can reach. */
export interface AccessTargets {
  tableArn: string;
  historyIndexArn: string;
  tableKeyArn: string;
  dataKeyKeyArn: string;
  region: string;
}

export const TABLE_READ_ACTIONS = ['dynamodb:GetItem', 'dynamodb:BatchGetItem', 'dynamodb:Query'];
/** TransactWriteItems has no IAM action of its own: each item in it is authorised as the action it performs. */
export const TABLE_WRITE_ACTIONS = [
  'dynamodb:PutItem',
  'dynamodb:UpdateItem',
  'dynamodb:DeleteItem',
  'dynamodb:ConditionCheckItem',
];
export const INDEX_READ_ACTIONS = ['dynamodb:Query'];

/**
 * The encryption context of every data-key call must be exactly `{user_id}`: present (Null = false) and no
 * other key (ForAllValues). A request without a context, or with another one, is denied.
 */
export const USER_ID_CONTEXT_CONDITIONS = {
  'ForAllValues:StringEquals': { 'kms:EncryptionContextKeys': ['user_id'] },
  Null: { 'kms:EncryptionContextKeys': 'false' },
};

/**
 * DynamoDB's use of the table's customer-managed key on the caller's behalf: reads need Decrypt, writes also
 * Encrypt/GenerateDataKey. Only through DynamoDB in this region (kms:ViaService).
 */
function tableKeyStatement(targets: AccessTargets, write: boolean): iam.PolicyStatement {
  return new iam.PolicyStatement({
    sid: 'TableKeyViaDynamoDb',
    actions: write
      ? ['kms:Decrypt', 'kms:DescribeKey', 'kms:Encrypt', 'kms:GenerateDataKey']
      : ['kms:Decrypt', 'kms:DescribeKey'],
    resources: [targets.tableKeyArn],
    conditions: { StringEquals: { 'kms:ViaService': `dynamodb.${targets.region}.amazonaws.com` } },
  });
}

/** The IAM statements for one route's declared access (lib/routes.ts `access`), and nothing more. */
export function statementsForAccess(access: RouteAccess, targets: AccessTargets): iam.PolicyStatement[] {
  const statements: iam.PolicyStatement[] = [];
  if (access.table !== 'none') {
    const write = access.table === 'write';
    statements.push(
      new iam.PolicyStatement({
        sid: write ? 'TableReadWrite' : 'TableRead',
        actions: write ? [...TABLE_READ_ACTIONS, ...TABLE_WRITE_ACTIONS] : TABLE_READ_ACTIONS,
        resources: [targets.tableArn],
      }),
      new iam.PolicyStatement({
        sid: 'HistoryIndexRead',
        actions: INDEX_READ_ACTIONS,
        resources: [targets.historyIndexArn],
      }),
      tableKeyStatement(targets, write),
    );
  }
  if (access.dataKeys !== 'none') {
    statements.push(
      new iam.PolicyStatement({
        sid: access.dataKeys === 'generate' ? 'DataKeysGenerateAndUnwrap' : 'DataKeysUnwrap',
        actions: access.dataKeys === 'generate' ? ['kms:GenerateDataKey', 'kms:Decrypt'] : ['kms:Decrypt'],
        resources: [targets.dataKeyKeyArn],
        conditions: USER_ID_CONTEXT_CONDITIONS,
      }),
    );
  }
  return statements;
}

/**
 * The aggregator: applies deltas and the applied marker in one TransactWriteItems (Put the marker, Update
 * AGG and DAY, ConditionCheck), and Queries the DAY# items. Stream reading is granted by the event source.
 */
export function aggregatorTableStatements(targets: AccessTargets): iam.PolicyStatement[] {
  return [
    new iam.PolicyStatement({
      sid: 'AggregatesTransactWrite',
      actions: ['dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:ConditionCheckItem', 'dynamodb:Query'],
      resources: [targets.tableArn],
    }),
    tableKeyStatement(targets, true),
  ];
}
