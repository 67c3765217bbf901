/**
 * The memory model every process shares through the store. The engine predicts and learns on an
 * in-process copy; what this process learned since its last write is journaled apart, so a write
 * merges only that news into the store's copy (counts are not added again on every write), then
 * takes in what other processes wrote. An OOM is written at once (another process may be about to
 * send the same shape there); successes are gathered and written at most once per `delayMs`, so a
 * job's completion does not wait for, or pay, a store write of the model.
 */
import { createMemoryModel, memoryModelFromJSON, mergeMemoryStates, type MemoryModel, type MemoryModelState } from '../recovery/index.js';
import type { JobStore } from '../store/contract.js';
import type { Clock, TimerHandle } from '../util/clock.js';
import { learnedMemoryFrom, MEMORY_MODEL_META_KEY, type LearnedMemory } from './learned-memory.js';

export class SharedMemoryModel {
  #model: MemoryModel = createMemoryModel();
  /** What this process learned since its last write to the store. */
  #journal: MemoryModel = createMemoryModel();
  #write: Promise<void> = Promise.resolve();
  #pending: TimerHandle | null = null;

  /** The model the engine uses: predictions from the whole copy, observations also journaled. */
  readonly view: MemoryModel = {
    predict: (wf, server) => this.#model.predict(wf, server),
    estimate: (wf) => this.#model.estimate(wf),
    observeOom: (o) => {
      this.#journal.observeOom(o);
      return this.#model.observeOom(o);
    },
    observeSuccess: (o) => {
      this.#journal.observeSuccess(o);
      this.#model.observeSuccess(o);
    },
    toJSON: () => this.#model.toJSON(),
  };

  constructor(
    private readonly store: () => Pick<JobStore, 'getMeta' | 'setMeta'>,
    private readonly onWriteError: (err: unknown) => void,
    private readonly timing: { clock: Clock; delayMs: number },
  ) {}

  /** Takes in what every process learned (an unreadable or missing state starts empty). */
  async load(): Promise<void> {
    this.#model = memoryModelFromJSON(await this.store().getMeta(MEMORY_MODEL_META_KEY).catch(() => null));
  }

  /**
   * Merges the journal into the store's copy, then takes theirs in; writes are chained. Not atomic
   * across processes: two writes at once can lose one's news, which the next OOM or success of that
   * shape teaches again. `soon`: gather with other news and write within `delayMs` (successes).
   */
  persist(opts: { soon?: boolean } = {}): void {
    if (opts.soon) {
      // Housekeeping: it must not keep a process alive on its own; close() flushes what is pending.
      this.#pending ??= this.timing.clock.setTimeout(() => this.persist(), this.timing.delayMs, { background: true });
      return;
    }
    if (this.#pending) {
      this.timing.clock.clearTimeout(this.#pending);
      this.#pending = null;
    }
    this.#write = this.#write
      .then(async () => {
        const news = this.#journal.toJSON();
        this.#journal = createMemoryModel();
        try {
          const stored = (await this.store().getMeta(MEMORY_MODEL_META_KEY)) as MemoryModelState | null;
          const merged = stored ? mergeMemoryStates(stored, news) : news;
          await this.store().setMeta(MEMORY_MODEL_META_KEY, merged);
          // What arrived while we wrote is in the fresh journal: add it on top of the shared state.
          this.#model = memoryModelFromJSON(mergeMemoryStates(merged, this.#journal.toJSON()));
        } catch (err) {
          // Kept for the next write.
          this.#journal = memoryModelFromJSON(mergeMemoryStates(news, this.#journal.toJSON()));
          throw err;
        }
      })
      .catch(this.onWriteError);
  }

  /** Writes what is gathered now; resolves when every write asked for so far is done (or failed and logged). */
  flushed(): Promise<void> {
    if (this.#pending) this.persist();
    return this.#write;
  }

  /** What is learned: the store's copy (every process) with this process's unwritten news on top. */
  async learned(): Promise<LearnedMemory> {
    await this.flushed();
    const stored = await this.store().getMeta(MEMORY_MODEL_META_KEY).catch(() => null);
    const news = this.#journal.toJSON();
    return learnedMemoryFrom(stored ? mergeMemoryStates(stored as MemoryModelState, news) : this.#model.toJSON());
  }
}
