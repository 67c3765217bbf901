/**
 * Request and response schemas of the HTTP API. The same zod values validate requests, shape
 * responses (unknown fields are stripped on the way out) and generate the OpenAPI document, so the
 * three cannot drift apart.
 */
import { z } from 'zod';
import { ERROR_CODES } from '../errors/codes.js';
import { JOB_STATUSES, STRATEGY_NAMES } from '../jobs/types.js';

const MAX_MS = 7 * 24 * 3_600_000;

// ---- shared pieces -------------------------------------------------------------------------------

export const JobStatusSchema = z.enum(JOB_STATUSES).describe('Job state: queued → running → (recovering → running)* → completed | failed | timed_out | cancelled');

export const WorkflowNodeSchema = z.looseObject({
  class_type: z.string().min(1),
  inputs: z.record(z.string(), z.unknown()),
  _meta: z.looseObject({ title: z.string().optional() }).optional(),
});

/** An API-format workflow ("Save (API Format)" in ComfyUI): node id -> node. */
export const WorkflowSchema = z
  .record(z.string(), WorkflowNodeSchema)
  .refine((w) => Object.keys(w).length > 0, { message: 'the workflow has no nodes' })
  .describe('An API-format ComfyUI workflow: node id -> { class_type, inputs }')
  .meta({ id: 'Workflow' });

/**
 * A number in a querystring. Stricter than `z.coerce.number()`, which reads "" as 0: the value
 * must be written as a plain non-negative number.
 */
export function queryNumber(opts: { int?: boolean; min: number; max: number }) {
  const pattern = opts.int ? /^\d+$/ : /^\d+(\.\d+)?$/;
  return z
    .string()
    .regex(pattern, { message: `must be ${opts.int ? 'an integer' : 'a number'} from ${opts.min} to ${opts.max}` })
    .transform(Number)
    .pipe((opts.int ? z.number().int() : z.number()).min(opts.min).max(opts.max));
}

const ms = () => z.number().int().min(1).max(MAX_MS);
const nonEmptyStrings = (max: number) => z.array(z.string().min(1).max(1_000)).max(max);

/** Options sent with a job; mirrors `JobOptions` and the guard's own checks. */
export const JobOptionsSchema = z
  .strictObject({
    maxRetries: z.number().int().min(0).max(100).optional().describe('Retries after the first attempt (guard default 3)'),
    timeoutMs: ms().optional().describe('Budget of the whole job, submit to terminal state'),
    generationTimeoutMs: ms().optional().describe('Budget of one attempt, submit to terminal event'),
    requestTimeoutMs: ms().optional(),
    stallTimeoutMs: ms().optional(),
    recovery: z
      .partialRecord(z.enum(ERROR_CODES), z.array(z.enum(STRATEGY_NAMES)).min(1).max(20))
      .optional()
      .describe('Per error code, the recovery strategies to use, in order'),
    fallbackModels: nonEmptyStrings(100).optional().describe('Checkpoint names to try, in order, when the model is missing'),
    fallbackWorkflows: z.array(WorkflowSchema).max(10).optional().describe('Whole workflows to try when every other strategy is exhausted'),
    priority: z.number().int().min(-1_000_000).max(1_000_000).optional().describe('Higher runs first (default 0)'),
    idempotencyKey: z.string().min(1).max(256).optional().describe('A repeat with the same key returns the same job'),
    webhookUrl: z.url({ protocol: /^https?$/ }).optional().describe('Called when the job ends'),
    allowDegradation: z.boolean().optional(),
    serverTags: nonEmptyStrings(100).optional().describe('Only use servers with all of these tags'),
    quality: z.enum(['exact', 'any']).optional().describe('`exact`: recovery may only make changes that keep the output; otherwise the job fails naming the change (default `any`)'),
  })
  .meta({ id: 'JobOptions' });

/** Named parameters that map onto workflow nodes; unknown names are checked by the guard. */
export const JobParamsSchema = z
  .looseObject({
    width: z.number().int().positive().optional(),
    height: z.number().int().positive().optional(),
    batch_size: z.number().int().positive().optional(),
    steps: z.number().int().positive().optional(),
    cfg: z.number().optional(),
    seed: z.number().int().min(0).optional(),
    denoise: z.number().min(0).max(1).optional(),
    ckpt_name: z.string().min(1).optional(),
    prompt: z.string().optional(),
    negative_prompt: z.string().optional(),
  })
  .meta({ id: 'JobParams' });

export const SubmitJobBodySchema = z.strictObject({
  workflow: WorkflowSchema,
  params: JobParamsSchema.optional(),
  options: JobOptionsSchema.optional(),
});

export const SubmitJobResponseSchema = z.object({
  id: z.string(),
  status: JobStatusSchema,
  created: z.boolean().describe('false when an idempotency key matched an existing job'),
});

// ---- the job resource ----------------------------------------------------------------------------

const isoTime = () => z.string().describe('ISO 8601 time');

export const InputChangeSchema = z.object({
  nodeId: z.string(),
  classType: z.string(),
  input: z.string(),
  from: z.unknown(),
  to: z.unknown(),
});

export const AttemptViewSchema = z.object({
  number: z.number().int(),
  server: z.string(),
  promptId: z.string(),
  status: z.string(),
  strategy: z.string().optional(),
  code: z.string().optional(),
  message: z.string().optional(),
  changes: z.array(InputChangeSchema).optional(),
  startedAt: isoTime(),
  endedAt: isoTime().nullable(),
  workflow: z.record(z.string(), z.unknown()).optional().describe('Only with ?include=workflow'),
});

export const RecoveryStepViewSchema = z.object({
  attempt: z.number().int(),
  code: z.string(),
  strategy: z.string(),
  changes: z.array(InputChangeSchema),
  success: z.boolean().nullable().describe('null while the resulting attempt runs'),
  server: z.string().nullable(),
  promptId: z.string().nullable(),
  message: z.string(),
  startedAt: isoTime(),
  endedAt: isoTime().nullable(),
});

export const OutputViewSchema = z.object({
  node: z.string(),
  filename: z.string(),
  subfolder: z.string(),
  type: z.string(),
  server: z.string(),
  url: z.string().describe('Download URL through comfyguard'),
});

const goodputTotals = z.object({
  failedSeconds: z.number().describe('Seconds of attempts that failed (or were lost or interrupted)'),
  succeededSeconds: z.number().describe('Seconds of the attempts that produced results'),
  savedSeconds: z.number().describe('Seconds not spent again because a resume or the cache reused finished nodes (estimated)'),
  attempts: z.number().int(),
  failedAttempts: z.number().int(),
});

/** What the stats routes build from `GoodputAccumulator.report()` (src/telemetry/goodput.ts). */
export const GoodputSchema = z
  .object({
    since: isoTime().describe('When this process started counting: the figures cover the attempts it saw settle since then'),
    total: goodputTotals,
    goodput: z.number().nullable().describe('Share of server time that went into results: succeeded / (succeeded + failed); null when nothing ran yet'),
    byCode: z.record(z.string(), goodputTotals).describe('Failed seconds by the error code of the failure'),
    byServer: z.record(z.string(), goodputTotals),
  })
  .meta({ id: 'Goodput' });

export const JobGoodputSchema = goodputTotals.describe("GPU-seconds of this job's ended attempts, from the stored attempts (savedSeconds is not stored per job: always 0 here)");

export const JobErrorViewSchema = z
  .object({
    code: z.string(),
    category: z.string(),
    message: z.string(),
    hint: z.string(),
    retryable: z.boolean(),
    nodeId: z.string().optional(),
    nodeType: z.string().optional(),
    server: z.string().optional(),
  })
  .meta({ id: 'JobError' });

export const JobViewSchema = z
  .object({
    id: z.string(),
    status: JobStatusSchema,
    progress: z.number().describe('0..100'),
    server: z.string().nullable(),
    promptId: z.string().nullable(),
    priority: z.number(),
    idempotencyKey: z.string().nullable(),
    createdAt: isoTime(),
    updatedAt: isoTime(),
    startedAt: isoTime().nullable(),
    endedAt: isoTime().nullable(),
    attempts: z.array(AttemptViewSchema),
    recoveryHistory: z.array(RecoveryStepViewSchema),
    retryCount: z.number().int(),
    originalParameters: z.record(z.string(), z.unknown()).describe('The named parameters as submitted'),
    options: z.record(z.string(), z.unknown()),
    outputs: z.array(OutputViewSchema),
    error: JobErrorViewSchema.nullable(),
    goodput: JobGoodputSchema,
    degraded: z
      .object({
        changes: z.array(z.object({ node: z.string(), input: z.string(), from: z.unknown(), to: z.unknown(), classType: z.string().optional() })).optional(),
        reason: z.string().optional(),
        level: z.string().optional(),
        factor: z.number().optional(),
      })
      .nullable()
      .describe('How the result differs from the request (every changed input and why); null when it does not'),
    workflow: z.record(z.string(), z.unknown()).optional().describe('The original workflow; only with ?include=workflow'),
  })
  .meta({ id: 'Job' });

export const JobIdParamsSchema = z.object({ id: z.string().min(1).max(200) });

export const IncludeQuerySchema = z.looseObject({
  include: z.enum(['workflow']).optional().describe('`workflow` adds the original and every attempt\'s workflow'),
});

const statusFilter = z
  .string()
  .refine((s) => s.split(',').every((x) => (JOB_STATUSES as readonly string[]).includes(x.trim())), {
    message: `must be one or more of ${JOB_STATUSES.join(', ')}, separated by commas`,
  })
  .describe(`Comma-separated statuses: ${JOB_STATUSES.join(', ')}`);

export const ListJobsQuerySchema = z.looseObject({
  status: statusFilter.optional(),
  limit: queryNumber({ int: true, min: 1, max: 1000 }).optional().describe('Page size, 1..1000 (default 50)'),
  cursor: z.string().min(1).max(1024).optional().describe('`nextCursor` of the previous page'),
  include: z.enum(['workflow']).optional(),
});

export const JobListSchema = z.object({
  jobs: z.array(JobViewSchema),
  nextCursor: z.string().nullable(),
  corrupt: z.array(z.object({ id: z.string(), error: z.string() })).describe('Stored jobs on this page that cannot be read back; remove each with DELETE /api/jobs/:id'),
});

export const RetryBodySchema = z
  .strictObject({ force: z.boolean().optional().describe('Retry even when the error is not retryable') })
  .nullish();

export const CleanupQuerySchema = z.looseObject({
  olderThanHours: queryNumber({ min: 0, max: 24 * 365 * 10 }).default(24).describe('Delete terminal jobs that ended more than this many hours ago'),
});

const CleanupFileSchema = z.object({
  server: z.string(),
  filename: z.string(),
  subfolder: z.string(),
  type: z.string(),
  result: z.enum(['deleted', 'cannot', 'failed', 'kept']).describe('cannot: the server offers no way to delete it; failed: the request failed or the server is unreachable; kept: a job that stays still lists the file (ComfyUI served it from its cache)'),
  reason: z.string().optional().describe('Why it was not deleted'),
});

export const CleanupResponseSchema = z.object({
  deleted: z.number().int().describe('Job records deleted'),
  olderThanHours: z.number(),
  outputs: z
    .object({
      deleted: z.number().int(),
      cannot: z.number().int(),
      failed: z.number().int(),
      kept: z.number().int(),
      unreadRecords: z.number().int().describe('Unreadable records deleted without their files'),
      jobs: z.array(z.object({ id: z.string(), files: z.array(CleanupFileSchema) })).describe('Each deleted job that had outputs, with what became of each file (at most 1000 jobs)'),
      moreJobs: z.number().int().describe('Deleted jobs with outputs beyond those listed'),
    })
    .nullable()
    .describe('Output files of the deleted jobs; null when output cleanup is off (--cleanup-outputs)'),
});

export const EmergencyStopResponseSchema = z.object({
  cancelled: z.number().int().describe('Jobs cancelled'),
  servers: z.number().int().describe('Servers interrupted and cleared'),
});

// ---- stats ---------------------------------------------------------------------------------------

const counts = z.record(z.string(), z.number());
const strategyOutcome = z.object({ succeeded: z.number(), failed: z.number(), pending: z.number() });

const nullableMs = z.number().nullable();
/** What `createErrorAnalytics().snapshot()` returns (src/jobs/error-analytics.ts); `guard.stats().analytics`. */
export const ErrorAnalyticsSchema = z
  .object({
    since: isoTime(),
    window: z.object({ ms: z.number(), errors: z.number().int() }),
    errorsPerMinute: z.number(),
    totalErrors: z.number().int(),
    byCode: counts,
    byCategory: counts,
    bySeverity: counts.describe('low: retried away; medium: recovered with a change; high: failed; critical: fatal codes and GPU faults; pending: job still running'),
    topErrors: z.array(z.object({ code: z.string(), category: z.string(), count: z.number().int(), lastMessage: z.string().nullable(), lastAt: isoTime() })),
    recentCritical: z.array(z.object({ code: z.string(), jobId: z.string(), server: z.string(), message: z.string().nullable(), at: isoTime() })),
    recoveryByCode: z.record(
      z.string(),
      z.object({ jobs: z.number().int(), completed: z.number().int(), rate: z.number(), target: z.number().nullable(), meetsTarget: z.boolean().nullable() }),
    ),
    retrySuccessRate: z.number(),
    retriedJobs: z.number().int(),
    meanTimeToFailureMs: nullableMs,
    meanTimeToRecoveryMs: nullableMs,
  })
  .meta({ id: 'ErrorAnalytics' });

export const StatsSchema = z
  .object({
    totalJobs: z.number().int(),
    byStatus: counts,
    totalErrors: z.number().int(),
    successfulRecoveries: z.number().int(),
    failedRecoveries: z.number().int(),
    recoveryRate: z.number().describe('successfulRecoveries / (successful + failed); 0 when none'),
    retrySuccessRate: z.number().describe('Share of retried jobs that ended completed'),
    errorDistribution: counts.describe('Failed attempts by error code (including failures that recovery fixed)'),
    failuresByCode: counts.describe('Jobs that ended failed or timed out, by final error code'),
    degradation: z.string(),
    analytics: ErrorAnalyticsSchema.optional().describe('Error analytics of the events this process saw since it started (incremental; no store scan)'),
    goodput: GoodputSchema.describe('GPU-seconds failed, succeeded and saved, in total, by error code and by server, of the attempts this process saw (incremental; no store scan)'),
  })
  .meta({ id: 'Stats' });

export const DetailedStatsSchema = StatsSchema.extend({
  byStrategy: z.record(z.string(), strategyOutcome),
  byServer: z.record(
    z.string(),
    z.object({
      attempts: z.number().int(),
      completed: z.number().int(),
      failed: z.number().int(),
      errors: counts,
      healthy: z.boolean().nullable(),
      breaker: z.string().nullable(),
    }),
  ),
  overTime: z.array(
    z.object({
      start: isoTime(),
      submitted: z.number().int(),
      completed: z.number().int(),
      failed: z.number().int(),
      recoveries: z.number().int(),
    }),
  ),
  window: z.object({ hours: z.number(), bucketMinutes: z.number(), sampledJobs: z.number().int(), truncated: z.boolean() }),
});

export const DetailedStatsQuerySchema = z.looseObject({
  hours: queryNumber({ int: true, min: 1, max: 24 * 30 }).default(24).describe('Window of the per-server and over-time figures'),
});

// ---- memory model --------------------------------------------------------------------------------

export const MemoryModelSchema = z
  .object({
    entries: z.array(
      z.object({
        server: z.string(),
        shape: z.string().describe('Shape key: class types and model names (sizes, batch and steps left out)'),
        label: z.string().nullable().describe('What the shape is: model family, model files, class types'),
        kind: z.enum(['gpu', 'cpu', 'cpuDevice']).describe('gpu: device memory; cpu: a CPU tensor in RAM; cpuDevice: everything in RAM on a CPU server'),
        lower: z.number().nullable().describe('The need is at least this multiple of the shape estimate (OOMs, memory seen in use); null when unknown'),
        upper: z.number().nullable().describe('The need is at most this multiple of the shape estimate (successes); null when unknown'),
        ooms: z.number().int(),
        successes: z.number().int(),
      }),
    ),
  })
  .meta({ id: 'MemoryModel' });

// ---- health --------------------------------------------------------------------------------------

const componentStatus = z.enum(['ok', 'degraded', 'down']);

export const ServerHealthSchema = z
  .object({
    name: z.string(),
    url: z.string(),
    healthy: z.boolean(),
    latencyMs: z.number().nullable(),
    vram: z.object({ total: z.number().nullable(), free: z.number().nullable() }),
    queueRemaining: z.number().nullable(),
    breaker: z.string(),
    degradation: z.string().describe("The pool's degradation level"),
    lastError: z.string().nullable(),
    checkedAt: isoTime().nullable(),
    tags: z.array(z.string()),
  })
  .meta({ id: 'ServerHealth' });

export const HealthSchema = z.object({
  status: componentStatus,
  comfyguard: z.object({ status: componentStatus, version: z.string(), uptimeSeconds: z.number() }),
  store: z.object({ status: componentStatus, latencyMs: z.number().nullable(), error: z.string().optional() }),
  queue: z.object({ status: componentStatus, queued: z.number().int(), running: z.number().int(), error: z.string().optional() }),
  servers: z.array(z.object({ name: z.string(), status: componentStatus, healthy: z.boolean(), breaker: z.string() })),
});

export const ComfyHealthSchema = z.object({
  degradation: z.string(),
  healthy: z.number().int(),
  total: z.number().int(),
  servers: z.array(ServerHealthSchema),
});

// ---- outputs -------------------------------------------------------------------------------------

/** True for a relative path that stays inside its folder (no `..` segment, not absolute). */
export function isContainedPath(p: string): boolean {
  return !p.startsWith('/') && !p.startsWith('\\') && !/^[a-zA-Z]:/.test(p) && !p.split(/[\\/]/).includes('..');
}

const containedPath = (max: number) => z.string().max(max).refine(isContainedPath, { message: 'must be a relative path without ".." segments' });

/** ComfyUI's file folders, as `/view` takes them. */
export const OutputTypeSchema = z.enum(['output', 'temp', 'input']);

export const OutputParamsSchema = z.object({
  server: z.string().min(1),
  type: OutputTypeSchema,
  filename: containedPath(1024).pipe(z.string().min(1)),
});

export const OutputQuerySchema = z.looseObject({ subfolder: containedPath(1024).optional() });

/** The query of ComfyUI's `GET /view`. */
export const ViewQuerySchema = z.looseObject({
  filename: containedPath(1024).pipe(z.string().min(1)),
  subfolder: containedPath(1024).optional(),
  type: OutputTypeSchema.optional(),
});

// ---- errors --------------------------------------------------------------------------------------

export const ErrorResponseSchema = z
  .object({
    error: z.object({
      code: z.string().describe('Stable machine code: VALIDATION_ERROR, NOT_FOUND, PAYLOAD_TOO_LARGE, UNAUTHORIZED, …'),
      message: z.string(),
      field: z.string().optional().describe('Dotted path of the bad field, e.g. options.maxRetries'),
      details: z.array(z.unknown()).optional(),
    }),
  })
  .meta({ id: 'Error' });

/** The response map every route shares for its error statuses. */
export function errorResponses(...statuses: number[]): Record<number, typeof ErrorResponseSchema> {
  const out: Record<number, typeof ErrorResponseSchema> = {};
  for (const s of statuses) out[s] = ErrorResponseSchema;
  return out;
}
