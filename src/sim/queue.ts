/**
 * ComfyUI's `PromptQueue`: a binary min-heap of `[number, prompt_id, prompt, extra_data, outputs]`
 * (so `GET /queue` lists pending items in heap order, as the real server does), the running items,
 * the history (insertion-ordered, capped at 10000 entries, re-runs overwrite in place) and the
 * `/free` flags the worker applies between prompts.
 */
import type { HistoryEntry, HistoryMessage, QueueItem } from '../comfy/types.js';
import { HandlerCrash } from '../comfy/validate.js';

export const MAXIMUM_HISTORY_SIZE = 10000;

/** Python tuple `<` for queue items; equal numbers and ids compare the graphs, which raises. */
function less(a: QueueItem, b: QueueItem): boolean {
  if (a[0] !== b[0]) return a[0] < b[0];
  if (a[1] !== b[1]) return a[1] < b[1];
  throw new HandlerCrash('TypeError', "'<' not supported between instances of 'dict' and 'dict'");
}

/** `copy.deepcopy` for JSON data. */
export function deepCopy<T>(v: T): T {
  return structuredClone(v);
}

export interface Flags {
  unload_models?: unknown;
  free_memory?: unknown;
}

export class PromptQueue {
  private heap: QueueItem[] = [];
  private readonly running = new Map<number, QueueItem>();
  private readonly history = new Map<string, HistoryEntry>();
  private flags: Flags = {};
  private taskCounter = 0;

  /** `onUpdated` is ComfyUI's `queue_updated`: a status broadcast. */
  constructor(private readonly onUpdated: () => void) {}

  private siftDown(start: number, pos: number): void {
    const h = this.heap;
    while (pos > start) {
      const parent = (pos - 1) >> 1;
      if (!less(h[pos] as QueueItem, h[parent] as QueueItem)) break;
      [h[pos], h[parent]] = [h[parent] as QueueItem, h[pos] as QueueItem];
      pos = parent;
    }
  }

  private siftUp(pos: number): void {
    const h = this.heap;
    const end = h.length;
    const start = pos;
    let child = 2 * pos + 1;
    while (child < end) {
      const right = child + 1;
      if (right < end && !less(h[child] as QueueItem, h[right] as QueueItem)) child = right;
      [h[pos], h[child]] = [h[child] as QueueItem, h[pos] as QueueItem];
      pos = child;
      child = 2 * pos + 1;
    }
    this.siftDown(start, pos);
  }

  /**
   * heappush + status broadcast. Like CPython's heapq, the item stays in the list when the
   * comparison raises; the HTTP handler then answers 500 although the prompt is queued.
   */
  put(item: QueueItem): void {
    this.heap.push(item);
    this.siftDown(0, this.heap.length - 1);
    this.onUpdated();
  }

  /** Takes the smallest item for the worker (broadcasting status); undefined when empty. */
  get(): { item: QueueItem; id: number } | undefined {
    if (this.heap.length === 0) return undefined;
    const last = this.heap.pop() as QueueItem;
    let item = last;
    if (this.heap.length > 0) {
      item = this.heap[0] as QueueItem;
      this.heap[0] = last;
      try {
        this.siftUp(0);
      } catch {
        // A dict comparison killed the real worker thread here; the simulator keeps going.
      }
    }
    const id = this.taskCounter++;
    this.running.set(id, deepCopy(item));
    this.onUpdated();
    return { item, id };
  }

  /** Moves a finished item to history and broadcasts status. */
  taskDone(id: number, result: { outputs: Record<string, unknown>; meta: Record<string, unknown> }, status: { status_str: string; completed: boolean; messages: HistoryMessage[] }): void {
    const prompt = this.running.get(id);
    this.running.delete(id);
    if (!prompt) return;
    if (this.history.size > MAXIMUM_HISTORY_SIZE) {
      const oldest = this.history.keys().next().value;
      if (oldest !== undefined) this.history.delete(oldest);
    }
    const extra = prompt[3];
    delete extra.auth_token_comfy_org;
    delete extra.api_key_comfy_org;
    this.history.set(prompt[1], {
      prompt,
      outputs: result.outputs as HistoryEntry['outputs'],
      status: deepCopy(status),
      meta: result.meta as HistoryEntry['meta'],
    });
    this.onUpdated();
  }

  runningItems(): QueueItem[] {
    return [...this.running.values()];
  }

  pendingItems(): QueueItem[] {
    return [...this.heap];
  }

  tasksRemaining(): number {
    return this.heap.length + this.running.size;
  }

  wipeQueue(): void {
    this.heap = [];
    this.onUpdated();
  }

  /** Removes the first pending item with this id (ComfyUI broadcasts twice when it was the last). */
  deleteQueueItem(promptId: unknown): boolean {
    const idx = this.heap.findIndex((x) => x[1] === promptId);
    if (idx < 0) return false;
    if (this.heap.length === 1) {
      this.wipeQueue();
    } else {
      this.heap.splice(idx, 1);
      for (let i = (this.heap.length >> 1) - 1; i >= 0; i--) {
        try {
          this.siftUp(i);
        } catch {
          // Same dict comparison as above; ordering stays as is.
        }
      }
    }
    this.onUpdated();
    return true;
  }

  /** `get_history` with ComfyUI's max_items/offset arithmetic. */
  getHistory(maxItems: number | undefined, offset: number): Record<string, HistoryEntry> {
    const out: Record<string, HistoryEntry> = {};
    let start = offset;
    if (start < 0 && maxItems !== undefined) start = this.history.size - maxItems;
    let i = 0;
    let count = 0;
    for (const [k, v] of this.history) {
      if (i >= start) {
        out[k] = v;
        count++;
        if (maxItems !== undefined && count >= maxItems) break;
      }
      i++;
    }
    return out;
  }

  historyEntry(promptId: string): HistoryEntry | undefined {
    return this.history.get(promptId);
  }

  wipeHistory(): void {
    this.history.clear();
  }

  deleteHistoryItem(promptId: unknown): void {
    if (typeof promptId === 'string') this.history.delete(promptId);
  }

  setFlag(name: keyof Flags, value: unknown): void {
    this.flags[name] = value;
  }

  /** Returns the flags and clears them (ComfyUI's `get_flags(reset=True)`). */
  takeFlags(): Flags {
    const f = this.flags;
    this.flags = {};
    return f;
  }
}
