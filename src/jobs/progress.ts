/**
 * Progress of one attempt, 0-100, weighted over the nodes that will actually execute (cached nodes
 * excluded), with step progress inside samplers. Monotonic: it never goes back within an attempt.
 */
import type { ApiWorkflow, ProgressNodeState } from '../comfy/types.js';

const SAMPLER_HINT = /sampler|sample/i;
const HEAVY_HINT = /vaedecode|vaeencode|upscale/i;

/** Relative cost of a node, guessed from its class type and inputs. */
export function nodeWeight(classType: string, inputs: Record<string, unknown>): number {
  if (SAMPLER_HINT.test(classType)) {
    const steps = typeof inputs.steps === 'number' ? inputs.steps : 20;
    return Math.max(5, Math.min(200, steps));
  }
  if (HEAVY_HINT.test(classType)) return 4;
  return 1;
}

export class ProgressTracker {
  readonly #weights = new Map<string, number>();
  readonly #fraction = new Map<string, number>();
  #total = 0;
  #last = 0;

  /** `nodes`: ids that will execute (upstream of the targeted outputs); default all. */
  constructor(workflow: ApiWorkflow, nodes?: Iterable<string>) {
    const ids = nodes ? [...nodes] : Object.keys(workflow);
    for (const id of ids) {
      const node = workflow[id];
      if (!node) continue;
      const w = nodeWeight(node.class_type, node.inputs ?? {});
      this.#weights.set(id, w);
      this.#total += w;
    }
  }

  /** The current percentage (integer, 0-99 until `complete()`). */
  get value(): number {
    return this.#last;
  }

  /** Nodes served from cache will not run: they leave the denominator. */
  cached(nodeIds: string[]): number {
    for (const id of nodeIds) {
      const w = this.#weights.get(id);
      if (w === undefined) continue;
      this.#weights.delete(id);
      this.#fraction.delete(id);
      this.#total -= w;
    }
    return this.#recompute();
  }

  /** A node started: every node that was running before it is done. */
  executing(nodeId: string): number {
    for (const [id, f] of this.#fraction) if (id !== nodeId && f < 1) this.#fraction.set(id, 1);
    if (!this.#fraction.has(nodeId)) this.#fraction.set(nodeId, 0);
    return this.#recompute();
  }

  /** Step progress inside a node (sampler steps, tiled ops). */
  step(nodeId: string | null | undefined, value: number, max: number): number {
    if (!nodeId || !(max > 0)) return this.#last;
    const f = Math.max(0, Math.min(1, value / max));
    this.#fraction.set(nodeId, Math.max(this.#fraction.get(nodeId) ?? 0, f));
    return this.#recompute();
  }

  /** A node finished. */
  finished(nodeId: string): number {
    this.#fraction.set(nodeId, 1);
    return this.#recompute();
  }

  /** Applies a cumulative `progress_state` snapshot. */
  snapshot(nodes: Record<string, ProgressNodeState>): number {
    for (const [id, s] of Object.entries(nodes)) {
      if (s.state === 'finished') this.#fraction.set(id, 1);
      else if (s.max > 0) this.#fraction.set(id, Math.max(this.#fraction.get(id) ?? 0, Math.min(1, s.value / s.max)));
    }
    return this.#recompute();
  }

  /** Success: 100. */
  complete(): number {
    this.#last = 100;
    return 100;
  }

  #recompute(): number {
    if (this.#total <= 0) return this.#last;
    let done = 0;
    for (const [id, w] of this.#weights) done += w * (this.#fraction.get(id) ?? 0);
    // 100 is reserved for confirmed success: history may still lack the outputs.
    const pct = Math.min(99, Math.floor((done / this.#total) * 100));
    if (pct > this.#last) this.#last = pct;
    return this.#last;
  }
}
