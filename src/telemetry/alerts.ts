/**
 * Alerts that reach people. An alert manager follows the guard's event stream and raises an alert
 * for an error spike (errors in a window against a baseline), every fatal code (and GPU faults), a
 * breaker opening, a server going unhealthy, a degradation level change and the pool having no
 * healthy server; each clears with one "resolved" message. Alerts are de-duplicated by key (a
 * firing condition is announced once), rate-limited (a global budget per minute; what is dropped
 * is counted and said in the next alert), logged as one readable line, and sent to every sink
 * (a signed generic webhook, a Slack-compatible incoming webhook, or anything implementing
 * `AlertSink`).
 */
import type { GuardEvent } from '../jobs/events.js';
import type { Logger } from '../jobs/options.js';
import { systemClock, type Clock, type TimerHandle } from '../util/clock.js';
import { createOutboundFetch, type OutboundPolicy } from '../util/outbound.js';
import { categoryOf, isCriticalCode } from '../errors/severity.js';
import { EVENT_HEADER, SIGNATURE_HEADER, signWebhookBody } from './webhook.js';

export const ALERT_KINDS = ['error_spike', 'fatal_error', 'breaker_open', 'server_unhealthy', 'degradation', 'no_healthy_server'] as const;
export type AlertKind = (typeof ALERT_KINDS)[number];

/** One alert message: a condition firing, or the same condition resolved. */
export interface Alert {
  /** The condition's identity: a firing key is announced once until it resolves. */
  key: string;
  kind: AlertKind;
  status: 'firing' | 'resolved';
  severity: 'warning' | 'critical';
  /** One line a person can act on. */
  title: string;
  fields: Record<string, string | number>;
  at: number;
  /** Alerts dropped by the rate limit since the last one sent. */
  suppressed: number;
}

/** Where alerts go. `send` may throw or reject: the manager logs it and carries on. */
export interface AlertSink {
  readonly name: string;
  send(alert: Alert): Promise<void>;
}

/** Posts a body to a URL; resolves with the status. Alerts use the same outbound gate as job webhooks. */
export type AlertPost = (url: string, body: string, headers: Record<string, string>) => Promise<{ status: number }>;

/**
 * A POST through the outbound gate of job webhooks: private, loopback and link-local targets are
 * refused unless `policy` allows them, redirects are never followed. `close()` releases the pool.
 */
export function guardedAlertPost(policy: OutboundPolicy = {}, timeoutMs = 10_000): AlertPost & { close(): Promise<void> } {
  const send = createOutboundFetch(policy);
  const post: AlertPost = async (url, body, headers) => {
    const res = await send(url, { method: 'POST', headers, body, signal: AbortSignal.timeout(timeoutMs) });
    await res.arrayBuffer().catch(() => undefined);
    return { status: res.status };
  };
  return Object.assign(post, { close: () => send.close() });
}

/** A POST that follows no redirect and gives up after `timeoutMs` (no address checks: tests, trusted proxies). */
export function plainAlertPost(timeoutMs = 10_000): AlertPost {
  return async (url, body, headers) => {
    const res = await fetch(url, { method: 'POST', body, headers, redirect: 'manual', signal: AbortSignal.timeout(timeoutMs) });
    await res.arrayBuffer().catch(() => undefined);
    return { status: res.status };
  };
}

async function postOk(post: AlertPost, sink: string, url: string, body: string, headers: Record<string, string>): Promise<void> {
  const { status } = await post(url, body, headers);
  if (status < 200 || status >= 300) throw new Error(`${sink} alert sink: the receiver answered HTTP ${status}`);
}

/**
 * A generic JSON webhook: `{"type":"alert", ...alert}` with `X-Comfyguard-Event: alert.firing|alert.resolved`
 * and, with a secret, `X-Comfyguard-Signature: sha256=<hmac>` (as job webhooks).
 */
export function createWebhookAlertSink(opts: { url: string; secret?: string; post: AlertPost; name?: string }): AlertSink {
  const name = opts.name ?? 'webhook';
  return {
    name,
    async send(alert) {
      const body = JSON.stringify({ type: 'alert', ...alert, at: new Date(alert.at).toISOString() });
      const headers: Record<string, string> = { 'content-type': 'application/json', [EVENT_HEADER]: `alert.${alert.status}` };
      if (opts.secret) headers[SIGNATURE_HEADER] = signWebhookBody(opts.secret, body);
      await postOk(opts.post, name, opts.url, body, headers);
    },
  };
}

/** Slack's incoming-webhook payload for an alert: a text line plus a coloured attachment with the fields. */
export function slackPayload(alert: Alert): { text: string; attachments: Array<Record<string, unknown>> } {
  const icon = alert.status === 'resolved' ? ':white_check_mark:' : alert.severity === 'critical' ? ':red_circle:' : ':warning:';
  const tag = alert.status === 'resolved' ? 'RESOLVED' : 'FIRING';
  const fields = Object.entries(alert.fields).map(([title, value]) => ({ title, value: String(value), short: String(value).length <= 30 }));
  if (alert.suppressed > 0) fields.push({ title: 'suppressed by rate limit', value: String(alert.suppressed), short: true });
  return {
    text: `${icon} [${tag}] ${alert.title}`,
    attachments: [
      {
        color: alert.status === 'resolved' ? 'good' : alert.severity === 'critical' ? 'danger' : 'warning',
        fallback: `[${tag}] ${alert.title}`,
        fields,
        footer: `comfyguard · ${alert.kind} · ${alert.key}`,
        ts: Math.floor(alert.at / 1000),
      },
    ],
  };
}

/** A Slack-compatible incoming webhook (Slack, Mattermost, Rocket.Chat and others accept this payload). */
export function createSlackAlertSink(opts: { url: string; post: AlertPost; name?: string }): AlertSink {
  const name = opts.name ?? 'slack';
  return {
    name,
    async send(alert) {
      await postOk(opts.post, name, opts.url, JSON.stringify(slackPayload(alert)), { 'content-type': 'application/json' });
    },
  };
}

/** The readable log line of an alert. */
export function alertLine(a: Alert): string {
  const fields = Object.entries(a.fields)
    .map(([k, v]) => `${k}=${String(v)}`)
    .join(' ');
  return `ALERT ${a.status === 'resolved' ? 'RESOLVED' : 'FIRING'} [${a.severity}] ${a.title}${fields ? ` (${fields})` : ''}${a.suppressed ? ` [+${a.suppressed} suppressed]` : ''}`;
}

export interface AlertManagerOptions {
  sinks: AlertSink[];
  logger?: Logger;
  clock?: Clock;
  /**
   * Error spike: more than `threshold` errors in `windowMs` and more than `factor`× the baseline (the
   * rate over the `baselineMs` before the window); resolved once that no longer holds.
   */
  spike?: { windowMs?: number; threshold?: number; baselineMs?: number; factor?: number };
  /** At most this many alerts sent per minute (resolved ones included); the rest are counted. @default 20 */
  maxPerMinute?: number;
  /** How often time-based conditions (the spike clearing) are checked. @default 5_000 */
  checkIntervalMs?: number;
  /** Server names known at start (all assumed healthy), so "no healthy server" knows the pool. */
  servers?: string[];
}

export interface AlertManager {
  /** Feed one event (done for you when built with a source). */
  observe(e: GuardEvent): void;
  /** Re-evaluates time-based conditions now (also run on a timer). */
  tick(): void;
  /** Conditions firing now, by key. */
  active(): Alert[];
  /** Resolves when every alert handed to sinks so far was delivered or failed. */
  onIdle(): Promise<void>;
  /** Stops the timer and unsubscribes; waits for deliveries. Idempotent. */
  close(): Promise<void>;
}

/**
 * Follows `source` (a guard) and raises alerts to `sinks`.
 *
 * @example
 * const alerts = createAlertManager(guard, { sinks: [createSlackAlertSink({ url, post: plainAlertPost() })], logger });
 * // on shutdown
 * await alerts.close();
 */
export function createAlertManager(source: { onEvent(l: (e: GuardEvent) => void): () => void } | null, opts: AlertManagerOptions): AlertManager {
  const clock = opts.clock ?? systemClock;
  const windowMs = opts.spike?.windowMs ?? 60_000;
  const threshold = opts.spike?.threshold ?? 20;
  const baselineMs = Math.max(opts.spike?.baselineMs ?? 3_600_000, windowMs);
  const factor = opts.spike?.factor ?? 3;
  const maxPerMinute = opts.maxPerMinute ?? 20;
  const checkMs = opts.checkIntervalMs ?? 5_000;
  const firing = new Map<string, Alert>();
  const health = new Map<string, boolean>((opts.servers ?? []).map((s) => [s, true]));
  const errors: number[] = [];
  const sentAt: number[] = [];
  let suppressed = 0;
  const pending = new Set<Promise<void>>();
  let timer: TimerHandle | null = null;
  let closed = false;

  const deliver = (alert: Alert) => {
    const now = clock.now();
    while (sentAt.length > 0 && sentAt[0]! <= now - 60_000) sentAt.shift();
    if (sentAt.length >= maxPerMinute) {
      suppressed++;
      opts.logger?.warn({ alert: alert.kind, key: alert.key, status: alert.status }, `alert suppressed by the rate limit: ${alert.title}`);
      return;
    }
    sentAt.push(now);
    const out = { ...alert, suppressed };
    suppressed = 0;
    const log = opts.logger ? (out.severity === 'critical' && out.status === 'firing' ? opts.logger.error : opts.logger.warn) : null;
    log?.call(opts.logger, { alert: out.kind, key: out.key, status: out.status, ...out.fields }, alertLine(out));
    for (const sink of opts.sinks) {
      const p: Promise<void> = sink
        .send(out)
        .catch((err: unknown) => opts.logger?.warn({ err, sink: sink.name, key: out.key }, `alert not delivered to ${sink.name}: ${err instanceof Error ? err.message : String(err)}`))
        .finally(() => pending.delete(p));
      pending.add(p);
    }
  };

  // The variant of each firing key: a key firing with a new variant (a new degradation level) is announced again.
  const variants = new Map<string, string>();
  /** Announces a condition once while it holds. */
  const fire = (key: string, kind: AlertKind, severity: Alert['severity'], title: string, fields: Alert['fields'], variant = '') => {
    if (firing.has(key) && variants.get(key) === variant) return;
    variants.set(key, variant);
    const alert: Alert = { key, kind, status: 'firing', severity, title, fields, at: clock.now(), suppressed: 0 };
    firing.set(key, alert);
    deliver(alert);
  };

  const resolve = (key: string, title: string, fields: Alert['fields'] = {}) => {
    const prev = firing.get(key);
    if (!prev) return;
    firing.delete(key);
    variants.delete(key);
    deliver({ ...prev, status: 'resolved', title, fields: { ...prev.fields, ...fields }, at: clock.now(), suppressed: 0 });
  };

  const spikeCheck = () => {
    const now = clock.now();
    while (errors.length > 0 && errors[0]! <= now - baselineMs - windowMs) errors.shift();
    let inWindow = 0;
    for (let i = errors.length - 1; i >= 0 && errors[i]! > now - windowMs; i--) inWindow++;
    const baselinePerWindow = ((errors.length - inWindow) / baselineMs) * windowMs;
    const seconds = Math.round(windowMs / 1000);
    if (inWindow > threshold && inWindow > factor * baselinePerWindow) {
      fire('error_spike', 'error_spike', 'warning', `Error spike: ${inWindow} errors in the last ${seconds} s`, {
        errors: inWindow,
        threshold,
        baseline: Number(baselinePerWindow.toFixed(2)),
      });
    } else {
      resolve('error_spike', `Error spike over: ${inWindow} errors in the last ${seconds} s`, { errors: inWindow });
    }
  };

  const poolCheck = () => {
    if (health.size === 0) return;
    const healthy = [...health.values()].filter(Boolean).length;
    if (healthy === 0) fire('no_healthy_server', 'no_healthy_server', 'critical', `No healthy ComfyUI server (${health.size} known)`, { servers: health.size });
    else resolve('no_healthy_server', `A ComfyUI server is healthy again (${healthy} of ${health.size})`, { healthy });
  };

  const observe = (e: GuardEvent) => {
    if (closed) return;
    if (e.type === 'attempt_settled') {
      if (e.outcome === 'completed') {
        for (const a of [...firing.values()]) {
          if (a.kind === 'fatal_error' && a.fields['server'] === e.server) resolve(a.key, `${a.fields['code']} cleared on ${e.server}: a prompt completed there`);
        }
        return;
      }
      if (!e.code || (e.outcome !== 'failed' && e.outcome !== 'lost' && e.outcome !== 'interrupted')) return;
      errors.push(e.at);
      spikeCheck();
      if (isCriticalCode(e.code)) {
        fire(`fatal:${e.code}:${e.server}`, 'fatal_error', 'critical', `${e.code} on ${e.server}`, {
          code: e.code,
          category: categoryOf(e.code),
          server: e.server,
          job: e.jobId,
          message: (e.message ?? '').slice(0, 300),
        });
      }
    } else if (e.type === 'pool') {
      const c = e.change;
      if (c.type === 'breaker') {
        if (c.to === 'open') fire(`breaker:${c.server}`, 'breaker_open', 'warning', `Circuit breaker opened on ${c.server}`, { server: c.server, failures: c.failures });
        else if (c.to === 'closed') resolve(`breaker:${c.server}`, `Circuit breaker closed on ${c.server}`);
      } else if (c.type === 'health') {
        health.set(c.server, c.healthy);
        if (!c.healthy) fire(`unhealthy:${c.server}`, 'server_unhealthy', 'warning', `${c.server} is unhealthy`, { server: c.server, error: c.error ?? 'health check failed' });
        else resolve(`unhealthy:${c.server}`, `${c.server} is healthy again`);
        poolCheck();
      } else if (c.type === 'degradation') {
        if (c.to === 'full') resolve('degradation', `Degradation over: back to full quality (from ${c.from})`, { level: c.to });
        else fire('degradation', 'degradation', 'warning', `Pool degraded to "${c.to}" (from ${c.from})`, { level: c.to, from: c.from, factor: c.factor }, c.to);
      }
    }
  };

  const tick = () => {
    if (closed) return;
    spikeCheck();
  };
  const arm = () => {
    if (closed) return;
    timer = clock.setTimeout(() => {
      tick();
      arm();
    }, checkMs);
    (timer as { unref?: () => void }).unref?.();
  };
  arm();

  const unsubscribe = source?.onEvent((e) => {
    try {
      observe(e);
    } catch (err) {
      opts.logger?.warn({ err }, 'alert manager failed on an event');
    }
  });

  let closing: Promise<void> | null = null;
  const onIdle = async () => {
    while (pending.size > 0) await Promise.all([...pending]);
  };
  return {
    observe,
    tick,
    active: () => [...firing.values()],
    onIdle,
    close() {
      closing ??= (async () => {
        closed = true;
        unsubscribe?.();
        if (timer !== null) clock.clearTimeout(timer);
        timer = null;
        await onIdle();
      })();
      return closing;
    },
  };
}
