/**
 * A `Dispatcher` on BullMQ + Redis, so several comfyguard processes share the work. The BullMQ job
 * id is our job id (an id already waiting or running is not added twice), the job carries only
 * that id (the store holds the rest), and BullMQ never retries: the guard owns retries and
 * recovery. A worker that dies mid-job loses its lock and BullMQ's stalled check hands the job to
 * another worker; a worker that closes hands its running jobs back to the queue at once.
 */
import { Queue, QueueEvents, WaitingError, Worker, type ConnectionOptions, type Job } from 'bullmq';
import { Redis } from 'ioredis';
import type { Dispatcher, JobHandler } from './contract.js';

export interface BullMqDispatcherOptions {
  /** `redis://[:password@]host:port[/db]` or ioredis options. */
  connection: string | { host?: string; port?: number; db?: number; username?: string; password?: string; tls?: object };
  /** @default 'comfyguard-jobs' */
  queueName?: string;
  /** Redis key prefix. @default 'comfyguard' */
  prefix?: string;
  /** Jobs run at once by this process. @default 4 */
  concurrency?: number;
  /** How long a worker's lock on a running job lasts without renewal; a dead worker's jobs come back after it. @default 30_000 */
  lockDurationMs?: number;
  /** How often workers look for stalled jobs. @default 15_000 */
  stalledIntervalMs?: number;
  /** Stalls before BullMQ gives up on a job (the guard's store still has it). @default 5 */
  maxStalledCount?: number;
  /** Fail fast when Redis does not answer within this time at start. @default 5_000 */
  connectTimeoutMs?: number;
  /** Safety-net re-check of `onIdle()` waiters, besides queue events. @default 1_000 */
  idleCheckMs?: number;
}

/** Redis is unreachable or refused a dispatcher operation; names where it was looking. */
export class DispatcherUnavailableError extends Error {
  readonly code = 'DISPATCHER_UNAVAILABLE';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'DispatcherUnavailableError';
  }
}

/** BullMQ: 1 is the highest priority, 2^21 the lowest. Ours: higher first, 0 by default (the middle). */
const BULL_PRIORITY_MAX = 2 ** 21;
const BULL_PRIORITY_MIDDLE = 2 ** 20;

/** Maps a comfyguard priority (higher runs first) onto BullMQ's (lower runs first). */
export function toBullPriority(priority: number): number {
  const p = Number.isFinite(priority) ? Math.round(priority) : 0;
  return Math.min(BULL_PRIORITY_MAX, Math.max(1, BULL_PRIORITY_MIDDLE - p));
}

const WAITING_STATES = new Set(['waiting', 'prioritized', 'delayed']);
/** BullMQ never retries (the guard owns retries) and keeps nothing once a job is done. */
const ADD_OPTS = { attempts: 1, removeOnComplete: true, removeOnFail: true } as const;

interface JobData {
  jobId: string;
}

/**
 * @example
 * const dispatcher = new BullMqDispatcher({ connection: 'redis://127.0.0.1:6379', concurrency: 4 });
 * const guard = await createGuard({ servers, store: 'postgres://…', dispatcher });
 */
export class BullMqDispatcher implements Dispatcher {
  readonly kind = 'bullmq' as const;
  readonly #o: Required<Omit<BullMqDispatcherOptions, 'connection'>>;
  readonly #connection: ConnectionOptions;
  readonly #where: string;
  #queue: Queue<JobData> | null = null;
  #worker: Worker<JobData> | null = null;
  #events: QueueEvents | null = null;
  #ready: Promise<Queue<JobData>> | null = null;
  readonly #shutdown = new AbortController();
  #closing: Promise<void> | null = null;
  #idleWaiters: Array<() => void> = [];
  #idleTimer: ReturnType<typeof setTimeout> | null = null;
  #idleChecking = false;
  #flags: Redis | null = null;

  constructor(opts: BullMqDispatcherOptions) {
    const concurrency = opts.concurrency ?? 4;
    if (!Number.isInteger(concurrency) || concurrency < 1) throw new RangeError(`concurrency must be an integer >= 1, got ${String(concurrency)}`);
    this.#o = {
      queueName: opts.queueName ?? 'comfyguard-jobs',
      prefix: opts.prefix ?? 'comfyguard',
      concurrency,
      lockDurationMs: opts.lockDurationMs ?? 30_000,
      stalledIntervalMs: opts.stalledIntervalMs ?? 15_000,
      maxStalledCount: opts.maxStalledCount ?? 5,
      connectTimeoutMs: opts.connectTimeoutMs ?? 5_000,
      idleCheckMs: opts.idleCheckMs ?? 1_000,
    };
    // BullMQ's blocking worker connection requires maxRetriesPerRequest: null.
    this.#connection =
      typeof opts.connection === 'string'
        ? { url: opts.connection, maxRetriesPerRequest: null }
        : { ...opts.connection, maxRetriesPerRequest: null };
    this.#where = typeof opts.connection === 'string' ? redactUrl(opts.connection) : `${opts.connection.host ?? '127.0.0.1'}:${opts.connection.port ?? 6379}`;
  }

  /** Queue name and key prefix (for tests and operators). */
  get queueName(): string {
    return this.#o.queueName;
  }

  async start(handler: JobHandler): Promise<void> {
    const queue = await this.#ensureQueue();
    if (this.#worker) throw new Error('dispatcher already started');
    if (this.#closing) throw new Error('dispatcher is closed');
    const worker = new Worker<JobData>(queue.name, (job, token, signal) => this.#process(handler, job, token, signal), {
      connection: this.#connection,
      prefix: this.#o.prefix,
      concurrency: this.#o.concurrency,
      lockDuration: this.#o.lockDurationMs,
      stalledInterval: this.#o.stalledIntervalMs,
      maxStalledCount: this.#o.maxStalledCount,
      removeOnComplete: { count: 0 },
      removeOnFail: { count: 0 },
      autorun: false,
    });
    // Redis hiccups surface here; BullMQ reconnects by itself, and an unhandled 'error' would crash the process.
    worker.on('error', () => undefined);
    // A job enqueued again while it ran: queue it once more now that it is finished (and removed).
    const finished = (job: Job<JobData> | undefined) => {
      if (job?.id) void this.#rerunIfAsked(queue, job.id).catch(() => undefined);
    };
    worker.on('completed', finished);
    worker.on('failed', finished);
    this.#worker = worker;
    void worker.run().catch(() => undefined);
    await worker.waitUntilReady();
  }

  /**
   * Queues a job. BullMQ ignores an id it already holds, so for an id running somewhere a re-run
   * flag is left in Redis; the worker that finishes the job (whichever process) consumes it and
   * queues the job again. Whoever deletes the flag first re-adds, so it runs exactly once more.
   */
  async enqueue(jobId: string, priority: number): Promise<void> {
    if (this.#closing) throw new Error('dispatcher is closed');
    const queue = await this.#ensureQueue();
    if ((await queue.getJobState(jobId)) !== 'active') {
      await this.#add(queue, jobId, priority);
      return;
    }
    const client = this.#flagClient();
    const flag = this.#rerunKey(jobId);
    await client.set(flag, String(priority));
    if ((await queue.getJobState(jobId)) === 'active') return;
    // It finished between the two reads: its worker may or may not have seen the flag.
    if ((await client.del(flag)) === 1) await this.#add(queue, jobId, priority);
  }

  /** Queues many jobs in one round trip (addBulk); ids BullMQ already holds are left alone. */
  async enqueueMany(jobs: ReadonlyArray<{ id: string; priority: number }>): Promise<void> {
    if (this.#closing) throw new Error('dispatcher is closed');
    if (jobs.length === 0) return;
    const queue = await this.#ensureQueue();
    await queue.addBulk(jobs.map((j) => ({ name: 'job', data: { jobId: j.id }, opts: { jobId: j.id, ...ADD_OPTS, priority: toBullPriority(j.priority) } })));
  }

  async remove(jobId: string): Promise<boolean> {
    const queue = await this.#ensureQueue();
    const state = await queue.getJobState(jobId);
    if (!WAITING_STATES.has(state)) return false;
    // A worker may take it between the two calls; a locked job is not removed (0).
    return (await queue.remove(jobId)) === 1;
  }

  async counts(): Promise<{ waiting: number; active: number }> {
    const queue = await this.#ensureQueue();
    const c = await queue.getJobCounts('waiting', 'prioritized', 'delayed', 'active');
    return { waiting: (c['waiting'] ?? 0) + (c['prioritized'] ?? 0) + (c['delayed'] ?? 0), active: c['active'] ?? 0 };
  }

  /** Resolves when the shared queue has nothing waiting or running (in any process), or when closed. */
  async onIdle(): Promise<void> {
    if (this.#closing || (await this.#isIdle())) return;
    await this.#ensureEvents();
    await new Promise<void>((resolve) => {
      this.#idleWaiters.push(resolve);
      this.#armIdleCheck();
      void this.#checkIdle();
    });
  }

  close(): Promise<void> {
    this.#closing ??= (async () => {
      // Running handlers see the abort, reach a safe point, and their jobs go back to the queue.
      this.#shutdown.abort(new Error('dispatcher closing'));
      const steps: Array<() => Promise<unknown> | undefined> = [
        () => this.#worker?.close(),
        () => this.#events?.close(),
        () => this.#queue?.close(),
        () => this.#flags?.quit(),
      ];
      for (const step of steps) {
        try {
          await step();
        } catch {
          // Each resource is closed even when another failed.
        }
      }
      if (this.#idleTimer) clearTimeout(this.#idleTimer);
      this.#idleTimer = null;
      this.#releaseIdleWaiters();
    })();
    return this.#closing;
  }

  async #process(handler: JobHandler, job: Job<JobData>, token: string | undefined, signal: AbortSignal | undefined): Promise<void> {
    const jobId = job.data.jobId ?? job.id;
    const combined = signal ? AbortSignal.any([signal, this.#shutdown.signal]) : this.#shutdown.signal;
    try {
      await handler(jobId, combined);
    } catch {
      // The handler owns error reporting (the job's state is in the store); BullMQ must not retry.
    }
    if (this.#shutdown.signal.aborted && token) {
      // Closing mid-job: hand the job straight back so another process resumes it (the guard
      // reconciles from the store), instead of waiting for the lock to expire as a stall.
      await job.moveToWait(token);
      throw new WaitingError();
    }
  }

  async #add(queue: Queue<JobData>, jobId: string, priority: number): Promise<void> {
    await queue.add('job', { jobId }, { jobId, ...ADD_OPTS, priority: toBullPriority(priority) });
  }

  /** A plain Redis connection for the re-run flags (BullMQ's own clients are not exposed). */
  #flagClient(): Redis {
    if (!this.#flags) {
      const { url, ...rest } = this.#connection as Record<string, unknown>;
      const opts = { ...rest, maxRetriesPerRequest: 5, connectionName: 'comfyguard-dispatch' };
      const client = typeof url === 'string' ? new Redis(url, opts) : new Redis(opts);
      client.on('error', () => undefined);
      this.#flags = client;
    }
    return this.#flags;
  }

  #rerunKey(jobId: string): string {
    return `${this.#o.prefix}:${this.#o.queueName}:cg-rerun:${jobId}`;
  }

  async #rerunIfAsked(queue: Queue<JobData>, jobId: string): Promise<void> {
    const client = this.#flagClient();
    const flag = this.#rerunKey(jobId);
    const priority = await client.get(flag);
    if (priority === null || (await client.del(flag)) !== 1 || this.#closing) return;
    await this.#add(queue, jobId, Number(priority));
  }

  #ensureQueue(): Promise<Queue<JobData>> {
    if (this.#closing && !this.#ready) return Promise.reject(new Error('dispatcher is closed'));
    this.#ready ??= (async () => {
      await this.#ping();
      const queue = new Queue<JobData>(this.#o.queueName, { connection: this.#connection, prefix: this.#o.prefix });
      queue.on('error', () => undefined);
      this.#queue = queue;
      await queue.waitUntilReady();
      return queue;
    })();
    return this.#ready;
  }

  async #ensureEvents(): Promise<void> {
    if (this.#events) return;
    const events = new QueueEvents(this.#o.queueName, { connection: this.#connection, prefix: this.#o.prefix });
    events.on('error', () => undefined);
    const recheck = () => void this.#checkIdle();
    for (const name of ['completed', 'failed', 'removed', 'drained', 'waiting'] as const) events.on(name, recheck);
    this.#events = events;
    await events.waitUntilReady();
  }

  /** One connection attempt with a deadline, so a missing Redis is a clear error instead of a hang. */
  async #ping(): Promise<void> {
    const base = this.#connection as Record<string, unknown>;
    const { url, ...rest } = base;
    const opts = { ...rest, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: this.#o.connectTimeoutMs, enableOfflineQueue: false };
    const client = typeof url === 'string' ? new Redis(url, opts) : new Redis(opts);
    client.on('error', () => undefined);
    try {
      await client.connect();
      await client.ping();
    } catch (err) {
      throw new DispatcherUnavailableError(
        `Redis is not reachable at ${this.#where} (${err instanceof Error ? err.message : String(err)}); start it or set COMFYGUARD_QUEUE=memory`,
        { cause: err },
      );
    } finally {
      client.disconnect();
    }
  }

  async #isIdle(): Promise<boolean> {
    const c = await this.counts();
    return c.waiting === 0 && c.active === 0;
  }

  async #checkIdle(): Promise<void> {
    if (this.#idleChecking || this.#idleWaiters.length === 0) return;
    this.#idleChecking = true;
    try {
      if (this.#closing || (await this.#isIdle())) this.#releaseIdleWaiters();
    } catch {
      // Redis blipped; the next event or safety check tries again.
    } finally {
      this.#idleChecking = false;
    }
  }

  #armIdleCheck(): void {
    if (this.#idleTimer || this.#closing) return;
    // Events can be missed across a reconnect; a slow re-check bounds how long a waiter can hang.
    const tick = () => {
      this.#idleTimer = null;
      if (this.#idleWaiters.length === 0 || this.#closing) return;
      void this.#checkIdle().finally(() => this.#armIdleCheck());
    };
    this.#idleTimer = setTimeout(tick, this.#o.idleCheckMs);
    this.#idleTimer.unref();
  }

  #releaseIdleWaiters(): void {
    const waiters = this.#idleWaiters;
    this.#idleWaiters = [];
    for (const w of waiters) w();
  }
}

function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return 'the configured Redis URL';
  }
}
