/**
 * Validation of job records at the store boundary. Every write is checked before it reaches the
 * database and every read is checked before it reaches the engine, so a damaged row is reported
 * with its id instead of surfacing later as a TypeError deep in recovery.
 */
import { z } from 'zod';
import { JOB_STATUSES, STRATEGY_NAMES, type JobRecord } from '../jobs/types.js';

// Timestamps are integer ms since the epoch; SQL columns hold them as integers.
const ms = z.number().int();
const object = z.record(z.string(), z.unknown());

const workflowSchema = z.record(
  z.string(),
  z.looseObject({ class_type: z.string(), inputs: z.record(z.string(), z.unknown()) }),
);

const inputChangeSchema = z.looseObject({
  nodeId: z.string(),
  classType: z.string(),
  input: z.string(),
  from: z.unknown(),
  to: z.unknown(),
});

const attemptSchema = z.looseObject({
  number: z.number().int(),
  server: z.string(),
  promptId: z.string(),
  status: z.enum(['pending', 'submitted', 'running', 'completed', 'failed', 'interrupted', 'lost', 'cancelled']),
  workflow: workflowSchema,
  strategy: z.enum(STRATEGY_NAMES).optional(),
  changes: z.array(inputChangeSchema).optional(),
  partialTargets: z.array(z.string()).optional(),
  code: z.string().optional(),
  message: z.string().optional(),
  startedAt: ms,
  endedAt: ms.optional(),
});

const recoveryStepSchema = z.looseObject({
  attempt: z.number().int(),
  code: z.string(),
  strategy: z.enum(STRATEGY_NAMES),
  changes: z.array(inputChangeSchema),
  success: z.boolean().nullable(),
  server: z.string().nullable(),
  promptId: z.string().nullable(),
  message: z.string(),
  startedAt: ms,
  endedAt: ms.nullable(),
});

const outputRefSchema = z.looseObject({
  node: z.string(),
  filename: z.string(),
  subfolder: z.string(),
  type: z.string(),
  url: z.string(),
  server: z.string(),
});

const errorInfoSchema = z.looseObject({
  code: z.string(),
  category: z.string(),
  message: z.string(),
  hint: z.string(),
  retryable: z.boolean(),
});

const checkpointSchema = z.looseObject({
  progress: z.number().finite(),
  completedOutputs: z.record(z.string(), object),
  cacheServer: z.string().nullable(),
  promptId: z.string().nullable(),
  updatedAt: ms,
});

const jobShape = {
  id: z.string().min(1),
  status: z.enum(JOB_STATUSES),
  workflow: workflowSchema,
  params: object,
  options: object,
  priority: z.number().finite(),
  idempotencyKey: z.string().min(1).nullable(),
  progress: z.number().finite(),
  server: z.string().nullable(),
  promptId: z.string().nullable(),
  attempts: z.array(attemptSchema),
  recoveryHistory: z.array(recoveryStepSchema),
  retryCount: z.number().int().nonnegative(),
  outputs: z.array(outputRefSchema),
  error: errorInfoSchema.nullable(),
  checkpoint: checkpointSchema.nullable(),
  degraded: z
    .looseObject({
      changes: z.array(z.looseObject({ node: z.string(), input: z.string(), from: z.unknown(), to: z.unknown() })).optional(),
      reason: z.string().optional(),
      level: z.string().optional(),
      factor: z.number().finite().optional(),
    })
    .nullable(),
  createdAt: ms,
  updatedAt: ms,
  startedAt: ms.nullable(),
  endedAt: ms.nullable(),
  budgetBase: z.number().int().nonnegative().optional(),
  cancelRequestedAt: ms.nullable().optional(),
};

const jobSchema = z.looseObject(jobShape);
// Loose like records: fields added to JobRecord after this store was written are carried through.
const patchSchema = z.looseObject(jobShape).partial();

export const attemptRecordSchema = attemptSchema;
export const recoveryStepRecordSchema = recoveryStepSchema;
export const checkpointRecordSchema = checkpointSchema;

/** Renders the first few zod issues as `path: message; ...`. */
function describeIssues(error: z.ZodError): string {
  const parts = error.issues.slice(0, 3).map((i) => `${i.path.length ? i.path.join('.') : '(root)'}: ${i.message}`);
  if (error.issues.length > 3) parts.push(`and ${error.issues.length - 3} more`);
  return parts.join('; ');
}

export type Checked<T> = { ok: true; value: T } | { ok: false; error: string };

/** Checks that `x` is a complete job record. Returns the value unchanged (no copy, no stripping). */
export function checkJob(x: unknown): Checked<JobRecord> {
  const r = jobSchema.safeParse(x);
  return r.success ? { ok: true, value: x as JobRecord } : { ok: false, error: describeIssues(r.error) };
}

/** Checks the fields present in a patch. */
export function checkPatch(x: unknown): Checked<Partial<JobRecord>> {
  const r = patchSchema.safeParse(x);
  return r.success ? { ok: true, value: x as Partial<JobRecord> } : { ok: false, error: describeIssues(r.error) };
}

/** Checks one value against a schema and returns the error text. */
export function checkValue<T>(schema: z.ZodType<T>, x: unknown): Checked<T> {
  const r = schema.safeParse(x);
  return r.success ? { ok: true, value: x as T } : { ok: false, error: describeIssues(r.error) };
}

/** Parses JSON text; the error names `what` so a corrupt-row report says which column broke. */
export function parseJson(text: unknown, what: string): Checked<unknown> {
  if (typeof text !== 'string') return { ok: false, error: `${what}: expected JSON text, got ${text === null ? 'null' : typeof text}` };
  try {
    return { ok: true, value: JSON.parse(text) as unknown };
  } catch (e) {
    return { ok: false, error: `${what}: ${e instanceof Error ? e.message : String(e)}` };
  }
}
