import type { Dispatcher, JobHandler } from './contract.js';

interface Waiting {
  id: string;
  priority: number;
  seq: number;
}

/** In-process priority dispatcher with a concurrency limit. */
export class InProcessDispatcher implements Dispatcher {
  readonly kind = 'in-process' as const;
  readonly #concurrency: number;
  readonly #waiting: Waiting[] = [];
  readonly #active = new Map<string, AbortController>();
  readonly #running = new Set<Promise<void>>();
  #handler: JobHandler | null = null;
  #seq = 0;
  #closing: Promise<void> | null = null;
  #idleWaiters: Array<() => void> = [];

  /** @param concurrency jobs run at once. @default 8 */
  constructor(opts: { concurrency?: number } = {}) {
    const c = opts.concurrency ?? 8;
    if (!Number.isInteger(c) || c < 1) throw new RangeError(`concurrency must be an integer >= 1, got ${String(c)}`);
    this.#concurrency = c;
  }

  async start(handler: JobHandler): Promise<void> {
    this.#handler = handler;
    this.#pump();
  }

  async enqueue(jobId: string, priority: number): Promise<void> {
    if (this.#closing) throw new Error('dispatcher is closed');
    if (this.#active.has(jobId) || this.#waiting.some((w) => w.id === jobId)) return;
    this.#waiting.push({ id: jobId, priority, seq: this.#seq++ });
    this.#waiting.sort((a, b) => b.priority - a.priority || a.seq - b.seq);
    this.#pump();
  }

  async remove(jobId: string): Promise<boolean> {
    const i = this.#waiting.findIndex((w) => w.id === jobId);
    if (i < 0) return false;
    this.#waiting.splice(i, 1);
    this.#checkIdle();
    return true;
  }

  async counts(): Promise<{ waiting: number; active: number }> {
    return { waiting: this.#waiting.length, active: this.#active.size };
  }

  onIdle(): Promise<void> {
    if (this.#waiting.length === 0 && this.#active.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  close(): Promise<void> {
    if (this.#closing) return this.#closing;
    this.#closing = (async () => {
      this.#waiting.length = 0;
      for (const ac of this.#active.values()) ac.abort(new Error('dispatcher closing'));
      await Promise.allSettled([...this.#running]);
    })();
    return this.#closing;
  }

  #pump(): void {
    const handler = this.#handler;
    if (!handler || this.#closing) return;
    while (this.#active.size < this.#concurrency && this.#waiting.length > 0) {
      const next = this.#waiting.shift();
      if (!next) break;
      const ac = new AbortController();
      this.#active.set(next.id, ac);
      const run = async (): Promise<void> => {
        try {
          await handler(next.id, ac.signal);
        } catch {
          // The handler owns error reporting; a throw here must not stop the dispatcher.
        }
      };
      const p: Promise<void> = run().finally(() => {
        this.#active.delete(next.id);
        this.#running.delete(p);
        this.#pump();
        this.#checkIdle();
      });
      this.#running.add(p);
    }
  }

  #checkIdle(): void {
    if (this.#waiting.length === 0 && this.#active.size === 0) {
      const waiters = this.#idleWaiters;
      this.#idleWaiters = [];
      for (const w of waiters) w();
    }
  }
}
