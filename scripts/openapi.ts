/**
 * The OpenAPI 3.1 document, generated from the route table (paths, methods, auth) and the zod schemas
 * (request and response bodies). `npm run openapi` writes openapi.json; a test keeps the committed file
 * equal to what this produces.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { routes, type RouteDefinition } from '../lib/routes.ts';
import { createTransactionBody, updateTransactionBody } from '../lambdas/core/transaction.ts';
import { analyticsResource, healthResource, historyPage, problemResource, transactionResource } from '../lambdas/core/responses.ts';

type Json = Record<string, unknown>;

function componentSchemas(): Record<string, Json> {
  const out: Record<string, Json> = {};
  for (const [io, list] of [
    ['input', [createTransactionBody, updateTransactionBody]],
    ['output', [transactionResource, historyPage, analyticsResource, problemResource, healthResource]],
  ] as const) {
    for (const schema of list) {
      const generated = z.toJSONSchema(schema, { io, unrepresentable: 'any', target: 'draft-2020-12' });
      // Nested ids become $defs of each schema; in OpenAPI they are shared components.
      const json = JSON.parse(JSON.stringify(generated).replaceAll('"#/$defs/', '"#/components/schemas/')) as Json;
      const defs = (json.$defs ?? {}) as Record<string, Json>;
      for (const [name, def] of Object.entries(defs)) out[name] = def;
      const id = (schema.meta() as { id?: string } | undefined)?.id as string;
      const { $schema: _s, $defs: _d, $ref, ...rest } = json;
      if (!$ref) out[id] = rest;
    }
  }
  return out;
}

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const problem = (description: string) => ({ description, content: { 'application/problem+json': { schema: ref('Problem') } } });
const jsonBody = (name: string, description: string) => ({ description, content: { 'application/json': { schema: ref(name) } } });

const pathParam = (name: string, description: string) => ({ name, in: 'path', required: true, description, schema: { type: 'string' } });
const query = (name: string, description: string, schema: Json) => ({ name, in: 'query', required: false, description, schema });

const ifNoneMatch = { name: 'If-None-Match', in: 'header', required: false, description: 'An ETag from an earlier response; 304 if unchanged', schema: { type: 'string' } };
const conditionalHeaders = { ETag: { schema: { type: 'string' } }, 'Cache-Control': { schema: { type: 'string', enum: ['private, no-cache'] } } };

function operation(route: RouteDefinition): Json {
  const parameters: Json[] = [];
  if (route.path.includes('{user_id}')) parameters.push(pathParam('user_id', '1–64 characters of [A-Za-z0-9_.-]'));
  if (route.path.includes('{transaction_id}')) parameters.push(pathParam('transaction_id', 'The id returned on create'));
  const responses: Record<string, Json> = {};
  let requestBody: Json | undefined;
  switch (route.functionName) {
    case 'CreateTransaction':
      parameters.push({ name: 'Idempotency-Key', in: 'header', required: false, description: '1–255 visible ASCII characters; replays within 24 h return the first response', schema: { type: 'string', maxLength: 255 } });
      requestBody = { required: true, content: { 'application/json': { schema: ref('CreateTransaction') } } };
      responses['201'] = {
        ...jsonBody('Transaction', 'Created, or the first response replayed for a repeated Idempotency-Key'),
        headers: {
          Location: { schema: { type: 'string' } },
          ETag: { schema: { type: 'string' } },
          'Idempotent-Replayed': { description: '"true" when this is the replay of an earlier request with the same key', schema: { type: 'string', enum: ['true'] } },
        },
      };
      responses['409'] = problem('The same Idempotency-Key is still in progress');
      responses['413'] = problem('Body over 16 KiB');
      responses['415'] = problem('Body is not JSON');
      responses['422'] = problem('Validation failed (every failing field listed), or Idempotency-Key reused with another body');
      break;
    case 'ListTransactions':
      parameters.push(
        query('limit', 'Page size, 1–100', { type: 'integer', minimum: 1, maximum: 100, default: 20 }),
        query('cursor', 'next_cursor of the previous page', { type: 'string' }),
        query('from', 'First day, inclusive (UTC)', { type: 'string', format: 'date' }),
        query('to', 'Last day, inclusive (UTC)', { type: 'string', format: 'date' }),
        query('type', 'Only credits or only debits', { type: 'string', enum: ['credit', 'debit'] }),
      );
      parameters.push(ifNoneMatch);
      responses['200'] = { ...jsonBody('TransactionPage', 'A page, newest transaction_date first'), headers: conditionalHeaders };
      responses['304'] = { description: 'Not modified (If-None-Match matched the current ETag)', headers: conditionalHeaders };
      break;
    case 'GetTransaction':
      responses['200'] = { ...jsonBody('Transaction', 'The transaction'), headers: { ETag: { schema: { type: 'string' } } } };
      responses['404'] = problem('No such transaction for this user');
      break;
    case 'UpdateTransaction':
      parameters.push({ name: 'If-Match', in: 'header', required: false, description: 'The version the change is based on, e.g. "3"', schema: { type: 'string' } });
      requestBody = { required: true, content: { 'application/json': { schema: ref('UpdateTransaction') } } };
      responses['200'] = { ...jsonBody('Transaction', 'The updated transaction'), headers: { ETag: { schema: { type: 'string' } } } };
      responses['404'] = problem('No such transaction for this user');
      responses['412'] = problem('If-Match does not match the current version');
      responses['422'] = problem('Validation failed');
      break;
    case 'DeleteTransaction':
      parameters.push({ name: 'If-Match', in: 'header', required: false, schema: { type: 'string' } });
      responses['204'] = { description: 'Deleted' };
      responses['404'] = problem('No such transaction for this user');
      responses['412'] = problem('If-Match does not match the current version');
      break;
    case 'GetAnalytics':
      parameters.push(
        query('from', 'First day, inclusive (UTC); with to', { type: 'string', format: 'date' }),
        query('to', 'Last day, inclusive (UTC); with from', { type: 'string', format: 'date' }),
      );
      parameters.push(ifNoneMatch);
      responses['200'] = { ...jsonBody('Analytics', 'Figures from the aggregates; they may lag a write by the stream delay'), headers: conditionalHeaders };
      responses['304'] = { description: 'Not modified (If-None-Match matched the current ETag)', headers: conditionalHeaders };
      break;
    case 'ErasePersonalData':
      responses['204'] = { description: 'The data key is destroyed; names read null with full_name_erased: true' };
      break;
    case 'Health':
      responses['200'] = jsonBody('Health', 'Alive');
      break;
    default:
      throw new Error(`No OpenAPI description for route ${route.functionName}: add one to scripts/openapi.ts`);
  }
  if (route.path.includes('{user_id}')) responses['400'] = problem('Bad path or query parameter, malformed JSON, or bad cursor');
  if (route.auth) {
    responses['401'] = problem('Missing or invalid bearer token');
    responses['403'] = problem("A caller acting on another user's data");
  }
  responses['405'] = { ...problem('Known path, unsupported method'), headers: { Allow: { schema: { type: 'string' } } } };
  responses['429'] = problem('Throttled');
  responses['503'] = problem('A dependency is unavailable; nothing was changed');
  return {
    operationId: route.functionName.charAt(0).toLowerCase() + route.functionName.slice(1),
    summary: route.summary,
    ...(route.auth ? {} : { security: [] }),
    parameters,
    ...(requestBody ? { requestBody } : {}),
    responses,
  };
}

export function buildOpenApi(): Json {
  const paths: Record<string, Record<string, Json>> = {};
  for (const route of routes) {
    paths[route.path] ??= {};
    (paths[route.path] as Record<string, Json>)[route.method.toLowerCase()] = operation(route);
  }
  return {
    openapi: '3.1.0',
    info: { title: 'Tally transactions API', version: '1.0.0', description: 'See API.md for the contract in prose.' },
    servers: [{ url: 'http://127.0.0.1:3000', description: 'npm start' }],
    security: [{ bearer: [] }],
    paths,
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' } },
      schemas: componentSchemas(),
    },
  };
}

export const OPENAPI_FILE = fileURLToPath(new URL('../openapi.json', import.meta.url));

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const text = `${JSON.stringify(buildOpenApi(), null, 2)}\n`;
  if (process.argv.includes('--check')) {
    const current = existsSync(OPENAPI_FILE) ? readFileSync(OPENAPI_FILE, 'utf8') : '';
    if (current !== text) {
      console.error(`${OPENAPI_FILE} is stale: run npm run openapi`);
      process.exit(1);
    }
    console.log(`${OPENAPI_FILE} is up to date`);
  } else {
    writeFileSync(OPENAPI_FILE, text);
    console.log(`wrote ${OPENAPI_FILE}`);
  }
}
