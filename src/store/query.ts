/**
 * Query plumbing shared by every store: normalising a JobQuery, the opaque keyset cursor, and the
 * statistics accumulator for stores that aggregate in JS (memory, Redis).
 */
import { JOB_STATUSES, TERMINAL_STATUSES, type JobRecord, type JobStatus } from '../jobs/types.js';
import type { JobQuery, StoreStats, UnfinishedJob } from './contract.js';
import { StoreError, type StoreBackend } from './errors.js';

export const DEFAULT_PAGE_SIZE = 50;
export const MAX_PAGE_SIZE = 1000;

/** Position of the last row of a page: pages are ordered by (createdAt, id) descending. */
export interface KeysetPosition {
  createdAt: number;
  id: string;
}

export interface NormalizedQuery {
  /** null = every status. */
  statuses: JobStatus[] | null;
  since: number | null;
  until: number | null;
  limit: number;
  after: KeysetPosition | null;
}

/** Encodes a keyset position as an opaque, URL-safe cursor. */
export function encodeCursor(pos: KeysetPosition): string {
  return Buffer.from(JSON.stringify([pos.createdAt, pos.id]), 'utf8').toString('base64url');
}

/** Decodes a cursor from `encodeCursor`; anything else is STORE_BAD_CURSOR. */
export function decodeCursor(cursor: string, backend: StoreBackend): KeysetPosition {
  try {
    const v: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (Array.isArray(v) && v.length === 2 && typeof v[0] === 'number' && Number.isFinite(v[0]) && typeof v[1] === 'string') {
      return { createdAt: v[0], id: v[1] };
    }
  } catch {
    // fall through to the error below: the cause is just "not ours"
  }
  throw new StoreError('STORE_BAD_CURSOR', `query: the cursor ${JSON.stringify(cursor.slice(0, 40))} was not produced by this store`, { backend, operation: 'query' });
}

/** Applies defaults and bounds to a query. */
export function normalizeQuery(q: JobQuery, backend: StoreBackend): NormalizedQuery {
  const statuses = q.status === undefined ? null : typeof q.status === 'string' ? [q.status] : [...new Set(q.status)];
  if (statuses) {
    for (const s of statuses) {
      if (!(JOB_STATUSES as readonly string[]).includes(s)) {
        throw new StoreError('STORE_INVALID_JOB', `query: unknown status ${JSON.stringify(s)}`, { backend, operation: 'query' });
      }
    }
  }
  const rawLimit = q.limit ?? DEFAULT_PAGE_SIZE;
  const limit = Number.isFinite(rawLimit) ? Math.min(MAX_PAGE_SIZE, Math.max(1, Math.floor(rawLimit))) : DEFAULT_PAGE_SIZE;
  return {
    statuses,
    since: q.since ?? null,
    until: q.until ?? null,
    limit,
    after: q.cursor ? decodeCursor(q.cursor, backend) : null,
  };
}

/** True when `a` sorts before `b` in a newest-first page. */
export function newerFirst(a: KeysetPosition, b: KeysetPosition): number {
  if (a.createdAt !== b.createdAt) return b.createdAt - a.createdAt;
  return a.id < b.id ? 1 : a.id > b.id ? -1 : 0;
}

/** True when a job belongs on the page described by `q` (status, time window, after the cursor). */
export function matchesQuery(job: Pick<JobRecord, 'status' | 'createdAt' | 'id'>, q: NormalizedQuery): boolean {
  if (q.statuses && !q.statuses.includes(job.status)) return false;
  if (q.since !== null && job.createdAt < q.since) return false;
  if (q.until !== null && job.createdAt >= q.until) return false;
  if (q.after && newerFirst(job, q.after) <= 0) return false;
  return true;
}

/** Cuts a sorted candidate list (at most limit + 1 long is enough) into a page. */
export function toPage<T extends KeysetPosition>(sorted: T[], limit: number): { items: T[]; nextCursor: string | null } {
  const items = sorted.slice(0, limit);
  const last = items[items.length - 1];
  return { items, nextCursor: sorted.length > limit && last ? encodeCursor({ createdAt: last.createdAt, id: last.id }) : null };
}

/** Statistics with every status present and zero. */
export function emptyStats(): StoreStats {
  const byStatus = Object.fromEntries(JOB_STATUSES.map((s) => [s, 0])) as Record<JobStatus, number>;
  return { total: 0, byStatus, errorsByCode: {}, attemptErrorsByCode: {}, retriedJobs: { terminal: 0, completed: 0 }, recoveries: {}, totalAttempts: 0, totalRetries: 0 };
}

/** Statuses whose error code counts in `errorsByCode`. */
export const ERROR_STATUSES: readonly JobStatus[] = ['failed', 'timed_out'];

/** Adds one job to a statistics accumulator. */
export function addToStats(stats: StoreStats, job: JobRecord): void {
  stats.total += 1;
  stats.byStatus[job.status] += 1;
  if (ERROR_STATUSES.includes(job.status) && job.error) stats.errorsByCode[job.error.code] = (stats.errorsByCode[job.error.code] ?? 0) + 1;
  for (const step of job.recoveryHistory) addRecovery(stats, step.strategy, step.success);
  stats.totalAttempts += job.attempts.length;
  stats.totalRetries += job.retryCount;
  for (const a of job.attempts) if (a.code) stats.attemptErrorsByCode[a.code] = (stats.attemptErrorsByCode[a.code] ?? 0) + 1;
  if (job.retryCount > 0 && TERMINAL_STATUSES.has(job.status)) {
    stats.retriedJobs.terminal += 1;
    if (job.status === 'completed') stats.retriedJobs.completed += 1;
  }
}

/** Adds `n` recovery steps of one strategy and outcome. */
export function addRecovery(stats: StoreStats, strategy: string, success: boolean | null, n = 1): void {
  const entry = (stats.recoveries[strategy] ??= { succeeded: 0, failed: 0, pending: 0 });
  if (success === true) entry.succeeded += n;
  else if (success === false) entry.failed += n;
  else entry.pending += n;
}

/** Order in which restart recovery meets unfinished jobs: orphans that may be running first. */
export const UNFINISHED_ORDER = ['running', 'recovering', 'queued'] as const satisfies readonly JobStatus[];
export const DEFAULT_UNFINISHED_PAGE = 500;
export const MAX_UNFINISHED_PAGE = 5000;

/** Position in a `listUnfinished` walk: index into UNFINISHED_ORDER, then (createdAt, id) ascending. */
export interface UnfinishedPosition {
  status: number;
  createdAt: number;
  id: string;
}

/** Encodes an unfinished-walk position as an opaque cursor. */
export function encodeUnfinishedCursor(pos: UnfinishedPosition): string {
  return Buffer.from(JSON.stringify(['u', pos.status, pos.createdAt, pos.id]), 'utf8').toString('base64url');
}

/** Decodes a cursor from `encodeUnfinishedCursor` (null/undefined = the start). */
export function decodeUnfinishedCursor(cursor: string | null | undefined, backend: StoreBackend): UnfinishedPosition | null {
  if (cursor === null || cursor === undefined || cursor === '') return null;
  try {
    const v: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (Array.isArray(v) && v.length === 4 && v[0] === 'u' && Number.isInteger(v[1]) && v[1] >= 0 && v[1] < UNFINISHED_ORDER.length && typeof v[2] === 'number' && typeof v[3] === 'string') {
      return { status: v[1] as number, createdAt: v[2], id: v[3] };
    }
  } catch {
    // not ours: reported below
  }
  throw new StoreError('STORE_BAD_CURSOR', `listUnfinished: the cursor ${JSON.stringify(cursor.slice(0, 40))} was not produced by this store`, { backend, operation: 'listUnfinished' });
}

/** The recovery summary of a decoded record (stores that decode anyway: memory, Redis). */
export function unfinishedSummary(job: Pick<JobRecord, 'id' | 'status' | 'priority' | 'createdAt' | 'server' | 'promptId'>): UnfinishedJob {
  return { id: job.id, status: job.status, priority: job.priority, createdAt: job.createdAt, server: job.server ?? null, promptId: job.promptId ?? null };
}

/** The page size for `listUnfinished`, bounded. */
export function unfinishedLimit(limit: number | undefined): number {
  const raw = limit ?? DEFAULT_UNFINISHED_PAGE;
  return Number.isFinite(raw) ? Math.min(MAX_UNFINISHED_PAGE, Math.max(1, Math.floor(raw))) : DEFAULT_UNFINISHED_PAGE;
}
