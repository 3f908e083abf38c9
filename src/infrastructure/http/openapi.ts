import type { FastifyDynamicSwaggerOptions } from '@fastify/swagger';
import { jsonSchemaTransform, jsonSchemaTransformObject } from '@fastify/type-provider-zod';
import type { RouteOptions } from 'fastify';
import { ROLES, rolesAllowed } from '../../application/access';
import { RATE_LIMITS, type RateLimitClass } from '../../config';
import { problemSchema } from './schemas';
import { operationIdOf } from './route-access';

type Schema = Record<string, unknown> & { response?: Record<string, unknown>; description?: string; hide?: boolean };

/** What each error answer means, for the operations that do not say it better themselves. */
const ANSWERS: Record<string, string> = {
  '400': 'The request is invalid: `errors` names each bad field or parameter',
  '401': 'No API key, or an unknown or revoked one (`WWW-Authenticate: Bearer`)',
  '403': 'The key is valid but its role may not use this operation: the problem names the role needed',
  '404': 'Not found',
  '409': 'Conflict with the current state',
  '413': 'The body is larger than this operation accepts',
  '415': 'The body is not application/json',
  '422': 'Cas BankHub refused the call',
  '429': 'Too many requests: wait `Retry-After` seconds',
  '502': 'Cas BankHub failed',
  '503': 'A store (or Cas BankHub configuration) is unavailable; try again',
  '504': 'Cas BankHub did not answer in time',
};

/**
 * The OpenAPI document is generated from the routes: each operation's security, the roles it needs (in its
 * description), its rate limit and the error answers the access and rate-limit hooks can give come from the route's
 * `config`, the same declaration that enforces them.
 */
export function openApiOptions(rateLimits: Readonly<Record<RateLimitClass, number>>): FastifyDynamicSwaggerOptions {
  return {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'balance-ledger',
        version: '0.1.0',
        description:
          'Event-sourced ledger for Cas BankHub Balance Hook webhooks. Money is an exact decimal string of whole đồng. ' +
          'Errors are application/problem+json.\n\n' +
          `Roles: ${Object.entries(ROLES).map(([role, r]) => `\`${role}\` (${r.description})`).join('; ')}.`,
        license: { name: 'Proprietary', identifier: 'LicenseRef-Proprietary' },
      },
      servers: [{ url: '/', description: 'The service that serves this document' }],
      components: {
        securitySchemes: {
          bearer: {
            type: 'http',
            scheme: 'bearer',
            description:
              'An API key (`npm run ledger -- keys create --role <role> --name <label>`) or the bootstrap API_TOKEN, as ' +
              '`Authorization: Bearer <key>`. While neither API_TOKEN nor any key exists (on a loopback address, or with ' +
              'ALLOW_INSECURE=true) every operation is open.',
          },
          webhookToken: {
            type: 'apiKey',
            in: 'header',
            name: 'x-webhook-token',
            description: 'WEBHOOK_TOKEN, the webhook secret (preferred over the query parameter)',
          },
          webhookTokenQuery: {
            type: 'apiKey',
            in: 'query',
            name: 'token',
            description: "WEBHOOK_TOKEN in the URL, for Cas's console, which sets no header; it never appears in a log",
          },
        },
      },
    },
    transform: (document) =>
      jsonSchemaTransform({ ...document, schema: documentRoute(document.route, document.schema as Schema, rateLimits) as typeof document.schema }),
    transformObject: (document) => finishDocument(jsonSchemaTransformObject(document) as OpenApiDocument),
  };
}

function documentRoute(route: RouteOptions, schema: Schema | undefined, rateLimits: Readonly<Record<RateLimitClass, number>>): Schema | undefined {
  if (!schema || schema.hide) return schema;
  const response: Record<string, unknown> = { ...schema.response };
  const answer = (...codes: string[]) => codes.forEach((code) => (response[code] ??= problemSchema));
  const notes: string[] = [];
  let security: Record<string, string[]>[];
  const access = route.config?.access;
  switch (access) {
    case 'open':
      security = [];
      notes.push('**Access**: open, no key.');
      break;
    case 'webhook':
      security = [{ webhookToken: [] }, { webhookTokenQuery: [] }];
      notes.push('**Access**: the webhook token (WEBHOOK_TOKEN) in `x-webhook-token` or `?token=`, not an API key.');
      answer('401');
      break;
    case 'any-key':
      security = [{ bearer: [] }];
      notes.push('**Access**: any valid API key.');
      answer('401');
      break;
    case undefined:
      security = [{ bearer: [] }];
      notes.push('**Access**: none declared, so nobody may call it.');
      answer('403');
      break;
    default:
      security = [{ bearer: [] }];
      notes.push(`**Access**: role \`${access}\` (keys of role ${rolesAllowed(access).map((r) => `\`${r}\``).join(', ')}).`);
      answer('401', '403');
  }
  const limit = route.config?.limit;
  if (limit && rateLimits[limit] > 0) {
    notes.push(`**Rate limit**: ${rateLimits[limit]} requests a minute per ${RATE_LIMITS[limit].per === 'key' ? 'key' : 'source address'}.`);
    answer('429');
  }
  if (schema.params || schema.querystring || schema.body || schema.headers) answer('400');
  // fastify itself refuses a body over its limit or of a type it has no parser for.
  if (schema.body) answer('413', '415');
  return {
    ...schema,
    operationId: operationIdOf(route),
    security,
    description: [schema.description, ...notes].filter(Boolean).join('\n\n'),
    response,
  };
}

interface OpenApiResponse {
  description?: string;
  content?: Record<string, unknown>;
  headers?: Record<string, unknown>;
}
type OpenApiDocument = Record<string, unknown> & {
  paths?: Record<string, Record<string, { responses?: Record<string, OpenApiResponse> }>>;
  components?: { schemas?: Record<string, unknown> };
};

/** Error answers are problem+json, with a description and the headers the client needs; no unused schema. */
function finishDocument(document: OpenApiDocument): OpenApiDocument {
  for (const operations of Object.values(document.paths ?? {})) {
    for (const operation of Object.values(operations)) {
      for (const [code, answer] of Object.entries(operation.responses ?? {})) {
        if (Number(code) < 400) continue;
        if (answer.description === undefined || answer.description === 'Default Response') answer.description = ANSWERS[code] ?? 'Error';
        // An operation that `produces` text (GET /metrics) still answers its errors as problem+json.
        const json = answer.content?.['application/json'] ?? answer.content?.['text/plain'];
        if (json) answer.content = { 'application/problem+json': json };
        if (code === '429') answer.headers = { 'retry-after': { description: 'Seconds to wait', schema: { type: 'integer' } } };
        if (code === '401') answer.headers = { 'www-authenticate': { description: 'Bearer', schema: { type: 'string' } } };
      }
    }
  }
  return withoutUnusedSchemas(document);
}

/** zod registers an input and an output form of every named schema: keep those some operation refers to. */
function withoutUnusedSchemas(document: OpenApiDocument): OpenApiDocument {
  const schemas = document.components?.schemas;
  if (!schemas) return document;
  const used = new Set<string>();
  const visit = (node: unknown): void => {
    if (Array.isArray(node)) return node.forEach(visit);
    if (typeof node !== 'object' || node === null) return;
    for (const [key, value] of Object.entries(node)) {
      if (key === '$ref' && typeof value === 'string' && value.startsWith('#/components/schemas/')) {
        const name = value.slice('#/components/schemas/'.length);
        if (!used.has(name)) {
          used.add(name);
          visit(schemas[name]);
        }
      } else visit(value);
    }
  };
  visit(document.paths);
  document.components!.schemas = Object.fromEntries(Object.entries(schemas).filter(([name]) => used.has(name)));
  return document;
}
