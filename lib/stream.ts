import { Duration, Validations } from 'aws-cdk-lib';
import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { DynamoEventSource, SqsDlq } from 'aws-cdk-lib/aws-lambda-event-sources';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';

/** The event source mapping's settings (asserted by test/infra). */
export const STREAM_SETTINGS = {
  batchSize: 100,
  maxBatchingWindow: Duration.seconds(1),
  bisectBatchOnError: true,
  retryAttempts: 5,
  /** Well inside the stream's 24 h retention and the applied markers' 48 h TTL. */
  maxRecordAge: Duration.hours(6),
  parallelizationFactor: 1,
  transactionSkPrefix: 'TX#',
} as const;

export interface StreamProps {
  table: dynamodb.ITable;
  aggregator: lambda.IFunction;
}

/**
 * DynamoDB Streams → the aggregator: only transaction items (SK begins with TX#) invoke it; partial batch
 * failures are reported; a record that still fails after bounded retries (or grows too old) goes to the DLQ.
 */
export class StreamProcessing extends Construct {
  readonly deadLetterQueue: sqs.Queue;

  constructor(scope: Construct, id: string, props: StreamProps) {
    super(scope, id);
    this.deadLetterQueue = new sqs.Queue(this, 'AggregatorDlq', {
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
    });
    Validations.of(this.deadLetterQueue).acknowledge({
      id: 'AwsSolutions-SQS3',
      reason:
        'This queue is itself the dead-letter destination (on-failure destination of the stream event source ' +
        'mapping); nothing consumes it automatically, so it needs no DLQ of its own. Its depth is alarmed.',
    });
    props.aggregator.addEventSource(
      new DynamoEventSource(props.table, {
        startingPosition: lambda.StartingPosition.TRIM_HORIZON,
        batchSize: STREAM_SETTINGS.batchSize,
        maxBatchingWindow: STREAM_SETTINGS.maxBatchingWindow,
        bisectBatchOnError: STREAM_SETTINGS.bisectBatchOnError,
        retryAttempts: STREAM_SETTINGS.retryAttempts,
        maxRecordAge: STREAM_SETTINGS.maxRecordAge,
        parallelizationFactor: STREAM_SETTINGS.parallelizationFactor,
        reportBatchItemFailures: true,
        onFailure: new SqsDlq(this.deadLetterQueue),
        filters: [
          lambda.FilterCriteria.filter({
            dynamodb: { Keys: { SK: { S: lambda.FilterRule.beginsWith(STREAM_SETTINGS.transactionSkPrefix) } } },
          }),
        ],
      }),
    );
  }
}
