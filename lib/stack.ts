import { CfnOutput, RemovalPolicy, Stack, Validations, type StackProps } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import type { Construct } from 'constructs';
import { Alarms } from './alarms.ts';
import { Api } from './api.ts';
import { Auth } from './auth.ts';
import { Cache } from './cache.ts';
import { Data } from './data.ts';
import { functionEnvironment, type EnvironmentResources } from './environment.ts';
import { DomainEvents } from './events.ts';
import { LambdaFactory, SIZING } from './functions.ts';
import { tallyKey } from './keys.ts';
import { statementsForAccess, type AccessTargets } from './permissions.ts';
import { fallbackHandler, routes, streamHandler, usesTable, type RouteDefinition } from './routes.ts';
import type { TallySettings } from './settings.ts';
import { StreamProcessing } from './stream.ts';

export interface TallyStackProps extends StackProps {
  settings: TallySettings;
}

/** The whole of DESIGN.md in one stack; each concern is its own construct. */
export class TallyStack extends Stack {
  readonly functions = new Map<string, lambda.Function>();

  constructor(scope: Construct, id: string, props: TallyStackProps) {
    super(scope, id, props);
    const { settings } = props;
    const removalPolicy = settings.retain ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY;
    const logRetention = settings.retain ? logs.RetentionDays.ONE_YEAR : logs.RetentionDays.TWO_WEEKS;

    const data = new Data(this, 'Data', { stage: settings.stage, retain: settings.retain });
    const cache = new Cache(this, 'Cache', { stage: settings.stage, retain: settings.retain, logRetention });
    const notificationsKey = tallyKey(this, 'NotificationsKey', {
      description: `Tally ${settings.stage}: encrypts the alert and alarm topics`,
      alias: `alias/tally-${settings.stage}-notifications`,
      removalPolicy,
      servicePrincipals: ['events.amazonaws.com', 'cloudwatch.amazonaws.com'],
    });
    const domainEvents = new DomainEvents(this, 'Events', { stage: settings.stage, topicKey: notificationsKey });
    const auth = new Auth(this, 'Auth', {
      stage: settings.stage,
      retain: settings.retain,
      callbackUrls: settings.callbackUrls,
      ...(settings.authDomainPrefix === undefined ? {} : { domainPrefix: settings.authDomainPrefix }),
    });

    const resources: EnvironmentResources = {
      stage: settings.stage,
      tableName: data.table.tableName,
      dataKeyKeyArn: data.dataKeyKey.keyArn,
      cursorSecret: data.cursorSecret.secretValue.unsafeUnwrap(),
      redisUrl: cache.redisUrl,
      eventBusName: domainEvents.bus.eventBusName,
    };
    const targets: AccessTargets = {
      tableArn: data.table.tableArn,
      historyIndexArn: data.historyIndexArn,
      tableKeyArn: data.tableKey.keyArn,
      dataKeyKeyArn: data.dataKeyKey.keyArn,
      region: this.region,
    };
    const vpcPlacement = { vpc: cache.vpc, securityGroup: cache.functionSecurityGroup };
    const factory = new LambdaFactory(this, 'Lambdas', {
      packaging: settings.packaging,
      logRetention,
      retain: settings.retain,
    });

    const functionFor = (route: RouteDefinition): lambda.Function => {
      const fn = factory.create(this, {
        functionName: route.functionName,
        entry: route.entry,
        description: `Tally ${route.method} ${route.path}: ${route.summary}`,
        sizing: usesTable(route.access) ? SIZING.http : SIZING.light,
        environment: functionEnvironment(
          { ...route.access, publishesEvents: false, cursors: usesTable(route.access) },
          resources,
        ),
        ...(route.access.cache ? { vpc: vpcPlacement } : {}),
      });
      for (const statement of statementsForAccess(route.access, targets)) fn.addToRolePolicy(statement);
      this.functions.set(route.functionName, fn);
      return fn;
    };

    const notFound = factory.create(this, {
      functionName: fallbackHandler.functionName,
      entry: fallbackHandler.entry,
      description: `Tally $default route: ${fallbackHandler.summary}`,
      sizing: SIZING.light,
      environment: functionEnvironment({ ...fallbackHandler.access, publishesEvents: false, cursors: false }, resources),
    });
    this.functions.set(fallbackHandler.functionName, notFound);

    const api = new Api(this, 'Api', {
      stage: settings.stage,
      retain: settings.retain,
      logRetention,
      throttleRateLimit: settings.throttleRateLimit,
      throttleBurstLimit: settings.throttleBurstLimit,
      routes,
      functionFor,
      fallback: notFound,
      jwt: {
        issuerUrl: auth.issuerUrl,
        audience: [auth.serviceClient.userPoolClientId, auth.userClient.userPoolClientId],
      },
    });

    // The aggregator applies deltas, bumps the analytics cache version (so it runs in the VPC) and publishes
    // large-amount alerts to the bus.
    const aggregator = factory.create(this, {
      functionName: streamHandler.functionName,
      entry: streamHandler.entry,
      description: 'Tally stream aggregator: per-user running sums and per-day counts',
      sizing: SIZING.stream,
      environment: functionEnvironment({ ...streamHandler.access, publishesEvents: true, cursors: false }, resources),
      vpc: vpcPlacement,
    });
    for (const statement of statementsForAccess(streamHandler.access, targets)) aggregator.addToRolePolicy(statement);
    aggregator.addToRolePolicy(
      new iam.PolicyStatement({
        sid: 'PublishDomainEvents',
        actions: ['events:PutEvents'],
        resources: [domainEvents.bus.eventBusArn],
      }),
    );
    this.functions.set(streamHandler.functionName, aggregator);
    Validations.of(aggregator.role ?? aggregator).acknowledge({
      id: 'AwsSolutions-IAM5[Resource::*]',
      reason:
        'dynamodb:ListStreams (granted by the DynamoDB event source) has no resource-level permissions; every other ' +
        'stream action is scoped to the table stream ARN.',
    });
    const stream = new StreamProcessing(this, 'Stream', { table: data.table, aggregator });

    const alarms = new Alarms(this, 'Alarms', {
      stage: settings.stage,
      topicKey: notificationsKey,
      deadLetterQueue: stream.deadLetterQueue,
      aggregator,
      httpApi: api.httpApi,
      functions: this.functions,
    });

    new CfnOutput(this, 'ApiUrl', { value: api.url, description: 'Base URL of the HTTP API' });
    new CfnOutput(this, 'UserPoolId', { value: auth.userPool.userPoolId });
    new CfnOutput(this, 'ServiceClientId', {
      value: auth.serviceClient.userPoolClientId,
      description: 'Client-credentials app client (scope tally/admin); its secret: aws cognito-idp describe-user-pool-client',
    });
    new CfnOutput(this, 'UserClientId', {
      value: auth.userClient.userPoolClientId,
      description: 'End-user app client (authorization code + PKCE, scope tally/transactions)',
    });
    new CfnOutput(this, 'TokenUrl', { value: auth.tokenUrl, description: 'Cognito OAuth2 token endpoint' });
    new CfnOutput(this, 'TableName', { value: data.table.tableName });
    new CfnOutput(this, 'EventBusName', { value: domainEvents.bus.eventBusName });
    new CfnOutput(this, 'AlertsTopicArn', { value: domainEvents.alertsTopic.topicArn });
    new CfnOutput(this, 'AlarmTopicArn', { value: alarms.topic.topicArn, description: 'Subscribe to be told about alarms' });

  }
}
