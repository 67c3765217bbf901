/**
 * The routing decision, pure: when the memory model has a say, only servers predicted to fit the
 * workflow unchanged (or not known not to) are considered, and when none is, the largest; among
 * those, the preferred one if it is eligible, else the least loaded ((queue remaining + our
 * in-flight) / weight), spreading ties.
 */

/** One eligible server as routing sees it. */
export interface RouteCandidate {
  name: string;
  weight: number;
  /** `queue_remaining` from the last health check (null: unknown, counted as 0). */
  queueRemaining: number | null;
  /** Jobs comfyguard has running or just routed there. */
  inFlight: number;
  /** Sequence number of the last time it was picked (0: never); the oldest wins a tie. */
  lastPicked: number;
  /** The memory model's answer for this workflow here: true fits, false does not, null/absent unknown. */
  fits?: boolean | null;
  /** Memory it offers (total VRAM, or RAM on a CPU server): "the largest" when nothing fits. */
  capacity?: number | null;
}

/**
 * The candidates worth considering by memory: those predicted to fit; else those not known not to
 * fit; else (nothing fits anywhere) the largest. Returns the set and the words for the reason.
 */
export function byFit<T extends Pick<RouteCandidate, 'fits' | 'capacity'>>(candidates: readonly T[]): { pool: T[]; why: string } {
  if (!candidates.some((c) => c.fits === true || c.fits === false)) return { pool: [...candidates], why: '' };
  const fitting = candidates.filter((c) => c.fits === true);
  if (fitting.length > 0) return { pool: fitting, why: `predicted to fit on ${fitting.length} of ${candidates.length}; ` };
  const unknown = candidates.filter((c) => c.fits !== false);
  if (unknown.length > 0) return { pool: unknown, why: `fit unknown on ${unknown.length}, no server predicted to fit; ` };
  const max = Math.max(...candidates.map((c) => c.capacity ?? -1));
  return { pool: candidates.filter((c) => (c.capacity ?? -1) === max), why: 'predicted to fit nowhere: the largest server; ' };
}

/** The pick and why. */
export interface RouteDecision {
  name: string;
  load: number;
  reason: string;
}

/** Load as routing compares it. */
export function loadOf(c: Pick<RouteCandidate, 'queueRemaining' | 'inFlight' | 'weight'>): number {
  return ((c.queueRemaining ?? 0) + c.inFlight) / c.weight;
}

// Loads are ratios of small integers; treat values this close as a tie so spreading still works.
const TIE_EPSILON = 1e-9;

/**
 * Picks a server from `candidates` (already filtered for health, breaker, capability, tags).
 * Ties go to the least recently picked, or to `random` when given.
 */
export function chooseRoute(all: readonly RouteCandidate[], opts: { prefer?: string; random?: () => number } = {}): RouteDecision | null {
  if (all.length === 0) return null;
  const { pool: candidates, why } = byFit(all);
  if (opts.prefer !== undefined) {
    const preferred = candidates.find((c) => c.name === opts.prefer);
    if (preferred) return { name: preferred.name, load: loadOf(preferred), reason: `${why}preferred server (it ran an earlier attempt of this job)` };
  }
  let best: RouteCandidate[] = [];
  let bestLoad = Number.POSITIVE_INFINITY;
  for (const c of candidates) {
    const load = loadOf(c);
    if (load < bestLoad - TIE_EPSILON) {
      best = [c];
      bestLoad = load;
    } else if (Math.abs(load - bestLoad) <= TIE_EPSILON) {
      best.push(c);
    }
  }
  let pick: RouteCandidate;
  if (best.length === 1) {
    pick = best[0]!;
  } else if (opts.random) {
    pick = best[Math.min(best.length - 1, Math.floor(opts.random() * best.length))]!;
  } else {
    pick = best.reduce((a, b) => (b.lastPicked < a.lastPicked ? b : a));
  }
  const of = candidates.length === 1 ? 'the only eligible server' : `least loaded of ${candidates.length} eligible servers`;
  const tie = best.length > 1 ? `, tie of ${best.length} spread` : '';
  return { name: pick.name, load: bestLoad, reason: `${why}${of} (load ${round(bestLoad)} = (queue ${pick.queueRemaining ?? '?'} + in-flight ${pick.inFlight}) / weight ${pick.weight}${tie})` };
}

function round(n: number): number {
  return Math.round(n * 100) / 100;
}
