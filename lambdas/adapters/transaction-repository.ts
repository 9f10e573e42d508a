import {
  DeleteCommand,
  GetCommand,
  PutCommand,
  QueryCommand,
  TransactWriteCommand,
  type DynamoDBDocumentClient,
  type QueryCommandInput,
} from '@aws-sdk/lib-dynamodb';
import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { DATA_KEY_SK, TABLE_KEYS, transactionSk, userPk } from '../core/keys.ts';
import type { CursorPosition } from '../core/cursor.ts';
import type { TransactionType } from '../core/transaction.ts';
import { cancellationCodes, dynamoFailure } from './dynamo-errors.ts';
import { transactionKey, type TransactionItem } from './transaction-item.ts';

/** The user's data key changed (erased or replaced by another container) since the name was sealed. */
export class DataKeyChanged extends Error {
  constructor() {
    super('the data key used to seal the name is no longer the live key');
  }
}
/** The stored version is not the one the write was based on (a concurrent write won). */
export class VersionConflict extends Error {
  constructor() {
    super('the transaction changed concurrently');
  }
}

/** Attempts of a transactional write that DynamoDB cancelled for a conflicting in-flight transaction. */
const TRANSACTION_CONFLICT_ATTEMPTS = 5;
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export interface PageFilter {
  from?: string | undefined;
  to?: string | undefined;
  type?: TransactionType | undefined;
}

/**
 * The DynamoDB side of transactions: single-item, conditional writes and history queries on the `by-date`
 * index. No encryption here (the service seals names before they reach this class) and no aggregates
 * (the stream does those).
 */
export class TransactionRepository {
  constructor(
    private readonly doc: DynamoDBDocumentClient,
    private readonly tableName: string,
  ) {}

  /** Puts a new transaction. When the name was sealed with key `keyVersion`, checks that key is still live. */
  async insert(item: TransactionItem): Promise<void> {
    await this.write(item, { condition: 'attribute_not_exists(PK)' });
  }

  /** Replaces a transaction if its stored version is still `expectedVersion`. */
  async replace(item: TransactionItem, expectedVersion: number, nameResealed: boolean): Promise<void> {
    await this.write(item, { condition: 'version = :expected', values: { ':expected': expectedVersion }, checkKey: nameResealed });
  }

  async get(userId: string, transactionId: string): Promise<TransactionItem | undefined> {
    try {
      const result = await this.doc.send(
        new GetCommand({ TableName: this.tableName, Key: transactionKey(userId, transactionId), ConsistentRead: true }),
      );
      return result.Item as TransactionItem | undefined;
    } catch (error) {
      throw dynamoFailure(error);
    }
  }

  /** Deletes a transaction; with `expectedVersion`, only that version. */
  async remove(userId: string, transactionId: string, expectedVersion?: number): Promise<'deleted' | 'missing' | 'conflict'> {
    try {
      await this.doc.send(
        new DeleteCommand({
          TableName: this.tableName,
          Key: transactionKey(userId, transactionId),
          ConditionExpression: expectedVersion === undefined ? 'attribute_exists(PK)' : 'attribute_exists(PK) AND version = :v',
          ...(expectedVersion === undefined ? {} : { ExpressionAttributeValues: { ':v': expectedVersion } }),
          ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
        }),
      );
      return 'deleted';
    } catch (error) {
      if (error instanceof ConditionalCheckFailedException) return error.Item ? 'conflict' : 'missing';
      throw dynamoFailure(error);
    }
  }

  /**
   * One page of history, newest `transaction_date` first (ties: newest id first). Date bounds are key
   * conditions on the index; the type is a filter, so the loop keeps reading until the page is full. It reads
   * one item beyond the page to know whether another page exists, so the last page never needs a cursor.
   */
  async page(
    userId: string,
    filter: PageFilter,
    limit: number,
    after?: CursorPosition,
  ): Promise<{ items: TransactionItem[]; last: CursorPosition | undefined }> {
    const lower = filter.from;
    const upper = filter.to === undefined ? undefined : `${filter.to}T\uffff`;
    const names: Record<string, string> = { '#pk': TABLE_KEYS.partitionKey };
    if (lower !== undefined || upper !== undefined) names['#sk'] = TABLE_KEYS.historySortKey;
    const values: Record<string, unknown> = { ':pk': userPk(userId) };
    let keyCondition = '#pk = :pk';
    if (lower !== undefined && upper !== undefined) {
      keyCondition += ' AND #sk BETWEEN :lo AND :hi';
      values[':lo'] = lower;
      values[':hi'] = upper;
    } else if (lower !== undefined) {
      keyCondition += ' AND #sk >= :lo';
      values[':lo'] = lower;
    } else if (upper !== undefined) {
      keyCondition += ' AND #sk <= :hi';
      values[':hi'] = upper;
    }
    let filterExpression: string | undefined;
    if (filter.type !== undefined) {
      names['#type'] = 'type';
      values[':type'] = filter.type;
      filterExpression = '#type = :type';
    }
    let startKey: Record<string, unknown> | undefined = after
      ? { PK: userPk(userId), SK: transactionSk(after.transactionId), [TABLE_KEYS.historySortKey]: after.dateSk }
      : undefined;
    const wanted = limit + 1;
    const items: TransactionItem[] = [];
    try {
      do {
        const input: QueryCommandInput = {
          TableName: this.tableName,
          IndexName: TABLE_KEYS.historyIndex,
          KeyConditionExpression: keyCondition,
          FilterExpression: filterExpression,
          ExpressionAttributeNames: names,
          ExpressionAttributeValues: values,
          ScanIndexForward: false,
          ConsistentRead: true,
          Limit: filterExpression ? Math.max(wanted - items.length, 25) : wanted - items.length,
          ExclusiveStartKey: startKey,
        };
        const result = await this.doc.send(new QueryCommand(input));
        items.push(...((result.Items ?? []) as TransactionItem[]));
        startKey = result.LastEvaluatedKey;
      } while (startKey !== undefined && items.length < wanted);
    } catch (error) {
      throw dynamoFailure(error);
    }
    if (items.length <= limit) return { items, last: undefined };
    const page = items.slice(0, limit);
    const lastItem = page[page.length - 1] as TransactionItem;
    return { items: page, last: { transactionId: lastItem.transaction_id, dateSk: lastItem.date_sk } };
  }

  private async write(
    item: TransactionItem,
    options: { condition: string; values?: Record<string, unknown>; checkKey?: boolean },
  ): Promise<void> {
    const put = {
      TableName: this.tableName,
      Item: item,
      ConditionExpression: options.condition,
      ...(options.values ? { ExpressionAttributeValues: options.values } : {}),
    };
    const checkKey = options.checkKey ?? true;
    if (!checkKey) {
      try {
        await this.doc.send(new PutCommand(put));
        return;
      } catch (error) {
        if (error instanceof ConditionalCheckFailedException) throw new VersionConflict();
        throw dynamoFailure(error);
      }
    }
    // The name was sealed under key `key_version`: commit only if that key is still the user's live key,
    // so a name is never written under a key another container has just destroyed.
    const transaction = new TransactWriteCommand({
      TransactItems: [
        {
          ConditionCheck: {
            TableName: this.tableName,
            Key: { PK: item.PK, SK: DATA_KEY_SK },
            ConditionExpression: 'key_version = :kv AND attribute_exists(wrapped_key)',
            ExpressionAttributeValues: { ':kv': item.key_version },
          },
        },
        { Put: put },
      ],
    });
    for (let attempt = 1; ; attempt++) {
      try {
        await this.doc.send(transaction);
        return;
      } catch (error) {
        const codes = cancellationCodes(error);
        if (codes?.[0] === 'ConditionalCheckFailed') throw new DataKeyChanged();
        if (codes?.[1] === 'ConditionalCheckFailed') throw new VersionConflict();
        // Another write of this user's is in flight on the same KEY item (or this item): DynamoDB cancels one
        // of two overlapping transactions. Back off with jitter and try again; past the budget it is a 503.
        if (codes?.includes('TransactionConflict') && attempt < TRANSACTION_CONFLICT_ATTEMPTS) {
          await sleep(Math.random() * 20 * 2 ** attempt);
          continue;
        }
        throw dynamoFailure(error);
      }
    }
  }
}
