import { createHmac } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import type { GuardEvent } from '../../src/jobs/events.js';
import type { PoolEvent } from '../../src/pool/index.js';
import { alertLine, createAlertManager, createSlackAlertSink, createWebhookAlertSink, guardedAlertPost, plainAlertPost, type Alert, type AlertManager, type AlertSink } from '../../src/telemetry/alerts.js';
import { ManualClock } from '../store/fixtures.js';
import { startReceiver, type Receiver } from './receiver.js';

const T0 = 1_800_000_000_000;

function settled(outcome: 'failed' | 'completed', code: string | null, server = 'gpu-1', at = T0, message: string | null = null): GuardEvent {
  return { type: 'attempt_settled', jobId: `job-${Math.random()}`, attempt: 1, server, promptId: 'p', outcome, code, message, durationMs: 10, at };
}
function pool(change: PoolEvent): GuardEvent {
  return { type: 'pool', change, at: change.at };
}

/** A sink that keeps what it gets. */
function memorySink(): AlertSink & { got: Alert[] } {
  const got: Alert[] = [];
  return { name: 'memory', got, send: async (a) => void got.push(a) };
}

function logLines() {
  const lines: string[] = [];
  const push = (_o: object, m?: string) => void lines.push(m ?? '');
  return { lines, logger: { info: push, warn: push, error: push, debug: () => undefined } };
}

describe('alerts', () => {
  let receiver: Receiver | null = null;
  let manager: AlertManager | null = null;
  let closePost: (() => Promise<void>) | null = null;
  afterEach(async () => {
    await manager?.close();
    await closePost?.();
    closePost = null;
    await receiver?.close();
    manager = null;
    receiver = null;
  });

  it('reach a local Slack-compatible webhook once per condition for a spike, a disk-full and a breaker opening, and each resolves', async () => {
    receiver = await startReceiver([200]);
    const clock = new ManualClock(T0);
    const { lines, logger } = logLines();
    // Through the outbound gate of job webhooks, with loopback explicitly allowed for this local receiver.
    const post = guardedAlertPost({ allowLoopback: true });
    closePost = post.close;
    manager = createAlertManager(null, {
      sinks: [createSlackAlertSink({ url: receiver.url, post })],
      clock,
      logger,
      spike: { windowMs: 60_000, threshold: 3 },
    });
    for (let i = 0; i < 4; i++) manager.observe(settled('failed', 'COMFYUI_SERVER_ERROR'));
    manager.observe(settled('failed', 'COMFYUI_DISK_FULL', 'gpu-1', T0, "[Errno 28] No space left on device: '/out/x.png'"));
    manager.observe(settled('failed', 'COMFYUI_DISK_FULL', 'gpu-1', T0));
    manager.observe(pool({ type: 'breaker', server: 'gpu-1', from: 'closed', to: 'open', failures: 5, at: T0 }));
    manager.observe(pool({ type: 'breaker', server: 'gpu-1', from: 'half_open', to: 'open', failures: 6, at: T0 }));
    await manager.onIdle();
    expect(receiver.requests.map((r) => (JSON.parse(r.body) as { text: string }).text)).toEqual([
      ':warning: [FIRING] Error spike: 4 errors in the last 60 s',
      ':red_circle: [FIRING] COMFYUI_DISK_FULL on gpu-1',
      ':warning: [FIRING] Circuit breaker opened on gpu-1',
    ]);

    clock.current = T0 + 61_000;
    manager.tick();
    manager.observe(pool({ type: 'breaker', server: 'gpu-1', from: 'half_open', to: 'closed', failures: 0, at: clock.current }));
    manager.observe(settled('completed', null, 'gpu-1', clock.current));
    await manager.onIdle();
    const bodies = receiver.requests.map((r) => JSON.parse(r.body) as { text: string; attachments: Array<{ color: string; fields: Array<{ title: string; value: string }> }> });
    expect(bodies.slice(3).map((b) => b.text)).toEqual([
      ':white_check_mark: [RESOLVED] Error spike over: 0 errors in the last 60 s',
      ':white_check_mark: [RESOLVED] Circuit breaker closed on gpu-1',
      ':white_check_mark: [RESOLVED] COMFYUI_DISK_FULL cleared on gpu-1: a prompt completed there',
    ]);
    expect(bodies[1]!.attachments[0]!.color).toBe('danger');
    expect(bodies[1]!.attachments[0]!.fields).toContainEqual({ title: 'message', value: "[Errno 28] No space left on device: '/out/x.png'", short: false });
    expect(bodies[3]!.attachments[0]!.color).toBe('good');
    expect(receiver.requests.every((r) => r.headers['content-type'] === 'application/json')).toBe(true);
    // One readable log line per alert sent.
    expect(lines).toHaveLength(6);
    expect(lines[2]).toBe('ALERT FIRING [warning] Circuit breaker opened on gpu-1 (server=gpu-1 failures=5)');
  });

  it('a spike is judged against the baseline: a steady high error rate is not a spike', () => {
    const clock = new ManualClock(T0);
    const sink = memorySink();
    manager = createAlertManager(null, { sinks: [sink], clock, spike: { windowMs: 60_000, threshold: 3, baselineMs: 600_000, factor: 3 } });
    // Ten minutes of 5 errors a minute, then a minute of 6: 6 is above the threshold but not 3x the baseline.
    for (let m = 0; m < 10; m++) {
      clock.current = T0 + m * 60_000;
      for (let i = 0; i < 5; i++) manager.observe(settled('failed', 'COMFYUI_TIMEOUT', 'gpu-1', clock.current));
    }
    expect(manager.active()).toEqual([]);
    sink.got.length = 0;
    clock.current = T0 + 10 * 60_000;
    for (let i = 0; i < 6; i++) manager.observe(settled('failed', 'COMFYUI_TIMEOUT', 'gpu-1', clock.current));
    expect(sink.got.filter((a) => a.kind === 'error_spike' && a.status === 'firing')).toHaveLength(0);
    for (let i = 0; i < 20; i++) manager.observe(settled('failed', 'COMFYUI_TIMEOUT', 'gpu-1', clock.current));
    expect(sink.got.filter((a) => a.kind === 'error_spike' && a.status === 'firing')).toHaveLength(1);
  });

  it('a server going unhealthy, the pool having none healthy, degradation changes: each fires and resolves', () => {
    const clock = new ManualClock(T0);
    const sink = memorySink();
    manager = createAlertManager(null, { sinks: [sink], clock, servers: ['a', 'b'] });
    manager.observe(pool({ type: 'health', server: 'a', healthy: false, error: 'ECONNREFUSED', at: T0 }));
    manager.observe(pool({ type: 'health', server: 'b', healthy: false, error: 'timeout', at: T0 }));
    manager.observe(pool({ type: 'degradation', from: 'full', to: 'medium', factor: 0.5, at: T0 }));
    manager.observe(pool({ type: 'degradation', from: 'medium', to: 'low', factor: 0.25, at: T0 }));
    manager.observe(pool({ type: 'health', server: 'a', healthy: true, error: null, at: T0 }));
    manager.observe(pool({ type: 'degradation', from: 'low', to: 'full', factor: 1, at: T0 }));
    expect(sink.got.map((a) => `${a.status} ${a.title}`)).toEqual([
      'firing a is unhealthy',
      'firing b is unhealthy',
      'firing No healthy ComfyUI server (2 known)',
      'firing Pool degraded to "medium" (from full)',
      'firing Pool degraded to "low" (from medium)',
      'resolved a is healthy again',
      'resolved A ComfyUI server is healthy again (1 of 2)',
      'resolved Degradation over: back to full quality (from low)',
    ]);
    expect(manager.active().map((a) => a.key)).toEqual(['unhealthy:b']);
  });

  it('rate-limits alerts and says how many were suppressed in the next one', () => {
    const clock = new ManualClock(T0);
    const sink = memorySink();
    manager = createAlertManager(null, { sinks: [sink], clock, maxPerMinute: 2 });
    for (const s of ['a', 'b', 'c', 'd']) manager.observe(pool({ type: 'breaker', server: s, from: 'closed', to: 'open', failures: 5, at: T0 }));
    expect(sink.got.map((a) => a.fields['server'])).toEqual(['a', 'b']);
    clock.current = T0 + 60_001;
    manager.observe(pool({ type: 'breaker', server: 'e', from: 'closed', to: 'open', failures: 5, at: clock.current }));
    expect(sink.got[2]).toMatchObject({ key: 'breaker:e', suppressed: 2 });
    expect(alertLine(sink.got[2]!)).toMatch(/\[\+2 suppressed\]$/);
  });

  it('the generic webhook is signed like job webhooks, and a failing sink does not stop the others', async () => {
    receiver = await startReceiver([200]);
    const sink = memorySink();
    const broken: AlertSink = { name: 'broken', send: () => Promise.reject(new Error('down')) };
    const { lines, logger } = logLines();
    manager = createAlertManager(null, { sinks: [broken, createWebhookAlertSink({ url: receiver.url, secret: 's3cret', post: plainAlertPost() }), sink], clock: new ManualClock(T0), logger });
    manager.observe(settled('failed', 'COMFYUI_GPU_FAULT', 'gpu-2', T0, 'CUDA error: an illegal memory access was encountered'));
    await manager.onIdle();
    const req = receiver.requests[0]!;
    expect(req.headers['x-comfyguard-event']).toBe('alert.firing');
    expect(req.headers['x-comfyguard-signature']).toBe(`sha256=${createHmac('sha256', 's3cret').update(req.body).digest('hex')}`);
    expect(JSON.parse(req.body)).toMatchObject({ type: 'alert', kind: 'fatal_error', severity: 'critical', fields: { code: 'COMFYUI_GPU_FAULT', server: 'gpu-2' } });
    expect(sink.got).toHaveLength(1);
    expect(lines.some((l) => l === 'alert not delivered to broken: down')).toBe(true);
  });

  it('the outbound gate refuses a loopback alert target unless allowed, and says so in the log', async () => {
    receiver = await startReceiver([200]);
    const post = guardedAlertPost();
    closePost = post.close;
    const { lines, logger } = logLines();
    manager = createAlertManager(null, { sinks: [createSlackAlertSink({ url: receiver.url, post })], clock: new ManualClock(T0), logger });
    manager.observe(pool({ type: 'breaker', server: 'gpu-1', from: 'closed', to: 'open', failures: 5, at: T0 }));
    await manager.onIdle();
    expect(receiver.requests).toHaveLength(0);
    expect(lines.some((l) => /^alert not delivered to slack: .*loopback/.test(l))).toBe(true);
  });
});
