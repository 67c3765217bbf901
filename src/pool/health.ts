/**
 * Readiness of one server, on top of its health checks. A healthy result is trusted for the
 * health TTL, but a server that is down or still booting (a cold ComfyUI loading its nodes, a pod
 * or serverless worker starting) is probed again on a short backoff, so it is used the moment it
 * answers instead of a whole TTL later. It also remembers since when the server has been down,
 * which is what an operator asks first ("unreachable since 10:31:02").
 */
import type { HealthResult } from '../resilience/health.js';

/** `ready`: the last probe answered. `booting`: something answers for it but not ComfyUI yet (a proxy's 502/503/504, a timeout). `unreachable`: nothing answers. */
export type ReadinessState = 'unknown' | 'ready' | 'booting' | 'unreachable';

/** What `state()` shows about a server's readiness. */
export interface ReadinessView {
  state: ReadinessState;
  /** Clock time it went down (or was first seen down); null while ready or unknown. */
  since: number | null;
  /** Clock time of the next probe while down; null otherwise. */
  nextProbeAt: number | null;
}

export interface ReadinessOptions {
  /** First re-probe after a failed one. @default 250 */
  minBackoffMs?: number;
  /** Longest pause between probes of a down server (never longer than the health TTL). @default 2000 */
  maxBackoffMs?: number;
}

/** Errors that mean a proxy or the server itself answered while ComfyUI is not up yet. */
const BOOTING = /\b(HTTP )?50[234]\b|Bad Gateway|Service Unavailable|Gateway Time-?out|timed out|timeout/i;

/** Tracks one server's readiness from its health results. */
export class Readiness {
  readonly #min: number;
  readonly #max: number;
  #state: ReadinessState = 'unknown';
  #since: number | null = null;
  #failures = 0;
  #nextProbeAt: number | null = null;

  constructor(opts: ReadinessOptions & { healthTtlMs: number }) {
    this.#max = Math.max(1, Math.min(opts.maxBackoffMs ?? 2_000, opts.healthTtlMs));
    this.#min = Math.max(1, Math.min(opts.minBackoffMs ?? 250, this.#max));
  }

  /** Folds in a health result (the pool calls this after every probe). */
  note(r: HealthResult | null): void {
    if (r === null) return;
    if (r.healthy) {
      this.#state = 'ready';
      this.#since = null;
      this.#failures = 0;
      this.#nextProbeAt = null;
      return;
    }
    if (this.#state === 'ready' || this.#state === 'unknown' || this.#since === null) this.#since = r.checkedAt;
    this.#state = BOOTING.test(r.error ?? '') ? 'booting' : 'unreachable';
    this.#nextProbeAt = r.checkedAt + this.#backoff();
    this.#failures += 1;
  }

  /** True when the server is down and its next probe is due (a down server is not trusted for a TTL). */
  probeDue(now: number): boolean {
    return this.#nextProbeAt !== null && now >= this.#nextProbeAt;
  }

  /** Clock time of the next probe while down, else null. */
  get nextProbeAt(): number | null {
    return this.#nextProbeAt;
  }

  get state(): ReadinessState {
    return this.#state;
  }

  view(): ReadinessView {
    return { state: this.#state, since: this.#since, nextProbeAt: this.#nextProbeAt };
  }

  /** "unreachable since 2026-12-03T10:31:02Z: connect ECONNREFUSED …" while down; the error as is otherwise. */
  describe(error: string | null): string | null {
    if (this.#since === null || (this.#state !== 'booting' && this.#state !== 'unreachable')) return error;
    const when = new Date(this.#since).toISOString().replace(/\.\d{3}Z$/, 'Z');
    return `${this.#state} since ${when}${error ? `: ${error}` : ''}`;
  }

  #backoff(): number {
    return Math.min(this.#max, this.#min * 2 ** Math.min(this.#failures, 16));
  }
}
