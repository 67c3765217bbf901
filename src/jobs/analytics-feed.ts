/**
 * Analytics events (the seeds' names: job_*, comfyui_retry_*) derived from the event stream, so the
 * drive loop does not call sinks itself and every fact is reported exactly once, as it happens.
 */
import type { AnalyticsEvent, AnalyticsSink } from './guard-api.js';
import type { GuardEvent } from './events.js';
import type { Logger } from './options.js';

const TERMINAL_EVENT = {
  completed: 'job_completed',
  failed: 'job_failed',
  cancelled: 'job_cancelled',
  timed_out: 'job_timed_out',
} as const;

/** The analytics events one stream event stands for (none for most). */
export function analyticsOf(e: GuardEvent): AnalyticsEvent[] {
  if (e.type === 'recovery') {
    return [{ name: 'comfyui_retry_attempted', promptId: e.failedPromptId, attempt: e.step.attempt + 1, errorType: e.step.code }];
  }
  if (e.type !== 'state') return [];
  const job = e.job;
  if (e.from === null && e.to === 'queued' && job.attempts.length === 0 && job.recoveryHistory.length === 0) {
    return [{ name: 'job_submitted', jobId: job.id, priority: job.priority }];
  }
  if (e.from === 'queued' && e.to === 'running') return [{ name: 'job_started', jobId: job.id }];
  const out: AnalyticsEvent[] = [];
  const last = job.attempts.at(-1);
  if (e.to === 'completed' && job.attempts.length > 1 && last) {
    out.push({ name: 'comfyui_retry_succeeded', promptId: last.promptId, attempt: last.number, totalRetries: job.retryCount });
  }
  if (e.to === 'failed' && (job.attempts.length > 1 || job.retryCount > 0)) {
    out.push({ name: 'comfyui_retry_exhausted', promptId: last?.promptId ?? '', totalRetries: job.retryCount, finalError: job.error?.code ?? 'INTERNAL_ERROR' });
  }
  if (e.to in TERMINAL_EVENT && e.from !== null) {
    const name = TERMINAL_EVENT[e.to as keyof typeof TERMINAL_EVENT];
    out.push(
      name === 'job_completed'
        ? { name, jobId: job.id, attempts: job.attempts.length }
        : name === 'job_failed'
          ? { name, jobId: job.id, code: job.error?.code ?? 'INTERNAL_ERROR' }
          : { name, jobId: job.id },
    );
  }
  return out;
}

/** A stream listener that feeds `sinks`; a sink that throws is logged and skipped. */
export function analyticsListener(sinks: readonly AnalyticsSink[], logger: Logger): (e: GuardEvent) => void {
  return (e) => {
    if (sinks.length === 0) return;
    for (const a of analyticsOf(e)) {
      for (const sink of sinks) {
        try {
          sink(a);
        } catch (err) {
          logger.warn({ err, event: a.name }, 'analytics sink threw');
        }
      }
    }
  };
}
