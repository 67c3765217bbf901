import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { ComfyApi } from '../comfy/api.js';
import { ComfyRequestError } from '../comfy/errors.js';
import type { HistoryEntry, HistoryMap, QueueState, WsMessage } from '../comfy/types.js';
import { systemClock } from '../util/clock.js';
import { abortReason, runAttempt, type AttemptResult, type AttemptSpec } from './attempt-runner.js';
import type { FeedEvent, ServerFeed } from './server-feed.js';

const PROMPT = 'p-1';
const WF = { '1': { class_type: 'SaveImage', inputs: {} } };

/** A server whose queue and history the test sets; counts every call. */
class ScriptedServer {
  queue: QueueState = { queue_running: [], queue_pending: [] };
  history: HistoryMap = {};
  submitError: unknown = null;
  /** Resolves a pending getHistory; set to hold one open. */
  holdHistory: Promise<void> | null = null;
  calls: string[] = [];

  api(): ComfyApi {
    // Arrow functions: the fake's methods read the test's live state through `this`.
    return {
      submitPrompt: async () => {
        this.calls.push('submit');
        if (this.submitError) throw this.submitError;
        return { prompt_id: PROMPT, number: 1, node_errors: {} };
      },
      getQueue: async () => {
        this.calls.push('queue');
        return structuredClone(this.queue);
      },
      getHistory: async () => {
        this.calls.push('history');
        const snapshot = structuredClone(this.history);
        if (this.holdHistory) await this.holdHistory;
        return snapshot;
      },
      deleteFromQueue: async () => {
        this.calls.push('delete');
      },
      interrupt: async () => {
        this.calls.push('interrupt');
      },
    } as unknown as ComfyApi;
  }

  running(): void {
    this.queue = { queue_running: [[1, PROMPT, {}, {}, ['1']]], queue_pending: [] } as unknown as QueueState;
  }

  done(): void {
    this.queue = { queue_running: [], queue_pending: [] };
    const entry: HistoryEntry = {
      prompt: [1, PROMPT, {}, {}, ['1']] as unknown as HistoryEntry['prompt'],
      outputs: { '1': { images: [{ filename: 'a.png', subfolder: '', type: 'output' }] } },
      status: { status_str: 'success', completed: true, messages: [['execution_success', { prompt_id: PROMPT, timestamp: 1 }]] },
    };
    this.history = { [PROMPT]: entry };
  }
}

/** A feed the test drives by hand. */
class ManualFeed implements ServerFeed {
  readonly clientId = 'c-1';
  connected = true;
  lastActivityAt = 0;
  readonly #listeners = new Set<(e: FeedEvent) => void>();
  ready(): Promise<boolean> {
    return Promise.resolve(this.connected);
  }
  subscribe(_id: string, l: (e: FeedEvent) => void): () => void {
    this.#listeners.add(l);
    return () => this.#listeners.delete(l);
  }
  send(e: FeedEvent): void {
    for (const l of this.#listeners) l(e);
  }
  message(m: WsMessage): void {
    this.send({ kind: 'message', message: m });
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

let server: ScriptedServer;
let feed: ManualFeed;
beforeEach(() => {
  vi.useFakeTimers();
  server = new ScriptedServer();
  feed = new ManualFeed();
});
afterEach(() => {
  vi.useRealTimers();
});

function start(over: Partial<AttemptSpec> = {}): { result: Promise<AttemptResult>; ac: AbortController } {
  const ac = new AbortController();
  const result = runAttempt({
    server: 's',
    client: server.api(),
    feed,
    promptId: PROMPT,
    workflow: WF,
    clock: systemClock,
    generationTimeoutMs: 600_000,
    stallTimeoutMs: 60_000,
    pollIntervalMs: 2_000,
    unreachableGraceMs: 15_000,
    signal: ac.signal,
    ...over,
  });
  return { result, ac };
}

const settled = async (p: Promise<AttemptResult>): Promise<AttemptResult | 'pending'> => Promise.race([p, Promise.resolve('pending' as const)]);

describe('the attempt runner (fake clock, scripted server)', () => {
  it('after an ambiguous POST finds the prompt running instead of resubmitting, then completes on the end marker', async () => {
    server.submitError = new ComfyRequestError({ kind: 'transport', message: 'socket hang up', server: 's', path: '/prompt' });
    server.running();
    const { result } = start();
    await vi.advanceTimersByTimeAsync(10);
    expect(await settled(result)).toBe('pending');
    server.done();
    feed.message({ type: 'executing', data: { node: null, prompt_id: PROMPT } });
    await vi.advanceTimersByTimeAsync(10);
    expect(await result).toMatchObject({ kind: 'completed' });
    expect(server.calls.filter((c) => c === 'submit')).toHaveLength(1);
  });

  it('waits for history after a success that arrived before it, and completes when history has the outputs', async () => {
    server.running();
    const { result } = start();
    await vi.advanceTimersByTimeAsync(10);
    feed.message({ type: 'execution_success', data: { prompt_id: PROMPT } });
    server.queue = { queue_running: [], queue_pending: [] };
    await vi.advanceTimersByTimeAsync(2_100);
    // History lags: not lost, still waiting.
    expect(await settled(result)).toBe('pending');
    server.done();
    await vi.advanceTimersByTimeAsync(2_100);
    expect(await result).toMatchObject({ kind: 'completed', outputs: { '1': expect.anything() } });
  });

  it('reconciles on a reconnect mid-run and takes the outcome the server recorded while the socket was down', async () => {
    server.running();
    const { result } = start();
    await vi.advanceTimersByTimeAsync(10);
    feed.connected = false;
    feed.send({ kind: 'connection', connected: false });
    server.done();
    feed.connected = true;
    feed.send({ kind: 'connection', connected: true });
    await vi.advanceTimersByTimeAsync(10);
    expect(await result).toMatchObject({ kind: 'completed' });
  });

  it('does not lose an end marker that arrives while a poll is in flight', async () => {
    server.running();
    feed.connected = false; // polls every 2 s while the socket is down
    const { result } = start();
    await vi.advanceTimersByTimeAsync(10);
    let release!: () => void;
    server.holdHistory = new Promise<void>((r) => (release = r));
    await vi.advanceTimersByTimeAsync(2_000); // a poll starts and reads "running"
    server.holdHistory = null;
    server.done();
    feed.message({ type: 'executing', data: { node: null, prompt_id: PROMPT } }); // arrives mid-poll
    release();
    await vi.advanceTimersByTimeAsync(10);
    expect(await settled(result)).toMatchObject({ kind: 'completed' });
  });

  it('stalls a running prompt that sends nothing, and interrupts it', async () => {
    server.running();
    const { result } = start({ stallTimeoutMs: 30_000 });
    await vi.advanceTimersByTimeAsync(31_000);
    await vi.advanceTimersByTimeAsync(30_000);
    expect(await result).toMatchObject({ kind: 'failed', evidence: { kind: 'timeout', phase: 'stall', detail: 'no progress while running' } });
    expect(server.calls).toContain('interrupt');
  });

  it('stalls a pending prompt behind a hung one even while other prompts keep arriving behind it', async () => {
    const pending = (behind: number) =>
      ({
        queue_running: [[0, 'hung', {}, {}, []]],
        queue_pending: [[1, PROMPT, {}, {}, ['1']], ...Array.from({ length: behind }, (_, i) => [2 + i, `later-${i}`, {}, {}, []])],
      }) as unknown as QueueState;
    server.queue = pending(0);
    feed.connected = false; // polled, so the queue is read every 2 s
    const { result } = start({ stallTimeoutMs: 20_000 });
    for (let i = 1; i <= 30; i++) {
      server.queue = pending(i); // newcomers behind ours: no movement ahead
      feed.send({ kind: 'queue', queueRemaining: i + 2, shrank: false });
      await vi.advanceTimersByTimeAsync(2_000);
    }
    expect(await result).toMatchObject({ kind: 'failed', evidence: { kind: 'timeout', phase: 'stall', detail: 'accepted but never started' } });
  });

  it('keeps a pending prompt alive while the queue ahead of it moves', async () => {
    let head = 0;
    server.queue = { queue_running: [[0, 'h0', {}, {}, []]], queue_pending: [[1, PROMPT, {}, {}, ['1']]] } as unknown as QueueState;
    feed.connected = false;
    const { result } = start({ stallTimeoutMs: 20_000 });
    for (let i = 0; i < 30; i++) {
      head++;
      server.queue = { queue_running: [[0, `h${head}`, {}, {}, []]], queue_pending: [[1, PROMPT, {}, {}, ['1']]] } as unknown as QueueState;
      await vi.advanceTimersByTimeAsync(2_000);
    }
    expect(await settled(result)).toBe('pending');
  });

  it('confirms a cancel: withdraws the prompt and ends as cancelled', async () => {
    server.running();
    const { result, ac } = start();
    await vi.advanceTimersByTimeAsync(10);
    ac.abort(abortReason('cancel'));
    server.queue = { queue_running: [], queue_pending: [] };
    feed.message({ type: 'execution_interrupted', data: { prompt_id: PROMPT, node_id: '1', node_type: 'SaveImage', executed: [] } } as WsMessage);
    await vi.advanceTimersByTimeAsync(10);
    expect(await result).toEqual({ kind: 'cancelled' });
    expect(server.calls).toEqual(expect.arrayContaining(['delete', 'interrupt']));
  });

  it('submits only once the socket is ready', async () => {
    let open!: (v: boolean) => void;
    feed.ready = () => new Promise<boolean>((r) => (open = r));
    server.running();
    start();
    await vi.advanceTimersByTimeAsync(100);
    expect(server.calls).not.toContain('submit');
    open(true);
    await vi.advanceTimersByTimeAsync(1);
    expect(server.calls).toContain('submit');
  });
});
