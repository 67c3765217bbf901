import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Writable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { Logger } from '../../src/jobs/options.js';
import { createErrorSpikeAlert, createJsonLinesSink, createLoggerSink, type ErrorSpike } from '../../src/telemetry/analytics.js';
import { systemClock } from '../../src/util/clock.js';

const fixedClock = { ...systemClock, now: () => Date.UTC(2026, 0, 2, 3, 4, 5) };

describe('createJsonLinesSink', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cg-analytics-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('writes one JSON object per line with a timestamp to a stream', async () => {
    const out = new PassThrough();
    const chunks: string[] = [];
    out.on('data', (c: Buffer) => chunks.push(c.toString('utf8')));
    const jsonl = await createJsonLinesSink(out, { clock: fixedClock });
    jsonl.sink({ name: 'job_submitted', jobId: 'j1', priority: 2 });
    jsonl.sink({ name: 'comfyui_retry_attempted', promptId: 'p1', attempt: 2, errorType: 'COMFYUI_OOM' });
    await jsonl.close();
    const lines = chunks.join('').trimEnd().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines).toEqual([
      { ts: '2026-01-02T03:04:05.000Z', name: 'job_submitted', jobId: 'j1', priority: 2 },
      { ts: '2026-01-02T03:04:05.000Z', name: 'comfyui_retry_attempted', promptId: 'p1', attempt: 2, errorType: 'COMFYUI_OOM' },
    ]);
    // A caller's stream is not ended by close(): it may be stdout.
    expect(out.writableEnded).toBe(false);
  });

  it('appends to a file (creating its folder) and flushes it on close', async () => {
    const file = join(dir, 'nested', 'events.jsonl');
    const first = await createJsonLinesSink(file);
    first.sink({ name: 'job_started', jobId: 'a' });
    await first.close();
    const second = await createJsonLinesSink(file);
    second.sink({ name: 'job_completed', jobId: 'a', attempts: 1 });
    await second.close();
    second.sink({ name: 'job_failed', jobId: 'ignored after close' });
    const names = (await readFile(file, 'utf8')).trimEnd().split('\n').map((l) => (JSON.parse(l) as { name: string }).name);
    expect(names).toEqual(['job_started', 'job_completed']);
  });

  it('reports a broken stream once and never throws into the guard', async () => {
    const broken = new Writable({
      write(_chunk, _enc, cb) {
        cb(new Error('disk on fire'));
      },
    });
    const onError = vi.fn();
    const jsonl = await createJsonLinesSink(broken, { onError });
    expect(() => jsonl.sink({ name: 'job_started', jobId: 'a' })).not.toThrow();
    await vi.waitFor(() => expect(onError).toHaveBeenCalledTimes(1), { timeout: 30_000 });
    jsonl.sink({ name: 'job_started', jobId: 'b' });
    await jsonl.close();
    expect(onError).toHaveBeenCalledTimes(1);
    expect((onError.mock.calls[0]![0] as Error).message).toBe('disk on fire');
  });
});

describe('createLoggerSink', () => {
  it('logs events with their fields, failures at warn', () => {
    const calls: Array<[string, object, string | undefined]> = [];
    const logger: Logger = {
      info: (o, m) => calls.push(['info', o, m]),
      warn: (o, m) => calls.push(['warn', o, m]),
      error: (o, m) => calls.push(['error', o, m]),
      debug: (o, m) => calls.push(['debug', o, m]),
    };
    const sink = createLoggerSink(logger);
    sink({ name: 'job_completed', jobId: 'a', attempts: 2 });
    sink({ name: 'comfyui_retry_exhausted', promptId: 'p', totalRetries: 3, finalError: 'COMFYUI_OOM' });
    expect(calls).toEqual([
      ['info', { event: 'job_completed', jobId: 'a', attempts: 2 }, 'job_completed'],
      ['warn', { event: 'comfyui_retry_exhausted', promptId: 'p', totalRetries: 3, finalError: 'COMFYUI_OOM' }, 'comfyui_retry_exhausted'],
    ]);
  });
});

describe('createErrorSpikeAlert', () => {
  beforeEach(() => {
    vi.useFakeTimers({ now: 1_000_000 });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('fires once when errors in the window exceed the threshold, re-arms after they expire, fires again', async () => {
    const alerts: ErrorSpike[] = [];
    const recovered: number[] = [];
    const spike = createErrorSpikeAlert({
      windowMs: 60_000,
      threshold: 3,
      clock: systemClock,
      onAlert: (s) => alerts.push(s),
      onRecover: (r) => recovered.push(r.at),
    });
    try {
      spike.sink({ name: 'comfyui_retry_attempted', promptId: 'p1', attempt: 2, errorType: 'COMFYUI_OOM' });
      spike.sink({ name: 'job_completed', jobId: 'ok' }); // not an error
      spike.sink({ name: 'job_failed', jobId: 'j2', code: 'COMFYUI_INVALID_PARAMETERS' });
      await vi.advanceTimersByTimeAsync(10_000);
      spike.sink({ name: 'job_timed_out', jobId: 'j3' });
      expect(alerts).toHaveLength(0); // 3 errors = threshold, not above it
      spike.record('COMFYUI_OOM');
      expect(alerts).toHaveLength(1);
      expect(alerts[0]).toMatchObject({ count: 4, threshold: 3, windowMs: 60_000, byCode: { COMFYUI_OOM: 2, COMFYUI_INVALID_PARAMETERS: 1, job_timed_out: 1 } });
      expect(spike.firing).toBe(true);

      spike.record('COMFYUI_OOM'); // still firing: no second alert
      expect(alerts).toHaveLength(1);

      // The two errors at t=0 leave the window at t=60 s: 3 remain, which is not above the threshold.
      await vi.advanceTimersByTimeAsync(49_999);
      expect(spike.firing).toBe(true);
      await vi.advanceTimersByTimeAsync(1);
      expect(spike.count()).toBe(3);
      expect(spike.firing).toBe(false);
      expect(recovered).toEqual([1_060_000]);

      spike.record('COMFYUI_GPU_FAULT');
      expect(alerts).toHaveLength(2);
      expect(alerts[1]!.count).toBe(4);
    } finally {
      spike.close();
    }
    expect(vi.getTimerCount()).toBe(0);
  });

  it('forgets errors older than the window without firing', async () => {
    const onAlert = vi.fn();
    const spike = createErrorSpikeAlert({ windowMs: 1_000, threshold: 1, clock: systemClock, onAlert });
    spike.record('A');
    await vi.advanceTimersByTimeAsync(1_000);
    spike.record('B');
    expect(onAlert).not.toHaveBeenCalled();
    expect(spike.count()).toBe(1);
    spike.close();
  });

  it('rejects nonsense options with the option named', () => {
    expect(() => createErrorSpikeAlert({ windowMs: 0, threshold: 1, onAlert: () => {} })).toThrow(/windowMs/);
    expect(() => createErrorSpikeAlert({ windowMs: 10, threshold: -1, onAlert: () => {} })).toThrow(/threshold/);
  });
});
