/**
 * `GET /api/events`: every event of the guard as Server-Sent Events — each job's state changes
 * (with the job and its summary), progress, attempts, recovery steps and ComfyUI's own execution
 * messages, the pool's changes, and control changes made through the API. The dashboard follows
 * this one stream instead of polling. Previews are left out (binary, and many per second).
 */
import { z } from 'zod';
import type { GuardEvent } from '../../jobs/guard-api.js';
import { openSse } from '../sse.js';
import { consoleFeed, type ControlChange } from '../console-feed.js';
import type { ServiceContext, ZodApp } from '../context.js';
import { summarizeJob, type JobSummary } from '../job-summary.js';
import { iso } from '../job-view.js';
import { ErrorResponseSchema } from '../schemas.js';
import { eventPayload, type EventPayload } from './job-events.js';

/** Bytes of unsent events after which a stream is closed. */
const MAX_BUFFERED_BYTES = 4 * 1024 * 1024;

type PoolChange = Extract<GuardEvent, { type: 'pool' }>['change'];

/** The payload of each event on `/api/events` (the dashboard is type-checked against this). */
export type StreamPayload =
  | Exclude<EventPayload, { type: 'state' }>
  | (Extract<EventPayload, { type: 'state' }> & { summary: JobSummary })
  | { type: 'pool'; change: Omit<Exclude<PoolChange, { type: 'health_check' }>, 'at'> & { at: string }; at: string }
  | (Omit<ControlChange, 'at'> & { at: string })
  | { type: 'hello'; paused: boolean; at: string };

/** The stream payload of a guard event; null for the events the stream leaves out. */
export function streamPayload(e: GuardEvent): StreamPayload | null {
  if (e.type === 'pool') {
    // Every health probe is for metrics; the dashboard follows changes (a health change is its own event).
    if (e.change.type === 'health_check') return null;
    return { type: 'pool', change: { ...e.change, at: iso(e.change.at) }, at: iso(e.at) };
  }
  const p = eventPayload(e);
  if (p === null) return null;
  if (p.type === 'state') return e.type === 'state' ? { ...p, summary: summarizeJob(e.job) } : null;
  return p;
}

/** Registers the global event stream. */
export function registerEventStreamRoute(app: ZodApp, ctx: ServiceContext): void {
  const feed = consoleFeed(ctx);
  app.get(
    '/api/events',
    {
      schema: {
        summary: 'Every job and pool event (Server-Sent Events)',
        description:
          'A text/event-stream of `event:` hello | state | progress | attempt_started | attempt_settled | recovery | recovery_closed | comfy | pool | control, each with a JSON `data:` line. `hello` comes first. Lines starting with ":" are heartbeats. Events missed while disconnected are not replayed: reload the figures after a reconnect.',
        tags: ['console'],
        response: {
          200: { description: 'Event stream', content: { 'text/event-stream': { schema: z.string() } } },
          401: ErrorResponseSchema,
        },
      },
    },
    async (req, reply) => {
      const sse = openSse(req, reply, ctx, { maxBufferedBytes: MAX_BUFFERED_BYTES });
      const offGuard = ctx.guard.onEvent((e) => {
        try {
          const p = streamPayload(e);
          if (p) sse.send(p.type, p);
        } catch (err) {
          req.log.warn({ err }, 'event stream: an event could not be sent');
        }
      });
      const offControl = feed.onControl((c) => sse.send(c.type, { ...c, at: iso(c.at) }));
      sse.send('hello', { type: 'hello', paused: ctx.guard.isPaused(), at: iso(ctx.clock.now()) });

      await new Promise<void>((resolve) => {
        if (sse.signal.aborted) return resolve();
        sse.signal.addEventListener('abort', () => resolve(), { once: true });
      });
      offGuard();
      offControl();
      sse.close();
    },
  );
}
