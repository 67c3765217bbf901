/**
 * The service stack that `serve` and `demo` run: a guard, its telemetry (metrics, analytics sinks,
 * alerts, webhooks) and the HTTP service, closed in the right order (stop taking
 * requests, drain the guard, flush webhooks and sinks).
 */
import { hostname } from 'node:os';
import type { Logger as PinoLogger } from 'pino';
import { createGuard } from '../jobs/guard.js';
import type { AnalyticsSink, Guard } from '../jobs/guard-api.js';
import type { GuardOptions } from '../jobs/options.js';
import { dirname } from 'node:path';
import { assertExposureAllowed, startService, UploadStore, type RunningService } from '../server/index.js';
import type { JobStore } from '../store/contract.js';
import { DEFAULT_STORE_URL, openStore, sqlitePath, storeKind } from '../store/index.js';
import { createAlertManager, createSlackAlertSink, createWebhookAlertSink, guardedAlertPost, type AlertManager, type AlertPost, type AlertSink } from '../telemetry/alerts.js';
import { createJsonLinesSink, createLoggerSink, type ClosableSink } from '../telemetry/analytics.js';
import { createMetrics, type GuardMetrics } from '../telemetry/metrics.js';
import { attachWebhooks, createWebhookNotifier } from '../telemetry/webhook.js';
import { makeFolder, NotAFolderError } from '../util/make-folder.js';
import type { OutboundPolicy } from '../util/outbound.js';

export interface StackOptions {
  guard: Omit<GuardOptions, 'analytics' | 'logger'>;
  host: string;
  port: number;
  /** Also serve the ComfyUI API at the root of this port. */
  comfyPort?: number;
  apiKey?: string;
  /** Serve /metrics. */
  metrics: boolean;
  webhookSecret?: string;
  /** Webhook targets allowed beyond public addresses (loopback for local development). @default {} */
  webhookTargets?: OutboundPolicy;
  /** Host names and web origins the service accepts (see AppOptions). */
  allowedHosts?: string[];
  allowedOrigins?: string[];
  analyticsFile?: string;
  errorSpike: { threshold: number; windowMs: number };
  /** Error analytics in /api/stats (RECOVERY_STATISTICS_ENABLED). @default true */
  errorAnalytics?: boolean;
  /** Where alerts go besides the log, and their limits. @default log only */
  alerts?: StackAlertOptions;
  logger: PinoLogger;
  /** Also log analytics events (one line per job transition). @default true */
  logAnalytics?: boolean;
  /**
   * When the port is taken, listen on a free one instead of failing: only for a default port the
   * user did not name (the demo). A port the user named that is taken is an error. @default false
   */
  fallbackPort?: boolean;
}

/** The stack could not start for a reason the user can fix (taken port, unusable store); the message says which. */
export class StackStartError extends Error {
  readonly code = 'STACK_START_ERROR';
  constructor(message: string, opts?: { cause?: unknown }) {
    super(message, opts);
    this.name = 'StackStartError';
  }
}

/** One alert destination as configured: a Slack-compatible incoming webhook or a generic (signed) one. */
export interface AlertSinkConfig {
  type: 'slack' | 'webhook';
  url: string;
  /** HMAC key of the generic webhook's signature header. */
  secret?: string;
}

export interface StackAlertOptions {
  sinks: AlertSinkConfig[];
  /** Baseline window of the spike alert. @default 1 h */
  spikeBaselineMs?: number;
  /** A spike is more than this many times the baseline rate. @default 3 */
  spikeFactor?: number;
  /** @default 20 */
  maxPerMinute?: number;
  /** How alerts are posted. @default through the outbound gate with `webhookTargets` */
  post?: AlertPost;
}

/** Builds the sinks of `configs`, all posting with `post`. */
export function alertSinksOf(configs: readonly AlertSinkConfig[], post: AlertPost): AlertSink[] {
  return configs.map((c, i) =>
    c.type === 'slack'
      ? createSlackAlertSink({ url: c.url, post, name: `slack#${i + 1}` })
      : createWebhookAlertSink({ url: c.url, post, name: `webhook#${i + 1}`, ...(c.secret ? { secret: c.secret } : {}) }),
  );
}

export interface RunningStack {
  guard: Guard;
  service: RunningService;
  url: string;
  /** The port asked for was taken and `fallbackPort` moved to this URL's free port. */
  movedFromPort: number | null;
  /** The webhook signing key when none was configured and one was generated (show it once), else null. */
  generatedWebhookSecret: string | null;
  /** Graceful shutdown: service, guard (drains), webhooks, sinks. Idempotent. */
  close(): Promise<void>;
}

/** Starts the guard, telemetry and HTTP service; on failure closes what was started. */
export async function startStack(o: StackOptions): Promise<RunningStack> {
  // Refusals that need nothing started come first: nothing (not even ./data) is created then.
  assertExposureAllowed(o.host, o.apiKey);
  if (typeof o.guard.store === 'string') prepareSqliteFolder(o.guard.store);
  // Filled as things start; closed in this order: stop taking requests, drain the guard (late
  // terminal events still reach webhooks and metrics), flush webhooks, then the sinks.
  let service: RunningService | null = null;
  let guard: Guard | null = null;
  let ownStore: JobStore | null = null;
  let detach: (() => void) | null = null;
  let metrics: GuardMetrics | null = null;
  let jsonl: ClosableSink | null = null;
  let alerts: AlertManager | null = null;
  // Alerts go through the same outbound gate (and allowances) as job webhooks.
  const alertPost = guardedAlertPost({ ...o.webhookTargets });
  const notifier = createWebhookNotifier({
    ...(o.webhookSecret ? { secret: o.webhookSecret } : {}),
    outbound: { ...o.webhookTargets },
    logger: o.logger.child({ component: 'webhook' }),
  });

  const shutdown = async () => {
    const steps: Array<[string, () => unknown]> = [
      ['service', () => service?.close()],
      ['guard', () => guard?.close()],
      ['store', () => ownStore?.close()],
      ['webhooks', async () => {
        detach?.();
        await notifier.onIdle();
        await notifier.close();
      }],
      ['metrics', () => metrics?.close()],
      ['alerts', async () => {
        await alerts?.close();
        await alertPost.close();
      }],
      ['analytics file', () => jsonl?.close()],
    ];
    for (const [what, step] of steps) {
      try {
        await step();
      } catch (err) {
        o.logger.warn({ err }, `error while closing the ${what}`);
      }
    }
  };

  try {
    const sinks: AnalyticsSink[] = [];
    if (o.logAnalytics !== false) sinks.push(createLoggerSink(o.logger.child({ component: 'analytics' })));
    if (o.analyticsFile) {
      jsonl = await createJsonLinesSink(o.analyticsFile, { onError: (err) => o.logger.error({ err, file: o.analyticsFile }, 'analytics file write failed') });
      sinks.push(jsonl.sink);
    }
    // host:port names this instance in the store, so a restarted serve keeps its ComfyUI clientId.
    const instanceId = o.guard.instanceId ?? (o.port > 0 ? `${hostname()}:${o.port}` : undefined);
    // ComfyUI clients' uploads reach whichever server runs the job, again after a failover.
    const uploads = new UploadStore();
    // Opened here rather than by the guard so the ComfyUI endpoint keeps its client prompt ids in it too.
    let store: JobStore;
    try {
      store = typeof o.guard.store === 'object' ? o.guard.store : (ownStore = openStore(o.guard.store ?? DEFAULT_STORE_URL));
    } catch (err) {
      throw storeTrouble(err, o.guard.store);
    }
    const prepare = o.guard.prepareAttempt;
    const g = await createGuard({
      ...o.guard,
      store,
      ...(instanceId ? { instanceId } : {}),
      analytics: sinks,
      // RECOVERY_STATISTICS_ENABLED=false: no analytics in guard.stats() either, not only in the routes.
      ...(o.errorAnalytics === false ? { errorAnalytics: false } : {}),
      logger: o.logger.child({ component: 'guard' }),
      prepareAttempt: async (c) => {
        await uploads.deliver(c);
        await prepare?.(c);
      },
    }).catch((err: unknown) => {
      throw storeTrouble(err, o.guard.store);
    });
    guard = g;
    const a = o.alerts;
    alerts = createAlertManager(g, {
      sinks: alertSinksOf(a?.sinks ?? [], a?.post ?? alertPost),
      logger: o.logger.child({ component: 'alerts' }),
      // The guard's default server name is the URL's host.
      servers: o.guard.servers.map((v) => (typeof v === 'string' ? new URL(v).host : (v.name ?? new URL(v.url).host))),
      spike: { ...o.errorSpike, ...(a?.spikeBaselineMs ? { baselineMs: a.spikeBaselineMs } : {}), ...(a?.spikeFactor ? { factor: a.spikeFactor } : {}) },
      ...(a?.maxPerMinute ? { maxPerMinute: a.maxPerMinute } : {}),
    });
    detach = attachWebhooks(g, notifier);
    if (o.metrics) metrics = createMetrics(g, { collectDefault: true });

    const serviceOptions = {
      guard: g,
      host: o.host,
      ...(o.errorAnalytics === false ? { errorAnalytics: false } : {}),
      comfyUploads: uploads,
      comfyMeta: store,
      ...(o.comfyPort !== undefined ? { comfyPort: o.comfyPort } : {}),
      // The service's 5xx are logged with their request id, under the same logger as the rest.
      logger: o.logger.child({ component: 'http' }),
      ...(o.apiKey ? { apiKey: o.apiKey } : {}),
      ...(metrics ? { metrics } : {}),
      ...(o.webhookTargets ? { webhookTargets: o.webhookTargets } : {}),
      ...(o.allowedHosts ? { allowedHosts: o.allowedHosts } : {}),
      ...(o.allowedOrigins ? { allowedOrigins: o.allowedOrigins } : {}),
    };
    try {
      service = await startService({ ...serviceOptions, port: o.port });
    } catch (err) {
      // A port the user named is theirs to choose: say so rather than move somewhere else.
      if ((err as { code?: unknown }).code !== 'EADDRINUSE') throw err;
      if (o.fallbackPort) service = await startService({ ...serviceOptions, port: 0 });
      else throw new StackStartError(`port ${o.port} on ${o.host} is already in use (is comfyguard or another service running there?); choose another with --port, or --port 0 for a free one`, { cause: err });
    }
    let closing: Promise<void> | null = null;
    const moved = new URL(service.url).port !== String(o.port) && o.port !== 0 ? o.port : null;
    return {
      guard: g,
      service,
      url: service.url,
      movedFromPort: moved,
      generatedWebhookSecret: notifier.secretGenerated ? notifier.secret : null,
      close: () => (closing ??= shutdown()),
    };
  } catch (err) {
    await shutdown();
    throw err;
  }
}

/**
 * Creates the folder of a `sqlite:` store one level at a time, so an unusable path fails at once
 * naming the store (Node 20's recursive mkdir never returns for a path under /proc).
 */
export function prepareSqliteFolder(store: string): void {
  if (storeKind(store) !== 'sqlite') return;
  const path = sqlitePath(store);
  if (path === ':memory:' || path.startsWith('file:')) return;
  try {
    makeFolder(dirname(path));
  } catch (err) {
    if (err instanceof NotAFolderError) throw new StackStartError(`store ${store}: ${err.path} is not a folder`);
    const code = (err as { code?: unknown; path?: unknown }).code;
    const at = (err as { path?: unknown }).path;
    throw new StackStartError(`store ${store}: cannot create the folder ${typeof at === 'string' ? at : dirname(path)}${typeof code === 'string' ? ` (${code})` : ''}; pass --store sqlite:<a writable path>`, { cause: err });
  }
}

/** A store that cannot be opened: the message names the store (password hidden) and what it said. */
function storeTrouble(err: unknown, store: unknown): unknown {
  const code = String((err as { code?: unknown })?.code ?? '');
  if (!code.startsWith('STORE_') || typeof store !== 'string') return err;
  const why = err instanceof Error ? err.message.replace(/^init: /, '') : String(err);
  return new StackStartError(`store ${redactStore(store)}: ${why}`, { cause: err });
}

/** `postgres://user:***@host/db`: a store URL fit for a message. */
export function redactStore(url: string): string {
  return url.replace(/\/\/([^:/@]+):[^@]*@/, '//$1:***@');
}
