/**
 * The API's view of a job: `JobRecord` as stored -> the one JSON shape of the job resource
 * (camelCase, ISO times, no workflows unless asked for).
 */
import type { z } from 'zod';
import { scrubText } from '../errors/scrub.js';
import type { AttemptRecord, JobErrorInfo, JobRecord, RecoveryStep } from '../jobs/types.js';
import { goodputOfJob } from '../telemetry/goodput.js';
import { redactUrl } from '../util/outbound.js';
import type { AttemptViewSchema, JobViewSchema, RecoveryStepViewSchema } from './schemas.js';

export type JobView = z.infer<typeof JobViewSchema>;
type AttemptView = z.infer<typeof AttemptViewSchema>;
export type RecoveryStepView = z.infer<typeof RecoveryStepViewSchema>;

/** ms epoch -> ISO 8601. */
export function iso(ms: number): string {
  return new Date(ms).toISOString();
}

function isoOrNull(ms: number | null | undefined): string | null {
  return ms === null || ms === undefined ? null : iso(ms);
}

function attemptView(a: AttemptRecord, withWorkflow: boolean): AttemptView {
  return {
    number: a.number,
    server: a.server,
    promptId: a.promptId,
    status: a.status,
    ...(a.strategy !== undefined ? { strategy: a.strategy } : {}),
    ...(a.code !== undefined ? { code: a.code } : {}),
    ...(a.message !== undefined ? { message: scrubText(a.message) } : {}),
    ...(a.changes !== undefined ? { changes: a.changes } : {}),
    startedAt: iso(a.startedAt),
    endedAt: isoOrNull(a.endedAt),
    ...(withWorkflow ? { workflow: a.workflow } : {}),
  };
}

function stepView(s: RecoveryStep): RecoveryStepView {
  return {
    attempt: s.attempt,
    code: s.code,
    strategy: s.strategy,
    changes: s.changes,
    success: s.success,
    server: s.server,
    promptId: s.promptId,
    message: scrubText(s.message),
    startedAt: iso(s.startedAt),
    endedAt: isoOrNull(s.endedAt),
  };
}

/**
 * The error as a user sees it: message and hint scrubbed once more here, because recovery and
 * decision text appended to them may quote user input (tokens, paths) that the classifier never saw.
 */
function errorView(e: JobErrorInfo | null): JobErrorInfo | null {
  if (e === null) return null;
  return { ...e, message: scrubText(e.message), hint: scrubText(e.hint) };
}

/** Maps a stored job to its API shape; `withWorkflow` adds the original and per-attempt workflows. */
export function toJobView(job: JobRecord, opts: { withWorkflow?: boolean } = {}): JobView {
  const withWorkflow = opts.withWorkflow === true;
  return {
    id: job.id,
    status: job.status,
    progress: job.progress,
    server: job.server,
    promptId: job.promptId,
    priority: job.priority,
    idempotencyKey: job.idempotencyKey,
    createdAt: iso(job.createdAt),
    updatedAt: iso(job.updatedAt),
    startedAt: isoOrNull(job.startedAt),
    endedAt: isoOrNull(job.endedAt),
    attempts: job.attempts.map((a) => attemptView(a, withWorkflow)),
    recoveryHistory: job.recoveryHistory.map(stepView),
    retryCount: job.retryCount,
    originalParameters: job.params,
    options: { ...job.options, ...(typeof job.options.webhookUrl === 'string' ? { webhookUrl: redactUrl(job.options.webhookUrl) } : {}) },
    outputs: job.outputs.map((o) => ({ node: o.node, filename: o.filename, subfolder: o.subfolder, type: o.type, server: o.server, url: o.url })),
    error: errorView(job.error),
    goodput: goodputOfJob(job),
    degraded: job.degraded,
    ...(withWorkflow ? { workflow: job.workflow } : {}),
  };
}
