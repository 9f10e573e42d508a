import { Duration, RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import * as cognito from 'aws-cdk-lib/aws-cognito';
import { Construct } from 'constructs';

export const RESOURCE_SERVER_ID = 'tally';
export const SCOPE_ADMIN = 'admin';
export const SCOPE_TRANSACTIONS = 'transactions';
/** The scopes a route accepts (either one): `tally/admin` for services, `tally/transactions` for end users. */
export const ROUTE_SCOPES = [`${RESOURCE_SERVER_ID}/${SCOPE_ADMIN}`, `${RESOURCE_SERVER_ID}/${SCOPE_TRANSACTIONS}`];

export interface AuthProps {
  stage: string;
  retain: boolean;
  callbackUrls: string[];
  domainPrefix?: string;
}

/**
 * The Cognito user pool behind the HTTP API's JWT authorizer: a resource server `tally` with two scopes, an app
 * client for service callers (client credentials, `tally/admin`), and one for end users (authorization code
 * with PKCE, `tally/transactions`; their `sub` is their user_id).
 */
export class Auth extends Construct {
  readonly userPool: cognito.UserPool;
  readonly serviceClient: cognito.UserPoolClient;
  readonly userClient: cognito.UserPoolClient;
  readonly domain: cognito.UserPoolDomain;

  constructor(scope: Construct, id: string, props: AuthProps) {
    super(scope, id);
    this.userPool = new cognito.UserPool(this, 'UserPool', {
      userPoolName: `tally-${props.stage}`,
      selfSignUpEnabled: false,
      signInAliases: { email: true },
      accountRecovery: cognito.AccountRecovery.EMAIL_ONLY,
      passwordPolicy: {
        minLength: 12,
        requireLowercase: true,
        requireUppercase: true,
        requireDigits: true,
        requireSymbols: true,
        tempPasswordValidity: Duration.days(3),
      },
      mfa: cognito.Mfa.REQUIRED,
      mfaSecondFactor: { otp: true, sms: false },
      featurePlan: cognito.FeaturePlan.ESSENTIALS,
      deletionProtection: props.retain,
      removalPolicy: props.retain ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY,
    });
    Validations.of(this.userPool).acknowledge({
      id: 'AwsSolutions-COG8',
      reason:
        'Essentials plan: there is no self sign-up, users are created by an administrator and MFA (TOTP) is ' +
        'required; most callers are services using client credentials, which Plus threat protection does not ' +
        'cover. Plus is a per-MAU cost to weigh per deployment.',
    });

    const admin = new cognito.ResourceServerScope({ scopeName: SCOPE_ADMIN, scopeDescription: 'Act on any user (service callers)' });
    const transactions = new cognito.ResourceServerScope({
      scopeName: SCOPE_TRANSACTIONS,
      scopeDescription: "Act on the caller's own transactions",
    });
    const resourceServer = this.userPool.addResourceServer('ResourceServer', {
      identifier: RESOURCE_SERVER_ID,
      userPoolResourceServerName: 'Tally API',
      scopes: [admin, transactions],
    });

    this.serviceClient = this.userPool.addClient('ServiceClient', {
      userPoolClientName: 'tally-service',
      generateSecret: true,
      authFlows: {},
      oAuth: {
        flows: { clientCredentials: true },
        scopes: [cognito.OAuthScope.resourceServer(resourceServer, admin)],
      },
      accessTokenValidity: Duration.hours(1),
      preventUserExistenceErrors: true,
    });
    this.userClient = this.userPool.addClient('UserClient', {
      userPoolClientName: 'tally-users',
      generateSecret: false,
      authFlows: {},
      oAuth: {
        flows: { authorizationCodeGrant: true },
        scopes: [cognito.OAuthScope.OPENID, cognito.OAuthScope.EMAIL, cognito.OAuthScope.resourceServer(resourceServer, transactions)],
        callbackUrls: props.callbackUrls,
        logoutUrls: props.callbackUrls,
      },
      supportedIdentityProviders: [cognito.UserPoolClientIdentityProvider.COGNITO],
      accessTokenValidity: Duration.hours(1),
      idTokenValidity: Duration.hours(1),
      refreshTokenValidity: Duration.days(1),
      preventUserExistenceErrors: true,
    });

    this.domain = this.userPool.addDomain('Domain', {
      cognitoDomain: { domainPrefix: props.domainPrefix ?? `tally-${props.stage}-${Stack.of(this).account}` },
    });
  }

  /** The JWT issuer: the pool's URL. */
  get issuerUrl(): string {
    return `https://cognito-idp.${Stack.of(this).region}.amazonaws.com/${this.userPool.userPoolId}`;
  }

  get tokenUrl(): string {
    return `${this.domain.baseUrl()}/oauth2/token`;
  }
}
