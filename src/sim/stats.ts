/**
 * Execution counters that outlive crashes: how many times each prompt_id and each distinct graph
 * started executing. A fully cached run counts as a run. Single-threaded, so counts are exact.
 */
import { createHash } from 'node:crypto';
import { canonicalJson } from './graph.js';

/** sha256 hex of a canonical JSON (sorted keys) of a prompt graph. */
export function workflowHash(prompt: unknown): string {
  return createHash('sha256').update(canonicalJson(prompt)).digest('hex');
}

/** The JSON of `GET /_sim/stats`. */
export interface SimStats {
  executions: Record<string, number>;
  workflows: Record<string, number>;
  faults: Record<string, number>;
  queue: number;
}

export class ExecutionCounters {
  private readonly executions = new Map<string, number>();
  private readonly workflows = new Map<string, number>();

  /** Counts one execution start of `promptId` running `graph`. */
  record(promptId: string, graph: unknown): void {
    this.executions.set(promptId, (this.executions.get(promptId) ?? 0) + 1);
    const h = workflowHash(graph);
    this.workflows.set(h, (this.workflows.get(h) ?? 0) + 1);
  }

  snapshot(): Pick<SimStats, 'executions' | 'workflows'> {
    return { executions: Object.fromEntries(this.executions), workflows: Object.fromEntries(this.workflows) };
  }

  reset(): void {
    this.executions.clear();
    this.workflows.clear();
  }
}
