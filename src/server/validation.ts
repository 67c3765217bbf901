/**
 * The request validator: zod parsing, with issues reported to Fastify in its validation format and
 * the issue's own path kept (`params.path`), so a node id "1" and an array index 1 stay distinct
 * when the field name is rendered.
 */
import type { FastifySchemaCompiler } from 'fastify';
import type { z } from 'zod';
import { safeParse, type $ZodType } from 'zod/v4/core';

/** One issue as Fastify carries it in `err.validation`. */
export interface ValidationIssue {
  keyword: string;
  instancePath: string;
  schemaPath: string;
  message: string;
  params: { path: PropertyKey[]; keys?: string[] };
}

function toIssue(issue: z.core.$ZodIssue): ValidationIssue {
  const keys = (issue as { keys?: unknown }).keys;
  return {
    keyword: issue.code,
    instancePath: `/${issue.path.map(String).join('/')}`,
    schemaPath: `#/${issue.path.map(String).join('/')}/${issue.code}`,
    message: issue.message,
    params: { path: [...issue.path], ...(Array.isArray(keys) ? { keys: keys.map(String) } : {}) },
  };
}

/** Validates with zod; failures become Fastify validation errors with the issue paths kept. */
export const validatorCompiler: FastifySchemaCompiler<$ZodType> =
  ({ schema }) =>
  (data) => {
    const result = safeParse(schema, data);
    if (result.error) return { error: result.error.issues.map(toIssue) as unknown as Error };
    return { value: result.data };
  };

/** `['options', 'fallbackModels', 0]` -> `options.fallbackModels[0]`. */
export function pathToField(path: readonly PropertyKey[]): string {
  let out = '';
  for (const p of path) {
    if (typeof p === 'number') out += `[${p}]`;
    else out += out === '' ? String(p) : `.${String(p)}`;
  }
  return out;
}
