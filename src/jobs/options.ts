/**
 * The guard's options: one type with documented defaults, merged and validated at construction,
 * frozen afterwards. Nothing here reads the environment or the disk.
 */
import type { ComfyApi } from '../comfy/api.js';
import type { ApiWorkflow } from '../comfy/types.js';
import type { ServerConfig } from '../pool/config.js';
import type { OutputDeleter } from '../pool/output-deleter.js';
import type { Clock } from '../util/clock.js';
import { systemClock } from '../util/clock.js';
import type { JobStore } from '../store/contract.js';
import type { Dispatcher } from '../queue/contract.js';
import type { AnalyticsSink } from './guard-api.js';
import type { RecoveryOverrides } from './types.js';

/** One ComfyUI server: URL, name, weight, tags, extra headers, in-flight cap (the pool's config). */
export type ServerOption = ServerConfig;

/** A minimal structured logger (pino is compatible). */
export interface Logger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
  debug(obj: object, msg?: string): void;
}

export interface GuardOptions {
  /** ComfyUI servers: URLs or full configs. At least one. */
  servers: Array<string | ServerOption>;
  /** A store instance or URL (`sqlite:./data/comfyguard.db`, `postgres://…`, `redis://…`, `memory:`). @default 'sqlite:./data/comfyguard.db' */
  store?: JobStore | string;
  /** A dispatcher instance. @default in-process with `concurrency` */
  dispatcher?: Dispatcher;
  /** Jobs run at once by the in-process dispatcher. @default 4 per server */
  concurrency?: number;
  /** Retries after the first attempt. @default 3 */
  maxRetries?: number;
  /** Recovery decisions for out-of-memory failures (planned with the memory model), apart from `maxRetries`. @default 2 */
  oomRetries?: number;
  /**
   * Capacity-aware routing and OOM recovery: the memory model predicts which server fits a job (first
   * attempt and failover) and plans an OOM in one step, with its own budget (`oomRetries`). `false`
   * goes back to routing by load alone and walking the OOM ladder one rung per attempt within
   * `maxRetries`, as before the memory model (for comparison; the model still learns). @default true
   */
  capacityAware?: boolean;
  /** Backoff: base 1 s, factor 2, cap 60 s, ±25 % jitter. */
  retry?: { baseMs?: number; factor?: number; capMs?: number; jitter?: number };
  breaker?: { failureThreshold?: number; halfOpenAfterMs?: number; halfOpenTrials?: number; successesToClose?: number };
  /** @default 30_000 */
  requestTimeoutMs?: number;
  /** One attempt, submit to terminal event. @default 300_000 */
  generationTimeoutMs?: number;
  /** A whole job, submit to terminal state. @default 1_800_000 */
  jobTimeoutMs?: number;
  /** No event and no queue movement for this long = stalled. @default 60_000 */
  stallTimeoutMs?: number;
  /** Poll interval while a socket is down. @default 2_000 */
  pollIntervalMs?: number;
  /** How long a server may be unreachable mid-attempt before failing over. @default 15_000 */
  unreachableGraceMs?: number;
  /** Health cache TTL. @default 30_000 */
  healthTtlMs?: number;
  /** @default 2_000 */
  healthTimeoutMs?: number;
  /** Jobs whose prompt is unknown after a restart and are older than this fail instead of resubmitting. @default 600_000 */
  maxRecoveryAgeMs?: number;
  /** Terminal jobs older than this are deleted by the cleanup timer. @default 24 */
  cleanupAfterHours?: number;
  /** 0 disables the cleanup timer. @default 3_600_000 */
  cleanupIntervalMs?: number;
  /**
   * Cleanup also deletes the output files of the jobs it deletes, where the server allows it (see
   * each server's `outputDelete`; ComfyUI itself has no delete API), and reports per file what it
   * could not delete. @default false
   */
  cleanupOutputs?: boolean;
  /** Deletes output files for `cleanupOutputs`. @default each server's `outputDelete` route over its REST client */
  outputDeleter?: OutputDeleter;
  /** Progress updates to subscribers at most this often (first and last always). @default 1_000 */
  progressThrottleMs?: number;
  /** Global recovery overrides per code. */
  recovery?: RecoveryOverrides;
  /** Extra classifier rules (see README "Errors"). */
  classifierRules?: unknown;
  analytics?: AnalyticsSink | AnalyticsSink[];
  /** Keep error analytics from the event stream for `stats().analytics` (RECOVERY_STATISTICS_ENABLED). @default true */
  errorAnalytics?: boolean;
  /** Builds the download URL of an output. @default `/api/outputs/<server>/<type>/<filename>?subfolder=` */
  outputUrl?: (server: string, file: { filename: string; subfolder: string; type: string }) => string;
  /** HMAC secret for webhook signatures. */
  webhookSecret?: string;
  clock?: Clock;
  logger?: Logger;
  /**
   * Names this comfyguard instance in the store: its ComfyUI clientId is kept under this name, so after
   * a restart ComfyUI sends a reattached prompt's events to the new process. Give each process that
   * shares a store its own (`serve` uses host:port). @default a fresh id per process (nothing kept)
   */
  instanceId?: string;
  /**
   * Called before each attempt is sent, with the server it goes to and the exact workflow: the place
   * to deliver inputs the workflow needs there (uploaded images for LoadImage, say), again after a
   * failover. A throw fails the attempt like a failed submit (classified from what was thrown).
   */
  prepareAttempt?: (ctx: PrepareAttemptContext) => Promise<void>;
}

/** What `prepareAttempt` gets. */
export interface PrepareAttemptContext {
  jobId: string;
  attempt: number;
  server: string;
  client: ComfyApi;
  workflow: ApiWorkflow;
  signal: AbortSignal;
}

export type ResolvedGuardOptions = Readonly<
  Required<
    Omit<GuardOptions, 'store' | 'dispatcher' | 'concurrency' | 'recovery' | 'classifierRules' | 'analytics' | 'webhookSecret' | 'servers' | 'retry' | 'breaker' | 'prepareAttempt' | 'instanceId' | 'outputDeleter'>
  > & {
    servers: ServerOption[];
    store: JobStore | string;
    dispatcher: Dispatcher | undefined;
    concurrency: number;
    recovery: RecoveryOverrides;
    classifierRules: unknown;
    analytics: AnalyticsSink[];
    webhookSecret: string | undefined;
    prepareAttempt: GuardOptions['prepareAttempt'];
    instanceId: string | undefined;
    outputDeleter: OutputDeleter | undefined;
    retry: NonNullable<GuardOptions['retry']>;
    breaker: NonNullable<GuardOptions['breaker']>;
  }
>;

/** Thrown for an option that makes no sense; names the option. */
export class GuardConfigError extends Error {
  readonly code = 'CONFIG_ERROR';
  constructor(message: string) {
    super(message);
    this.name = 'GuardConfigError';
  }
}

const silentLogger: Logger = { info: () => {}, warn: () => {}, error: () => {}, debug: () => {} };

function positive(name: string, v: number | undefined, dflt: number, { allowZero = false } = {}): number {
  if (v === undefined) return dflt;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || (!allowZero && v === 0)) {
    throw new GuardConfigError(`\`${name}\` must be a ${allowZero ? 'non-negative' : 'positive'} number, got ${JSON.stringify(v)}`);
  }
  return v;
}

function integerIn(name: string, v: number | undefined, dflt: number, min: number, max: number): number {
  if (v === undefined) return dflt;
  if (!Number.isInteger(v) || v < min || v > max) throw new GuardConfigError(`\`${name}\` must be an integer from ${min} to ${max}, got ${JSON.stringify(v)}`);
  return v;
}

/** Merges defaults, validates, freezes. */
export function resolveGuardOptions(o: GuardOptions): ResolvedGuardOptions {
  if (!o || !Array.isArray(o.servers) || o.servers.length === 0) {
    throw new GuardConfigError('`servers` must list at least one ComfyUI server URL');
  }
  const servers: ServerOption[] = o.servers.map((s, i) => {
    const cfg = typeof s === 'string' ? { url: s } : s;
    let url: URL;
    try {
      url = new URL(cfg.url);
    } catch {
      throw new GuardConfigError(`\`servers[${i}].url\` is not a valid URL: ${JSON.stringify(cfg.url)}`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new GuardConfigError(`\`servers[${i}].url\` must be http(s), got ${url.protocol}`);
    }
    return { ...cfg, url: cfg.url.replace(/\/+$/, ''), name: cfg.name ?? url.host };
  });
  const names = new Set<string>();
  for (const s of servers) {
    if (names.has(s.name!)) throw new GuardConfigError(`two servers are named ${JSON.stringify(s.name)}; give each a unique \`name\``);
    names.add(s.name!);
  }
  const maxRetries = o.maxRetries ?? 3;
  if (!Number.isInteger(maxRetries) || maxRetries < 0 || maxRetries > 100) {
    throw new GuardConfigError(`\`maxRetries\` must be an integer from 0 to 100, got ${JSON.stringify(o.maxRetries)}`);
  }
  const analytics = o.analytics === undefined ? [] : Array.isArray(o.analytics) ? o.analytics : [o.analytics];
  return Object.freeze({
    servers,
    store: o.store ?? 'sqlite:./data/comfyguard.db',
    dispatcher: o.dispatcher,
    concurrency: positive('concurrency', o.concurrency, 4 * servers.length),
    maxRetries,
    oomRetries: integerIn('oomRetries', o.oomRetries, 2, 0, 100),
    capacityAware: o.capacityAware ?? true,
    retry: o.retry ?? {},
    breaker: o.breaker ?? {},
    requestTimeoutMs: positive('requestTimeoutMs', o.requestTimeoutMs, 30_000),
    generationTimeoutMs: positive('generationTimeoutMs', o.generationTimeoutMs, 300_000),
    jobTimeoutMs: positive('jobTimeoutMs', o.jobTimeoutMs, 1_800_000),
    stallTimeoutMs: positive('stallTimeoutMs', o.stallTimeoutMs, 60_000),
    pollIntervalMs: positive('pollIntervalMs', o.pollIntervalMs, 2_000),
    unreachableGraceMs: positive('unreachableGraceMs', o.unreachableGraceMs, 15_000),
    healthTtlMs: positive('healthTtlMs', o.healthTtlMs, 30_000),
    healthTimeoutMs: positive('healthTimeoutMs', o.healthTimeoutMs, 2_000),
    maxRecoveryAgeMs: positive('maxRecoveryAgeMs', o.maxRecoveryAgeMs, 600_000),
    cleanupAfterHours: positive('cleanupAfterHours', o.cleanupAfterHours, 24),
    cleanupIntervalMs: positive('cleanupIntervalMs', o.cleanupIntervalMs, 3_600_000, { allowZero: true }),
    cleanupOutputs: o.cleanupOutputs ?? false,
    outputDeleter: o.outputDeleter,
    progressThrottleMs: positive('progressThrottleMs', o.progressThrottleMs, 1_000, { allowZero: true }),
    recovery: o.recovery ?? {},
    classifierRules: o.classifierRules,
    analytics,
    errorAnalytics: o.errorAnalytics ?? true,
    outputUrl:
      o.outputUrl ??
      ((server, f) =>
        `/api/outputs/${encodeURIComponent(server)}/${encodeURIComponent(f.type)}/${encodeURIComponent(f.filename)}${f.subfolder ? `?subfolder=${encodeURIComponent(f.subfolder)}` : ''}`),
    webhookSecret: o.webhookSecret,
    prepareAttempt: o.prepareAttempt,
    instanceId: o.instanceId,
    clock: o.clock ?? systemClock,
    logger: o.logger ?? silentLogger,
  });
}
