import * as iam from 'aws-cdk-lib/aws-iam';
import { TABLE_ACTIONS, usesTable, writesTable, type RouteAccess } from './routes.ts';

/** What a function's access can reach. */
export interface AccessTargets {
  tableArn: string;
  historyIndexArn: string;
  tableKeyArn: string;
  dataKeyKeyArn: string;
  region: string;
}

/** The only action granted on the history index. */
export const INDEX_READ_ACTIONS = ['dynamodb:Query'];

/** The IAM actions on the base table for a declared access: its `table` list, as `dynamodb:<Action>`. */
export function tableActionsFor(access: Pick<RouteAccess, 'table'>): string[] {
  const seen = new Set<string>();
  for (const action of access.table) {
    // The type already says so; this guards JavaScript callers and casts.
    if (!(TABLE_ACTIONS as readonly string[]).includes(action)) throw new Error(`unknown DynamoDB action ${String(action)}`);
    if (seen.has(action)) throw new Error(`DynamoDB action ${action} is declared twice`);
    seen.add(action);
  }
  return [...seen].map((action) => `dynamodb:${action}`);
}

/** The table key actions DynamoDB needs on the caller's behalf: reads Decrypt, writes also Encrypt/GenerateDataKey. */
export function tableKeyActionsFor(access: Pick<RouteAccess, 'table' | 'historyIndex'>): string[] {
  if (!usesTable(access)) return [];
  return writesTable(access)
    ? ['kms:Decrypt', 'kms:DescribeKey', 'kms:Encrypt', 'kms:GenerateDataKey']
    : ['kms:Decrypt', 'kms:DescribeKey'];
}

/**
 * The encryption context of every data-key call must be exactly `{user_id}`: present (Null = false) and no
 * other key (ForAllValues). A request without a context, or with another one, is denied.
 */
export const USER_ID_CONTEXT_CONDITIONS = {
  'ForAllValues:StringEquals': { 'kms:EncryptionContextKeys': ['user_id'] },
  Null: { 'kms:EncryptionContextKeys': 'false' },
};

/**
 * The IAM statements for one function's declared access (lib/routes.ts `access`), and nothing more:
 * - its `table` actions on the table ARN (none on an index, so a Query there is denied);
 * - `dynamodb:Query` on the history index only when it declares `historyIndex`;
 * - the table's customer-managed key for DynamoDB's use on its behalf, only through DynamoDB in this region
 *   (kms:ViaService): Decrypt/DescribeKey, plus Encrypt/GenerateDataKey when it writes (Put/Update/Delete);
 * - the data-key key under the `{user_id}` encryption context: Decrypt, plus GenerateDataKey for `generate`.
 */
export function statementsForAccess(access: RouteAccess, targets: AccessTargets): iam.PolicyStatement[] {
  const statements: iam.PolicyStatement[] = [];
  const tableActions = tableActionsFor(access);
  if (tableActions.length > 0) {
    statements.push(new iam.PolicyStatement({ sid: 'TableItems', actions: tableActions, resources: [targets.tableArn] }));
  }
  if (access.historyIndex) {
    statements.push(
      new iam.PolicyStatement({ sid: 'HistoryIndexQuery', actions: INDEX_READ_ACTIONS, resources: [targets.historyIndexArn] }),
    );
  }
  const tableKeyActions = tableKeyActionsFor(access);
  if (tableKeyActions.length > 0) {
    statements.push(
      new iam.PolicyStatement({
        sid: 'TableKeyViaDynamoDb',
        actions: tableKeyActions,
        resources: [targets.tableKeyArn],
        conditions: { StringEquals: { 'kms:ViaService': `dynamodb.${targets.region}.amazonaws.com` } },
      }),
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
