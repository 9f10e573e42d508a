import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { randomUUID } from 'node:crypto';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { APIGatewayProxyEventV2, APIGatewayProxyResultV2, APIGatewayProxyStructuredResultV2, Context } from 'aws-lambda';
import { fallbackHandler, matchRoute, type RouteDefinition } from '../lib/routes.ts';
import { problems, type Problem } from '../lambdas/core/problems.ts';
import { problemResponse, requestIdFor } from '../lambdas/middleware/http.ts';

type LambdaHandler = (event: APIGatewayProxyEventV2, context: Context) => Promise<APIGatewayProxyResultV2>;

/** Turns one request's route and headers into the claims API Gateway's JWT authorizer would pass on. */
export type Authorizer = (route: RouteDefinition, headers: Record<string, string>) => Promise<
  { ok: true; claims?: Record<string, string | number | boolean | string[]>; scopes?: string[] } | { ok: false; problem: Problem }
>;

export interface GatewayOptions {
  port: number;
  host?: string;
  /** Repository root; handler entries in the route table are relative to it. */
  root?: string;
  authorizer?: Authorizer;
  onRequest?: (line: { method: string; path: string; status: number; ms: number }) => void;
}

export interface Gateway {
  url: string;
  server: Server;
  stop(): Promise<void>;
}

/** API Gateway HTTP API's own payload limit. */
const MAX_GATEWAY_BODY = 10 * 1024 * 1024;

function readBody(req: IncomingMessage): Promise<Buffer | 'too-large'> {
  return new Promise((resolvePromise, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size <= MAX_GATEWAY_BODY) chunks.push(chunk);
    });
    req.on('end', () => resolvePromise(size > MAX_GATEWAY_BODY ? 'too-large' : Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function headerMap(req: IncomingMessage): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(req.headers)) {
    if (value === undefined) continue;
    headers[name.toLowerCase()] = Array.isArray(value) ? value.join(',') : value;
  }
  return headers;
}

const TEXTUAL = /^(?:text\/|application\/(?:[\w.+-]+\+)?(?:json|xml|x-www-form-urlencoded)|application\/javascript)/i;

/** The API Gateway HTTP API (payload format 2.0) event for one request. */
export function toEvent(
  req: { method: string; url: string; headers: Record<string, string>; body: Buffer; sourceIp?: string },
  route: RouteDefinition,
  pathParameters: Record<string, string>,
  authorizer?: { claims?: Record<string, string | number | boolean | string[]>; scopes?: string[] },
  routeKey = `${route.method} ${route.path}`,
): APIGatewayProxyEventV2 {
  const url = new URL(req.url, 'http://localhost');
  const query: Record<string, string> = {};
  for (const [k, v] of url.searchParams) query[k] = k in query ? `${query[k]},${v}` : v;
  const cookies = req.headers.cookie?.split(';').map((c) => c.trim()).filter(Boolean);
  const now = new Date();
  const requestId = randomUUID();
  const hasBody = req.body.length > 0;
  const textual = TEXTUAL.test(req.headers['content-type'] ?? '');
  const headers = { ...req.headers };
  delete headers.cookie;
  const event: APIGatewayProxyEventV2 = {
    version: '2.0',
    routeKey,
    rawPath: url.pathname,
    rawQueryString: url.search.replace(/^\?/, ''),
    ...(cookies && cookies.length > 0 ? { cookies } : {}),
    headers,
    ...(Object.keys(query).length > 0 ? { queryStringParameters: query } : {}),
    ...(Object.keys(pathParameters).length > 0 ? { pathParameters } : {}),
    requestContext: {
      accountId: '000000000000',
      apiId: 'local',
      domainName: req.headers.host ?? 'localhost',
      domainPrefix: (req.headers.host ?? 'localhost').split('.')[0] ?? 'localhost',
      http: {
        method: req.method,
        path: url.pathname,
        protocol: 'HTTP/1.1',
        sourceIp: req.sourceIp ?? '127.0.0.1',
        userAgent: req.headers['user-agent'] ?? '',
      },
      requestId,
      routeKey,
      stage: '$default',
      time: now.toUTCString(),
      timeEpoch: now.getTime(),
      ...(authorizer ? { authorizer: { jwt: { claims: authorizer.claims ?? {}, scopes: authorizer.scopes ?? [] } } } : {}),
    } as APIGatewayProxyEventV2['requestContext'],
    ...(hasBody ? { body: textual ? req.body.toString('utf8') : req.body.toString('base64') } : {}),
    isBase64Encoded: hasBody && !textual,
  };
  return event;
}

/** A Lambda `Context` for an in-process invocation of the named function. */
export function lambdaContext(functionName: string, timeoutMs = 10_000): Context {
  const deadline = Date.now() + timeoutMs;
  return {
    callbackWaitsForEmptyEventLoop: false,
    functionName,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:local:000000000000:function:${functionName}`,
    memoryLimitInMB: '512',
    awsRequestId: randomUUID(),
    logGroupName: `/aws/lambda/${functionName}`,
    logStreamName: 'local',
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
    done: () => undefined,
    fail: () => undefined,
    succeed: () => undefined,
  };
}

function send(res: ServerResponse, result: APIGatewayProxyResultV2): number {
  const structured: APIGatewayProxyStructuredResultV2 =
    typeof result === 'string' || typeof result !== 'object' || result === null || !('statusCode' in result)
      ? { statusCode: 200, headers: { 'content-type': 'application/json' }, body: JSON.stringify(result) }
      : result;
  const status = structured.statusCode ?? 200;
  const headers: Record<string, string | string[]> = {};
  for (const [k, v] of Object.entries(structured.headers ?? {})) headers[k.toLowerCase()] = String(v);
  if (structured.cookies?.length) headers['set-cookie'] = structured.cookies;
  const body = structured.body === undefined ? undefined : Buffer.from(structured.body, structured.isBase64Encoded ? 'base64' : 'utf8');
  headers['content-length'] = String(body?.length ?? 0);
  res.writeHead(status, headers);
  res.end(body);
  return status;
}

/**
 * The local stand-in for API Gateway: matches the route table, authorises like the JWT authorizer, turns
 * the request into a payload-2.0 event, invokes the route's handler module in-process and writes its result.
 */
export async function startGateway(options: GatewayOptions): Promise<Gateway> {
  const root = options.root ?? process.cwd();
  const handlers = new Map<string, Promise<LambdaHandler>>();
  const load = (route: RouteDefinition): Promise<LambdaHandler> => {
    let loaded = handlers.get(route.entry);
    if (!loaded) {
      loaded = import(pathToFileURL(resolve(root, route.entry)).href).then((m: { handler: LambdaHandler }) => m.handler);
      handlers.set(route.entry, loaded);
    }
    return loaded;
  };

  const server = createServer(async (req, res) => {
    const started = Date.now();
    const method = (req.method ?? 'GET').toUpperCase();
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    let status = 500;
    try {
      const body = await readBody(req);
      const headers = headerMap(req);
      // Also for answers the gateway gives itself (413, authorizer rejections), like every other response.
      const requestId = requestIdFor(headers['x-request-id'], randomUUID());
      if (body === 'too-large') {
        status = send(res, problemResponse(problems.payloadTooLarge(MAX_GATEWAY_BODY), requestId));
        return;
      }
      const match = matchRoute(method, path);
      if ('allow' in match) {
        // What API Gateway's `$default` route does: the fallback function answers 404 or 405.
        const fallback: RouteDefinition = { ...fallbackHandler, method: method as RouteDefinition['method'], path, auth: false };
        const event = toEvent({ method, url: req.url ?? '/', headers, body }, fallback, {}, undefined, '$default');
        status = send(res, await (await load(fallback))(event, lambdaContext(fallback.functionName)));
        return;
      }
      let authorizer: { claims?: Record<string, string | number | boolean | string[]>; scopes?: string[] } | undefined;
      if (match.route.auth && options.authorizer) {
        const verdict = await options.authorizer(match.route, headers);
        if (!verdict.ok) {
          status = send(res, problemResponse(verdict.problem, requestId));
          return;
        }
        authorizer = { ...(verdict.claims ? { claims: verdict.claims } : {}), ...(verdict.scopes ? { scopes: verdict.scopes } : {}) };
      }
      const event = toEvent(
        { method, url: req.url ?? '/', headers, body, sourceIp: req.socket.remoteAddress ?? '127.0.0.1' },
        match.route,
        match.params,
        authorizer,
      );
      const handler = await load(match.route);
      status = send(res, await handler(event, lambdaContext(match.route.functionName)));
    } catch {
      // What API Gateway answers when the integration itself fails.
      if (!res.headersSent) status = send(res, problemResponse(problems.internal(), randomUUID()));
      else res.destroy();
    } finally {
      options.onRequest?.({ method, path, status, ms: Date.now() - started });
    }
  });
  const host = options.host ?? '127.0.0.1';
  await new Promise<void>((resolvePromise, reject) => {
    server.once('error', reject);
    server.listen(options.port, host, () => resolvePromise());
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : options.port;
  return {
    url: `http://${host}:${port}`,
    server,
    stop: () =>
      new Promise<void>((resolvePromise) => {
        server.closeAllConnections?.();
        server.close(() => resolvePromise());
      }),
  };
}
