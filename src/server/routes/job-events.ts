/**
 * `GET /api/jobs/:id/events`: Server-Sent Events of one job's progress, recovery steps and state
 * changes, from `guard.progress()`. The first event is the current state; the stream ends right
 * after the terminal state. A comment line every `sseHeartbeatMs` keeps proxies from cutting it.
 */
import { z } from 'zod';
import type { ComfyExecutionMessage, JobEvent } from '../../jobs/guard-api.js';
import type { JobStatus, StrategyName } from '../../jobs/types.js';
import { openSse } from '../sse.js';
import { ApiError } from '../api-error.js';
import type { ServiceContext, ZodApp } from '../context.js';
import { iso, toJobView, type JobView, type RecoveryStepView } from '../job-view.js';
import { ErrorResponseSchema, JobIdParamsSchema } from '../schemas.js';

/** A guard event as sent: the same fields, its time as an ISO string. */
type Wire<T extends JobEvent['type']> = Omit<Extract<JobEvent, { type: T }>, 'at'> & { at: string };

type StepPayload = Omit<RecoveryStepView, 'strategy'> & { strategy: StrategyName; fingerprint?: string };

/** The JSON payload of each SSE event type (the dashboard is type-checked against this). */
export type EventPayload =
  | { type: 'state'; jobId: string; from: JobStatus | null; to: JobStatus; at: string; job: JobView }
  | Wire<'progress'>
  | { type: 'recovery' | 'recovery_closed'; jobId: string; at: string; step: StepPayload }
  | Wire<'attempt_started'>
  | Wire<'attempt_settled'>
  | { type: 'comfy'; jobId: string; attempt: number; server: string; message: ComfyExecutionMessage; at: string };

/** The JSON payload of one SSE event (the job in a `state` event has the API's job shape); null for previews. */
export function eventPayload(e: JobEvent): EventPayload | null {
  switch (e.type) {
    case 'state':
      return { type: 'state', jobId: e.jobId, from: e.from, to: e.to, at: iso(e.at), job: toJobView(e.job) };
    case 'progress':
      return { type: 'progress', jobId: e.jobId, progress: e.progress, node: e.node, attempt: e.attempt, at: iso(e.at) };
    case 'recovery':
      return {
        type: 'recovery',
        jobId: e.jobId,
        at: iso(e.at),
        step: { ...e.step, startedAt: iso(e.step.startedAt), endedAt: e.step.endedAt === null ? null : iso(e.step.endedAt) },
      };
    case 'recovery_closed':
      return {
        type: 'recovery_closed',
        jobId: e.jobId,
        at: iso(e.at),
        step: { ...e.step, startedAt: iso(e.step.startedAt), endedAt: e.step.endedAt === null ? null : iso(e.step.endedAt) },
      };
    case 'attempt_started':
      return { type: e.type, jobId: e.jobId, attempt: e.attempt, server: e.server, promptId: e.promptId, strategy: e.strategy, reattached: e.reattached, at: iso(e.at) };
    case 'attempt_settled':
      return {
        type: e.type,
        jobId: e.jobId,
        attempt: e.attempt,
        server: e.server,
        promptId: e.promptId,
        outcome: e.outcome,
        code: e.code,
        message: e.message,
        durationMs: e.durationMs,
        at: iso(e.at),
      };
    case 'comfy':
      return { type: 'comfy', jobId: e.jobId, attempt: e.attempt, server: e.server, message: e.message, at: iso(e.at) };
    case 'preview':
      return null;
  }
}

const SSE_DESCRIPTION = [
  'A text/event-stream. Each event has `event:` state | progress | attempt_started | attempt_settled | recovery | recovery_closed | comfy (ComfyUI\'s own execution message) and a JSON `data:` line.',
  'The first event is the current state (`from: null`); the stream closes after the terminal state',
  '(completed, failed, timed_out, cancelled). Lines starting with ":" are heartbeats.',
  'EventSource clients should close the source when they see a terminal state, or it will reconnect.',
].join(' ');

/** Registers the SSE route. */
export function registerJobEventRoutes(app: ZodApp, ctx: ServiceContext): void {
  app.get(
    '/api/jobs/:id/events',
    {
      schema: {
        summary: 'Live events of a job (Server-Sent Events)',
        description: SSE_DESCRIPTION,
        tags: ['jobs'],
        params: JobIdParamsSchema,
        response: {
          200: { description: 'Event stream', content: { 'text/event-stream': { schema: z.string() } } },
          401: ErrorResponseSchema,
          404: ErrorResponseSchema,
        },
      },
    },
    async (req, reply) => {
      const { id } = req.params;
      const job = await ctx.guard.get(id);
      if (!job) throw new ApiError(404, 'NOT_FOUND', `no job with id ${id}`, { field: 'id' });

      const sse = openSse(req, reply, ctx);
      try {
        for await (const e of ctx.guard.progress(id, { signal: sse.signal })) {
          const payload = eventPayload(e);
          if (payload) sse.send(e.type, payload);
        }
      } catch (err) {
        // A closed connection is how a client says goodbye; anything else the client should hear about.
        if (!sse.signal.aborted) {
          req.log.warn({ err, jobId: id }, 'job event stream failed');
          sse.send('error', { code: 'INTERNAL', message: 'the event stream failed; read the job with GET /api/jobs/:id' });
        }
      } finally {
        sse.close();
      }
    },
  );
}
