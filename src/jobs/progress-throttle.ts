/**
 * Progress updates reach subscribers at most once per interval per job, except the first and the
 * last, which always go out at once. Coalesces to the newest value.
 */
import type { Clock, TimerHandle } from '../util/clock.js';
import type { JobEvent } from './guard-api.js';

type ProgressEvent = Extract<JobEvent, { type: 'progress' }>;

interface Slot {
  last: number;
  pending: ProgressEvent | null;
  timer: TimerHandle | null;
  lastValue: number;
}

export class ProgressThrottle {
  readonly #slots = new Map<string, Slot>();

  constructor(
    private readonly clock: Clock,
    private readonly intervalMs: number,
    private readonly emit: (e: ProgressEvent) => void,
  ) {}

  /** Offers a progress event; `final` (100 %) bypasses the throttle. Values never go backwards per attempt. */
  push(e: ProgressEvent, final: boolean): void {
    let slot = this.#slots.get(e.jobId);
    if (!slot) {
      slot = { last: -Infinity, pending: null, timer: null, lastValue: -1 };
      this.#slots.set(e.jobId, slot);
    }
    const now = this.clock.now();
    if (final || now - slot.last >= this.intervalMs) {
      this.#clear(slot);
      this.#send(slot, e);
      return;
    }
    slot.pending = e;
    if (!slot.timer) {
      const s = slot;
      slot.timer = this.clock.setTimeout(() => {
        s.timer = null;
        if (s.pending) this.#send(s, s.pending);
      }, this.intervalMs - (now - slot.last));
    }
  }

  /** Sends any pending update now and forgets the job (call at terminal states). */
  flush(jobId: string): void {
    const slot = this.#slots.get(jobId);
    if (!slot) return;
    this.#clear(slot);
    if (slot.pending) this.#send(slot, slot.pending);
    this.#slots.delete(jobId);
  }

  close(): void {
    for (const slot of this.#slots.values()) this.#clear(slot);
    this.#slots.clear();
  }

  #send(slot: Slot, e: ProgressEvent): void {
    slot.pending = null;
    slot.last = this.clock.now();
    if (e.progress === slot.lastValue) return;
    slot.lastValue = e.progress;
    this.emit(e);
  }

  #clear(slot: Slot): void {
    if (slot.timer) this.clock.clearTimeout(slot.timer);
    slot.timer = null;
  }
}
