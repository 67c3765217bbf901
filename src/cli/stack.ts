/**
 * The service stack that `serve` and `demo` run: a guard, its telemetry (metrics, analytics sinks,
 * error-spike alert, webhooks) and the HTTP service, closed in the right order (stop taking
 * requests, drain the guard, flush webhooks and sinks).
 */
import { hostname } from 'node:os';
import type { Logger as PinoLogger } from 'pino';
import { createGuard } from '../jobs/guard.js';
import type { AnalyticsSink, Guard } from '../jobs/guard-api.js';
import type { GuardOptions } from '../jobs/options.js';
import { startService, type RunningService } from '../server/index.js';
import { createErrorSpikeAlert, createJsonLinesSink, createLoggerSink, type ClosableSink, type ErrorSpikeAlert } from '../telemetry/analytics.js';
import { createMetrics, type GuardMetrics } from '../telemetry/metrics.js';
import { attachWebhooks, createWebhookNotifier } from '../telemetry/webhook.js';

export interface StackOptions {
  guard: Omit<GuardOptions, 'analytics' | 'logger'>;
  host: string;
  port: number;
  apiKey?: string;
  /** Serve /metrics. */
  metrics: boolean;
  webhookSecret?: string;
  analyticsFile?: string;
  errorSpike: { threshold: number; windowMs: number };
  logger: PinoLogger;
  /** Also log analytics events (one line per job transition). @default true */
  logAnalytics?: boolean;
  /** When the port is taken, listen on a free one instead of failing. @default false */
  fallbackPort?: boolean;
}

export interface RunningStack {
  guard: Guard;
  service: RunningService;
  url: string;
  /** Graceful shutdown: service, guard (drains), webhooks, sinks. Idempotent. */
  close(): Promise<void>;
}

/** Starts the guard, telemetry and HTTP service; on failure closes what was started. */
export async function startStack(o: StackOptions): Promise<RunningStack> {
  // Filled as things start; closed in this order: stop taking requests, drain the guard (late
  // terminal events still reach webhooks and metrics), flush webhooks, then the sinks.
  let service: RunningService | null = null;
  let guard: Guard | null = null;
  let detach: (() => void) | null = null;
  let metrics: GuardMetrics | null = null;
  let jsonl: ClosableSink | null = null;
  const spike: ErrorSpikeAlert = createErrorSpikeAlert({
    ...o.errorSpike,
    onAlert: (s) => o.logger.error({ alert: 'error_spike', ...s }, `error spike: ${s.count} errors in ${Math.round(s.windowMs / 1000)} s (threshold ${s.threshold})`),
    onRecover: (r) => o.logger.warn({ alert: 'error_spike_recovered', ...r }, 'error spike over'),
  });
  const notifier = createWebhookNotifier({ ...(o.webhookSecret ? { secret: o.webhookSecret } : {}), logger: o.logger.child({ component: 'webhook' }) });

  const shutdown = async () => {
    const steps: Array<[string, () => unknown]> = [
      ['service', () => service?.close()],
      ['guard', () => guard?.close()],
      ['webhooks', async () => {
        detach?.();
        await notifier.onIdle();
        await notifier.close();
      }],
      ['metrics', () => metrics?.close()],
      ['alerts', () => spike.close()],
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
    const sinks: AnalyticsSink[] = [spike.sink];
    if (o.logAnalytics !== false) sinks.push(createLoggerSink(o.logger.child({ component: 'analytics' })));
    if (o.analyticsFile) {
      jsonl = await createJsonLinesSink(o.analyticsFile, { onError: (err) => o.logger.error({ err, file: o.analyticsFile }, 'analytics file write failed') });
      sinks.push(jsonl.sink);
    }
    // host:port names this instance in the store, so a restarted serve keeps its ComfyUI clientId.
    const instanceId = o.guard.instanceId ?? (o.port > 0 ? `${hostname()}:${o.port}` : undefined);
    const g = await createGuard({ ...o.guard, ...(instanceId ? { instanceId } : {}), analytics: sinks, logger: o.logger.child({ component: 'guard' }) });
    guard = g;
    detach = attachWebhooks(g, notifier);
    if (o.metrics) metrics = createMetrics(g, { collectDefault: true });

    const serviceOptions = { guard: g, host: o.host, ...(o.apiKey ? { apiKey: o.apiKey } : {}), ...(metrics ? { metrics } : {}) };
    try {
      service = await startService({ ...serviceOptions, port: o.port });
    } catch (err) {
      if (!o.fallbackPort || (err as { code?: unknown }).code !== 'EADDRINUSE') throw err;
      o.logger.warn({ port: o.port }, `port ${o.port} is taken; using a free port instead`);
      service = await startService({ ...serviceOptions, port: 0 });
    }
    let closing: Promise<void> | null = null;
    return { guard: g, service, url: service.url, close: () => (closing ??= shutdown()) };
  } catch (err) {
    await shutdown();
    throw err;
  }
}
