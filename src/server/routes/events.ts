/**
 * `GET /api/events`: every event of the guard as Server-Sent Events — each job's state changes
 * (with the job and its summary), progress, attempts, recovery steps and ComfyUI's own execution
 * messages, the pool's changes, and control changes made through the API. The dashboard follows
 * this one stream instead of polling. Previews are left out (binary, and many per second).
 */
import { z } from 'zod';
import type { GuardEvent } from '../../jobs/guard-api.js';
import type { TimerHandle } from '../../util/clock.js';
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
  | { type: 'pool'; change: Omit<PoolChange, 'at'> & { at: string }; at: string }
  | (Omit<ControlChange, 'at'> & { at: string })
  | { type: 'hello'; paused: boolean; at: string };

/** The stream payload of a guard event; null for the events the stream leaves out. */
export function streamPayload(e: GuardEvent): StreamPayload | null {
  if (e.type === 'pool') return { type: 'pool', change: { ...e.change, at: iso(e.change.at) }, at: iso(e.at) };
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
      const ac = new AbortController();
      ctx.streams.add(ac);
      reply.hijack();
      const res = reply.raw;
      res.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-cache, no-transform',
        connection: 'keep-alive',
        'x-accel-buffering': 'no',
      });
      let seq = 0;
      const send = (data: StreamPayload) => {
        if (res.writableEnded || res.destroyed) return;
        // A reader that stopped reading is cut off rather than buffered without bound.
        if (res.writableLength > MAX_BUFFERED_BYTES) {
          ac.abort();
          return;
        }
        res.write(`id: ${++seq}\nevent: ${data.type}\ndata: ${JSON.stringify(data)}\n\n`);
      };
      let heartbeat: TimerHandle | null = null;
      const beat = () => {
        if (res.writableEnded) return;
        res.write(': heartbeat\n\n');
        heartbeat = ctx.clock.setTimeout(beat, ctx.sseHeartbeatMs);
      };
      heartbeat = ctx.clock.setTimeout(beat, ctx.sseHeartbeatMs);

      const offGuard = ctx.guard.onEvent((e) => {
        try {
          const p = streamPayload(e);
          if (p) send(p);
        } catch (err) {
          req.log.warn({ err }, 'event stream: an event could not be sent');
        }
      });
      const offControl = feed.onControl((c) => send({ ...c, at: iso(c.at) }));
      send({ type: 'hello', paused: ctx.guard.isPaused(), at: iso(ctx.clock.now()) });

      await new Promise<void>((resolve) => {
        if (ac.signal.aborted) return resolve();
        ac.signal.addEventListener('abort', () => resolve(), { once: true });
        res.on('close', () => ac.abort());
      });
      offGuard();
      offControl();
      if (heartbeat !== null) ctx.clock.clearTimeout(heartbeat);
      ctx.streams.delete(ac);
      if (!res.writableEnded) res.end();
    },
  );
}
