/**
 * The service over a real guard over real simulators, all on loopback port 0. `close()` stops
 * everything in reverse order.
 */
import { createGuard } from '../../src/jobs/guard.js';
import type { Guard } from '../../src/jobs/guard-api.js';
import type { GuardOptions } from '../../src/jobs/options.js';
import type { AppOptions } from '../../src/server/app.js';
import { startSimulator, type Simulator, type SimulatorOptions } from '../../src/sim/index.js';
import { listen, type TestServer } from './helpers.js';

export interface ServiceRig {
  sims: Simulator[];
  guard: Guard;
  server: TestServer;
  url: string;
  close(): Promise<void>;
}

/** Starts simulators, a guard over them (memory store, short watchdogs) and the service. */
export async function startServiceRig(
  sims: SimulatorOptions[] = [{}],
  opts: { guard?: Partial<GuardOptions>; app?: Partial<AppOptions> } = {},
): Promise<ServiceRig> {
  const started: Simulator[] = [];
  let guard: Guard | null = null;
  try {
    for (const [i, o] of sims.entries()) started.push(await startSimulator({ port: 0, stepMs: 1, name: `sim-${i}`, ...o }));
    guard = await createGuard({
      servers: started.map((s) => ({ url: s.url, name: s.name })),
      store: 'memory:',
      retry: { baseMs: 20, capMs: 200 },
      stallTimeoutMs: 5_000,
      pollIntervalMs: 200,
      unreachableGraceMs: 1_500,
      healthTtlMs: 300,
      cleanupIntervalMs: 0,
      progressThrottleMs: 0,
      ...opts.guard,
    });
    const server = await listen({ guard, dashboard: false, ...opts.app });
    const g = guard;
    return {
      sims: started,
      guard: g,
      server,
      url: server.url,
      close: async () => {
        await server.close();
        await g.close();
        await Promise.all(started.map((s) => s.close()));
      },
    };
  } catch (err) {
    await guard?.close().catch(() => undefined);
    await Promise.all(started.map((s) => s.close()));
    throw err;
  }
}
