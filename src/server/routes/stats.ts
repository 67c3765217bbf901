/**
 * `GET /api/stats` (the guard's totals) and `GET /api/stats/detailed` (plus per-strategy,
 * per-server and over-time figures computed from the jobs of a time window). Both carry `analytics`
 * (error analytics) and `goodput` (GPU-seconds failed, succeeded and saved), kept incrementally from
 * the guard's event stream since this process started.
 */
import type { z } from 'zod';
import type { Guard, ServerHealthView } from '../../jobs/guard-api.js';
import type { JobRecord } from '../../jobs/types.js';
import { GoodputAccumulator } from '../../telemetry/goodput.js';
import type { ServiceContext, ZodApp } from '../context.js';
import { iso } from '../job-view.js';
import { DetailedStatsQuerySchema, DetailedStatsSchema, errorResponses, StatsSchema } from '../schemas.js';

type DetailedStats = z.infer<typeof DetailedStatsSchema>;

/** At most this many jobs are read to build the windowed figures; `window.truncated` says when it was hit. */
const MAX_SAMPLED_JOBS = 10_000;

async function jobsSince(guard: Guard, since: number): Promise<{ jobs: JobRecord[]; truncated: boolean }> {
  const jobs: JobRecord[] = [];
  let cursor: string | undefined;
  for (;;) {
    const page = await guard.list({ since, limit: 1000, ...(cursor ? { cursor } : {}) });
    jobs.push(...page.jobs);
    if (!page.nextCursor) return { jobs, truncated: false };
    if (jobs.length >= MAX_SAMPLED_JOBS) return { jobs: jobs.slice(0, MAX_SAMPLED_JOBS), truncated: true };
    cursor = page.nextCursor;
  }
}

/** Per-server attempt outcomes and error codes, with each server's current health. */
export function byServer(jobs: JobRecord[], servers: ServerHealthView[]): DetailedStats['byServer'] {
  const out: DetailedStats['byServer'] = {};
  for (const s of servers) out[s.name] = { attempts: 0, completed: 0, failed: 0, errors: {}, healthy: s.healthy, breaker: s.breaker };
  for (const job of jobs) {
    for (const a of job.attempts) {
      const row = (out[a.server] ??= { attempts: 0, completed: 0, failed: 0, errors: {}, healthy: null, breaker: null });
      row.attempts++;
      if (a.status === 'completed') row.completed++;
      else if (a.status === 'failed' || a.status === 'lost' || a.status === 'interrupted') row.failed++;
      if (a.code) row.errors[a.code] = (row.errors[a.code] ?? 0) + 1;
    }
  }
  return out;
}

/** Submissions, endings and recovery steps per time bucket, oldest bucket first. */
export function overTime(jobs: JobRecord[], now: number, hours: number): { buckets: DetailedStats['overTime']; bucketMinutes: number } {
  const bucketMinutes = hours <= 48 ? 60 : 24 * 60;
  const size = bucketMinutes * 60_000;
  const end = Math.floor(now / size) * size + size;
  const count = Math.ceil((hours * 3_600_000) / size);
  const start = end - count * size;
  const buckets = Array.from({ length: count }, (_, i) => ({ start: iso(start + i * size), submitted: 0, completed: 0, failed: 0, recoveries: 0 }));
  const at = (t: number | null) => (t === null || t < start || t >= end ? undefined : buckets[Math.floor((t - start) / size)]);
  for (const job of jobs) {
    const sub = at(job.createdAt);
    if (sub) sub.submitted++;
    const ended = at(job.endedAt);
    if (ended && job.status === 'completed') ended.completed++;
    if (ended && (job.status === 'failed' || job.status === 'timed_out')) ended.failed++;
    for (const step of job.recoveryHistory) {
      const b = at(step.startedAt);
      if (b) b.recoveries++;
    }
  }
  return { buckets, bucketMinutes };
}

/** Registers the stats routes. */
export function registerStatsRoutes(app: ZodApp, ctx: ServiceContext): void {
  const { guard } = ctx;
  // The guard keeps the analytics from its event stream (each request reads counters, never scans
  // the store); a service started with errorAnalytics off leaves them out whatever the guard keeps.
  // Goodput of the attempts this process sees settle (per job, it is read from the stored attempts: job-view.ts).
  const goodput = new GoodputAccumulator({ perJob: false });
  const goodputSince = ctx.clock.now();
  const unsubscribe = guard.onEvent((e) => goodput.observe(e));
  app.addHook('onClose', async () => unsubscribe());
  const goodputView = () => {
    const { total, byCode, byServer } = goodput.report();
    const spent = total.failedSeconds + total.succeededSeconds;
    return { since: iso(goodputSince), total, goodput: spent > 0 ? total.succeededSeconds / spent : null, byCode, byServer };
  };
  const stats = async () => {
    const { analytics, ...totals } = await guard.stats();
    return { ...totals, ...(ctx.errorAnalytics && analytics ? { analytics } : {}), goodput: goodputView() };
  };

  app.get(
    '/api/stats',
    {
      schema: {
        summary: 'Totals: jobs, errors, recoveries, rates and the error distribution',
        tags: ['stats'],
        response: { 200: StatsSchema, ...errorResponses(401, 503) },
      },
    },
    async () => stats(),
  );

  app.get(
    '/api/stats/detailed',
    {
      schema: {
        summary: 'Totals plus per-strategy, per-server and over-time figures',
        description: 'Per-server and over-time figures cover the jobs created in the last `hours` hours (at most 10 000 jobs).',
        tags: ['stats'],
        querystring: DetailedStatsQuerySchema,
        response: { 200: DetailedStatsSchema, ...errorResponses(400, 401, 503) },
      },
    },
    async (req) => {
      const { hours } = req.query;
      const now = ctx.clock.now();
      const [totals, servers, window] = await Promise.all([stats(), guard.servers(), jobsSince(guard, now - hours * 3_600_000)]);
      const time = overTime(window.jobs, now, hours);
      return {
        ...totals,
        byServer: byServer(window.jobs, servers),
        overTime: time.buckets,
        window: { hours, bucketMinutes: time.bucketMinutes, sampledJobs: window.jobs.length, truncated: window.truncated },
      };
    },
  );
}
