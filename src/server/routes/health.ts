/**
 * `GET /api/health` (comfyguard, store, queue and each server, 503 when comfyguard cannot accept
 * work) and `GET /api/health/comfyui` (each ComfyUI server in detail).
 */
import type { z } from 'zod';
import type { ServerHealthView } from '../../jobs/guard-api.js';
import { safeDetail } from '../../errors/scrub.js';
import { redactUrl } from '../../util/outbound.js';
import type { ServiceContext, ZodApp } from '../context.js';
import { iso } from '../job-view.js';
import { ComfyHealthSchema, errorResponses, HealthSchema } from '../schemas.js';

type Health = z.infer<typeof HealthSchema>;
type Status = Health['status'];

function serverStatus(s: ServerHealthView): Status {
  if (s.healthy && s.breaker === 'closed') return 'ok';
  if (s.healthy || s.breaker === 'half_open') return 'degraded';
  return 'down';
}

/** A component's failure as the health answer shows it: scrubbed, no addresses or credentials. */
function message(err: unknown): string {
  return safeDetail(err instanceof Error ? err.message : String(err), 300) || 'unavailable';
}

/** Registers the health routes. */
export function registerHealthRoutes(app: ZodApp, ctx: ServiceContext): void {
  const { guard, clock } = ctx;

  app.get(
    '/api/health',
    {
      schema: {
        summary: 'Health of comfyguard, its store, its queue and each ComfyUI server',
        description: '200 when jobs can be accepted (status ok or degraded), 503 when the store is down.',
        tags: ['health'],
        response: { 200: HealthSchema, 503: HealthSchema, ...errorResponses(401) },
      },
    },
    async (_req, reply) => {
      const t0 = clock.now();
      const [store, stats, servers] = await Promise.allSettled([guard.list({ limit: 1 }), guard.stats(), guard.servers()]);
      const storeHealth: Health['store'] =
        store.status === 'fulfilled' ? { status: 'ok', latencyMs: clock.now() - t0 } : { status: 'down', latencyMs: null, error: message(store.reason) };
      const queue: Health['queue'] =
        stats.status === 'fulfilled'
          ? { status: 'ok', queued: stats.value.byStatus.queued ?? 0, running: (stats.value.byStatus.running ?? 0) + (stats.value.byStatus.recovering ?? 0) }
          : { status: 'down', queued: 0, running: 0, error: message(stats.reason) };
      const serverList = servers.status === 'fulfilled' ? servers.value : [];
      const serverHealth = serverList.map((s) => ({ name: s.name, status: serverStatus(s), healthy: s.healthy, breaker: s.breaker }));
      let status: Status = 'ok';
      if (queue.status !== 'ok' || servers.status === 'rejected' || serverHealth.some((s) => s.status !== 'ok')) status = 'degraded';
      if (storeHealth.status === 'down') status = 'down';
      const body: Health = {
        status,
        comfyguard: { status: 'ok', version: ctx.version, uptimeSeconds: Math.round((clock.now() - ctx.startedAt) / 1000) },
        store: storeHealth,
        queue,
        servers: serverHealth,
      };
      return reply.code(status === 'down' ? 503 : 200).send(body);
    },
  );

  app.get(
    '/api/health/comfyui',
    {
      schema: {
        summary: 'Each ComfyUI server: health, latency, VRAM, queue, breaker state and degradation level',
        tags: ['health'],
        response: { 200: ComfyHealthSchema, ...errorResponses(401) },
      },
    },
    async () => {
      const servers = await guard.servers();
      const degradation = guard.degradation();
      return {
        degradation,
        healthy: servers.filter((s) => s.healthy).length,
        total: servers.length,
        servers: servers.map((s) => ({
          name: s.name,
          url: redactUrl(s.url),
          healthy: s.healthy,
          latencyMs: s.latencyMs,
          vram: { total: s.vramTotal, free: s.vramFree },
          queueRemaining: s.queueRemaining,
          breaker: s.breaker,
          degradation,
          lastError: s.lastError === null ? null : safeDetail(s.lastError, 300),
          checkedAt: s.checkedAt === null ? null : iso(s.checkedAt),
          tags: s.tags,
        })),
      };
    },
  );
}
