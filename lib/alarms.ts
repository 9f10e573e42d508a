import { Duration } from 'aws-cdk-lib';
import type * as apigwv2 from 'aws-cdk-lib/aws-apigatewayv2';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as actions from 'aws-cdk-lib/aws-cloudwatch-actions';
import type * as kms from 'aws-cdk-lib/aws-kms';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import * as sns from 'aws-cdk-lib/aws-sns';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';

export const ALARM_THRESHOLDS = {
  dlqMessages: 1,
  /** ms; analytics lag a write by at most this before someone is told. */
  iteratorAgeMs: 60_000,
  api5xxPer5Min: 5,
  lambdaErrorsPer5Min: 1,
  lambdaThrottlesPer5Min: 1,
} as const;

export interface AlarmsProps {
  stage: string;
  topicKey: kms.IKey;
  deadLetterQueue: sqs.IQueue;
  aggregator: lambda.IFunction;
  httpApi: apigwv2.HttpApi;
  functions: ReadonlyMap<string, lambda.IFunction>;
}

/** Alarms on what means "something is wrong": DLQ depth, stream lag, API 5xx, and each function's errors and throttles. */
export class Alarms extends Construct {
  readonly topic: sns.Topic;

  constructor(scope: Construct, id: string, props: AlarmsProps) {
    super(scope, id);
    this.topic = new sns.Topic(this, 'AlarmTopic', {
      displayName: `Tally ${props.stage} alarms`,
      masterKey: props.topicKey,
      enforceSSL: true,
    });
    const action = new actions.SnsAction(this.topic);
    const alarm = (alarmId: string, metric: cloudwatch.IMetric, threshold: number, description: string, evaluationPeriods = 1): void => {
      const created = new cloudwatch.Alarm(this, alarmId, {
        alarmName: `tally-${props.stage}-${alarmId}`,
        alarmDescription: description,
        metric,
        threshold,
        evaluationPeriods,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      });
      created.addAlarmAction(action);
    };

    alarm(
      'AggregatorDlqDepth',
      props.deadLetterQueue.metricApproximateNumberOfMessagesVisible({ period: Duration.minutes(1), statistic: 'Maximum' }),
      ALARM_THRESHOLDS.dlqMessages,
      'Stream records the aggregator gave up on are waiting in the DLQ',
    );
    alarm(
      'StreamIteratorAge',
      props.aggregator.metric('IteratorAge', { period: Duration.minutes(1), statistic: 'Maximum' }),
      ALARM_THRESHOLDS.iteratorAgeMs,
      'The aggregator is falling behind the table stream (analytics are stale)',
      5,
    );
    alarm(
      'Api5xx',
      props.httpApi.metricServerError({ period: Duration.minutes(5), statistic: 'Sum' }),
      ALARM_THRESHOLDS.api5xxPer5Min,
      'The HTTP API is answering 5xx',
    );
    for (const [name, fn] of props.functions) {
      alarm(
        `${name}Errors`,
        fn.metricErrors({ period: Duration.minutes(5), statistic: 'Sum' }),
        ALARM_THRESHOLDS.lambdaErrorsPer5Min,
        `${name} failed with an unhandled error`,
      );
      alarm(
        `${name}Throttles`,
        fn.metricThrottles({ period: Duration.minutes(5), statistic: 'Sum' }),
        ALARM_THRESHOLDS.lambdaThrottlesPer5Min,
        `${name} was throttled`,
      );
    }
  }
}
