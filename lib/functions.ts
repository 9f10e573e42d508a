import path from 'node:path';
import { Duration, RemovalPolicy, Validations } from 'aws-cdk-lib';
import type * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as ecrAssets from 'aws-cdk-lib/aws-ecr-assets';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as nodejs from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { imageHandler, sharedEsbuildOptions } from './bundling.ts';
import { repoRoot } from './paths.ts';
import type { Packaging } from './settings.ts';

export const VPC_ACCESS_MANAGED_POLICY = 'service-role/AWSLambdaVPCAccessExecutionRole';

/** lib/bundling.ts's esbuild options in the shape `NodejsFunction` takes (the Dockerfile's build uses them as is). */
export function nodejsFunctionBundling(): nodejs.BundlingOptions {
  return {
    format: nodejs.OutputFormat.ESM,
    target: sharedEsbuildOptions.target,
    minify: sharedEsbuildOptions.minify,
    sourceMap: sharedEsbuildOptions.sourcemap,
    sourceMapMode: nodejs.SourceMapMode.DEFAULT,
    mainFields: [...sharedEsbuildOptions.mainFields],
    banner: sharedEsbuildOptions.banner.js,
    externalModules: [...sharedEsbuildOptions.external],
  };
}

export interface FunctionSizing {
  memorySize: number;
  timeout: Duration;
}

export const SIZING = {
  /** Liveness only. */
  light: { memorySize: 256, timeout: Duration.seconds(3) },
  /** An HTTP endpoint: DynamoDB, KMS on a key-cache miss, Redis, AES-GCM. API Gateway gives up at 30 s. */
  http: { memorySize: 512, timeout: Duration.seconds(10) },
  /** The stream aggregator: up to a batch of 100 records, one TransactWriteItems per record. */
  stream: { memorySize: 1024, timeout: Duration.seconds(60) },
} as const satisfies Record<string, FunctionSizing>;

export interface VpcPlacement {
  vpc: ec2.IVpc;
  securityGroup: ec2.ISecurityGroup;
}

export interface LambdaFactoryProps {
  packaging: Packaging;
  logRetention: logs.RetentionDays;
  retain: boolean;
}

export interface TallyFunctionProps {
  functionName: string;
  /** Relative to the repository root. */
  entry: string;
  description: string;
  sizing: FunctionSizing;
  environment: Record<string, string>;
  vpc?: VpcPlacement;
}

/**
 * Builds every function the same way, for either packaging: its own role (logs to its own log group, plus
 * whatever the caller grants), its own log group with retention, arm64, Node 22.
 */
export class LambdaFactory extends Construct {
  private image: ecrAssets.DockerImageAsset | undefined;

  constructor(
    scope: Construct,
    id: string,
    private readonly props: LambdaFactoryProps,
  ) {
    super(scope, id);
  }

  /** The one container image (packaging=image): built from the repository's Dockerfile, shared by every function. */
  private imageAsset(): ecrAssets.DockerImageAsset {
    this.image ??= new ecrAssets.DockerImageAsset(this, 'Image', {
      directory: repoRoot,
      file: 'Dockerfile',
      platform: ecrAssets.Platform.LINUX_ARM64,
    });
    return this.image;
  }

  create(scope: Construct, props: TallyFunctionProps): lambda.Function {
    const id = props.functionName;
    const logGroup = new logs.LogGroup(scope, `${id}Logs`, {
      retention: this.props.logRetention,
      removalPolicy: this.props.retain ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY,
    });
    const role = new iam.Role(scope, `${id}Role`, {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: `Tally ${id}: only what its code calls`,
    });
    logGroup.grantWrite(role);
    if (props.vpc) {
      role.addManagedPolicy(iam.ManagedPolicy.fromAwsManagedPolicyName(VPC_ACCESS_MANAGED_POLICY));
      Validations.of(role).acknowledge({
        id: 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole]',
        reason:
          'Lambda needs the EC2 network-interface actions to place the function in the VPC; they have no ' +
          'resource-level permissions, and the AWS-maintained policy is the documented minimal set (its CloudWatch ' +
          'Logs actions add nothing beyond the log group this role already writes to).',
      });
    }

    const common = {
      description: props.description,
      architecture: lambda.Architecture.ARM_64,
      memorySize: props.sizing.memorySize,
      timeout: props.sizing.timeout,
      environment: { NODE_OPTIONS: '--enable-source-maps', ...props.environment },
      role,
      logGroup,
      loggingFormat: lambda.LoggingFormat.JSON,
      ...(props.vpc
        ? {
            vpc: props.vpc.vpc,
            vpcSubnets: { subnets: props.vpc.vpc.isolatedSubnets },
            securityGroups: [props.vpc.securityGroup],
          }
        : {}),
    };

    if (this.props.packaging === 'image') {
      const image = this.imageAsset();
      return new lambda.DockerImageFunction(scope, id, {
        ...common,
        code: lambda.DockerImageCode.fromEcr(image.repository, {
          tagOrDigest: image.imageTag,
          cmd: [imageHandler(props.functionName)],
        }),
      });
    }
    const fn = new nodejs.NodejsFunction(scope, id, {
      ...common,
      entry: path.join(repoRoot, props.entry),
      handler: 'handler',
      runtime: lambda.Runtime.NODEJS_22_X,
      projectRoot: repoRoot,
      depsLockFilePath: path.join(repoRoot, 'package-lock.json'),
      bundling: nodejsFunctionBundling(),
    });
    Validations.of(fn).acknowledge({
      id: 'AwsSolutions-L1',
      reason:
        'Pinned to nodejs22.x on purpose: the container-image packaging uses public.ecr.aws/lambda/nodejs:22 and ' +
        'the bundle targets node22, so both packagings run the same Node major; move both together.',
    });
    return fn;
  }
}
