/**
 * The pool's degradation level: a signal, not an action. It drops as the share of unhealthy
 * capacity and the recent error rate rise, and climbs back (with a little hysteresis, so it does
 * not flap) as they recover. Jobs that opt in scale their quality by the level's factor.
 */
import { systemClock, type Clock } from '../util/clock.js';

export const DEGRADATION_LEVELS = ['full', 'high', 'medium', 'low', 'minimal'] as const;
export type DegradationLevel = (typeof DEGRADATION_LEVELS)[number];

/** Share of resolution and steps a degraded job keeps at each level. */
export const DEGRADATION_FACTORS: Readonly<Record<DegradationLevel, number>> = Object.freeze({
  full: 1,
  high: 0.8,
  medium: 0.6,
  low: 0.4,
  minimal: 0.2,
});

/** A level and its factor, as the pool reports it. */
export interface Degradation {
  level: DegradationLevel;
  factor: number;
}

/** The inputs of the level. */
export interface DegradationInput {
  /** Sum of the weights of all servers. */
  capacity: number;
  /** Sum of the weights of servers unhealthy, held unhealthy, or with a breaker not closed. */
  unhealthyCapacity: number;
  /** Failures / outcomes over the recent window; null when there are too few outcomes to judge. */
  errorRate: number | null;
}

/** The worse of the unhealthy share and the error rate, in [0, 1]. */
export function degradationScore(i: DegradationInput): number {
  const share = i.capacity > 0 ? i.unhealthyCapacity / i.capacity : 1;
  return clamp01(Math.max(share, i.errorRate ?? 0));
}

/** Score -> level: each level spans a fifth of the score, from full (< 0.2) to minimal (>= 0.8). */
export function levelForScore(score: number): DegradationLevel {
  const idx = Math.min(DEGRADATION_LEVELS.length - 1, Math.floor(clamp01(score) * DEGRADATION_LEVELS.length + 1e-9));
  return DEGRADATION_LEVELS[idx]!;
}

/**
 * The next level from the current one: worse at once; better only once the score is below the
 * better level's upper bound by `margin`, so a score hovering on a boundary does not flap.
 */
export function nextLevel(current: DegradationLevel, score: number, margin = 0.05): DegradationLevel {
  const target = levelForScore(score);
  const cur = DEGRADATION_LEVELS.indexOf(current);
  const tgt = DEGRADATION_LEVELS.indexOf(target);
  if (tgt >= cur) return target;
  // Climb to the best level whose upper bound the score clears by the margin.
  let idx = cur;
  while (idx > tgt && score < idx / DEGRADATION_LEVELS.length - margin) idx -= 1;
  return DEGRADATION_LEVELS[idx]!;
}

/** Recent outcomes of jobs on the pool, over a sliding time window. */
export class ErrorRateWindow {
  readonly windowMs: number;
  readonly minSamples: number;
  readonly #clock: Clock;
  /** [time, failed] in time order. */
  #samples: Array<[number, boolean]> = [];

  constructor(opts: { windowMs?: number; minSamples?: number; clock?: Clock } = {}) {
    this.windowMs = opts.windowMs ?? 300_000;
    this.minSamples = opts.minSamples ?? 5;
    this.#clock = opts.clock ?? systemClock;
  }

  /** Adds one outcome. */
  record(failed: boolean): void {
    this.#samples.push([this.#clock.now(), failed]);
    this.#prune();
  }

  /** Failures / outcomes within the window; null below `minSamples` outcomes. */
  rate(): number | null {
    this.#prune();
    if (this.#samples.length < this.minSamples) return null;
    let failed = 0;
    for (const [, f] of this.#samples) if (f) failed += 1;
    return failed / this.#samples.length;
  }

  #prune(): void {
    const oldest = this.#clock.now() - this.windowMs;
    let drop = 0;
    while (drop < this.#samples.length && this.#samples[drop]![0] <= oldest) drop += 1;
    if (drop > 0) this.#samples = this.#samples.slice(drop);
  }
}

function clamp01(n: number): number {
  return Number.isFinite(n) ? Math.min(1, Math.max(0, n)) : 1;
}
