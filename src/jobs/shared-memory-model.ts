/**
 * The memory model every process shares through the store. The engine predicts and learns on an
 * in-process copy; what this process learned since its last write is journaled apart, so a write
 * merges only that news into the store's copy (counts are not added again on every write), then
 * takes in what other processes wrote.
 */
import { createMemoryModel, memoryModelFromJSON, mergeMemoryStates, type MemoryModel, type MemoryModelState } from '../recovery/index.js';
import type { JobStore } from '../store/contract.js';
import { learnedMemoryFrom, MEMORY_MODEL_META_KEY, type LearnedMemory } from './learned-memory.js';

export class SharedMemoryModel {
  #model: MemoryModel = createMemoryModel();
  /** What this process learned since its last write to the store. */
  #journal: MemoryModel = createMemoryModel();
  #write: Promise<void> = Promise.resolve();

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
  ) {}

  /** Takes in what every process learned (an unreadable or missing state starts empty). */
  async load(): Promise<void> {
    this.#model = memoryModelFromJSON(await this.store().getMeta(MEMORY_MODEL_META_KEY).catch(() => null));
  }

  /**
   * Merges the journal into the store's copy, then takes theirs in; writes are chained. Not atomic
   * across processes: two writes at once can lose one's news, which the next OOM or success of that
   * shape teaches again.
   */
  persist(): void {
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

  /** Resolves when the writes asked for so far are done (or failed and logged). */
  flushed(): Promise<void> {
    return this.#write;
  }

  /** What is learned: the store's copy (every process) with this process's unwritten news on top. */
  async learned(): Promise<LearnedMemory> {
    await this.#write;
    const stored = await this.store().getMeta(MEMORY_MODEL_META_KEY).catch(() => null);
    const news = this.#journal.toJSON();
    return learnedMemoryFrom(stored ? mergeMemoryStates(stored as MemoryModelState, news) : this.#model.toJSON());
  }
}
