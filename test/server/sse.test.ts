/**
 * SSE details that a real guard cannot show on demand: heartbeats while a job is held in one
 * state, cleanup when the client goes away, recovery events, and ending when the service closes.
 * A scripted guard holds the job.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { FakeGuard } from './fake-guard.js';
import { listen, readSse, tinyWorkflow, waitFor, type TestServer } from './helpers.js';

let guard: FakeGuard;
let server: TestServer | null = null;

afterEach(async () => {
  await server?.close();
  server = null;
  await guard?.close();
});

async function start(sseHeartbeatMs = 15_000): Promise<string> {
  guard = await new FakeGuard().init();
  server = await listen({ guard, sseHeartbeatMs, dashboard: false });
  return server.url;
}

describe('GET /api/jobs/:id/events', () => {
  it('sends heartbeat comments while the job is quiet', async () => {
    const url = await start(20);
    const { id } = await guard.submit(tinyWorkflow());
    const res = await fetch(`${url}/api/jobs/${id}/events`);
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    let text = '';
    await waitFor(async () => {
      const { value } = await reader.read();
      text += decoder.decode(value, { stream: true });
      return text.split(': heartbeat\n\n').length > 2;
    }, 'two heartbeats');
    expect(text.startsWith('id: 1\nevent: state\n')).toBe(true);
    await reader.cancel();
  });

  it('relays progress and recovery events and ends after the terminal state', async () => {
    const url = await start();
    const { id } = await guard.submit(tinyWorkflow());
    const before = guard.subscribers;
    const res = await fetch(`${url}/api/jobs/${id}/events`);
    const reading = readSse(res);
    await waitFor(() => guard.subscribers > before, 'the stream to subscribe');
    await guard.advance(id, 'running', { startedAt: Date.now() });
    guard.emit({ type: 'progress', jobId: id, progress: 40, node: '3', attempt: 1, at: Date.now() });
    const step = { attempt: 1, code: 'COMFYUI_OOM', strategy: 'reduce_batch' as const, changes: [{ nodeId: '1', classType: 'EmptyImage', input: 'batch_size', from: 4, to: 2 }], success: null, server: null, promptId: null, message: 'halve the batch', startedAt: Date.now(), endedAt: null };
    guard.emit({ type: 'recovery', jobId: id, step, failedPromptId: 'p1', at: Date.now() });
    await guard.advance(id, 'recovering');
    await guard.advance(id, 'running');
    await guard.advance(id, 'failed', { error: { code: 'COMFYUI_OOM', category: 'recoverable', message: 'out of memory', hint: 'smaller batch', retryable: true } });
    const { events, ended } = await reading;
    expect(ended).toBe(true);
    expect(events.map((e) => e.event)).toEqual(['state', 'state', 'progress', 'recovery', 'state', 'state', 'state']);
    expect(events[2]!.data).toMatchObject({ type: 'progress', progress: 40, node: '3', attempt: 1 });
    expect(events[3]!.data).toMatchObject({ type: 'recovery', step: { strategy: 'reduce_batch', changes: [{ input: 'batch_size', from: 4, to: 2 }], endedAt: null } });
    expect((events[3]!.data as { step: { startedAt: string } }).step.startedAt).toMatch(/^\d{4}-\d\d-\d\dT/);
    expect(events.at(-1)!.data).toMatchObject({ to: 'failed', job: { status: 'failed', error: { code: 'COMFYUI_OOM' } } });
  });

  it('unsubscribes from the guard when the client disconnects', async () => {
    const url = await start();
    const { id } = await guard.submit(tinyWorkflow());
    // The ComfyUI-compatible endpoint's socket hub is a subscriber of its own.
    const before = guard.subscribers;
    const ac = new AbortController();
    const res = await fetch(`${url}/api/jobs/${id}/events`, { signal: ac.signal });
    await readSse(res, (e) => e.event === 'state');
    expect(guard.subscribers).toBe(before + 1);
    ac.abort();
    await waitFor(() => guard.subscribers === before, 'the stream to unsubscribe');
  });

  it('ends open streams when the service closes', async () => {
    const url = await start();
    const { id } = await guard.submit(tinyWorkflow());
    const before = guard.subscribers;
    const reading = readSse(await fetch(`${url}/api/jobs/${id}/events`));
    await waitFor(() => guard.subscribers > before, 'the stream to subscribe');
    await server!.close();
    server = null;
    const { events, ended } = await reading;
    expect(ended).toBe(true);
    expect(events[0]!.data).toMatchObject({ to: 'queued' });
    expect(guard.subscribers).toBe(0);
  });
});

describe('errors a real guard rarely produces', () => {
  it('answers 503 STORE_UNAVAILABLE when the store is down, and /api/health says down', async () => {
    const url = await start();
    guard.storeDown = true;
    const res = await fetch(`${url}/api/jobs`);
    expect(res.status).toBe(503);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('STORE_UNAVAILABLE');
    const health = await fetch(`${url}/api/health`);
    expect(health.status).toBe(503);
    expect(await health.json()).toMatchObject({ status: 'down', store: { status: 'down', error: expect.stringMatching(/unreachable/) }, comfyguard: { status: 'ok' } });
  });
});
