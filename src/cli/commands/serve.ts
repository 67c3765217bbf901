/**
 * `comfyguard serve`: the HTTP service over a guard, with metrics, webhooks and analytics, until
 * SIGINT/SIGTERM; then a graceful drain. A second signal exits at once.
 */
import type { Command } from 'commander';
import { BullMqDispatcher } from '../../queue/bullmq.js';
import { addConfigOptions, requireServers, resolveConfig, SETTINGS, type CliConfig, type SettingKey } from '../config.js';
import { createCliLogger } from '../logger.js';
import { ERROR_CODES } from '../../errors/codes.js';
import { abortEverything } from '../config-file.js';
import { redactStore, startStack, type AlertSinkConfig, type RunningStack, type StackAlertOptions } from '../stack.js';
import { describeTally, SessionTally } from '../tally.js';
import { withUsage } from '../usage.js';
import { redactUrl } from '../../util/outbound.js';

const KEYS: readonly SettingKey[] = SETTINGS.map((s) => s.key);

/** The guard options a resolved configuration stands for. */
export function guardOptionsOf(cfg: Readonly<CliConfig>) {
  const p = cfg.policy;
  // ERROR_RECOVERY_ENABLED=false: every code aborts (classified and reported, never changed or retried).
  const recovery = cfg.errorRecovery ? p.recovery : abortEverything(ERROR_CODES);
  const servers = p.servers ?? requireServers(cfg);
  return {
    // --output-delete is the route of every server that does not name its own in the config file.
    servers: cfg.outputDelete === undefined ? servers : servers.map((s) => (typeof s === 'string' ? { url: s, outputDelete: cfg.outputDelete } : { outputDelete: cfg.outputDelete, ...s })),
    store: cfg.store,
    maxRetries: cfg.maxRetries,
    oomRetries: cfg.oomRetries,
    requestTimeoutMs: cfg.requestTimeoutMs,
    generationTimeoutMs: cfg.generationTimeoutMs,
    jobTimeoutMs: cfg.jobTimeoutMs,
    stallTimeoutMs: cfg.stallTimeoutMs,
    healthTtlMs: cfg.healthTtlMs,
    healthTimeoutMs: cfg.healthTimeoutMs,
    maxRecoveryAgeMs: cfg.maxRecoveryAgeMs,
    cleanupAfterHours: cfg.cleanupAfterHours,
    cleanupIntervalMs: cfg.cleanupIntervalMs,
    cleanupOutputs: cfg.cleanupOutputs,
    ...(recovery ? { recovery } : {}),
    ...(p.classifierRules !== undefined ? { classifierRules: p.classifierRules } : {}),
    ...(p.retry ? { retry: p.retry } : {}),
    ...(p.breaker ? { breaker: p.breaker } : {}),
    ...(cfg.concurrency !== undefined ? { concurrency: cfg.concurrency } : {}),
    ...(cfg.webhookSecret ? { webhookSecret: cfg.webhookSecret } : {}),
    ...(cfg.queue !== 'memory'
      ? { dispatcher: bullmqFromUrl(cfg.queue, cfg.concurrency ?? 4 * requireServers(cfg).length, { lockDurationMs: cfg.queueLockMs, stalledIntervalMs: cfg.queueStalledCheckMs }) }
      : {}),
  };
}

/** Alert sinks from the config file's `alerts` section plus the two alert URL settings. */
export function alertOptionsOf(cfg: Readonly<CliConfig>): StackAlertOptions {
  const a = cfg.policy.alerts ?? {};
  const sinks: AlertSinkConfig[] = [...(a.sinks ?? [])];
  if (cfg.alertSlackUrl) sinks.push({ type: 'slack', url: cfg.alertSlackUrl });
  if (cfg.alertWebhookUrl) sinks.push({ type: 'webhook', url: cfg.alertWebhookUrl, ...(cfg.webhookSecret ? { secret: cfg.webhookSecret } : {}) });
  return {
    sinks,
    ...(a.spikeBaselineMs ? { spikeBaselineMs: a.spikeBaselineMs } : {}),
    ...(a.spikeFactor ? { spikeFactor: a.spikeFactor } : {}),
    ...(a.maxPerMinute ? { maxPerMinute: a.maxPerMinute } : {}),
  };
}

/** `redis://host:6379/0?queue=render&prefix=cg`: the queue name and key prefix ride on the URL. */
export function bullmqFromUrl(url: string, concurrency: number | undefined, timing: { lockDurationMs?: number; stalledIntervalMs?: number } = {}): BullMqDispatcher {
  const u = new URL(url);
  const queueName = u.searchParams.get('queue') ?? undefined;
  const prefix = u.searchParams.get('prefix') ?? undefined;
  u.searchParams.delete('queue');
  u.searchParams.delete('prefix');
  return new BullMqDispatcher({
    connection: u.toString(),
    ...(queueName ? { queueName } : {}),
    ...(prefix ? { prefix } : {}),
    ...(concurrency !== undefined ? { concurrency } : {}),
    ...timing,
  });
}

/** Resolves on SIGINT/SIGTERM; a second signal exits at once with 130. */
export function untilSignal(logger: { warn(o: object, m: string): void }): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    let received = false;
    const on = (sig: NodeJS.Signals) => {
      if (received) {
        logger.warn({ signal: sig }, 'second signal: exiting without waiting');
        process.exit(130);
      }
      received = true;
      resolve(sig);
    };
    process.on('SIGINT', on);
    process.on('SIGTERM', on);
  });
}

async function serve(flags: Record<string, unknown>): Promise<void> {
  const cfg = resolveConfig({ flags, keys: KEYS });
  const logger = createCliLogger(cfg.logLevel, 'comfyguard', cfg.logFormat);
  const guardOptions = guardOptionsOf(cfg);
  let stack: RunningStack;
  try {
    stack = await startStack({
      guard: guardOptions,
      host: cfg.host,
      port: cfg.port,
      ...(cfg.comfyPort !== undefined ? { comfyPort: cfg.comfyPort } : {}),
      ...(cfg.apiKey ? { apiKey: cfg.apiKey } : {}),
      metrics: cfg.metrics,
      ...(cfg.webhookSecret ? { webhookSecret: cfg.webhookSecret } : {}),
      webhookTargets: { allowLoopback: cfg.webhookAllow.includes('loopback'), allowPrivate: cfg.webhookAllow.includes('private') },
      allowedHosts: cfg.allowedHosts,
      allowedOrigins: cfg.allowedOrigins,
      ...(cfg.analyticsFile ? { analyticsFile: cfg.analyticsFile } : {}),
      errorSpike: { threshold: cfg.errorSpikeThreshold, windowMs: cfg.errorSpikeWindowMs },
      alerts: alertOptionsOf(cfg),
      errorAnalytics: cfg.recoveryStatistics,
      logger,
    });
  } catch (err) {
    // The guard closes a dispatcher it was given only once it started.
    await guardOptions.dispatcher?.close().catch(() => undefined);
    throw err;
  }
  const stopping = untilSignal(logger);
  const tally = new SessionTally(stack.guard);
  logger.info({ url: stack.url, servers: guardOptions.servers.map((s) => redactUrl(typeof s === 'string' ? s : s.url)), store: redactStore(cfg.store), queue: cfg.queue === 'memory' ? 'memory' : 'bullmq' }, 'comfyguard is serving');
  process.stdout.write(
    `comfyguard listening on ${stack.url}\n  dashboard  ${stack.url}/\n  API docs   ${stack.url}/docs\n  ComfyUI    ${stack.service.comfyUrl ?? `${stack.url}/comfy`}\n${cfg.metrics ? `  metrics    ${stack.url}/metrics\n` : ''}`,
  );
  // Webhooks are always signed; a generated key is shown here once, on the terminal, never in the log.
  if (stack.generatedWebhookSecret) process.stdout.write(`  webhook signing key (generated, shown once; --webhook-secret sets one): ${stack.generatedWebhookSecret}\n`);
  const sig = await stopping;
  logger.info({ signal: sig }, 'shutting down: draining jobs');
  await stack.close();
  tally.stop();
  const counts = tally.counts();
  logger.info({ ...counts }, `stopped; ${describeTally(counts)}`);
  process.stdout.write(`comfyguard stopped: ${describeTally(counts)}\n`);
}

/** Registers `serve`. */
export function register(program: Command): void {
  const cmd = program.command('serve').description('run the HTTP service (jobs API, live progress, dashboard, metrics) over one or more ComfyUI servers');
  addConfigOptions(cmd, KEYS);
  cmd.action(withUsage('serve', serve));
}
