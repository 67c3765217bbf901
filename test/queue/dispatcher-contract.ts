/**
 * The conformance suite every Dispatcher runs (in-process and BullMQ): ordering, dedupe, the
 * re-run of an id enqueued while it runs (also when the enqueue races the end of the run),
 * removal, counts, idleness and close. Engine-level cases (a manual retry or cancel sent through
 * one process and run by another) need the guard and live with the guard's tests.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { Dispatcher, JobHandler } from '../../src/queue/contract.js';

/** Bounded waits on conditions: generous, since CI may be a busy 2-core box. */
const POLL = { timeout: 30_000, interval: 10 };

/** A handler whose runs block until the test releases them. */
export class Gate {
  readonly started: string[] = [];
  readonly finished: string[] = [];
  /** Each run's abort signal, by job id. */
  readonly signals = new Map<string, AbortSignal>();
  active = 0;
  maxActive = 0;
  hold = true;
  /** Called at the very end of a run, before the handler returns (to race the finish). */
  onFinishing: ((id: string) => Promise<void>) | null = null;
  readonly #release = new Map<string, () => void>();

  readonly handler: JobHandler = async (id, signal) => {
    this.started.push(id);
    this.signals.set(id, signal);
    this.active++;
    this.maxActive = Math.max(this.maxActive, this.active);
    try {
      if (this.hold) {
        await new Promise<void>((resolve) => {
          this.#release.set(id, resolve);
          signal.addEventListener('abort', () => resolve(), { once: true });
        });
      }
      const finishing = this.onFinishing;
      this.onFinishing = null;
      if (finishing) await finishing(id);
      this.finished.push(id);
    } finally {
      this.active--;
    }
  };

  release(id: string): void {
    const r = this.#release.get(id);
    if (!r) throw new Error(`job ${id} is not held`);
    this.#release.delete(id);
    r();
  }

  releaseAll(): void {
    this.hold = false;
    for (const id of [...this.#release.keys()]) this.release(id);
  }
}

export interface DispatcherHarness {
  /** A fresh dispatcher on a fresh queue; the suite closes it. */
  make(opts: { concurrency: number }): Promise<Dispatcher>;
  /** Releases whatever the harness created (queues, keys). */
  cleanup(): Promise<void>;
}

/** Registers the dispatcher contract for one implementation. */
export function describeDispatcherContract(name: string, harness: () => DispatcherHarness): void {
  describe(`Dispatcher contract: ${name}`, () => {
    let h: DispatcherHarness;
    const opened: Dispatcher[] = [];
    const make = async (concurrency: number) => {
      h ??= harness();
      const d = await h.make({ concurrency });
      opened.push(d);
      return d;
    };

    afterEach(async () => {
      await Promise.all(opened.splice(0).map((d) => d.close()));
      await h?.cleanup();
    });

    it('runs higher priority first, first in first out within a priority, within the concurrency limit', async () => {
      const d = await make(1);
      const gate = new Gate();
      await d.start(gate.handler);
      await d.enqueue('blocker', 0);
      await expect.poll(() => gate.started, POLL).toEqual(['blocker']);
      await d.enqueue('low', -5);
      await d.enqueue('a', 0);
      await d.enqueue('high', 10);
      await d.enqueue('b', 0);
      expect(await d.counts()).toEqual({ waiting: 4, active: 1 });
      gate.releaseAll();
      await d.onIdle();
      expect(gate.started).toEqual(['blocker', 'high', 'a', 'b', 'low']);
      expect(gate.maxActive).toBe(1);
    });

    it('never runs more than `concurrency` at once and reports idle when all are done', async () => {
      const d = await make(2);
      const gate = new Gate();
      await d.enqueueMany(['a', 'b', 'c', 'd', 'e'].map((id) => ({ id, priority: 0 })));
      await d.start(gate.handler);
      await expect.poll(() => gate.started.length, POLL).toBe(2);
      expect(await d.counts()).toEqual({ waiting: 3, active: 2 });
      gate.releaseAll();
      await d.onIdle();
      expect([...gate.finished].sort()).toEqual(['a', 'b', 'c', 'd', 'e']);
      expect(gate.maxActive).toBe(2);
      expect(await d.counts()).toEqual({ waiting: 0, active: 0 });
    });

    it('keeps one entry for an id enqueued again while it waits', async () => {
      const d = await make(1);
      await d.enqueue('same', 0);
      await d.enqueue('same', 5);
      await d.enqueueMany([{ id: 'same', priority: 1 }]);
      expect(await d.counts()).toEqual({ waiting: 1, active: 0 });
      const gate = new Gate();
      gate.hold = false;
      await d.start(gate.handler);
      await d.onIdle();
      expect(gate.started).toEqual(['same']);
    });

    it('runs an id once more when it is enqueued (even several times) while it runs', async () => {
      const d = await make(1);
      const gate = new Gate();
      await d.start(gate.handler);
      await d.enqueue('job', 0);
      await expect.poll(() => gate.started, POLL).toEqual(['job']);
      await d.enqueue('job', 0);
      await d.enqueue('job', 0);
      gate.release('job');
      await expect.poll(() => gate.started.length, POLL).toBe(2);
      gate.releaseAll();
      await d.onIdle();
      expect(gate.started).toEqual(['job', 'job']);
    });

    it('does not lose a retry enqueued while the run is finishing', async () => {
      const d = await make(1);
      const gate = new Gate();
      await d.start(gate.handler);
      await d.enqueue('job', 0);
      await expect.poll(() => gate.started, POLL).toEqual(['job']);
      // The retry arrives from inside the run's last moment: the handler has decided, not returned.
      gate.onFinishing = (id) => d.enqueue(id, 0);
      gate.hold = false;
      gate.release('job');
      await expect.poll(() => gate.started.length, POLL).toBe(2);
      await d.onIdle();
      expect(gate.started).toEqual(['job', 'job']);
    });

    it('leaves a running id alone in enqueueMany (restart recovery must not run a job twice)', async () => {
      const d = await make(1);
      const gate = new Gate();
      await d.start(gate.handler);
      await d.enqueue('job', 0);
      await expect.poll(() => gate.started, POLL).toEqual(['job']);
      await d.enqueueMany([{ id: 'job', priority: 0 }]);
      gate.releaseAll();
      await d.onIdle();
      expect(gate.started).toEqual(['job']);
    });

    it('removes a waiting job, not a running or unknown one', async () => {
      const d = await make(1);
      const gate = new Gate();
      await d.start(gate.handler);
      await d.enqueue('runs', 1);
      await expect.poll(() => gate.started, POLL).toEqual(['runs']);
      await d.enqueue('waits', 0);
      expect(await d.remove('runs')).toBe(false);
      expect(await d.remove('waits')).toBe(true);
      expect(await d.remove('never-enqueued')).toBe(false);
      gate.releaseAll();
      await d.onIdle();
      expect(gate.started).toEqual(['runs']);
    });

    it('aborts running handlers on close, waits for them, and refuses work afterwards', async () => {
      const d = await make(2);
      const gate = new Gate();
      await d.start(gate.handler);
      await d.enqueue('a', 0);
      await d.enqueue('b', 0);
      await expect.poll(() => gate.started.length, POLL).toBe(2);
      await d.close();
      expect(gate.active).toBe(0);
      await expect(d.enqueue('c', 0)).rejects.toThrow('closed');
    });
  });
}
