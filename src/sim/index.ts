/**
 * `comfyguard/sim`: a ComfyUI 0.3.64 simulator with fault injection, for tests, benchmarks, demos
 * and anyone who wants to test a ComfyUI pipeline against failures.
 *
 * @example
 * const sim = await startSimulator({ vram: '8GiB', faults: 'oom=0.1,ws_drop=0.05' });
 * try { ...point a ComfyUI client at sim.url... } finally { await sim.close(); }
 */
import { SimulatorServer, type Simulator } from './simulator.js';
import type { SimulatorOptions } from './options.js';

export type { Simulator } from './simulator.js';
export type { SimulatorOptions, NodeGateInfo } from './options.js';
export { parseSize, parseModelsSpec } from './options.js';
export { parseFaultSpec, FAULT_KINDS } from './faults.js';
export type { FaultKind, FaultRule, FaultSpec } from './faults.js';
export { PortInUseError, SimConfigError } from './errors.js';
export { workflowHash } from './stats.js';
export type { SimStats } from './stats.js';
export { NODE_SPECS, DEFAULT_MODELS, MODEL_FOLDERS } from './catalog.js';
export { FAMILIES, familyOf } from './memory.js';

/** Starts a simulator listening on `opts.port` (0: a free port) and resolves once it accepts connections. */
export function startSimulator(opts: SimulatorOptions = {}): Promise<Simulator> {
  return SimulatorServer.start(opts);
}
