import type { MiddlewareObj } from '@middy/core';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { mayActOn, principalFrom, type ClaimValue, type Principal } from '../core/authorization.ts';
import { problems } from '../core/problems.ts';
import { logger } from '../adapters/logger.ts';

/**
 * Authorization from the JWT authorizer's claims, in the shared middy stack, for every route that does not
 * opt out. API Gateway has already verified the token's signature, issuer, audience, expiry and scope; this
 * step decides who may touch which user's data, and refuses a request that reached the function without
 * verified claims (a misconfigured route fails closed: 401, never open).
 */

/** `user`: the caller must be allowed to act on the path's `user_id`. `none`: no token needed (health). */
export type AuthRequirement = 'user' | 'none';

/**
 * Authorization is on unless the local stack switched it off (`AUTH_MODE=off`, set only by local/stack.ts).
 * Inside a real Lambda runtime (`AWS_LAMBDA_FUNCTION_NAME` is always set there) the switch is ignored, so a
 * stray variable can never open the API in AWS.
 */
export function authEnforced(env: NodeJS.ProcessEnv = process.env): boolean {
  if (env.AUTH_MODE !== 'off') return true;
  return Boolean(env.AWS_LAMBDA_FUNCTION_NAME);
}

interface JwtContext {
  claims?: Record<string, ClaimValue> | null;
  scopes?: string[] | null;
}

function jwtContext(event: APIGatewayProxyEventV2): JwtContext | undefined {
  const context = event.requestContext as unknown as { authorizer?: { jwt?: JwtContext } } | undefined;
  return context?.authorizer?.jwt;
}

/**
 * The middleware. `onPrincipal` receives the caller (undefined when auth is off or not required) so the
 * handler can see it on `HttpRequest.principal`.
 */
export function authorization(
  requirement: AuthRequirement,
  onPrincipal: (event: APIGatewayProxyEventV2, principal: Principal | undefined) => void,
): MiddlewareObj<APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2> {
  return {
    before: (request) => {
      const { event } = request;
      if (requirement === 'none' || !authEnforced()) {
        onPrincipal(event, undefined);
        return;
      }
      const jwt = jwtContext(event);
      const result = principalFrom(jwt?.claims, jwt?.scopes);
      if (!result.ok) {
        logger.info('request not authorized', { status: result.status, reason: result.reason });
        throw result.status === 401 ? problems.unauthorized('A valid bearer access token is required') : problems.insufficientScope(result.reason);
      }
      const target = event.pathParameters?.user_id;
      const decision = mayActOn(result.principal, target);
      if (!decision.allowed) {
        logger.info('request forbidden', { status: 403, reason: decision.reason, principal_kind: result.principal.kind });
        throw problems.forbidden("This token may only act on its own user's data");
      }
      logger.appendKeys({ principal_kind: result.principal.kind });
      onPrincipal(event, result.principal);
    },
  };
}
