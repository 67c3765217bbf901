/**
 * A binary min-heap of waiting job ids ordered by (priority descending, arrival ascending), with an
 * index from id to entry so a duplicate check is O(1) and a removal O(log n). Queueing n jobs costs
 * O(n log n) instead of the O(n²) of sorting an array on every insert.
 */

interface Entry {
  id: string;
  priority: number;
  seq: number;
  /** Position in the heap array, kept up to date by every move. */
  at: number;
}

function before(a: Entry, b: Entry): boolean {
  return a.priority !== b.priority ? a.priority > b.priority : a.seq < b.seq;
}

/** Waiting jobs: higher priority first, then first in first out. */
export class PriorityHeap {
  readonly #heap: Entry[] = [];
  readonly #byId = new Map<string, Entry>();
  #seq = 0;

  get size(): number {
    return this.#heap.length;
  }

  has(id: string): boolean {
    return this.#byId.has(id);
  }

  /** Adds `id`; false (and nothing changes) when it is already waiting. */
  push(id: string, priority: number): boolean {
    if (this.#byId.has(id)) return false;
    const e: Entry = { id, priority: Number.isNaN(priority) ? 0 : priority, seq: this.#seq++, at: this.#heap.length };
    this.#heap.push(e);
    this.#byId.set(id, e);
    this.#up(e.at);
    return true;
  }

  /** Takes the next id to run, or undefined when empty. */
  pop(): string | undefined {
    const top = this.#heap[0];
    if (!top) return undefined;
    this.#removeAt(0);
    return top.id;
  }

  /** Removes a waiting id; false when it was not waiting. */
  remove(id: string): boolean {
    const e = this.#byId.get(id);
    if (!e) return false;
    this.#removeAt(e.at);
    return true;
  }

  clear(): void {
    this.#heap.length = 0;
    this.#byId.clear();
  }

  #removeAt(i: number): void {
    const e = this.#heap[i];
    const last = this.#heap.pop();
    if (!e || !last) return;
    this.#byId.delete(e.id);
    if (last === e) return;
    this.#heap[i] = last;
    last.at = i;
    this.#down(i);
    this.#up(last.at);
  }

  #swap(i: number, j: number): void {
    const a = this.#heap[i] as Entry;
    const b = this.#heap[j] as Entry;
    this.#heap[i] = b;
    this.#heap[j] = a;
    b.at = i;
    a.at = j;
  }

  #up(i: number): void {
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(this.#heap[i] as Entry, this.#heap[parent] as Entry)) return;
      this.#swap(i, parent);
      i = parent;
    }
  }

  #down(i: number): void {
    const n = this.#heap.length;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let best = i;
      if (l < n && before(this.#heap[l] as Entry, this.#heap[best] as Entry)) best = l;
      if (r < n && before(this.#heap[r] as Entry, this.#heap[best] as Entry)) best = r;
      if (best === i) return;
      this.#swap(i, best);
      i = best;
    }
  }
}
