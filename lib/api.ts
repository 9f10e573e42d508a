import * as apigw from 'aws-cdk-lib/aws-apigateway';
import * as apigwv2 from 'aws-cdk-lib/aws-apigatewayv2';
import { HttpJwtAuthorizer } from 'aws-cdk-lib/aws-apigatewayv2-authorizers';
import { HttpLambdaIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import { RemovalPolicy, Validations } from 'aws-cdk-lib';
import { Construct } from 'constructs';
import type { RouteDefinition } from './routes.ts';
import { ROUTE_SCOPES } from './auth.ts';

export interface ApiProps {
  stage: string;
  retain: boolean;
  logRetention: logs.RetentionDays;
  throttleRateLimit: number;
  throttleBurstLimit: number;
  routes: readonly RouteDefinition[];
  functionFor: (route: RouteDefinition) => lambda.IFunction;
  /** Answers the `$default` route: every request no row matches (404, or 405 with Allow). */
  fallback: lambda.IFunction;
  jwt: { issuerUrl: string; audience: string[] };
}

/**
 * The HTTP API: one route per row of the route table, each integrated with its own function; the JWT
 * authorizer (Cognito) on every route with `auth: true`; a `$default` stage with throttling and JSON access logs
 * that carry no token, query string or body.
 */
export class Api extends Construct {
  readonly httpApi: apigwv2.HttpApi;
  readonly stage: apigwv2.HttpStage;
  readonly routes = new Map<string, apigwv2.HttpRoute[]>();

  constructor(scope: Construct, id: string, props: ApiProps) {
    super(scope, id);
    this.httpApi = new apigwv2.HttpApi(this, 'HttpApi', {
      apiName: `tally-${props.stage}`,
      description: 'Tally transactions API',
      createDefaultStage: false,
    });
    const accessLogs = new logs.LogGroup(this, 'AccessLogs', {
      retention: props.logRetention,
      removalPolicy: props.retain ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY,
    });
    this.stage = this.httpApi.addStage('DefaultStage', {
      stageName: '$default',
      autoDeploy: true,
      throttle: { rateLimit: props.throttleRateLimit, burstLimit: props.throttleBurstLimit },
      accessLogSettings: {
        destination: new apigwv2.LogGroupLogDestination(accessLogs),
        format: apigw.AccessLogFormat.custom(
          JSON.stringify({
            requestId: apigw.AccessLogField.contextRequestId(),
            time: apigw.AccessLogField.contextRequestTime(),
            ip: apigw.AccessLogField.contextIdentitySourceIp(),
            routeKey: '$context.routeKey',
            status: apigw.AccessLogField.contextStatus(),
            latencyMs: '$context.responseLatency',
            integrationStatus: '$context.integrationStatus',
            integrationError: '$context.integrationErrorMessage',
            authorizerError: '$context.authorizer.error',
            clientId: '$context.authorizer.claims.client_id',
          }),
        ),
      },
    });

    const authorizer = new HttpJwtAuthorizer('CognitoJwt', props.jwt.issuerUrl, {
      jwtAudience: props.jwt.audience,
      identitySource: ['$request.header.Authorization'],
    });
    for (const route of props.routes) {
      const fn = props.functionFor(route);
      const created = this.httpApi.addRoutes({
        path: route.path,
        methods: [apigwv2.HttpMethod[route.method]],
        integration: new HttpLambdaIntegration(`${route.functionName}Integration`, fn),
        ...(route.auth ? { authorizer, authorizationScopes: ROUTE_SCOPES } : {}),
      });
      this.routes.set(route.functionName, created);
      if (!route.auth) {
        for (const httpRoute of created) {
          Validations.of(httpRoute).acknowledge({
            id: 'AwsSolutions-APIG4',
            reason: `${route.method} ${route.path} is public by design (API.md: liveness, no auth); it reads no data.`,
          });
        }
      }
    }
    const fallback = new apigwv2.HttpRoute(this, 'DefaultRoute', {
      httpApi: this.httpApi,
      routeKey: apigwv2.HttpRouteKey.DEFAULT,
      integration: new HttpLambdaIntegration('NotFoundIntegration', props.fallback),
    });
    Validations.of(fallback).acknowledge({
      id: 'AwsSolutions-APIG4',
      reason: 'The $default route only answers 404/405 problem+json for requests no route matches; it reads no data.',
    });
  }

  get url(): string {
    return this.stage.url;
  }
}
