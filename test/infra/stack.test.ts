import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Match } from 'aws-cdk-lib/assertions';
import { describe, expect, it } from 'vitest';
import { TABLE_KEYS, TRANSACTION_SK_PREFIX } from '../../lambdas/core/keys.ts';
import { EVENT_SOURCE } from '../../lambdas/adapters/event-publisher.ts';
import { ALARM_THRESHOLDS } from '../../lib/alarms.ts';
import { imageHandler } from '../../lib/bundling.ts';
import { TABLE_SCHEMA } from '../../lib/data.ts';
import { NOT_SET_IN_AWS } from '../../lib/environment.ts';
import { DOMAIN_EVENTS } from '../../lib/events.ts';
import { repoRoot } from '../../lib/paths.ts';
import { fallbackHandler, routes, streamHandler, usesTable, writesTable, type RouteAccess } from '../../lib/routes.ts';
import { STREAM_SETTINGS } from '../../lib/stream.ts';
import {
  actionsOf,
  allStatements,
  logicalIdByPath,
  statementsOfFunction,
  synth,
  type Resource,
} from './synth.ts';

const { template } = synth();
const functionIds = new Map(
  [...routes.map((r) => r.functionName), fallbackHandler.functionName, streamHandler.functionName].map((name) => [
    name,
    logicalIdByPath(template, 'AWS::Lambda::Function', `${name}/Resource`),
  ]),
);
const fnResource = (name: string): Resource =>
  template.toJSON().Resources[functionIds.get(name)!] as Resource;

describe('HTTP API', () => {
  it('has exactly one route per route-table row, each integrated with its own function', () => {
    // One per row, plus `$default` (the fallback's 404/405).
    template.resourceCountIs('AWS::ApiGatewayV2::Route', routes.length + 1);
    const integrations = template.findResources('AWS::ApiGatewayV2::Integration');
    const integratedFunctions = new Set<string>();
    for (const route of routes) {
      const found = template.findResources('AWS::ApiGatewayV2::Route', {
        Properties: { RouteKey: `${route.method} ${route.path}` },
      });
      expect(Object.keys(found), `${route.method} ${route.path}`).toHaveLength(1);
      const target = (Object.values(found)[0] as Resource).Properties.Target as { 'Fn::Join': [string, unknown[]] };
      const integrationId = (target['Fn::Join'][1][1] as { Ref: string }).Ref;
      const uri = (integrations[integrationId] as Resource).Properties.IntegrationUri as { 'Fn::GetAtt': string[] };
      expect(uri['Fn::GetAtt'][0]).toBe(functionIds.get(route.functionName));
      integratedFunctions.add(uri['Fn::GetAtt'][0]!);
    }
    expect(integratedFunctions.size).toBe(routes.length);
    const fallback = template.findResources('AWS::ApiGatewayV2::Route', { Properties: { RouteKey: '$default' } });
    expect(Object.keys(fallback)).toHaveLength(1);
    const fallbackRoute = Object.values(fallback)[0] as Resource;
    expect(fallbackRoute.Properties.AuthorizationType ?? 'NONE').toBe('NONE');
    const target = fallbackRoute.Properties.Target as { 'Fn::Join': [string, unknown[]] };
    const integrationId = (target['Fn::Join'][1][1] as { Ref: string }).Ref;
    const uri = (integrations[integrationId] as Resource).Properties.IntegrationUri as { 'Fn::GetAtt': string[] };
    expect(uri['Fn::GetAtt'][0]).toBe(functionIds.get('NotFound'));
  });

  it('puts the Cognito JWT authorizer (issuer = the pool, audience = both clients) on every route except /health', () => {
    const authorizers = template.findResources('AWS::ApiGatewayV2::Authorizer');
    expect(Object.keys(authorizers)).toHaveLength(1);
    const [authorizerId, authorizer] = Object.entries(authorizers)[0] as [string, Resource];
    expect(authorizer.Properties).toMatchObject({ AuthorizerType: 'JWT', IdentitySource: ['$request.header.Authorization'] });
    const jwt = authorizer.Properties.JwtConfiguration as { Audience: unknown[]; Issuer: unknown };
    const poolId = logicalIdByPath(template, 'AWS::Cognito::UserPool', 'Auth/UserPool/Resource');
    expect(JSON.stringify(jwt.Issuer)).toContain(poolId);
    expect(JSON.stringify(jwt.Issuer)).toContain('https://cognito-idp.');
    expect(jwt.Audience).toEqual([
      { Ref: logicalIdByPath(template, 'AWS::Cognito::UserPoolClient', 'Auth/UserPool/ServiceClient/Resource') },
      { Ref: logicalIdByPath(template, 'AWS::Cognito::UserPoolClient', 'Auth/UserPool/UserClient/Resource') },
    ]);
    for (const route of routes) {
      const found = Object.values(
        template.findResources('AWS::ApiGatewayV2::Route', { Properties: { RouteKey: `${route.method} ${route.path}` } }),
      )[0] as Resource;
      if (route.auth) {
        expect(found.Properties, route.path).toMatchObject({
          AuthorizationType: 'JWT',
          AuthorizerId: { Ref: authorizerId },
          AuthorizationScopes: ['tally/admin', 'tally/transactions'],
        });
      } else {
        expect(found.Properties.AuthorizationType ?? 'NONE').toBe('NONE');
        expect(found.Properties.AuthorizerId).toBeUndefined();
      }
    }
    expect(routes.filter((r) => !r.auth).map((r) => r.path)).toEqual(['/health']);
  });

  it('throttles the stage and writes JSON access logs that carry the request id', () => {
    template.hasResourceProperties('AWS::ApiGatewayV2::Stage', {
      StageName: '$default',
      AutoDeploy: true,
      DefaultRouteSettings: { ThrottlingRateLimit: 100, ThrottlingBurstLimit: 200 },
      AccessLogSettings: { DestinationArn: Match.anyValue(), Format: Match.stringLikeRegexp('\\$context\\.requestId') },
    });
    const format = (Object.values(template.findResources('AWS::ApiGatewayV2::Stage'))[0] as Resource).Properties
      .AccessLogSettings as { Format: string };
    expect(format.Format).not.toMatch(/authorization|\$context\.path|querystring/i);
  });

  it('outputs the API URL, the user pool, both client ids and the token URL', () => {
    for (const output of ['ApiUrl', 'UserPoolId', 'ServiceClientId', 'UserClientId', 'TokenUrl']) {
      template.hasOutput(output, {});
    }
    expect(JSON.stringify(template.toJSON().Outputs.TokenUrl)).toContain('/oauth2/token');
  });
});

describe('Cognito', () => {
  it('has a resource server tally with the admin and transactions scopes', () => {
    template.hasResourceProperties('AWS::Cognito::UserPoolResourceServer', {
      Identifier: 'tally',
      Scopes: [
        { ScopeName: 'admin', ScopeDescription: Match.anyValue() },
        { ScopeName: 'transactions', ScopeDescription: Match.anyValue() },
      ],
    });
  });

  it('has a client-credentials client with a secret for tally/admin, and a public code-flow client for tally/transactions', () => {
    const clients = Object.values(template.findResources('AWS::Cognito::UserPoolClient')).map((c) => (c as Resource).Properties);
    const service = clients.find((c) => c.ClientName === 'tally-service');
    const users = clients.find((c) => c.ClientName === 'tally-users');
    expect(service).toMatchObject({ GenerateSecret: true, AllowedOAuthFlows: ['client_credentials'] });
    expect(JSON.stringify(service?.AllowedOAuthScopes)).toMatch(/"\/admin"\]\]\}\]$/);
    expect(users).toMatchObject({ GenerateSecret: false, AllowedOAuthFlows: ['code'] });
    expect(users?.AllowedOAuthScopes).toEqual(expect.arrayContaining(['openid']));
    expect(JSON.stringify(users?.AllowedOAuthScopes)).toContain('"/transactions"');
    expect(JSON.stringify(users?.AllowedOAuthScopes)).not.toContain('admin');
  });
});

describe('functions', () => {
  it('builds one arm64 nodejs22.x function per route plus the aggregator, each with its own role and log group', () => {
    template.resourceCountIs('AWS::Lambda::Function', routes.length + 2); // + NotFound ($default) + Aggregator
    const roles = new Set<string>();
    for (const [name] of functionIds) {
      const props = fnResource(name).Properties;
      expect(props, name).toMatchObject({ Runtime: 'nodejs22.x', Architectures: ['arm64'], Handler: 'index.handler' });
      expect(props.MemorySize as number).toBeGreaterThanOrEqual(256);
      expect(props.Timeout as number).toBeLessThanOrEqual(60);
      roles.add(JSON.stringify(props.Role));
      expect((props.LoggingConfig as { LogGroup: unknown }).LogGroup).toBeDefined();
    }
    expect(roles.size).toBe(functionIds.size);
    template.allResourcesProperties('AWS::Logs::LogGroup', { RetentionInDays: Match.anyValue() });
  });

  it('puts exactly the functions that use the cache (and the aggregator) in the VPC, with the function security group', () => {
    for (const route of routes) {
      const vpcConfig = fnResource(route.functionName).Properties.VpcConfig;
      if (route.access.cache) expect(vpcConfig, route.functionName).toBeDefined();
      else expect(vpcConfig, route.functionName).toBeUndefined();
    }
    expect(fnResource(streamHandler.functionName).Properties.VpcConfig).toBeDefined();
  });

  it('sets every variable lambdas/adapters/config.ts reads (except the documented ones), and REDIS_URL as rediss://…:6379', () => {
    const source = readFileSync(path.join(repoRoot, 'lambdas/adapters/config.ts'), 'utf8');
    const read = new Set([...source.matchAll(/env\.([A-Z][A-Z0-9_]*)|env,\s*'([A-Z][A-Z0-9_]*)'/g)].map((m) => m[1] ?? m[2]!));
    const set = new Set<string>();
    for (const [name] of functionIds) {
      const vars = (fnResource(name).Properties.Environment as { Variables: Record<string, unknown> }).Variables;
      Object.keys(vars).forEach((k) => set.add(k));
    }
    const missing = [...read].filter((name) => !set.has(name) && !(NOT_SET_IN_AWS as readonly string[]).includes(name));
    expect(missing).toEqual([]);

    const create = (fnResource('CreateTransaction').Properties.Environment as { Variables: Record<string, unknown> }).Variables;
    expect(JSON.stringify(create.REDIS_URL)).toMatch(/"rediss:\/\/".*Endpoint\.Address.*":6379"/);
    expect(JSON.stringify(create.CURSOR_SECRET)).toContain('{{resolve:secretsmanager:');
    const health = (fnResource('Health').Properties.Environment as { Variables: Record<string, unknown> }).Variables;
    expect(health.REDIS_URL).toBeUndefined();
    expect(health.CURSOR_SECRET).toBeUndefined();
    expect(health.TABLE_NAME).toBeUndefined();
  });
});

describe('table and keys', () => {
  it('uses the key names of lambdas/core/keys.ts', () => {
    expect(TABLE_SCHEMA).toEqual(TABLE_KEYS);
  });

  it('is on-demand with PITR, the NEW_AND_OLD_IMAGES stream, TTL expires_at, the by-date LSI and SSE under its CMK', () => {
    template.hasResourceProperties('AWS::DynamoDB::Table', {
      BillingMode: 'PAY_PER_REQUEST',
      KeySchema: [
        { AttributeName: TABLE_KEYS.partitionKey, KeyType: 'HASH' },
        { AttributeName: TABLE_KEYS.sortKey, KeyType: 'RANGE' },
      ],
      AttributeDefinitions: Match.arrayWith([{ AttributeName: TABLE_KEYS.historySortKey, AttributeType: 'S' }]),
      LocalSecondaryIndexes: [
        {
          IndexName: TABLE_KEYS.historyIndex,
          KeySchema: [
            { AttributeName: TABLE_KEYS.partitionKey, KeyType: 'HASH' },
            { AttributeName: TABLE_KEYS.historySortKey, KeyType: 'RANGE' },
          ],
          Projection: { ProjectionType: 'ALL' },
        },
      ],
      StreamSpecification: { StreamViewType: 'NEW_AND_OLD_IMAGES' },
      TimeToLiveSpecification: { AttributeName: TABLE_KEYS.ttl, Enabled: true },
      PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
      SSESpecification: {
        SSEEnabled: true,
        SSEType: 'KMS',
        KMSMasterKeyId: { 'Fn::GetAtt': [logicalIdByPath(template, 'AWS::KMS::Key', 'Data/TableKey/Resource'), 'Arn'] },
      },
      DeletionProtectionEnabled: false,
    });
  });

  it('turns on deletion protection and RETAIN with retain=true', () => {
    const retained = synth({ retain: 'true' }).template;
    retained.hasResourceProperties('AWS::DynamoDB::Table', { DeletionProtectionEnabled: true });
    retained.hasResource('AWS::DynamoDB::Table', { DeletionPolicy: 'Retain' });
    retained.hasResource('AWS::KMS::Key', { DeletionPolicy: 'Retain' });
    retained.hasResourceProperties('AWS::Cognito::UserPool', { DeletionProtection: 'ACTIVE' });
  });

  it('rotates every customer-managed key', () => {
    template.resourceCountIs('AWS::KMS::Key', 3);
    template.allResourcesProperties('AWS::KMS::Key', { EnableKeyRotation: true });
  });
});

describe('IAM, per function, from route.access', () => {
  const dataKeyKey = logicalIdByPath(template, 'AWS::KMS::Key', 'Data/DataKeyKey/Resource');
  const tableKey = logicalIdByPath(template, 'AWS::KMS::Key', 'Data/TableKey/Resource');
  const table = logicalIdByPath(template, 'AWS::DynamoDB::Table', 'Data/Table/Resource');
  const onDataKeyKey = (name: string): string[] =>
    statementsOfFunction(template, name)
      .filter((s) => JSON.stringify(s.Resource).includes(dataKeyKey))
      .flatMap(actionsOf);
  const allActions = (name: string): string[] => statementsOfFunction(template, name).flatMap(actionsOf);
  /** Every function and its declared access: the HTTP routes, the $default fallback and the aggregator. */
  const declared: Array<{ functionName: string; access: RouteAccess }> = [...routes, fallbackHandler, streamHandler];
  const sorted = (values: Iterable<string>): string[] => [...new Set(values)].sort();

  /** Where a resource of a statement points: the table, its history index, its stream, or anything else. */
  const resourceKind = (resource: unknown): 'table' | 'index' | 'stream' | 'other' => {
    const text = JSON.stringify(resource);
    if (text === JSON.stringify({ 'Fn::GetAtt': [table, 'Arn'] })) return 'table';
    if (text === JSON.stringify({ 'Fn::Join': ['', [{ 'Fn::GetAtt': [table, 'Arn'] }, `/index/${TABLE_KEYS.historyIndex}`]] }))
      return 'index';
    if (text === JSON.stringify({ 'Fn::GetAtt': [table, 'StreamArn'] })) return 'stream';
    return 'other';
  };
  /** A function's dynamodb:* actions grouped by the kind of resource they are granted on. */
  const dynamoActions = (name: string): Record<'table' | 'index' | 'stream' | 'other', string[]> => {
    const out = { table: [] as string[], index: [] as string[], stream: [] as string[], other: [] as string[] };
    for (const s of statementsOfFunction(template, name)) {
      expect(s.Effect, name).toBe('Allow');
      const actions = actionsOf(s).filter((a) => a.startsWith('dynamodb:'));
      if (actions.length === 0) continue;
      const resources = Array.isArray(s.Resource) ? s.Resource : [s.Resource];
      for (const resource of resources) out[resourceKind(resource)].push(...actions);
    }
    return { table: sorted(out.table), index: sorted(out.index), stream: sorted(out.stream), other: sorted(out.other) };
  };

  it('no statement anywhere (roles, key, topic or queue policies) allows dynamodb:* or kms:* or a bare *', () => {
    const offending = allStatements(template).filter((s) =>
      actionsOf(s).some((a) => a === '*' || a === 'dynamodb:*' || a === 'kms:*'),
    );
    expect(offending).toEqual([]);
  });

  it("grants every function exactly its declared DynamoDB actions: `table` on the table ARN, Query on the index iff `historyIndex`", () => {
    for (const { functionName, access } of declared) {
      const actions = dynamoActions(functionName);
      expect(actions.table, functionName).toEqual(sorted(access.table.map((a) => `dynamodb:${a}`)));
      expect(actions.index, functionName).toEqual(access.historyIndex ? ['dynamodb:Query'] : []);
      if (functionName === streamHandler.functionName) {
        // Granted by the DynamoDB event source (table.grantStreamRead): the stream, and ListStreams, which has
        // no resource-level permissions (acknowledged for cdk-nag in lib/stack.ts).
        expect(actions.stream).toEqual(['dynamodb:DescribeStream', 'dynamodb:GetRecords', 'dynamodb:GetShardIterator']);
        expect(actions.other).toEqual(['dynamodb:ListStreams']);
      } else {
        expect(actions.stream, functionName).toEqual([]);
        expect(actions.other, functionName).toEqual([]);
      }
    }
    // Every function of the template is covered above.
    expect(sorted(declared.map((d) => d.functionName))).toEqual(sorted(functionIds.keys()));
  });

  it('pins the DynamoDB actions per function, as traced in the handlers’ code (a change here is a reviewed change)', () => {
    // Traced in lambdas/: transaction-repository (Get / Put / TransactWrite [ConditionCheck, Put] / Delete /
    // Query on by-date), data-keys (Get, conditional Put on create, Update on erase), idempotency-store
    // (conditional Put, Get, Update), aggregate-store (TransactWrite [Put, Update…], Update, Get, BatchGet, Query).
    const expected: Record<string, { table: string[]; historyIndex: boolean }> = {
      CreateTransaction: { table: ['ConditionCheckItem', 'GetItem', 'PutItem', 'UpdateItem'], historyIndex: false },
      ListTransactions: { table: ['GetItem'], historyIndex: true },
      GetTransaction: { table: ['GetItem'], historyIndex: false },
      UpdateTransaction: { table: ['ConditionCheckItem', 'GetItem', 'PutItem'], historyIndex: false },
      DeleteTransaction: { table: ['DeleteItem'], historyIndex: false },
      GetAnalytics: { table: ['GetItem', 'Query'], historyIndex: false },
      ErasePersonalData: { table: ['UpdateItem'], historyIndex: false },
      Health: { table: [], historyIndex: false },
      NotFound: { table: [], historyIndex: false },
      Aggregator: { table: ['BatchGetItem', 'GetItem', 'PutItem', 'Query', 'UpdateItem'], historyIndex: false },
    };
    expect(sorted(Object.keys(expected))).toEqual(sorted(declared.map((d) => d.functionName)));
    for (const { functionName, access } of declared) {
      expect({ table: sorted(access.table), historyIndex: access.historyIndex }, functionName).toEqual(expected[functionName]);
      // And the template agrees (the test above, restated against the pinned list).
      expect(dynamoActions(functionName).table, functionName).toEqual(expected[functionName]!.table.map((a) => `dynamodb:${a}`));
    }
  });

  it('gives no function Scan, BatchWriteItem or PartiQL, and a function that declares no write no PutItem, UpdateItem or DeleteItem', () => {
    for (const { functionName, access } of declared) {
      const actions = allActions(functionName);
      expect(actions, functionName).not.toEqual(
        expect.arrayContaining([expect.stringMatching(/^dynamodb:(Scan|BatchWriteItem|PartiQL\w*|DeleteTable|UpdateTable)$/)]),
      );
      if (!writesTable(access)) {
        expect(actions, functionName).not.toEqual(
          expect.arrayContaining([expect.stringMatching(/^dynamodb:(PutItem|UpdateItem|DeleteItem|BatchWriteItem)$/)]),
        );
      }
    }
    expect(routes.filter((r) => !writesTable(r.access)).map((r) => r.functionName)).toEqual(
      expect.arrayContaining(['ListTransactions', 'GetTransaction', 'GetAnalytics', 'Health']),
    );
  });

  it('lets a function use the table key only through DynamoDB: Decrypt/DescribeKey to read, plus Encrypt/GenerateDataKey to write', () => {
    const viaDynamo = { StringEquals: { 'kms:ViaService': 'dynamodb.eu-west-1.amazonaws.com' } };
    for (const { functionName, access } of declared) {
      const statements = statementsOfFunction(template, functionName).filter((s) => JSON.stringify(s.Resource).includes(tableKey));
      const conditioned = statements.filter((s) => JSON.stringify(s.Condition) === JSON.stringify(viaDynamo));
      const expected = !usesTable(access)
        ? []
        : writesTable(access)
          ? ['kms:Decrypt', 'kms:DescribeKey', 'kms:Encrypt', 'kms:GenerateDataKey']
          : ['kms:Decrypt', 'kms:DescribeKey'];
      expect(sorted(conditioned.flatMap(actionsOf)), functionName).toEqual(expected);
      const unconditioned = statements.filter((s) => !conditioned.includes(s));
      if (functionName === streamHandler.functionName) {
        // table.grantStreamRead (the event source) adds Decrypt/DescribeKey for reading the encrypted stream.
        expect(sorted(unconditioned.flatMap(actionsOf))).toEqual(['kms:Decrypt', 'kms:DescribeKey']);
      } else {
        expect(unconditioned, functionName).toEqual([]);
      }
    }
  });

  it('lets a reader only Decrypt data keys, a writer GenerateDataKey + Decrypt, both under the {user_id} context condition', () => {
    for (const route of routes) {
      const actions = onDataKeyKey(route.functionName).sort();
      const expected = { none: [], decrypt: ['kms:Decrypt'], generate: ['kms:Decrypt', 'kms:GenerateDataKey'] }[route.access.dataKeys];
      expect(actions, route.functionName).toEqual(expected);
      if (route.access.dataKeys === 'decrypt') expect(allActions(route.functionName)).not.toContain('kms:GenerateDataKey');
      for (const s of statementsOfFunction(template, route.functionName).filter((st) =>
        JSON.stringify(st.Resource).includes(dataKeyKey),
      )) {
        expect(s.Condition).toEqual({
          'ForAllValues:StringEquals': { 'kms:EncryptionContextKeys': ['user_id'] },
          Null: { 'kms:EncryptionContextKeys': 'false' },
        });
      }
    }
    expect(onDataKeyKey(streamHandler.functionName)).toEqual([]);
    expect(onDataKeyKey(fallbackHandler.functionName)).toEqual([]);
  });

  it('lets the aggregator Put/Update/Get/BatchGet/Query the table (what AggregateStore sends), read the stream, PutEvents on the bus — no Delete or ConditionCheck', () => {
    const actions = allActions(streamHandler.functionName);
    expect(actions).toEqual(
      expect.arrayContaining([
        'dynamodb:PutItem',
        'dynamodb:UpdateItem',
        'dynamodb:GetItem',
        'dynamodb:BatchGetItem',
        'dynamodb:Query',
        'dynamodb:GetRecords',
        'events:PutEvents',
        'sqs:SendMessage',
      ]),
    );
    expect(actions).not.toContain('dynamodb:DeleteItem');
    expect(actions).not.toContain('dynamodb:ConditionCheckItem');
    const bus = logicalIdByPath(template, 'AWS::Events::EventBus', 'Events/Bus/Resource');
    const putEvents = statementsOfFunction(template, streamHandler.functionName).find((s) => actionsOf(s).includes('events:PutEvents'));
    expect(putEvents?.Resource).toEqual({ 'Fn::GetAtt': [bus, 'Arn'] });
  });
});

describe('stream processing', () => {
  it('maps the table stream to the aggregator with bounded retries, bisect, partial failures, a TX# filter and the DLQ', () => {
    const aggregator = functionIds.get(streamHandler.functionName)!;
    template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      FunctionName: { Ref: aggregator },
      EventSourceArn: { 'Fn::GetAtt': [Match.anyValue(), 'StreamArn'] },
      BatchSize: STREAM_SETTINGS.batchSize,
      MaximumBatchingWindowInSeconds: 1,
      BisectBatchOnFunctionError: true,
      MaximumRetryAttempts: 5,
      MaximumRecordAgeInSeconds: 6 * 3600,
      FunctionResponseTypes: ['ReportBatchItemFailures'],
      StartingPosition: 'TRIM_HORIZON',
      FilterCriteria: {
        Filters: [{ Pattern: JSON.stringify({ dynamodb: { Keys: { SK: { S: [{ prefix: TRANSACTION_SK_PREFIX }] } } } }) }],
      },
      DestinationConfig: {
        OnFailure: { Destination: { 'Fn::GetAtt': [logicalIdByPath(template, 'AWS::SQS::Queue', 'Stream/AggregatorDlq/Resource'), 'Arn'] } },
      },
    });
    template.hasResourceProperties('AWS::SQS::Queue', { SqsManagedSseEnabled: true });
  });
});

describe('network and cache', () => {
  it('has isolated subnets only: no public subnet, internet gateway or NAT gateway', () => {
    template.resourceCountIs('AWS::EC2::NatGateway', 0);
    template.resourceCountIs('AWS::EC2::InternetGateway', 0);
    template.resourceCountIs('AWS::EC2::EIP', 0);
    template.allResourcesProperties('AWS::EC2::Subnet', { MapPublicIpOnLaunch: false });
    template.resourceCountIs('AWS::EC2::Route', 0);
    template.resourceCountIs('AWS::EC2::FlowLog', 1);
  });

  it('has a DynamoDB gateway endpoint and KMS and EventBridge interface endpoints', () => {
    template.hasResourceProperties('AWS::EC2::VPCEndpoint', {
      VpcEndpointType: 'Gateway',
      ServiceName: Match.objectLike({ 'Fn::Join': ['', Match.arrayWith([Match.stringLikeRegexp('\\.dynamodb$')])] }),
    });
    for (const service of ['kms', 'events']) {
      template.hasResourceProperties('AWS::EC2::VPCEndpoint', {
        VpcEndpointType: 'Interface',
        ServiceName: `com.amazonaws.eu-west-1.${service}`,
        PrivateDnsEnabled: true,
      });
    }
  });

  it('runs Valkey Serverless in the isolated subnets, reachable only from the function security group on 6379', () => {
    template.hasResourceProperties('AWS::ElastiCache::ServerlessCache', { Engine: 'valkey', SubnetIds: Match.anyValue() });
    const cacheSg = logicalIdByPath(template, 'AWS::EC2::SecurityGroup', 'Cache/CacheSg/Resource');
    const fnSg = logicalIdByPath(template, 'AWS::EC2::SecurityGroup', 'Cache/FunctionSg/Resource');
    const ingress = Object.values(template.findResources('AWS::EC2::SecurityGroupIngress')) as Resource[];
    const toCache = ingress.filter((r) => JSON.stringify(r.Properties.GroupId).includes(cacheSg));
    expect(toCache.map((r) => r.Properties)).toEqual([
      expect.objectContaining({ IpProtocol: 'tcp', FromPort: 6379, ToPort: 6379, SourceSecurityGroupId: { 'Fn::GetAtt': [fnSg, 'GroupId'] } }),
    ]);
    for (const sg of Object.values(template.findResources('AWS::EC2::SecurityGroup')) as Resource[]) {
      expect(sg.Properties.SecurityGroupIngress ?? []).toEqual([]);
      expect(JSON.stringify(sg.Properties.SecurityGroupEgress ?? [])).not.toContain('0.0.0.0/0"');
    }
    const egress = (Object.values(template.findResources('AWS::EC2::SecurityGroupEgress')) as Resource[]).map((r) => r.Properties);
    expect(egress.map((e) => e.FromPort).sort()).toEqual([443, 443, 6379]);
  });
});

describe('events and alarms', () => {
  it('routes large-amount alerts from the bus to an encrypted SNS topic, with the publisher’s source and detail-type', () => {
    expect(DOMAIN_EVENTS.source).toBe(EVENT_SOURCE);
    template.hasResourceProperties('AWS::Events::Rule', {
      EventBusName: Match.anyValue(),
      EventPattern: { source: [EVENT_SOURCE], 'detail-type': ['transaction.large_amount'] },
      Targets: [Match.objectLike({ Arn: { Ref: logicalIdByPath(template, 'AWS::SNS::Topic', 'Events/LargeAmountAlerts/Resource') } })],
    });
    template.allResourcesProperties('AWS::SNS::Topic', { KmsMasterKeyId: Match.anyValue() });
  });

  it('alarms on DLQ depth, stream iterator age, API 5xx, and every function’s errors and throttles', () => {
    const alarms = Object.values(template.findResources('AWS::CloudWatch::Alarm')).map((a) => (a as Resource).Properties);
    const find = (metric: string, dimension?: string) =>
      alarms.filter((a) => a.MetricName === metric && (!dimension || JSON.stringify(a.Dimensions).includes(dimension)));
    expect(find('ApproximateNumberOfMessagesVisible')).toHaveLength(1);
    expect(find('IteratorAge', functionIds.get(streamHandler.functionName))[0]).toMatchObject({
      Threshold: ALARM_THRESHOLDS.iteratorAgeMs,
      Statistic: 'Maximum',
    });
    expect(find('5xx')).toHaveLength(1);
    for (const [, id] of functionIds) {
      expect(find('Errors', id), id).toHaveLength(1);
      expect(find('Throttles', id), id).toHaveLength(1);
    }
    for (const alarm of alarms) expect((alarm.AlarmActions as unknown[]).length).toBe(1);
  });
});

describe('packaging=image', () => {
  const image = synth({ packaging: 'image' }).template;

  it('deploys every function as an arm64 image function from one image asset, CMD selecting its handler', () => {
    const fns = Object.values(image.findResources('AWS::Lambda::Function')) as Resource[];
    expect(fns).toHaveLength(routes.length + 2);
    const uris = new Set<string>();
    const commands = fns.map((f) => {
      expect(f.Properties).toMatchObject({ PackageType: 'Image', Architectures: ['arm64'] });
      expect(f.Properties.Runtime).toBeUndefined();
      uris.add(JSON.stringify((f.Properties.Code as { ImageUri: unknown }).ImageUri));
      return (f.Properties.ImageConfig as { Command: string[] }).Command;
    });
    expect(uris.size).toBe(1);
    expect(commands.sort()).toEqual(
      [...routes.map((r) => r.functionName), fallbackHandler.functionName, streamHandler.functionName].map((n) => [imageHandler(n)]).sort(),
    );
  });
});
