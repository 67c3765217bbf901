/**
 * Test harness for the job engine: simulators on loopback port 0 and a guard over them, with short
 * (but not timing-critical) watchdog settings. Everything it starts, `close()` stops.
 */
import { createGuard } from '../../src/jobs/guard.js';
import type { Guard, JobEvent } from '../../src/jobs/guard-api.js';
import type { GuardOptions } from '../../src/jobs/options.js';
import type { JobRecord } from '../../src/jobs/types.js';
import { startSimulator, type Simulator, type SimulatorOptions } from '../../src/sim/index.js';

export interface Rig {
  sims: Simulator[];
  guard: Guard;
  events: JobEvent[];
  close(): Promise<void>;
}

/** Starts one simulator per entry and a guard over all of them (memory store). */
export async function startRig(sims: SimulatorOptions[], guard: Partial<GuardOptions> = {}): Promise<Rig> {
  const started: Simulator[] = [];
  try {
    for (const [i, o] of sims.entries()) started.push(await startSimulator({ stepMs: 1, name: `sim-${i}`, ...o }));
    const g = await createGuard({
      servers: started.map((s) => ({ url: s.url, name: s.name })),
      store: 'memory:',
      retry: { baseMs: 20, capMs: 200 },
      stallTimeoutMs: 2_000,
      pollIntervalMs: 200,
      unreachableGraceMs: 1_500,
      healthTtlMs: 300,
      cleanupIntervalMs: 0,
      progressThrottleMs: 0,
      ...guard,
    });
    const events: JobEvent[] = [];
    g.onEvent((e) => {
      if (e.type !== 'pool') events.push(e);
    });
    return {
      sims: started,
      guard: g,
      events,
      close: async () => {
        await g.close();
        await Promise.all(started.map((s) => s.close()));
      },
    };
  } catch (err) {
    await Promise.all(started.map((s) => s.close()));
    throw err;
  }
}

/** Progress values emitted for one job, per attempt. */
export function progressOf(events: JobEvent[], jobId: string): Map<number, number[]> {
  const out = new Map<number, number[]>();
  for (const e of events) {
    if (e.type !== 'progress' || e.jobId !== jobId) continue;
    const list = out.get(e.attempt) ?? [];
    list.push(e.progress);
    out.set(e.attempt, list);
  }
  return out;
}

/** Strategy names of a job's recovery history, in order. */
export function strategies(job: JobRecord): string[] {
  return job.recoveryHistory.map((s) => s.strategy);
}

/** Sum of executions the simulators report. */
export function totalExecutions(sims: Simulator[]): number {
  return sims.reduce((n, s) => n + Object.values(s.stats().executions).reduce((a, b) => a + b, 0), 0);
}

/**
 * A simulator node gate that holds the first node of `classType` until `release()`; `held()` counts
 * how many such nodes reached the gate, so a test can wait for the hold to begin.
 */
export function holdFirst(classType: string): { nodeGate: NonNullable<SimulatorOptions['nodeGate']>; release: () => void; held(): number } {
  let release: () => void = () => {};
  const gate = new Promise<void>((r) => (release = r));
  let holds = 0;
  return {
    nodeGate: (info) => {
      if (info.classType !== classType || holds++ > 0) return;
      return gate;
    },
    release: () => release(),
    held: () => holds,
  };
}
