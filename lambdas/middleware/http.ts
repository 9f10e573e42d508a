import middy, { type MiddlewareObj } from '@middy/core';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Context } from 'aws-lambda';
import { randomUUID } from 'node:crypto';
import { Problem, problems } from '../core/problems.ts';
import { logger } from '../adapters/logger.ts';
import type { Principal } from '../core/authorization.ts';
import { authorization, type AuthRequirement } from './auth.ts';

export const MAX_BODY_BYTES = 16 * 1024;
const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;
const JSON_CONTENT_TYPE = /^application\/(?:[\w.+-]+\+)?json\s*(?:;.*)?$/i;

export interface HttpRequest {
  event: APIGatewayProxyEventV2;
  requestId: string;
  /** Path parameters of the route. */
  params: Record<string, string>;
  query: Record<string, string | undefined>;
  /** Header names are lower case, as API Gateway delivers them. */
  headers: Record<string, string | undefined>;
  /** The parsed JSON body, for routes that take one. */
  body: unknown;
  /** The authorized caller; undefined on routes without auth, or when the local stack switched auth off. */
  principal: Principal | undefined;
}

export interface HttpResponse {
  statusCode: number;
  headers?: Record<string, string>;
  /** Serialised as JSON; omitted for 204/304. */
  body?: unknown;
}

type Result = APIGatewayProxyStructuredResultV2;
interface State {
  requestId: string;
  body: unknown;
  principal: Principal | undefined;
  startedAt: number;
}
const states = new WeakMap<APIGatewayProxyEventV2, State>();

const lowerCaseHeaders = (headers: APIGatewayProxyEventV2['headers'] | undefined): Record<string, string | undefined> =>
  Object.fromEntries(Object.entries(headers ?? {}).map(([k, v]) => [k.toLowerCase(), v]));

/** The caller's `x-request-id` when it is sane, else the gateway's id, else a fresh one. */
export function requestIdFor(given: string | undefined, gatewayId: string | undefined): string {
  return given && REQUEST_ID.test(given) ? given : (gatewayId ?? randomUUID());
}

/** Request id: the caller's `x-request-id` when it is sane, else API Gateway's, else a fresh one. */
const requestContext = (): MiddlewareObj<APIGatewayProxyEventV2, Result> => ({
  before: (request) => {
    const requestId = requestIdFor(lowerCaseHeaders(request.event.headers)['x-request-id'], request.event.requestContext?.requestId);
    states.set(request.event, { requestId, body: undefined, principal: undefined, startedAt: Date.now() });
    logger.appendKeys({ request_id: requestId, route: request.event.routeKey });
  },
});

/** JSON bodies only, at most 16 KiB, parsed once; 413 / 415 / 400 otherwise. */
const jsonBody = (): MiddlewareObj<APIGatewayProxyEventV2, Result> => ({
  before: (request) => {
    const { event } = request;
    const state = states.get(event) as State;
    const raw = event.body === undefined || event.body === null ? undefined : Buffer.from(event.body, event.isBase64Encoded ? 'base64' : 'utf8');
    if (raw === undefined || raw.length === 0) throw problems.malformedJson('A JSON body is required');
    if (raw.length > MAX_BODY_BYTES) throw problems.payloadTooLarge(MAX_BODY_BYTES);
    const contentType = lowerCaseHeaders(event.headers)['content-type'];
    if (!contentType || !JSON_CONTENT_TYPE.test(contentType)) throw problems.unsupportedMediaType();
    try {
      state.body = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(raw));
    } catch {
      throw problems.malformedJson('The body is not valid UTF-8 JSON');
    }
  },
});

export function problemResponse(problem: Problem, requestId: string): Result {
  return {
    statusCode: problem.status,
    headers: { 'content-type': 'application/problem+json; charset=utf-8', ...problem.headers, 'x-request-id': requestId },
    body: JSON.stringify({
      type: problem.type,
      title: problem.title,
      status: problem.status,
      ...(problem.detail ? { detail: problem.detail } : {}),
      ...(problem.errors ? { errors: problem.errors } : {}),
      request_id: requestId,
    }),
  };
}

/** Every failure becomes problem+json; an unexpected error is a generic 500 whose cause is only logged. */
const problemRenderer = (): MiddlewareObj<APIGatewayProxyEventV2, Result> => ({
  onError: (request) => {
    const requestId = states.get(request.event)?.requestId ?? randomUUID();
    const error = request.error;
    let problem: Problem;
    if (error instanceof Problem) {
      problem = error;
      if (problem.status >= 500) logger.error('request failed', { status: problem.status, type: problem.type, cause: describe(problem.cause) });
    } else {
      problem = problems.internal();
      logger.error('unexpected error', { cause: describe(error) });
    }
    request.response = problemResponse(problem, requestId);
  },
});

/** An error's name and message for the log; SDK messages carry no item values. */
function describe(error: unknown): Record<string, unknown> | undefined {
  if (!(error instanceof Error)) return error === undefined ? undefined : { value: typeof error };
  return { name: error.name, message: error.message, stack: error.stack };
}

export interface HandlerOptions {
  /** The route takes a JSON body. */
  body?: boolean;
  /**
   * Who may call: `user` (the default) needs verified claims allowed to act on the path's `user_id`
   * (see middleware/auth.ts); `none` only for routes the table marks `auth: false` (health).
   */
  auth?: AuthRequirement;
}

/**
 * The shared middy stack for every HTTP endpoint: logger context and request id, authorization (before the
 * body is even parsed, so a stranger learns nothing about validation), JSON body parsing, and problem+json
 * rendering. The handler function only maps a request to a response.
 */
export function httpHandler(fn: (request: HttpRequest) => Promise<HttpResponse>, options: HandlerOptions = {}) {
  const stack = middy<APIGatewayProxyEventV2, Result, Error, Context>()
    // logEvent: false, whatever POWERTOOLS_LOGGER_LOG_EVENT says: the event holds the bearer token and the name.
    .use(injectLambdaContext(logger, { resetKeys: true, logEvent: false }))
    .use(requestContext())
    .use(
      authorization(options.auth ?? 'user', (event, principal) => {
        const state = states.get(event);
        if (state) state.principal = principal;
      }),
    );
  if (options.body) stack.use(jsonBody());
  return stack.use(problemRenderer()).handler(async (event): Promise<Result> => {
    const state = states.get(event) as State;
    const response = await fn({
      event,
      requestId: state.requestId,
      params: Object.fromEntries(Object.entries(event.pathParameters ?? {}).filter((e): e is [string, string] => e[1] !== undefined)),
      query: { ...(event.queryStringParameters ?? {}) },
      headers: lowerCaseHeaders(event.headers),
      body: state.body,
      principal: state.principal,
    });
    const headers: Record<string, string> = { ...response.headers, 'x-request-id': state.requestId };
    if (response.body === undefined) return { statusCode: response.statusCode, headers };
    return {
      statusCode: response.statusCode,
      headers: { 'content-type': 'application/json; charset=utf-8', ...headers },
      body: JSON.stringify(response.body),
    };
  });
}
