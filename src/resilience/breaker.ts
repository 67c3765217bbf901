/**
 * Per-server circuit breaker on cockatiel's CircuitBreakerPolicy + ConsecutiveBreaker.
 *
 * cockatiel owns the state machine (failure counting, open / half-open / closed / isolated,
 * isolation handles, `execute` with an AbortSignal). Three things sit on top, each thin:
 *
 * 1. **Clock.** cockatiel compares `Date.now()` with its own open time. We give it
 *    `halfOpenAfter: 0` and gate every call to it on the injected Clock instead: while
 *    `clock.now() - openedAt < halfOpenAfterMs` nothing reaches cockatiel (calls fail with
 *    BrokenCircuitError, recorded outcomes are ignored). A timer on the same clock announces the
 *    open → half_open change as an event.
 * 2. **Closing after N successes.** cockatiel closes after one half-open success. The breaker we
 *    pass it wraps ConsecutiveBreaker: from the moment cockatiel half-opens we are "on probation"
 *    until `successesToClose` successes; while on probation we report `half_open`, admit only
 *    `halfOpenTrials` calls at a time, and a single failure makes the wrapped breaker answer
 *    "open now", so cockatiel re-opens.
 * 3. **Outcomes of work that does not run inside `execute`.** A job runs for minutes over a
 *    WebSocket; its outcome is fed back with `recordSuccess()` / `recordFailure()`, which run a
 *    no-op (or a marker throw) through cockatiel's `execute` so the counting stays cockatiel's.
 */
import {
  BrokenCircuitError,
  CircuitState,
  ConsecutiveBreaker,
  EventEmitter,
  circuitBreaker,
  handleWhen,
  type CircuitBreakerPolicy,
  type IBreaker,
  type IDisposable,
} from 'cockatiel';
import { z } from 'zod';
import { systemClock, type Clock, type TimerHandle } from '../util/clock.js';
import { configErrorFromZod } from './config-error.js';

/** Breaker thresholds. */
export interface BreakerOptions {
  /** Consecutive failures that open the breaker. @default 5 */
  failureThreshold?: number;
  /** Time an open breaker waits before it lets a trial through. @default 60000 */
  halfOpenAfterMs?: number;
  /** Calls admitted at once while half-open. @default 1 */
  halfOpenTrials?: number;
  /** Successes while half-open needed to close. @default 2 */
  successesToClose?: number;
}

export type BreakerState = 'closed' | 'open' | 'half_open' | 'isolated';

/** A change of a breaker's state. */
export interface BreakerStateChange {
  from: BreakerState;
  to: BreakerState;
  /** Clock time of the change. */
  at: number;
  /** Consecutive failures counted when it changed. */
  failures: number;
}

export const DEFAULT_BREAKER_OPTIONS: Readonly<Required<BreakerOptions>> = Object.freeze({
  failureThreshold: 5,
  halfOpenAfterMs: 60_000,
  halfOpenTrials: 1,
  successesToClose: 2,
});

const breakerOptionsSchema = z.strictObject({
  failureThreshold: z.number().int('must be an integer').min(1, 'must be >= 1').optional(),
  halfOpenAfterMs: z.number().refine(Number.isFinite, 'must be a finite number').min(0, 'must be >= 0').optional(),
  halfOpenTrials: z.number().int('must be an integer').min(1, 'must be >= 1').optional(),
  successesToClose: z.number().int('must be an integer').min(1, 'must be >= 1').optional(),
});

/** Merges defaults and validates; throws a PolicyConfigError naming the bad field. */
export function resolveBreakerOptions(opts: BreakerOptions = {}): Readonly<Required<BreakerOptions>> {
  const parsed = breakerOptionsSchema.safeParse(opts);
  if (!parsed.success) throw configErrorFromZod('breaker options', 'breaker', parsed.error.issues);
  const out: Required<BreakerOptions> = { ...DEFAULT_BREAKER_OPTIONS };
  for (const [k, v] of Object.entries(parsed.data) as Array<[keyof BreakerOptions, number | undefined]>) {
    if (v !== undefined) out[k] = v;
  }
  return Object.freeze(out);
}

/** Thrown through cockatiel by `recordFailure()`; never escapes this module. */
const kRecordedFailure = Symbol('comfyguard.recordedFailure');

export interface ServerBreakerOptions extends BreakerOptions {
  clock?: Clock;
  /** Which errors thrown inside `execute` count as failures. @default every error */
  isFailure?: (error: unknown) => boolean;
}

/** A per-server circuit breaker (see the module comment for how it layers on cockatiel). */
export class ServerBreaker {
  readonly options: Readonly<Required<BreakerOptions>>;
  readonly #clock: Clock;
  readonly #isFailure: (error: unknown) => boolean;
  readonly #events = new EventEmitter<BreakerStateChange>();
  #policy!: CircuitBreakerPolicy;
  #counter!: ConsecutiveBreaker;
  #policySub: IDisposable | null = null;
  #isolation: IDisposable | null = null;
  /** Clock time cockatiel last opened; null when not open. */
  #openedAt: number | null = null;
  /** Successes seen since the last half-open; null when not on probation. */
  #probation: number | null = null;
  /** Trial slots taken while half-open, with the time each was taken (so a lost outcome cannot wedge it). */
  #trials: number[] = [];
  #timer: TimerHandle | null = null;
  #reported: BreakerState = 'closed';
  #outcomes: Promise<void> = Promise.resolve();
  #closed = false;

  constructor(opts: ServerBreakerOptions = {}) {
    const { clock, isFailure, ...thresholds } = opts;
    this.options = resolveBreakerOptions(thresholds);
    this.#clock = clock ?? systemClock;
    this.#isFailure = isFailure ?? (() => true);
    this.#build();
  }

  /** Current state, as of the injected clock. */
  get state(): BreakerState {
    switch (this.#policy.state) {
      case CircuitState.Isolated:
        return 'isolated';
      case CircuitState.Open:
        return this.#waiting() ? 'open' : 'half_open';
      case CircuitState.HalfOpen:
        return 'half_open';
      default:
        return this.#probation === null ? 'closed' : 'half_open';
    }
  }

  /** Consecutive failures counted by cockatiel's ConsecutiveBreaker. */
  get failures(): number {
    return typeof this.#counter.state === 'number' ? this.#counter.state : 0;
  }

  /** Whether a call would be admitted now (does not take a half-open trial slot). */
  canPass(): boolean {
    const s = this.state;
    if (s === 'closed') return true;
    if (s !== 'half_open') return false;
    this.#expireTrials();
    return this.#trials.length < this.options.halfOpenTrials;
  }

  /**
   * Admits one call: always when closed; when half-open, takes one of the `halfOpenTrials` slots
   * (released by the next recorded outcome, or after `halfOpenAfterMs` if none arrives).
   */
  tryPass(): boolean {
    if (!this.canPass()) return false;
    if (this.state === 'half_open') this.#trials.push(this.#clock.now());
    return true;
  }

  /** Feeds a success of work done outside `execute` (a finished job) into the breaker. */
  recordSuccess(): Promise<void> {
    return this.#record(() => undefined);
  }

  /** Feeds a failure of work done outside `execute` into the breaker. */
  recordFailure(): Promise<void> {
    return this.#record(() => {
      throw kRecordedFailure;
    });
  }

  /**
   * Outcomes go through cockatiel one after another, in the order they were reported: cockatiel
   * settles a sync throw a tick earlier than a return, which would otherwise reorder them.
   */
  #record(outcome: () => undefined): Promise<void> {
    this.#outcomes = this.#outcomes.then(async () => {
      if (!this.#admitsOutcome()) return;
      this.#releaseTrial();
      await this.#policy.execute(outcome).catch(() => undefined);
      this.#sync();
    });
    return this.#outcomes;
  }

  /**
   * Runs `fn` through the breaker. Rejects with cockatiel's BrokenCircuitError while open (or when
   * no half-open trial slot is free) and IsolatedCircuitError while isolated.
   */
  async execute<T>(fn: (signal: AbortSignal) => PromiseLike<T> | T, signal?: AbortSignal): Promise<T> {
    if (this.#policy.state !== CircuitState.Isolated && !this.tryPass()) {
      throw new BrokenCircuitError(`Breaker is ${this.state}: call not admitted`);
    }
    const trial = this.state === 'half_open';
    try {
      return await this.#policy.execute(({ signal: s }) => fn(s), signal);
    } finally {
      if (trial) this.#releaseTrial();
      this.#sync();
    }
  }

  /** Subscribes to state changes; returns the unsubscribe function. */
  onStateChange(listener: (change: BreakerStateChange) => void): () => void {
    const sub = this.#events.addListener(listener);
    return () => sub.dispose();
  }

  /** Holds the breaker open until `reset()` (e.g. an operator took the server out). */
  isolate(): void {
    if (this.#isolation === null) this.#isolation = this.#policy.isolate();
    this.#sync();
  }

  /** Back to closed with a clean count, whatever the state (operator action or a recovered server). */
  reset(): void {
    this.#isolation?.dispose();
    this.#isolation = null;
    if (this.#policy.state !== CircuitState.Closed || this.#probation !== null || this.failures > 0) this.#build();
    this.#sync();
  }

  /** Stops the half-open timer. Idempotent. */
  close(): void {
    this.#closed = true;
    this.#clearTimer();
    this.#policySub?.dispose();
    this.#policySub = null;
  }

  #build(): void {
    this.#policySub?.dispose();
    this.#clearTimer();
    this.#openedAt = null;
    this.#probation = null;
    this.#trials = [];
    this.#counter = new ConsecutiveBreaker(this.options.failureThreshold);
    const counter = this.#counter;
    const probationBreaker: IBreaker = {
      get state() {
        return counter.state;
      },
      set state(v: unknown) {
        counter.state = typeof v === 'number' ? v : 0;
      },
      success: () => {
        counter.success();
        if (this.#probation !== null) {
          this.#probation += 1;
          if (this.#probation >= this.options.successesToClose) this.#probation = null;
        }
      },
      failure: () => {
        const reachedThreshold = counter.failure();
        // On probation a single failure re-opens; otherwise only the consecutive count decides.
        return this.#probation !== null || reachedThreshold;
      },
    };
    this.#policy = circuitBreaker(
      handleWhen((e) => e === (kRecordedFailure as unknown) || this.#isFailure(e)),
      { halfOpenAfter: 0, breaker: probationBreaker },
    );
    this.#policySub = this.#policy.onStateChange((s) => {
      if (s === CircuitState.Open) {
        this.#openedAt = this.#clock.now();
        this.#probation = null;
        this.#trials = [];
        this.#armTimer();
      } else if (s === CircuitState.HalfOpen) {
        this.#probation = 0;
      } else {
        this.#openedAt = null;
      }
      this.#sync();
    });
  }

  /** True while open and the half-open wait has not elapsed on the injected clock. */
  #waiting(): boolean {
    return this.#openedAt !== null && this.#clock.now() - this.#openedAt < this.options.halfOpenAfterMs;
  }

  #admitsOutcome(): boolean {
    const s = this.#policy.state;
    return s !== CircuitState.Isolated && !(s === CircuitState.Open && this.#waiting());
  }

  #releaseTrial(): void {
    this.#trials.shift();
  }

  #expireTrials(): void {
    const now = this.#clock.now();
    this.#trials = this.#trials.filter((t) => now - t < this.options.halfOpenAfterMs);
  }

  #armTimer(): void {
    this.#clearTimer();
    if (this.#closed) return;
    this.#timer = this.#clock.setTimeout(() => {
      this.#timer = null;
      this.#sync();
    }, this.options.halfOpenAfterMs);
  }

  #clearTimer(): void {
    if (this.#timer !== null) this.#clock.clearTimeout(this.#timer);
    this.#timer = null;
  }

  /** Emits a change when the reported state differs from the last one emitted. */
  #sync(): void {
    const now = this.state;
    if (now === this.#reported) return;
    const change: BreakerStateChange = { from: this.#reported, to: now, at: this.#clock.now(), failures: this.failures };
    this.#reported = now;
    this.#events.emit(change);
  }
}
