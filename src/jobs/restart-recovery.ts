/**
 * Restart recovery that streams: unfinished jobs are read a page at a time (the next page is
 * fetched while the current one is handled), each page goes through an optional per-job step in
 * bounded parallel, then is handed to the dispatcher in one `enqueueMany`. Memory stays bounded by
 * the page size, whatever the number of unfinished jobs, and every store read is an index range
 * scan of summaries: a job's full record (workflow, attempts) is read when it runs, which is also
 * where its prompt is reconciled with its server.
 */
import type { CorruptJob, JobStore, UnfinishedJob, UnfinishedPage } from '../store/contract.js';
import type { Dispatcher } from '../queue/contract.js';

export interface RestartRecoveryOptions {
  store: Pick<JobStore, 'listUnfinished'>;
  dispatcher: Pick<Dispatcher, 'enqueueMany'>;
  /** Jobs read per page. @default 1000 */
  pageSize?: number;
  /**
   * Runs for each job before it is queued (the guard marks it as resumed). Return false to leave the job out of the queue (e.g. it was settled on the spot).
   * A throw is reported through `onError` and the job is still queued.
   */
  onJob?: (job: UnfinishedJob) => Promise<boolean | void> | boolean | void;
  /** How many `onJob` calls run at once. @default 16 */
  parallel?: number;
  /** Priority a recovered job is queued with. @default orphans (running/recovering) first, queued jobs keep theirs */
  priorityOf?: (job: UnfinishedJob) => number;
  /** Unreadable rows met on the way (the store has quarantined them). */
  onCorrupt?: (row: CorruptJob) => void;
  onError?: (job: UnfinishedJob, err: unknown) => void;
  /** Stops between pages. */
  signal?: AbortSignal;
}

export interface RestartRecoveryResult {
  /** Jobs handed to the dispatcher. */
  queued: number;
  /** Jobs `onJob` kept out of the queue. */
  skipped: number;
  corrupt: number;
  pages: number;
}

/** Orphans may have prompts running now: they go first; queued jobs keep their own priority. */
export function defaultRecoveryPriority(job: UnfinishedJob): number {
  return job.status === 'queued' ? job.priority : Number.MAX_SAFE_INTEGER;
}

/** Re-queues every unfinished job, page by page. */
export async function recoverUnfinishedJobs(opts: RestartRecoveryOptions): Promise<RestartRecoveryResult> {
  const limit = opts.pageSize ?? 1000;
  const parallel = Math.max(1, opts.parallel ?? 16);
  const priorityOf = opts.priorityOf ?? defaultRecoveryPriority;
  const result: RestartRecoveryResult = { queued: 0, skipped: 0, corrupt: 0, pages: 0 };
  let next: Promise<UnfinishedPage> | null = opts.store.listUnfinished({ cursor: null, limit });
  while (next) {
    const page: UnfinishedPage = await next;
    result.pages++;
    // Read ahead: the store works on the next page while this one is reconciled and queued.
    next = page.nextCursor && !opts.signal?.aborted ? opts.store.listUnfinished({ cursor: page.nextCursor, limit }) : null;
    for (const c of page.corrupt) opts.onCorrupt?.(c);
    result.corrupt += page.corrupt.length;
    const keep = opts.onJob ? await mapBounded(page.jobs, parallel, (job) => runStep(opts, job)) : page.jobs.map(() => true);
    const batch = page.jobs.filter((_, i) => keep[i]).map((job) => ({ id: job.id, priority: priorityOf(job) }));
    result.skipped += page.jobs.length - batch.length;
    await opts.dispatcher.enqueueMany(batch);
    result.queued += batch.length;
  }
  return result;
}

async function runStep(opts: RestartRecoveryOptions, job: UnfinishedJob): Promise<boolean> {
  try {
    return (await opts.onJob?.(job)) !== false;
  } catch (err) {
    opts.onError?.(job, err);
    return true;
  }
}

/** `fn` over `items` with at most `parallel` calls in flight; results in input order. */
async function mapBounded<T, R>(items: readonly T[], parallel: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let nextIndex = 0;
  const worker = async (): Promise<void> => {
    while (nextIndex < items.length) {
      const i = nextIndex++;
      out[i] = await fn(items[i] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.min(parallel, items.length) }, worker));
  return out;
}
