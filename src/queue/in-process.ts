/**
 * The default dispatcher: a priority heap in this process with a concurrency limit. Enqueue,
 * remove and taking the next job are O(log n), so queueing a million jobs costs the same per job
 * as queueing the first.
 */
import type { Dispatcher, JobHandler } from './contract.js';
import { PriorityHeap } from './priority-heap.js';

/** In-process priority dispatcher with a concurrency limit. */
export class InProcessDispatcher implements Dispatcher {
  readonly kind = 'in-process' as const;
  readonly #concurrency: number;
  readonly #waiting = new PriorityHeap();
  readonly #active = new Map<string, AbortController>();
  /** Active ids enqueued again while running: each runs once more when its current run ends. */
  readonly #rerun = new Map<string, number>();
  readonly #running = new Set<Promise<void>>();
  #handler: JobHandler | null = null;
  #closing: Promise<void> | null = null;
  #idleWaiters: Array<() => void> = [];

  /** @param concurrency jobs run at once. @default 8 */
  constructor(opts: { concurrency?: number } = {}) {
    const c = opts.concurrency ?? 8;
    if (!Number.isInteger(c) || c < 1) throw new RangeError(`concurrency must be an integer >= 1, got ${String(c)}`);
    this.#concurrency = c;
  }

  /** Starts delivering jobs to `handler`. */
  async start(handler: JobHandler): Promise<void> {
    this.#handler = handler;
    this.#pump();
  }

  /** Queues a job; a waiting id is left as is, a running id runs once more after its current run. */
  async enqueue(jobId: string, priority: number): Promise<void> {
    if (this.#closing) throw new Error('dispatcher is closed');
    if (this.#active.has(jobId)) {
      this.#rerun.set(jobId, priority);
      return;
    }
    if (this.#waiting.push(jobId, priority)) this.#pump();
  }

  /** Queues many jobs; running ids are left alone. */
  async enqueueMany(jobs: ReadonlyArray<{ id: string; priority: number }>): Promise<void> {
    if (this.#closing) throw new Error('dispatcher is closed');
    for (const j of jobs) if (!this.#active.has(j.id)) this.#waiting.push(j.id, j.priority);
    this.#pump();
  }

  /** Removes a waiting job (and a pending re-run of a running one). */
  async remove(jobId: string): Promise<boolean> {
    const removed = this.#waiting.remove(jobId) || this.#rerun.delete(jobId);
    this.#checkIdle();
    return removed;
  }

  /** Jobs waiting (pending re-runs included) and running. */
  async counts(): Promise<{ waiting: number; active: number }> {
    return { waiting: this.#waiting.size + this.#rerun.size, active: this.#active.size };
  }

  /** Resolves when nothing is waiting or running. */
  onIdle(): Promise<void> {
    if (this.#isIdle()) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  /** Stops taking jobs, aborts running handlers and waits for them. Idempotent. */
  close(): Promise<void> {
    if (this.#closing) return this.#closing;
    this.#closing = (async () => {
      this.#waiting.clear();
      this.#rerun.clear();
      for (const ac of this.#active.values()) ac.abort(new Error('dispatcher closing'));
      await Promise.allSettled([...this.#running]);
    })();
    return this.#closing;
  }

  #pump(): void {
    const handler = this.#handler;
    if (!handler || this.#closing) return;
    while (this.#active.size < this.#concurrency) {
      const id = this.#waiting.pop();
      if (id === undefined) break;
      const ac = new AbortController();
      this.#active.set(id, ac);
      const run = async (): Promise<void> => {
        try {
          await handler(id, ac.signal);
        } catch {
          // The handler owns error reporting; a throw here must not stop the dispatcher.
        }
      };
      const p: Promise<void> = run().finally(() => {
        this.#active.delete(id);
        this.#running.delete(p);
        const again = this.#rerun.get(id);
        if (again !== undefined && !this.#closing) {
          this.#rerun.delete(id);
          this.#waiting.push(id, again);
        }
        this.#pump();
        this.#checkIdle();
      });
      this.#running.add(p);
    }
  }

  #isIdle(): boolean {
    return this.#waiting.size === 0 && this.#rerun.size === 0 && this.#active.size === 0;
  }

  #checkIdle(): void {
    if (!this.#isIdle()) return;
    const waiters = this.#idleWaiters;
    this.#idleWaiters = [];
    for (const w of waiters) w();
  }
}
