import { Fn, RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as elasticache from 'aws-cdk-lib/aws-elasticache';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';

/** ElastiCache Serverless listens on 6379 (TLS only). */
export const CACHE_PORT = 6379;

export interface CacheProps {
  stage: string;
  retain: boolean;
  logRetention: logs.RetentionDays;
}

/**
 * The VPC (isolated subnets only: no internet gateway, no NAT), the endpoints the in-VPC functions need
 * (DynamoDB gateway, KMS and EventBridge interface endpoints), ElastiCache Serverless (Valkey), and the
 * security groups: functions → cache on 6379, functions → endpoints on 443, nothing else.
 */
export class Cache extends Construct {
  readonly vpc: ec2.Vpc;
  /** Attach to every function that talks to the cache. */
  readonly functionSecurityGroup: ec2.SecurityGroup;
  readonly cacheSecurityGroup: ec2.SecurityGroup;
  readonly serverlessCache: elasticache.CfnServerlessCache;
  /** `rediss://<endpoint>:6379`. */
  readonly redisUrl: string;

  constructor(scope: Construct, id: string, props: CacheProps) {
    super(scope, id);
    const region = Stack.of(this).region;

    this.vpc = new ec2.Vpc(this, 'Vpc', {
      maxAzs: 2,
      natGateways: 0,
      subnetConfiguration: [{ name: 'isolated', subnetType: ec2.SubnetType.PRIVATE_ISOLATED, cidrMask: 24 }],
      // Nothing is ever attached to the default security group; restricting it would need a custom-resource Lambda.
      restrictDefaultSecurityGroup: false,
    });
    const flowLogGroup = new logs.LogGroup(this, 'FlowLogs', {
      retention: props.logRetention,
      removalPolicy: props.retain ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY,
    });
    this.vpc.addFlowLog('FlowLog', {
      destination: ec2.FlowLogDestination.toCloudWatchLogs(flowLogGroup),
      trafficType: ec2.FlowLogTrafficType.REJECT,
    });
    const isolated: ec2.SubnetSelection = { subnetType: ec2.SubnetType.PRIVATE_ISOLATED };

    this.functionSecurityGroup = new ec2.SecurityGroup(this, 'FunctionSg', {
      vpc: this.vpc,
      description: 'Tally functions in the VPC: out to the cache and the AWS service endpoints only',
      allowAllOutbound: false,
    });
    this.cacheSecurityGroup = new ec2.SecurityGroup(this, 'CacheSg', {
      vpc: this.vpc,
      description: 'Tally ElastiCache Serverless: in from the Tally functions on 6379 only',
      allowAllOutbound: false,
    });
    const endpointSecurityGroup = new ec2.SecurityGroup(this, 'EndpointSg', {
      vpc: this.vpc,
      description: 'Tally interface endpoints (KMS, EventBridge): in from the Tally functions on 443 only',
      allowAllOutbound: false,
    });
    this.functionSecurityGroup.connections.allowTo(this.cacheSecurityGroup, ec2.Port.tcp(CACHE_PORT), 'Functions to cache');
    this.functionSecurityGroup.connections.allowTo(endpointSecurityGroup, ec2.Port.tcp(443), 'Functions to interface endpoints');

    this.vpc.addGatewayEndpoint('DynamoDbEndpoint', {
      service: ec2.GatewayVpcEndpointAwsService.DYNAMODB,
      subnets: [isolated],
    });
    // The gateway endpoint is reached through the service's managed prefix list (looked up once, then cached in
    // cdk.context.json, like the availability zones).
    const dynamoPrefixList = ec2.PrefixList.fromLookup(this, 'DynamoDbPrefixList', {
      prefixListName: `com.amazonaws.${region}.dynamodb`,
    });
    this.functionSecurityGroup.addEgressRule(
      ec2.Peer.prefixList(dynamoPrefixList.prefixListId),
      ec2.Port.tcp(443),
      'Functions to DynamoDB through the gateway endpoint',
    );
    for (const [name, service] of [
      ['KmsEndpoint', ec2.InterfaceVpcEndpointAwsService.KMS],
      ['EventBridgeEndpoint', ec2.InterfaceVpcEndpointAwsService.EVENTBRIDGE],
    ] as const) {
      this.vpc.addInterfaceEndpoint(name, {
        service,
        subnets: isolated,
        securityGroups: [endpointSecurityGroup],
        privateDnsEnabled: true,
        open: false,
      });
    }

    this.serverlessCache = new elasticache.CfnServerlessCache(this, 'Valkey', {
      serverlessCacheName: `tally-${props.stage}`,
      description: `Tally ${props.stage}: history pages and analytics (ciphertext only)`,
      engine: 'valkey',
      majorEngineVersion: '8',
      subnetIds: this.vpc.selectSubnets(isolated).subnetIds,
      securityGroupIds: [this.cacheSecurityGroup.securityGroupId],
      // A cap so a runaway key pattern cannot run up the bill; the cache is a cache (misses fall back to DynamoDB).
      cacheUsageLimits: {
        dataStorage: { maximum: 5, unit: 'GB' },
        ecpuPerSecond: { maximum: 15_000 },
      },
    });
    this.serverlessCache.applyRemovalPolicy(RemovalPolicy.DESTROY);
    this.redisUrl = Fn.join('', ['rediss://', this.serverlessCache.attrEndpointAddress, `:${CACHE_PORT}`]);
  }
}
