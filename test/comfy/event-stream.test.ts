import { afterEach, describe, expect, it, vi } from 'vitest';
import { ComfyRequestError } from '../../src/comfy/errors.js';
import { ComfyEventStream, reconnectDelay, type ComfyEventStreamOptions, type ComfyStreamEvent } from '../../src/comfy/event-stream.js';
import { systemClock, type Clock } from '../../src/util/clock.js';
import { loadCapture, startCaptureServer, type CaptureServer } from '../support/capture-server.js';
import { EventLog, tick, waitFor } from './helpers.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  vi.useRealTimers();
  while (cleanups.length > 0) await cleanups.pop()?.();
});

async function serve(...args: Parameters<typeof startCaptureServer>): Promise<CaptureServer> {
  const server = await startCaptureServer(...args);
  cleanups.push(() => server.close());
  return server;
}

function streamFor(baseUrl: string, extra: Partial<ComfyEventStreamOptions> = {}): ComfyEventStream {
  const stream = new ComfyEventStream({ baseUrl, clientId: 'owner-1', pingIntervalMs: 0, backoff: { initialMs: 1, maxMs: 5 }, ...extra });
  cleanups.push(() => stream.close());
  return stream;
}

type Ev<K extends ComfyStreamEvent['kind']> = Extract<ComfyStreamEvent, { kind: K }>;
const is =
  <K extends ComfyStreamEvent['kind']>(kind: K) =>
  (e: ComfyStreamEvent): e is Ev<K> =>
    e.kind === kind;

describe('reconnectDelay', () => {
  it('doubles from initialMs up to maxMs, with jitter within ±jitter and never above the cap', () => {
    const mid = () => 0.5;
    expect([0, 1, 2, 3, 4, 5, 6].map((n) => reconnectDelay(n, { initialMs: 500, maxMs: 10_000, jitter: 0.2 }, mid))).toEqual([
      500, 1000, 2000, 4000, 8000, 10_000, 10_000,
    ]);
    expect(reconnectDelay(2, { initialMs: 500, maxMs: 10_000, jitter: 0.2 }, () => 0)).toBe(1600);
    expect(reconnectDelay(2, { initialMs: 500, maxMs: 10_000, jitter: 0.2 }, () => 0.999999)).toBe(2400);
    expect(reconnectDelay(9, { initialMs: 500, maxMs: 10_000, jitter: 0.2 }, () => 0.999999)).toBe(10_000);
  });
});

describe('ComfyEventStream', () => {
  for (const closeFrame of [true, false]) {
    it(`reconnects with the same clientId after the server drops the socket ${closeFrame ? 'with a close frame' : 'without a close frame (1006)'}`, async () => {
      const server = await serve(loadCapture('ok_simple'));
      const stream = streamFor(server.url);
      const log = new EventLog<ComfyStreamEvent>((l) => stream.on(l));
      stream.start();
      await stream.whenOpen();
      expect(log.filter(is('open'))).toEqual([{ kind: 'open', clientId: 'owner-1', reconnect: false }]);
      await server.waitForConnections(1);

      server.dropWebSockets({ closeFrame, code: 1001 });
      const closed = await log.waitFor(is('close'), 'the close event');
      expect(closed).toMatchObject({ code: closeFrame ? 1001 : 1006, byUs: false });
      const reopened = await log.waitFor(is('open'), 'the reopen', 2);
      expect(reopened).toEqual({ kind: 'open', clientId: 'owner-1', reconnect: true });
      const reconnecting = log.filter(is('reconnecting'));
      expect(reconnecting).toHaveLength(1);
      expect(reconnecting[0]).toMatchObject({ attempt: 1, error: { kind: 'websocket', wsCloseCode: closeFrame ? 1001 : 1006 } });
      expect(server.connections.map((c) => c.clientId)).toEqual(['owner-1', 'owner-1']);
      // Order: the drop is announced before the wait, the wait before the reopen.
      const kinds = log.events.map((e) => e.kind).filter((k) => k !== 'message');
      expect(kinds).toEqual(['open', 'close', 'reconnecting', 'open']);
      // The new socket delivers messages again (the fake replays the recording on each connection).
      await log.waitFor(
        (e): e is Ev<'message'> => e.kind === 'message' && e.message.type === 'execution_success',
        'execution_success on the second socket',
        2,
      );
      expect(stream.opens).toBe(2);
    });
  }

  it('backs off exponentially on the injected clock while the server refuses, then recovers', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const server = await serve([]);
    server.refuseUpgrades(503);
    const asked: number[] = [];
    const clock: Clock = { ...systemClock, setTimeout: (fn, ms) => (asked.push(ms), systemClock.setTimeout(fn, ms)) };
    const stream = streamFor(server.url, { clock, backoff: { initialMs: 1_000, maxMs: 8_000, jitter: 0.2 }, random: () => 0.5, connectTimeoutMs: 123_456 });
    const log = new EventLog<ComfyStreamEvent>((l) => stream.on(l));
    stream.start();

    const expected = [2_000, 4_000, 8_000, 8_000];
    for (const [i, delay] of expected.entries()) {
      const r = await log.waitFor(is('reconnecting'), `reconnecting #${i + 1}`, i + 1);
      expect(r).toMatchObject({ attempt: i + 2, delayMs: delay, error: { kind: 'http', status: 503 } });
      const upgrades = server.upgrades;
      await vi.advanceTimersByTimeAsync(delay - 1);
      for (let k = 0; k < 20; k++) await tick();
      expect(server.upgrades).toBe(upgrades);
      await vi.advanceTimersByTimeAsync(1);
      await waitFor(() => server.upgrades === upgrades + 1, `connect attempt ${i + 2}`);
    }
    expect(asked.filter((ms) => ms !== 123_456)).toEqual(expected);

    server.refuseUpgrades(null);
    await log.waitFor(is('reconnecting'), 'the last wait', expected.length + 1);
    await vi.advanceTimersByTimeAsync(8_000);
    await stream.whenOpen();
    expect(log.filter(is('open'))).toEqual([{ kind: 'open', clientId: 'owner-1', reconnect: false }]);
  });

  it('resets the backoff after a successful open', async () => {
    const server = await serve([]);
    const stream = streamFor(server.url, { backoff: { initialMs: 1, maxMs: 1_000 }, random: () => 0.5 });
    const log = new EventLog<ComfyStreamEvent>((l) => stream.on(l));
    server.refuseUpgrades(503);
    stream.start();
    await log.waitFor(is('reconnecting'), 'three failed attempts', 3);
    expect(log.filter(is('reconnecting')).map((e) => e.delayMs)).toEqual([2, 4, 8]);
    server.refuseUpgrades(null);
    await stream.whenOpen();
    const before = log.filter(is('reconnecting')).length;
    await server.waitForConnections(1);
    server.dropWebSockets({ closeFrame: true });
    const after = await log.waitFor(is('reconnecting'), 'the wait after the drop', before + 1);
    expect(after).toMatchObject({ attempt: 1, delayMs: 1 });
  });

  it('stops for good on close(): no reconnect, iterators end, whenOpen rejects', async () => {
    const server = await serve([]);
    const stream = streamFor(server.url);
    const iterated: string[] = [];
    const iterating = (async () => {
      for await (const e of stream.events()) iterated.push(e.kind);
    })();
    stream.start();
    await stream.whenOpen();
    await stream.close();
    await iterating;
    expect(iterated).toEqual(['open', 'close']);
    expect(server.upgrades).toBe(1);
    await expect(stream.whenOpen()).rejects.toBeInstanceOf(ComfyRequestError);
    await stream.close();
  });

  it('stops when its signal aborts, even in the middle of a backoff wait', async () => {
    const server = await serve([]);
    server.refuseUpgrades(503);
    const ac = new AbortController();
    const stream = streamFor(server.url, { signal: ac.signal, backoff: { initialMs: 60_000, maxMs: 60_000 } });
    const log = new EventLog<ComfyStreamEvent>((l) => stream.on(l));
    stream.start();
    const waiting = stream.whenOpen();
    await log.waitFor(is('reconnecting'), 'the first backoff wait');
    ac.abort();
    await expect(waiting).rejects.toMatchObject({ kind: 'aborted' });
    await stream.close();
    expect(server.upgrades).toBe(1);
  });
});
