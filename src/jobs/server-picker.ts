/**
 * The server picker: where an attempt runs. A healthy, capable, least-loaded server that the plan
 * allows and that is neither blocked for this workflow nor drained; while none is available it waits
 * (bounded by the job's deadline). When no server of the pool can run the workflow at all (a node
 * type or a model nobody has), the errors layer classifies that directly from the pool's data.
 */
import { createHash } from 'node:crypto';
import type { ApiWorkflow } from '../comfy/types.js';
import { classifyMissingCapability, type Classification, type MissingCapability } from '../errors/index.js';
import type { ServerPool } from '../pool/index.js';
import type { JobStore } from '../store/contract.js';
import { sleep, type Clock } from '../util/clock.js';
import type { StepPlan } from './types.js';

const WAIT_FLOOR_MS = 250;

/** Servers a workflow must avoid (a dependency error or missing node seen there), shared by every job. */
export interface BlockList {
  /** Servers blocked for this workflow key now. */
  blocked(workflowKey: string): Promise<string[]>;
  block(entry: { server: string; workflowKey: string; code: string; reason: string; until: number }): Promise<void>;
}

/** The store's blocks: every process sharing the store, and every later job with the same node set, avoids the server. */
export class StoreBlockList implements BlockList {
  constructor(
    private readonly store: () => Pick<JobStore, 'blockServer' | 'blockedServers'>,
    private readonly clock: Clock,
  ) {}

  async blocked(workflowKey: string): Promise<string[]> {
    return (await this.store().blockedServers(workflowKey, this.clock.now())).map((b) => b.server);
  }

  async block(e: { server: string; workflowKey: string; code: string; reason: string; until: number }): Promise<void> {
    await this.store().blockServer({ server: e.server, workflowHash: e.workflowKey, code: e.code, reason: e.reason, until: e.until });
  }
}

/**
 * The key a block applies to: the set of node types a workflow uses. A broken environment fails
 * every workflow that loads the same nodes, whatever its seed, prompt or size.
 */
export function workflowKey(workflow: ApiWorkflow): string {
  const types = [...new Set(Object.values(workflow).map((n) => String(n?.class_type)))].sort();
  return createHash('sha256').update(types.join('\u0000')).digest('base64url').slice(0, 22);
}

/** What every server lacks (the intersection): what no failover can fix. */
export function missingEverywhere(missing: Record<string, MissingCapability>): MissingCapability {
  const all = Object.values(missing);
  if (all.length === 0) return { nodeTypes: [], models: [] };
  const nodeTypes = all.map((m) => new Set(m.nodeTypes)).reduce((a, b) => new Set([...a].filter((x) => b.has(x))));
  const key = (m: { folder: string; name: string }) => `${m.folder}\u0000${m.name}`;
  const keys = all.map((m) => new Set(m.models.map(key))).reduce((a, b) => new Set([...a].filter((x) => b.has(x))));
  const models = (all[0]?.models ?? []).filter((m) => keys.has(key(m)));
  return { nodeTypes: [...nodeTypes], models };
}

export type PickResult =
  | { kind: 'server'; server: string }
  /** No server of the pool can run it (classified from the pool's data). */
  | { kind: 'incapable'; classification: Classification }
  | { kind: 'deadline' }
  | { kind: 'aborted' };

export interface PickRequest {
  workflow: ApiWorkflow;
  /** The memory model's verdict per server: servers predicted to fit unchanged are preferred. */
  predict?: (server: { name: string; vramTotal: number | null; vramFree: number | null; device?: string | null; ramTotal?: number | null }) => { fits: boolean | null } | null;
  constraint: StepPlan['server'];
  tags?: string[];
  deadline: number;
  signal: AbortSignal;
}

/** Chooses servers for attempts; waits (with backoff) while every capable server is busy or unhealthy. */
export class ServerPicker {
  constructor(
    private readonly deps: {
      pool: ServerPool;
      clock: Clock;
      blocks: BlockList;
      drained: ReadonlySet<string>;
      /** Backoff for the n-th wait. */
      delayMs(n: number): number;
    },
  ) {}

  /** Servers a constraint leaves eligible, given the servers blocked for the workflow (drained ones removed too). */
  eligibleWith(constraint: StepPlan['server'], blocked: readonly string[]): string[] {
    const exclude = this.#exclusionsWith(constraint, blocked);
    return this.deps.pool.names().filter((n) => !exclude.has(n));
  }

  #exclusionsWith(constraint: StepPlan['server'], blocked: readonly string[]): Set<string> {
    const { pool, drained } = this.deps;
    const exclude = new Set([...(constraint.exclude ?? []), ...blocked, ...drained]);
    if (constraint.require) for (const n of pool.names()) if (!constraint.require.includes(n)) exclude.add(n);
    return exclude;
  }

  async #exclusions(workflow: ApiWorkflow, constraint: StepPlan['server']): Promise<Set<string>> {
    return this.#exclusionsWith(constraint, await this.deps.blocks.blocked(workflowKey(workflow)));
  }

  async pick(req: PickRequest): Promise<PickResult> {
    const { pool, clock } = this.deps;
    let waits = 0;
    for (;;) {
      if (req.signal.aborted) return { kind: 'aborted' };
      const exclude = await this.#exclusions(req.workflow, req.constraint);
      const sel = await pool.select({
        workflow: req.workflow,
        exclude: [...exclude],
        ...(req.constraint.prefer ? { prefer: req.constraint.prefer } : {}),
        ...(req.tags ? { tags: req.tags } : {}),
        ...(req.constraint.moreVramThan ? { preferMoreVramThan: req.constraint.moreVramThan } : {}),
        ...(req.predict ? { predict: req.predict } : {}),
      });
      if (sel) return { kind: 'server', server: sel.name };
      const capable = pool.capable(req.workflow);
      if (capable.servers.filter((s) => !exclude.has(s)).length === 0) {
        const c = classifyMissingCapability(req.workflow, missingEverywhere(capable.missing));
        if (c) return { kind: 'incapable', classification: c };
      }
      const now = clock.now();
      if (now >= req.deadline) return { kind: 'deadline' };
      waits++;
      const delay = Math.max(WAIT_FLOOR_MS, this.deps.delayMs(Math.min(waits, 6)));
      // Back off; while no eligible server is up at all, start the moment one answers its readiness
      // probe (a booting pod), instead of at the end of the backoff step.
      const candidates = pool.names().filter((n) => !exclude.has(n));
      const noneUp = !pool.state().some((s) => s.healthy && candidates.includes(s.name));
      const ac = new AbortController();
      const onAbort = () => ac.abort();
      req.signal.addEventListener('abort', onAbort, { once: true });
      const pending: Array<Promise<unknown>> = [sleep(clock, Math.min(delay, req.deadline - now), ac.signal)];
      if (noneUp && candidates.length > 0) pending.push(pool.whenReady({ names: candidates, signal: ac.signal }));
      await Promise.race(pending).catch(() => undefined);
      ac.abort();
      req.signal.removeEventListener('abort', onAbort);
    }
  }
}
