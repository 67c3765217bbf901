/**
 * The operator console's routes: job search through the whole store (status, server, error code,
 * time range, text), a job's summary, bulk retry of retryable failures, pause/resume of the pool,
 * draining a server, and the servers with their recent history.
 */
import type { z } from 'zod';
import type { Guard } from '../../jobs/guard-api.js';
import { JOB_STATUSES, type JobRecord, type JobStatus } from '../../jobs/types.js';
import { ApiError } from '../api-error.js';
import { consoleFeed } from '../console-feed.js';
import {
  BulkRetryBodySchema,
  BulkRetryResponseSchema,
  ConsoleServersSchema,
  ControlSchema,
  DrainBodySchema,
  DrainParamsSchema,
  DrainResponseSchema,
  JobSummarySchema,
  SearchJobsQuerySchema,
  SearchJobsResponseSchema,
} from '../console-schemas.js';
import type { ServiceContext, ZodApp } from '../context.js';
import { matchesText, summarizeJob } from '../job-summary.js';
import { iso, toJobView } from '../job-view.js';
import { errorResponses, JobIdParamsSchema } from '../schemas.js';
import { registerEventStreamRoute } from './events.js';

/** Most jobs one search request reads before it answers with what it found and a cursor to go on. */
export const MAX_SCAN = 5_000;
/** Most jobs one bulk retry retries. */
export const MAX_BULK_RETRY = 1_000;

type SearchQuery = z.infer<typeof SearchJobsQuerySchema>;

/** A search position: the store cursor of a page's start (null: the newest) and how many of that page were already read. */
interface SearchCursor {
  c: string | null;
  s: number;
}

function encodeSearchCursor(c: SearchCursor): string {
  return Buffer.from(JSON.stringify(c), 'utf8').toString('base64url');
}

function decodeSearchCursor(raw: string): SearchCursor {
  try {
    const v = JSON.parse(Buffer.from(raw, 'base64url').toString('utf8')) as Partial<SearchCursor>;
    if ((v.c === null || typeof v.c === 'string') && Number.isInteger(v.s) && (v.s as number) >= 0) return { c: v.c, s: v.s as number };
  } catch {
    // reported below
  }
  throw new ApiError(400, 'VALIDATION_ERROR', 'cursor: not a cursor from this endpoint', { field: 'cursor' });
}

function parseStatuses(raw: string | undefined): JobStatus[] | undefined {
  if (!raw) return undefined;
  const list = [...new Set(raw.split(',').map((s) => s.trim()).filter((s) => s !== ''))];
  for (const s of list) {
    if (!(JOB_STATUSES as readonly string[]).includes(s)) {
      throw new ApiError(400, 'VALIDATION_ERROR', `status: must be one or more of ${JOB_STATUSES.join(', ')}, separated by commas`, { field: 'status' });
    }
  }
  return list.length ? (list as JobStatus[]) : undefined;
}

/** True when a job passes the filters the store cannot apply (server, code, text). */
function passes(job: JobRecord, q: SearchQuery): boolean {
  if (q.server && job.server !== q.server && !job.attempts.some((a) => a.server === q.server)) return false;
  if (q.code && job.error?.code !== q.code && !job.attempts.some((a) => a.code === q.code)) return false;
  if (q.q && !matchesText(job, summarizeJob(job), q.q)) return false;
  return true;
}

/**
 * One page of matches, newest first. Status and time range go to the store; the other filters are
 * applied to the pages it returns, reading at most MAX_SCAN jobs per request.
 */
export async function searchJobs(guard: Guard, q: SearchQuery): Promise<{ jobs: JobRecord[]; nextCursor: string | null; scanned: number }> {
  const limit = q.limit ?? 50;
  const status = parseStatuses(q.status);
  const filtered = Boolean(q.server || q.code || q.q?.trim());
  // Unfiltered, a store page is exactly a result page; filtered, larger pages mean fewer round trips.
  const pageSize = filtered ? 250 : limit;
  let pos: SearchCursor = q.cursor ? decodeSearchCursor(q.cursor) : { c: null, s: 0 };
  const out: JobRecord[] = [];
  let scanned = 0;
  for (;;) {
    const page = await guard.list({
      ...(status ? { status } : {}),
      ...(q.since !== undefined ? { since: q.since } : {}),
      ...(q.until !== undefined ? { until: q.until } : {}),
      limit: pageSize,
      ...(pos.c ? { cursor: pos.c } : {}),
    });
    for (let i = pos.s; i < page.jobs.length; i++) {
      const job = page.jobs[i]!;
      scanned++;
      if (!passes(job, q)) continue;
      out.push(job);
      if (out.length === limit) {
        const next = i + 1 < page.jobs.length ? { c: pos.c, s: i + 1 } : page.nextCursor ? { c: page.nextCursor, s: 0 } : null;
        return { jobs: out, nextCursor: next ? encodeSearchCursor(next) : null, scanned };
      }
    }
    if (!page.nextCursor) return { jobs: out, nextCursor: null, scanned };
    pos = { c: page.nextCursor, s: 0 };
    if (scanned >= MAX_SCAN) return { jobs: out, nextCursor: encodeSearchCursor(pos), scanned };
  }
}

/** Every failed or timed-out job whose error is retryable (up to `max`), newest first. */
async function retryableFailures(guard: Guard, max: number): Promise<{ ids: string[]; truncated: boolean }> {
  const ids: string[] = [];
  let cursor: string | undefined;
  for (;;) {
    const page = await guard.list({ status: ['failed', 'timed_out'], limit: 500, ...(cursor ? { cursor } : {}) });
    for (const j of page.jobs) {
      if (!j.error?.retryable) continue;
      if (ids.length === max) return { ids, truncated: true };
      ids.push(j.id);
    }
    if (!page.nextCursor) return { ids, truncated: false };
    cursor = page.nextCursor;
  }
}

/** Registers the console routes and the global event stream (`/api/events`). */
export function registerConsoleRoutes(app: ZodApp, ctx: ServiceContext): void {
  const { guard } = ctx;
  const feed = consoleFeed(ctx);
  app.addHook('onClose', async () => feed.close());
  registerEventStreamRoute(app, ctx);

  app.get(
    '/api/jobs/search',
    {
      schema: {
        summary: 'Search jobs by status, server, error code, time range and text, newest first',
        description: `Status and time range are filtered by the store; server, code and text on the pages it returns. One request reads at most ${MAX_SCAN} jobs: fewer matches than \`limit\` with a \`nextCursor\` means "search on".`,
        tags: ['console'],
        querystring: SearchJobsQuerySchema,
        response: { 200: SearchJobsResponseSchema, ...errorResponses(400, 401) },
      },
    },
    async (req) => {
      const r = await searchJobs(guard, req.query);
      return { jobs: r.jobs.map((j) => ({ ...toJobView(j), summary: summarizeJob(j) })), nextCursor: r.nextCursor, scanned: r.scanned };
    },
  );

  app.get(
    '/api/jobs/:id/summary',
    {
      schema: {
        summary: "What a job is: label, model, size, batch, steps, seed and prompt text, read from its workflow",
        tags: ['console'],
        params: JobIdParamsSchema,
        response: { 200: JobSummarySchema, ...errorResponses(401, 404) },
      },
    },
    async (req) => {
      const job = await guard.get(req.params.id);
      if (!job) throw new ApiError(404, 'NOT_FOUND', `no job with id ${req.params.id}`, { field: 'id' });
      return summarizeJob(job);
    },
  );

  app.post(
    '/api/jobs/retry-failed',
    {
      schema: {
        summary: 'Retry every failed or timed-out job whose error is retryable',
        description: `With \`dryRun\`, only counts them. At most ${MAX_BULK_RETRY} jobs per request.`,
        tags: ['console'],
        body: BulkRetryBodySchema,
        response: { 200: BulkRetryResponseSchema, ...errorResponses(400, 401) },
      },
    },
    async (req) => {
      const { ids, truncated } = await retryableFailures(guard, MAX_BULK_RETRY);
      if (req.body?.dryRun) return { matched: ids.length, retried: 0, failed: [], truncated };
      const failed: { id: string; message: string }[] = [];
      let retried = 0;
      for (const id of ids) {
        try {
          await guard.retry(id);
          retried++;
        } catch (err) {
          failed.push({ id, message: err instanceof Error ? err.message : String(err) });
        }
      }
      return { matched: ids.length, retried, failed, truncated };
    },
  );

  const control = async () => ({ paused: guard.isPaused(), drained: (await guard.servers()).filter((s) => s.drained).map((s) => s.name) });

  app.get(
    '/api/control',
    { schema: { summary: 'Whether the pool is paused and which servers are drained', tags: ['console'], response: { 200: ControlSchema, ...errorResponses(401) } } },
    control,
  );

  app.post(
    '/api/control/pause',
    {
      schema: {
        summary: 'Pause the pool: queued jobs wait, running ones go on, submissions are still accepted',
        tags: ['console'],
        response: { 200: ControlSchema, ...errorResponses(401) },
      },
    },
    async () => {
      guard.pause();
      feed.notifyControl();
      return control();
    },
  );

  app.post(
    '/api/control/resume',
    { schema: { summary: 'Resume the pool (also after an emergency stop)', tags: ['console'], response: { 200: ControlSchema, ...errorResponses(401) } } },
    async () => {
      guard.resume();
      feed.notifyControl();
      return control();
    },
  );

  app.post(
    '/api/servers/:name/drain',
    {
      schema: {
        summary: 'Drain a server (nothing new is sent; running prompts finish), or put it back with `on: false`',
        tags: ['console'],
        params: DrainParamsSchema,
        body: DrainBodySchema,
        response: { 200: DrainResponseSchema, ...errorResponses(400, 401, 404) },
      },
    },
    async (req) => {
      const { name } = req.params;
      if (!(await guard.servers()).some((s) => s.name === name)) throw new ApiError(404, 'NOT_FOUND', `no server named ${name}`, { field: 'name' });
      const on = req.body?.on ?? true;
      guard.drain(name, on);
      feed.noteDrain(name, on);
      feed.notifyControl(name);
      return { server: name, drained: on };
    },
  );

  app.get(
    '/api/servers',
    {
      schema: {
        summary: 'Each server with its health, VRAM (bytes), queue, breaker, drain state and recent history',
        tags: ['console'],
        response: { 200: ConsoleServersSchema, ...errorResponses(401) },
      },
    },
    async () => {
      const servers = await guard.servers();
      return {
        paused: guard.isPaused(),
        degradation: guard.degradation(),
        servers: servers.map((s) => ({
          name: s.name,
          url: s.url,
          healthy: s.healthy,
          drained: s.drained,
          latencyMs: s.latencyMs,
          vram: { total: s.vramTotal, free: s.vramFree },
          queueRemaining: s.queueRemaining,
          breaker: s.breaker,
          lastError: s.lastError,
          checkedAt: s.checkedAt === null ? null : iso(s.checkedAt),
          tags: s.tags,
          history: feed.history(s.name).map((c) => ({ ...c, at: iso(c.at) })),
        })),
      };
    },
  );
}
