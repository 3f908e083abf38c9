import { serializerCompiler as zodSerializerCompiler } from '@fastify/type-provider-zod';
import type { FastifySerializerCompiler } from 'fastify/types/schema';
import fastJson from 'fast-json-stringify';
import { z } from 'zod';

/**
 * Responses are written by fast-json-stringify from the JSON Schema of each route's zod response schema: a statement
 * of a hundred lines went through zod's encoder field by field on every request, which made serialisation the
 * dearest part of the route. The zod schemas stay the single source (OpenAPI, types); a schema JSON Schema cannot
 * express falls back to the zod serializer.
 */
export const serializerCompiler: FastifySerializerCompiler<z.ZodType> = (route) => {
  try {
    const schema = z.toJSONSchema(route.schema, { io: 'output', unrepresentable: 'throw', target: 'draft-7' });
    return fastJson(schema as Parameters<typeof fastJson>[0]);
  } catch {
    return zodSerializerCompiler(route as never) as (data: unknown) => string;
  }
};
