import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import type * as kms from 'aws-cdk-lib/aws-kms';
import * as sns from 'aws-cdk-lib/aws-sns';
import { Construct } from 'constructs';

/**
 * The domain events the example rule routes, as the aggregator publishes them (lambdas/adapters/event-publisher.ts
 * `EVENT_SOURCE`, lambdas/core/aggregate-delta.ts `DomainEventType`); repeated here because lib/ does not import
 * lambdas/ code, and held together by test/infra.
 */
export const DOMAIN_EVENTS = {
  source: 'tally.transactions',
  largeAmountDetailType: 'transaction.large_amount',
} as const;

export interface DomainEventsProps {
  stage: string;
  /** Encrypts the topic; its key policy lets EventBridge and CloudWatch publish. */
  topicKey: kms.IKey;
}

/** The bus for domain events, and an example rule: large-amount alerts → an encrypted SNS topic. */
export class DomainEvents extends Construct {
  readonly bus: events.EventBus;
  readonly alertsTopic: sns.Topic;
  readonly largeAmountRule: events.Rule;

  constructor(scope: Construct, id: string, props: DomainEventsProps) {
    super(scope, id);
    this.bus = new events.EventBus(this, 'Bus', {
      eventBusName: `tally-${props.stage}`,
      description: 'Tally domain events',
    });
    this.alertsTopic = new sns.Topic(this, 'LargeAmountAlerts', {
      displayName: `Tally ${props.stage} large-amount alerts`,
      masterKey: props.topicKey,
      enforceSSL: true,
    });
    this.largeAmountRule = new events.Rule(this, 'LargeAmountRule', {
      eventBus: this.bus,
      description: 'Large-amount alerts to the alerts topic',
      eventPattern: { source: [DOMAIN_EVENTS.source], detailType: [DOMAIN_EVENTS.largeAmountDetailType] },
      targets: [new targets.SnsTopic(this.alertsTopic)],
    });
  }
}
