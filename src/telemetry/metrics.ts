/**
 * Prometheus metrics for a guard (prom-client). Counters (errors by code, category and server;
 * GPU-seconds failed, succeeded and saved, see goodput.ts) and
 * the histograms (job duration, time to failure, time to recovery, queue wait) are fed from the
 * guard's job events; gauges (jobs by status, server health, breakers, queues, degradation) are
 * refreshed from `guard.stats()` / `guard.servers()` when the registry is scraped, so an idle
 * process does no work for metrics.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { DegradationLevel, Guard, JobEvent, ServerHealthView } from '../jobs/guard-api.js';
import type { GuardEvent } from '../jobs/events.js';
import { categoryOf } from '../errors/severity.js';
import { GoodputAccumulator } from './goodput.js';
import { isTerminal, JOB_STATUSES, type JobRecord } from '../jobs/types.js';

/** What metrics need of a guard: events and the cheap read-only views. */
export type MetricsSource = Pick<Guard, 'onEvent' | 'stats' | 'servers' | 'degradation'>;

export interface MetricsOptions {
  /** Registry to register into. @default a new Registry owned (and cleared on close) by the metrics */
  registry?: Registry;
  /** Also collect Node.js process metrics (`comfyguard_process_*`, `comfyguard_nodejs_*`). @default false */
  collectDefault?: boolean;
  /** Histogram buckets for job duration, in seconds. @default 1 s to 1 h */
  durationBuckets?: number[];
}

export interface GuardMetrics {
  readonly registry: Registry;
  /** Unsubscribes from the guard and removes the metrics (clears the registry if it was ours). Idempotent. */
  close(): void;
}

/** Degradation levels in order, so the gauge value grows as quality drops. */
export const DEGRADATION_LEVELS: readonly DegradationLevel[] = ['full', 'high', 'medium', 'low', 'minimal'];
const BREAKER_STATES = ['closed', 'open', 'half_open', 'isolated'] as const;
const DEFAULT_BUCKETS = [1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800, 3600];
/** Per-job bookkeeping kept for this many jobs; older entries are dropped (a late manual retry may then recount). */
const MAX_TRACKED_JOBS = 10_000;

interface JobSeen {
  attempts: number;
  /** Attempt numbers whose failure was counted. */
  failedAttempts: Set<number>;
  /** Recovery-history indexes whose outcome was counted. */
  resolvedSteps: Set<number>;
  /** Recovery events seen (retries attempted) since the last terminal state. */
  retries: number;
  /** Recovery steps already counted as started (a repeated event is counted once). */
  startedSteps: Set<string>;
  lastTerminalAt: number | null;
  createdAt: number | null;
  /** End of the first failed attempt since the last terminal state (time to recovery starts there). */
  firstErrorAt: number | null;
  queueWaitSeen: boolean;
}

/**
 * Registers comfyguard's metrics for `guard` and subscribes to its events.
 *
 * @example
 * const metrics = createMetrics(guard, { collectDefault: true });
 * app.get('/metrics', async () => metrics.registry.metrics());
 * // on shutdown
 * metrics.close();
 */
export function createMetrics(guard: MetricsSource, opts: MetricsOptions = {}): GuardMetrics {
  const ownsRegistry = opts.registry === undefined;
  const registry = opts.registry ?? new Registry();
  const registers = [registry];
  // Names we registered, so a shared registry can be handed back without them.
  const names: string[] = [];
  const track = <T>(name: string, make: (name: string) => T): T => {
    names.push(name);
    return make(name);
  };

  track('comfyguard_jobs', (name) =>
    new Gauge({
      name,
      help: 'Jobs in the store by status (refreshed on scrape).',
      labelNames: ['status'],
      registers,
      async collect() {
        const stats = await guard.stats().catch(() => null);
        if (!stats) return;
        for (const s of JOB_STATUSES) this.set({ status: s }, stats.byStatus[s] ?? 0);
      },
    }),
  );
  const attempts = track('comfyguard_attempts_total', (name) =>
    new Counter({ name, help: 'Attempts started (submissions of a workflow to a server).', registers }),
  );
  const errors = track('comfyguard_errors_total', (name) =>
    new Counter({
      name,
      help: 'Failed attempts and terminal job errors, by error code, its category and the server ("" when no server was involved).',
      labelNames: ['code', 'category', 'server'],
      registers,
    }),
  );
  const recoveries = track('comfyguard_recoveries_total', (name) =>
    new Counter({ name, help: 'Recovery steps by strategy and outcome (started, succeeded, failed).', labelNames: ['strategy', 'outcome'], registers }),
  );
  const retries = track('comfyguard_retries_total', (name) =>
    new Counter({
      name,
      help: 'Retries by outcome: attempted (each retry), succeeded / exhausted (retried jobs, by how they ended).',
      labelNames: ['outcome'],
      registers,
    }),
  );
  const duration = track('comfyguard_job_duration_seconds', (name) =>
    new Histogram({
      name,
      help: 'Time from submit to terminal state, by final status.',
      labelNames: ['status'],
      buckets: opts.durationBuckets ?? DEFAULT_BUCKETS,
      registers,
    }),
  );

  const timeToFailure = track('comfyguard_time_to_failure_seconds', (name) =>
    new Histogram({ name, help: 'Run time of a failed attempt, start to failure, by error code.', labelNames: ['code'], buckets: [0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600], registers }),
  );
  const timeToRecovery = track('comfyguard_time_to_recovery_seconds', (name) =>
    new Histogram({ name, help: "Time from a job's first failed attempt to its completion (recovered jobs only).", buckets: [1, 2, 5, 10, 30, 60, 120, 300, 600, 1800], registers }),
  );
  const gpuSeconds = track('comfyguard_gpu_seconds_total', (name) =>
    new Counter({
      name,
      help: 'Server seconds of settled attempts by outcome: failed (by error code), succeeded, and saved by resume and cache reuse (estimated); code is "" unless failed.',
      labelNames: ['outcome', 'server', 'code'],
      registers,
    }),
  );
  const goodput = new GoodputAccumulator({ perJob: false });
  const queueWait = track('comfyguard_queue_wait_seconds', (name) =>
    new Histogram({ name, help: 'Time from submit to the first attempt being sent.', buckets: [0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900], registers }),
  );

  // One servers() call per scrape feeds every per-server gauge. prom-client invokes every collect()
  // synchronously in one loop, so a promise shared until the next microtask covers exactly one scrape.
  let serversScrape: Promise<ServerHealthView[] | null> | null = null;
  const serverViews = (): Promise<ServerHealthView[] | null> => {
    if (!serversScrape) {
      serversScrape = guard.servers().catch(() => null);
      queueMicrotask(() => (serversScrape = null));
    }
    return serversScrape;
  };

  track('comfyguard_server_healthy', (name) =>
    new Gauge({
      name,
      help: '1 when the last health check of the server passed, else 0.',
      labelNames: ['server'],
      registers,
      async collect() {
        const views = await serverViews();
        if (!views) return;
        this.reset();
        for (const v of views) this.set({ server: v.name }, v.healthy ? 1 : 0);
      },
    }),
  );
  // Fed from the pool's per-probe event (see the subscription below): every check is observed once.
  const healthLatency = track('comfyguard_health_check_latency_seconds', (name) =>
    new Histogram({
      name,
      help: 'Latency of every successful health check per server.',
      labelNames: ['server'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5],
      registers,
    }),
  );
  track('comfyguard_breaker_state', (name) =>
    new Gauge({
      name,
      help: 'Circuit breaker state per server: 1 for the current state, 0 for the others.',
      labelNames: ['server', 'state'],
      registers,
      async collect() {
        const views = await serverViews();
        if (!views) return;
        this.reset();
        for (const v of views) for (const st of BREAKER_STATES) this.set({ server: v.name, state: st }, v.breaker === st ? 1 : 0);
      },
    }),
  );
  track('comfyguard_server_queue_depth', (name) =>
    new Gauge({
      name,
      help: "Prompts in the server's own queue (queue_remaining at the last health check).",
      labelNames: ['server'],
      registers,
      async collect() {
        const views = await serverViews();
        if (!views) return;
        this.reset();
        for (const v of views) if (v.queueRemaining !== null) this.set({ server: v.name }, v.queueRemaining);
      },
    }),
  );
  track('comfyguard_degradation_level', (name) =>
    new Gauge({
      name,
      help: 'Pool degradation level: 0 full, 1 high, 2 medium, 3 low, 4 minimal.',
      registers,
      collect() {
        this.set(Math.max(0, DEGRADATION_LEVELS.indexOf(guard.degradation())));
      },
    }),
  );

  const seen = new Map<string, JobSeen>();
  const seenOf = (id: string): JobSeen => {
    let s = seen.get(id);
    if (!s) {
      s = { attempts: 0, failedAttempts: new Set(), resolvedSteps: new Set(), retries: 0, startedSteps: new Set(), lastTerminalAt: null, createdAt: null, firstErrorAt: null, queueWaitSeen: false };
      seen.set(id, s);
      if (seen.size > MAX_TRACKED_JOBS) {
        const oldest = seen.keys().next().value;
        if (oldest !== undefined) seen.delete(oldest);
      }
    }
    return s;
  };

  const onState = (job: JobRecord): void => {
    const s = seenOf(job.id);
    if (job.attempts.length > s.attempts) {
      attempts.inc(job.attempts.length - s.attempts);
      s.attempts = job.attempts.length;
    }
    if (s.createdAt === null) s.createdAt = job.createdAt;
    for (const a of job.attempts) {
      if (a.code && !s.failedAttempts.has(a.number)) {
        s.failedAttempts.add(a.number);
        errors.inc({ code: a.code, category: categoryOf(a.code), server: a.server });
        s.firstErrorAt ??= a.endedAt ?? job.updatedAt;
      }
    }
    job.recoveryHistory.forEach((step, i) => {
      if (step.success !== null && !s.resolvedSteps.has(i)) {
        s.resolvedSteps.add(i);
        recoveries.inc({ strategy: step.strategy, outcome: step.success ? 'succeeded' : 'failed' });
      }
    });
    if (!isTerminal(job.status) || s.lastTerminalAt === job.endedAt) return;
    s.lastTerminalAt = job.endedAt;
    // A terminal error not carried by the last attempt (job timeout, rejected before submit) is counted once here.
    const last = job.attempts.at(-1);
    if (job.error && (job.status === 'failed' || job.status === 'timed_out') && last?.code !== job.error.code) {
      errors.inc({ code: job.error.code, category: categoryOf(job.error.code), server: '' });
    }
    if (job.status === 'completed' && s.firstErrorAt !== null) timeToRecovery.observe(Math.max(0, (job.endedAt ?? job.updatedAt) - s.firstErrorAt) / 1000);
    s.firstErrorAt = null;
    if (s.retries > 0 && job.status !== 'cancelled') {
      retries.inc({ outcome: job.status === 'completed' ? 'succeeded' : 'exhausted' });
    }
    s.retries = 0;
    const end = job.endedAt ?? job.updatedAt;
    duration.observe({ status: job.status }, Math.max(0, end - job.createdAt) / 1000);
  };

  const onEvent = (e: JobEvent): void => {
    const spent = goodput.observe(e);
    if (spent) {
      gpuSeconds.inc({ outcome: spent.outcome, server: spent.server, code: spent.code ?? '' }, spent.seconds);
      if (spent.savedSeconds > 0) gpuSeconds.inc({ outcome: 'saved', server: spent.server, code: '' }, spent.savedSeconds);
    }
    if (e.type === 'state') onState(e.job);
    else if (e.type === 'attempt_settled') {
      if (e.code && (e.outcome === 'failed' || e.outcome === 'lost' || e.outcome === 'interrupted')) timeToFailure.observe({ code: e.code }, Math.max(0, e.durationMs) / 1000);
    } else if (e.type === 'attempt_started') {
      const s = seenOf(e.jobId);
      if (!e.reattached && !s.queueWaitSeen && s.createdAt !== null) {
        s.queueWaitSeen = true;
        queueWait.observe(Math.max(0, e.at - s.createdAt) / 1000);
      }
    }
    else if (e.type === 'recovery') {
      const s = seenOf(e.jobId);
      const key = `${e.step.attempt}:${e.step.strategy}:${e.step.startedAt}`;
      if (s.startedSteps.has(key)) return;
      s.startedSteps.add(key);
      s.retries += 1;
      retries.inc({ outcome: 'attempted' });
      recoveries.inc({ strategy: e.step.strategy, outcome: 'started' });
    }
  };
  const unsubscribe = guard.onEvent((e: GuardEvent) => {
    try {
      if (e.type !== 'pool') onEvent(e);
      else if (e.change.type === 'health_check' && e.change.latencyMs !== null) healthLatency.observe({ server: e.change.server }, e.change.latencyMs / 1000);
    } catch {
      // Metrics must never break the guard's event delivery.
    }
  });

  if (opts.collectDefault) collectDefaultMetrics({ register: registry, prefix: 'comfyguard_' });

  let closed = false;
  return {
    registry,
    close() {
      if (closed) return;
      closed = true;
      unsubscribe();
      seen.clear();
      if (ownsRegistry) registry.clear();
      else for (const n of names) registry.removeSingleMetric(n);
    },
  };
}
