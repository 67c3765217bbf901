/**
 * What every route module of the service gets: the guard (the only way into the core), the clock,
 * and the service's own bookkeeping of long-lived connections so `close()` can end them.
 */
import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import type { Guard } from '../jobs/guard-api.js';
import type { Clock } from '../util/clock.js';
import type { OutboundPolicy } from '../util/outbound.js';

/** The Fastify instance with the zod type provider, as route modules see it. */
export type ZodApp = ReturnType<typeof withZod>;

/** Narrows a Fastify instance to the zod type provider (types only; no runtime change). */
export function withZod(app: FastifyInstance) {
  return app.withTypeProvider<ZodTypeProvider>();
}

/** The request, connection and size bounds the service runs with. */
export interface ServiceLimits {
  maxBodyDepth: number;
  maxWorkflowNodes: number;
  headersTimeoutMs: number;
  requestTimeoutMs: number;
  idleTimeoutMs: number;
  maxConnections: number;
}

export interface ServiceContext {
  guard: Guard;
  clock: Clock;
  version: string;
  startedAt: number;
  /** Interval of SSE heartbeat comments. */
  sseHeartbeatMs: number;
  /** Interval of the `status` heartbeat on ComfyUI-compatible sockets. */
  comfyHeartbeatMs: number;
  /** Aborts every open SSE stream and socket; called when the service closes. */
  streams: Set<AbortController>;
  /** Body, workflow, time and connection bounds. */
  limits: ServiceLimits;
  /** Which webhook targets beyond public addresses a job may name (must match the notifier's). */
  webhookTargets: OutboundPolicy;
  /** Keep error analytics for /api/stats (off: the `analytics` object is left out). */
  errorAnalytics: boolean;
}
