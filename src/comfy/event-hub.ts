/**
 * A tiny typed event hub: listeners (`on` -> unsubscribe) and async iterators over the same
 * events. Iterators buffer only from the moment they are created; with no subscriber an event
 * costs one size check. A throwing listener does not stop the others.
 */

/** Receives one event. */
export type Listener<T> = (event: T) => void;

interface IteratorState<T> {
  buffer: T[];
  wake: (() => void) | undefined;
  done: boolean;
}

/** Typed listeners plus async iteration; `end()` finishes every iterator after its buffer drains. */
export class EventHub<T> {
  readonly #listeners = new Set<{ fn: Listener<T> }>();
  readonly #iterators = new Set<IteratorState<T>>();
  readonly #onListenerError: ((err: unknown) => void) | undefined;
  #ended = false;

  constructor(onListenerError?: (err: unknown) => void) {
    this.#onListenerError = onListenerError;
  }

  /** Number of listeners and live iterators. */
  get size(): number {
    return this.#listeners.size + this.#iterators.size;
  }

  /** True once `end()` was called. */
  get ended(): boolean {
    return this.#ended;
  }

  /** Adds a listener; returns its unsubscribe function (safe to call twice). */
  on(fn: Listener<T>): () => void {
    const entry = { fn };
    this.#listeners.add(entry);
    return () => {
      this.#listeners.delete(entry);
    };
  }

  /** Delivers `event` to every listener and iterator. */
  emit(event: T): void {
    if (this.#ended) return;
    for (const it of this.#iterators) {
      it.buffer.push(event);
      it.wake?.();
    }
    for (const entry of [...this.#listeners]) {
      try {
        entry.fn(event);
      } catch (err) {
        this.#onListenerError?.(err);
      }
    }
  }

  /** No more events: iterators finish once drained, later `emit`s are ignored. */
  end(): void {
    if (this.#ended) return;
    this.#ended = true;
    for (const it of this.#iterators) {
      it.done = true;
      it.wake?.();
    }
  }

  /** An async iterator of the events from now on; ends at `end()`, on `return()`, or when `signal` aborts. */
  iterate(signal?: AbortSignal): AsyncIterableIterator<T> {
    const state: IteratorState<T> = { buffer: [], wake: undefined, done: this.#ended || signal?.aborted === true };
    const finish = () => {
      state.done = true;
      state.buffer.length = 0;
      this.#iterators.delete(state);
      signal?.removeEventListener('abort', finish);
      state.wake?.();
    };
    if (!state.done) {
      this.#iterators.add(state);
      signal?.addEventListener('abort', finish, { once: true });
    }
    const iterator: AsyncIterableIterator<T> = {
      next: async (): Promise<IteratorResult<T>> => {
        for (;;) {
          if (state.buffer.length > 0) return { value: state.buffer.shift() as T, done: false };
          if (state.done) {
            finish();
            return { value: undefined, done: true };
          }
          await new Promise<void>((resolve) => {
            state.wake = resolve;
          });
          state.wake = undefined;
        }
      },
      return: async (): Promise<IteratorResult<T>> => {
        finish();
        return { value: undefined, done: true };
      },
      [Symbol.asyncIterator]() {
        return iterator;
      },
    };
    return iterator;
  }
}
