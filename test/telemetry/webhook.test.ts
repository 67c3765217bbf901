import { createHmac } from 'node:crypto';
import type { lookup } from 'node:dns';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { JobRecord } from '../../src/jobs/types.js';
import {
  attachWebhooks,
  createWebhookNotifier,
  EVENT_HEADER,
  SIGNATURE_HEADER,
  type WebhookNotifier,
  type WebhookResult,
} from '../../src/telemetry/webhook.js';
import { systemClock, type Clock, type TimerHandle } from '../../src/util/clock.js';
import { checkOutboundUrl, createOutboundFetch, OutboundRefusedError, type OutboundFetch } from '../../src/util/outbound.js';
import { makeAttempt, makeJob } from '../store/fixtures.js';
import { FakeGuardEvents } from './fake-guard.js';
import { startReceiver, type Receiver } from './receiver.js';

/** Bounded waits on conditions: generous, since CI may be a busy 2-core box. */
const POLL = { timeout: 30_000, interval: 20 };

const fastRetry = { attempts: 4, baseMs: 1, capMs: 5, jitter: 0 };

/** A loopback port with nothing listening (bound, then released). */
async function closedPort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const { port } = srv.address() as AddressInfo;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

describe('createWebhookNotifier', () => {
  const open: Array<Receiver | WebhookNotifier> = [];
  afterEach(async () => {
    for (const o of open.splice(0)) await o.close();
  });
  // The receivers are loopback stand-ins, which the notifier refuses unless told otherwise.
  const notifier = (o: Parameters<typeof createWebhookNotifier>[0]) => {
    const n = createWebhookNotifier({ outbound: { allowLoopback: true }, ...o });
    open.push(n);
    return n;
  };
  const receiver = async (statuses?: number[]) => {
    const r = await startReceiver(statuses);
    open.push(r);
    return r;
  };

  it('POSTs JSON with an HMAC-SHA256 signature of the raw body and the event header', async () => {
    const rx = await receiver([204]);
    const results: WebhookResult[] = [];
    const n = notifier({ secret: 's3cret', onResult: (r) => results.push(r) });
    await n.notify(rx.url, { event: 'job.completed', id: 'j1', note: 'ünïcødé' });
    expect(rx.requests).toHaveLength(1);
    const req = rx.requests[0]!;
    expect(req.method).toBe('POST');
    expect(req.headers['content-type']).toBe('application/json');
    expect(req.headers[EVENT_HEADER.toLowerCase()]).toBe('job.completed');
    const expected = `sha256=${createHmac('sha256', 's3cret').update(req.body).digest('hex')}`;
    expect(req.headers[SIGNATURE_HEADER.toLowerCase()]).toBe(expected);
    expect(JSON.parse(req.body)).toEqual({ event: 'job.completed', id: 'j1', note: 'ünïcødé' });
    expect(results).toEqual([{ url: rx.url, event: 'job.completed', delivered: true, attempts: 1, status: 204, error: null }]);
  });

  it('signs with a generated secret when none is set, and says it generated one', async () => {
    const rx = await receiver();
    const n = notifier({});
    expect(n.secretGenerated).toBe(true);
    expect(n.secret).toMatch(/^[0-9a-f]{64}$/);
    await n.notify(rx.url, { a: 1 }, { event: 'custom' });
    const req = rx.requests[0]!;
    expect(req.headers[SIGNATURE_HEADER.toLowerCase()]).toBe(`sha256=${createHmac('sha256', n.secret).update(req.body).digest('hex')}`);
    expect(req.headers[EVENT_HEADER.toLowerCase()]).toBe('custom');
    expect(notifier({ secret: 'given' }).secretGenerated).toBe(false);
  });

  it('retries 503 and 429 with backoff until the receiver accepts, same body and signature each time', async () => {
    const rx = await receiver([503, 429, 200]);
    rx.headers = [{}, { 'retry-after': '0' }];
    const results: WebhookResult[] = [];
    await notifier({ secret: 'k', retry: fastRetry, onResult: (r) => results.push(r) }).notify(rx.url, { event: 'job.failed', id: 'x' });
    expect(rx.requests).toHaveLength(3);
    expect(new Set(rx.requests.map((r) => r.body)).size).toBe(1);
    expect(new Set(rx.requests.map((r) => r.headers[SIGNATURE_HEADER.toLowerCase()])).size).toBe(1);
    expect(results[0]).toMatchObject({ delivered: true, attempts: 3, status: 200 });
  });

  it('does not retry a 400: the receiver rejected the payload', async () => {
    const rx = await receiver([400, 200]);
    const results: WebhookResult[] = [];
    await notifier({ retry: fastRetry, onResult: (r) => results.push(r) }).notify(rx.url, { id: 'x' });
    expect(rx.requests).toHaveLength(1);
    expect(results[0]).toMatchObject({ delivered: false, attempts: 1, status: 400, error: 'HTTP 400' });
  });

  it('gives up after the bounded number of attempts on a persistent 500 and resolves anyway', async () => {
    const rx = await receiver([500]);
    const results: WebhookResult[] = [];
    await expect(notifier({ retry: fastRetry, onResult: (r) => results.push(r) }).notify(rx.url, { id: 'x' })).resolves.toBeUndefined();
    expect(rx.requests).toHaveLength(4);
    expect(results[0]).toMatchObject({ delivered: false, attempts: 4, status: 500 });
  });

  it('retries network errors (connection refused) and never rejects', async () => {
    const port = await closedPort();
    const results: WebhookResult[] = [];
    await notifier({ retry: { ...fastRetry, attempts: 2 }, onResult: (r) => results.push(r) }).notify(`http://127.0.0.1:${port}/hook`, { id: 'x' });
    expect(results[0]).toMatchObject({ delivered: false, attempts: 2, status: null });
    expect(results[0]!.error).toMatch(/fetch failed|ECONNREFUSED/);
  });

  it('bounds each request with a timeout and retries after it', async () => {
    const rx = await receiver();
    rx.hang = true;
    // Request timeouts fire when the test says so (after the receiver has the request); backoff runs for real.
    const TIMEOUT = 12_345;
    const held: Array<() => void> = [];
    const clock: Clock = {
      now: () => Date.now(),
      setTimeout: (fn, ms) => (ms === TIMEOUT ? ((held.push(fn), held.length) as unknown as TimerHandle) : systemClock.setTimeout(fn, ms)),
      clearTimeout: (h) => (typeof h === 'number' ? undefined : systemClock.clearTimeout(h)),
    };
    const results: WebhookResult[] = [];
    const done = notifier({ clock, timeoutMs: TIMEOUT, retry: { ...fastRetry, attempts: 2 }, onResult: (r) => results.push(r) }).notify(rx.url, { id: 'x' });
    await expect.poll(() => rx.requests.length, POLL).toBe(1);
    held[0]!();
    await expect.poll(() => rx.requests.length, POLL).toBe(2);
    held[1]!();
    await done;
    expect(results[0]).toMatchObject({ delivered: false, attempts: 2, status: null });
    expect(results[0]!.error).toMatch(/timed out after 12345 ms/);
  });

  it('close() aborts pending retries and in-flight requests, then refuses new work quietly', async () => {
    const rx = await receiver();
    rx.hang = true;
    const results: WebhookResult[] = [];
    const n = notifier({ timeoutMs: 60_000, retry: { attempts: 5, baseMs: 60_000 }, onResult: (r) => results.push(r) });
    const pending = n.notify(rx.url, { id: 'x' });
    await expect.poll(() => rx.requests.length, POLL).toBe(1);
    await n.close();
    await pending;
    expect(results[0]).toMatchObject({ delivered: false, attempts: 1 });
    await n.notify(rx.url, { id: 'y' });
    expect(rx.requests).toHaveLength(1);
  });

  it('holds deliveries beyond maxConcurrent in order, and close() releases the waiting ones unsent', async () => {
    const rx = await receiver();
    rx.hang = true;
    const results: WebhookResult[] = [];
    const n = notifier({ maxConcurrent: 1, timeoutMs: 60_000, retry: { attempts: 1 }, onResult: (r) => results.push(r) });
    const first = n.notify(rx.url, { id: 1 });
    const second = n.notify(rx.url, { id: 2 });
    await expect.poll(() => rx.requests.length, POLL).toBe(1);
    expect(JSON.parse(rx.requests[0]!.body)).toEqual({ id: 1 });
    await n.close();
    await Promise.all([first, second]);
    expect(rx.requests).toHaveLength(1);
    expect(results.map((r) => r.attempts).sort()).toEqual([0, 1]);
    expect(results.every((r) => !r.delivered)).toBe(true);
  });

  it('onIdle() resolves once every delivery has settled', async () => {
    const rx = await receiver([503, 200]);
    const n = notifier({ retry: fastRetry });
    void n.notify(rx.url, { id: 1 });
    void n.notify(rx.url, { id: 2 });
    await n.onIdle();
    expect(rx.requests.map((r) => (JSON.parse(r.body) as { id: number }).id).sort()).toEqual([1, 1, 2]);
  });
});

describe('webhook targets (SSRF), with loopback stand-ins only', () => {
  const open: Array<Receiver | WebhookNotifier | OutboundFetch> = [];
  afterEach(async () => {
    for (const o of open.splice(0)) await o.close();
  });
  const receiver = async (statuses?: number[]) => {
    const r = await startReceiver(statuses);
    open.push(r);
    return r;
  };
  const deliver = async (url: string, o: Parameters<typeof createWebhookNotifier>[0] = {}): Promise<WebhookResult> => {
    const results: WebhookResult[] = [];
    const n = createWebhookNotifier({ retry: fastRetry, onResult: (r) => results.push(r), ...o });
    open.push(n);
    await n.notify(url, { id: 'x' });
    return results[0]!;
  };

  it('refuses a loopback receiver unless loopback is allowed for local development', async () => {
    const rx = await receiver();
    const refused = await deliver(rx.url);
    expect(refused).toMatchObject({ delivered: false, attempts: 0, status: null });
    expect(refused.error).toMatch(/loopback/);
    expect(rx.requests).toHaveLength(0);
    expect(await deliver(rx.url, { outbound: { allowLoopback: true } })).toMatchObject({ delivered: true });
  });

  it.each([
    ['link-local metadata', 'http://169.254.169.254/latest/meta-data/', /metadata/],
    ['link-local', 'http://169.254.1.1/', /link-local/],
    ['IPv6 link-local', 'http://[fe80::1]/', /link-local/],
    ['private 10/8', 'http://10.0.0.7:9000/hook', /private/],
    ['private 192.168/16', 'http://192.168.1.1/', /private/],
    ['IPv4-mapped private', 'http://[::ffff:10.1.2.3]/', /private/],
    ['metadata name', 'http://metadata.google.internal/', /metadata/],
    ['unspecified', 'http://0.0.0.0:80/', /reserved/],
    ['credentials in the URL', 'http://user:pa55word@hooks.example.com/', /user name or password/],
  ])('refuses %s before sending anything, even with loopback allowed', async (_what, url, reason) => {
    const r = await deliver(url, { outbound: { allowLoopback: true } });
    expect(r).toMatchObject({ delivered: false, attempts: 0 });
    expect(r.error).toMatch(reason);
    expect(r.url).not.toContain('pa55word');
  });

  it.each([
    ['decimal', 'http://2130706433/'],
    ['hex', 'http://0x7f.1/'],
    ['IPv4-mapped IPv6', 'http://[::ffff:7f00:1]/'],
    ['name', 'http://localhost:1/'],
    ['subdomain of localhost', 'http://a.localhost:1/'],
  ])('refuses a %s spelling of loopback by default', async (_what, url) => {
    const r = await deliver(url);
    expect(r).toMatchObject({ delivered: false, attempts: 0 });
    expect(r.error).toMatch(/loopback/);
  });

  it('allows private targets only when configured', () => {
    expect(() => checkOutboundUrl('http://10.0.0.7/', {})).toThrow(OutboundRefusedError);
    expect(checkOutboundUrl('http://10.0.0.7/', { allowPrivate: true }).hostname).toBe('10.0.0.7');
    expect(() => checkOutboundUrl('http://169.254.169.254/', { allowPrivate: true, allowLoopback: true })).toThrow(/metadata/);
  });

  it('does not follow a redirect, not even a 307 that would re-post the body', async () => {
    const target = await receiver();
    const hop = await receiver([307]);
    hop.headers = [{ location: `${target.url}/elsewhere` }];
    const r = await deliver(hop.url, { outbound: { allowLoopback: true } });
    expect(r).toMatchObject({ delivered: false, attempts: 1, status: 307 });
    expect(r.error).toMatch(/redirects are not followed/);
    expect(hop.requests).toHaveLength(1);
    expect(target.requests).toHaveLength(0);
  });

  it('checks every resolved address at connect time, so a name that resolves to loopback is refused', async () => {
    const rx = await receiver();
    const port = new URL(rx.url).port;
    // A resolver standing in for DNS: the name looks public, the answer is loopback (rebinding).
    const resolve = ((_host: string, _o: unknown, cb: (e: null, a: Array<{ address: string; family: number }>) => void) =>
      cb(null, [{ address: '127.0.0.1', family: 4 }])) as unknown as typeof lookup;
    const strict = createOutboundFetch({}, { resolve });
    open.push(strict);
    const refused = await deliver(`http://hooks.example.test:${port}/`, { fetch: strict, retry: { ...fastRetry, attempts: 3 } });
    expect(refused).toMatchObject({ delivered: false, attempts: 1, status: null });
    expect(refused.error).toMatch(/loopback/);
    expect(rx.requests).toHaveLength(0);
    const lenient = createOutboundFetch({ allowLoopback: true }, { resolve });
    open.push(lenient);
    expect(await deliver(`http://hooks.example.test:${port}/`, { fetch: lenient, outbound: { allowLoopback: true } })).toMatchObject({ delivered: true });
    expect(rx.requests).toHaveLength(1);
  });
});

describe('attachWebhooks', () => {
  it('posts terminal states of jobs that have a webhookUrl, once each, with the job summary', async () => {
    const rx = await startReceiver([200]);
    const n = createWebhookNotifier({ secret: 'k', outbound: { allowLoopback: true } });
    const guard = new FakeGuardEvents();
    const detach = attachWebhooks(guard, n);
    try {
      const t0 = Date.UTC(2026, 0, 1);
      const base: JobRecord = makeJob({ id: 'j1', createdAt: t0, options: { webhookUrl: rx.url } });
      guard.state({ ...base, status: 'running', startedAt: t0 + 10, attempts: [makeAttempt(1)] }, 'queued');
      const done: JobRecord = {
        ...base,
        status: 'completed',
        startedAt: t0 + 10,
        endedAt: t0 + 2_000,
        attempts: [makeAttempt(1, { status: 'completed' })],
        outputs: [{ node: '9', filename: 'a.png', subfolder: '', type: 'output', url: '/api/outputs/s/output/a.png', server: 's' }],
      };
      guard.state(done, 'running');
      guard.state(done, 'running'); // repeated event: one POST
      guard.state(makeJob({ id: 'no-hook', status: 'failed', endedAt: t0 }), 'running');
      const cancelled = makeJob({ id: 'j2', status: 'cancelled', options: { webhookUrl: rx.url }, createdAt: t0, endedAt: t0 + 5 });
      guard.state(cancelled, 'queued');
      await n.onIdle();

      expect(rx.requests).toHaveLength(2);
      const bodies = rx.requests.map((r) => JSON.parse(r.body) as Record<string, unknown>);
      expect(bodies[0]).toEqual({
        event: 'job.completed',
        id: 'j1',
        status: 'completed',
        outputs: done.outputs,
        error: null,
        attempts: 1,
        retryCount: 0,
        createdAt: '2026-01-01T00:00:00.000Z',
        startedAt: '2026-01-01T00:00:00.010Z',
        endedAt: '2026-01-01T00:00:02.000Z',
      });
      expect(rx.requests[0]!.headers[EVENT_HEADER.toLowerCase()]).toBe('job.completed');
      expect(bodies[1]).toMatchObject({ event: 'job.cancelled', id: 'j2', status: 'cancelled' });
      expect(rx.requests[1]!.headers[EVENT_HEADER.toLowerCase()]).toBe('job.cancelled');

      detach();
      expect(guard.listeners.size).toBe(0);
    } finally {
      detach();
      await n.close();
      await rx.close();
    }
  });
});
