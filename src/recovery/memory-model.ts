/**
 * The memory model: the shape estimate (memory-estimate.ts) corrected by what servers have shown.
 * Learning is kept per (server, workflow shape key) as a ratio of real need to estimate:
 * - an OOM gives a lower bound: torch says how much was in use and how much more it tried to
 *   allocate (in use + tried > capacity), the CPU allocator how many bytes it tried;
 * - a success gives an upper bound: the need fitted the capacity (and, with the VRAM seen in
 *   `/system_stats` while it ran, a sampled lower bound too).
 * A workflow's need does not depend on the server, so bounds learned on one server apply to all;
 * the per-server record says where each bound came from. Pure: no I/O, no clock; the state is
 * plain JSON (`toJSON`/`memoryModelFromJSON`) so the engine can keep it in the store and merge the
 * state of several processes (`mergeMemoryStates`).
 */
import type { ApiWorkflow } from '../comfy/types.js';
import { formatBytes, parseOomAmount } from '../errors/oom-amount.js';
import { CUDA_CONTEXT_BYTES, PROCESS_RAM_BYTES, estimateWorkflow, shapeKey, shapeLabel, type WorkflowEstimate } from './memory-estimate.js';

/** What the model needs to know about a server. */
export interface ServerMemory {
  name: string;
  /** `/system_stats` devices[0].vram_total (on a CPU server: its RAM). */
  vramTotal: number | null;
  /** `/system_stats` devices[0].vram_free, recently. */
  vramFree: number | null;
  /** `/system_stats` devices[0].type: `cuda`, `cpu`, `mps`...; null/absent when unknown (taken as a GPU). */
  device?: string | null;
  /** `/system_stats` system.ram_total, when known (CPU tensors must fit there). */
  ramTotal?: number | null;
}

/** A prediction for one workflow on one server. */
export interface MemoryPrediction {
  /** Bytes the workflow needs on the memory that limits it on this server. */
  needBytes: number;
  /** What the server can give (capacity minus headroom); null when unknown. */
  capacityBytes: number | null;
  /** true: predicted to fit an empty server; false: predicted not to; null: no capacity known. */
  fits: boolean | null;
  /** Plain words: the estimate, the correction learned and where from. */
  basis: string;
  /** Which memory limits it: the GPU, a CPU tensor in RAM, or everything in RAM on a CPU server. */
  kind: MemoryKind;
}

export type MemoryKind = 'gpu' | 'cpu' | 'cpuDevice';

/** What one (server, shape) pair has shown. Ratios are need / estimate. */
export interface LearnedBounds {
  /** Need is at least this share of the estimate (from OOMs, and VRAM seen during successes). */
  lower: number | null;
  /** Need is at most this share of the estimate (from successes). */
  upper: number | null;
  ooms: number;
  successes: number;
}

/** Serialisable state: server -> shape key -> kind -> bounds. */
export interface MemoryModelState {
  version: 1;
  entries: Record<string, Record<string, Partial<Record<MemoryKind, LearnedBounds>>>>;
  /** shape key -> what that shape is, for people (`shapeLabel`); absent in states written before it existed. */
  labels?: Record<string, string>;
}

/** The memory model the router and the OOM planner use. */
export interface MemoryModel {
  /** Need, fit and basis of `workflow` on `server`. */
  predict(workflow: ApiWorkflow, server: ServerMemory): MemoryPrediction;
  /**
   * Learns from an OOM of `workflow` on `server`. `text` is the exception message; `residentBytes`
   * what other workflows' models held on the device when it started (subtracted from torch's in-use).
   * Returns the lower bound learned in bytes, or null when the text gave nothing to learn.
   */
  observeOom(o: { server: ServerMemory; workflow: ApiWorkflow; text: string; residentBytes?: number }): number | null;
  /** Learns from a success: it fitted `server`; `peakUsedBytes` is the most device memory seen in use while it ran. */
  observeSuccess(o: { server: ServerMemory; workflow: ApiWorkflow; peakUsedBytes?: number }): void;
  /** The shape estimate (uncorrected). */
  estimate(workflow: ApiWorkflow): WorkflowEstimate;
  toJSON(): MemoryModelState;
}

export interface MemoryModelOptions {
  /** Learned state to start from (the store's copy). */
  state?: MemoryModelState;
  /** Share of capacity kept free for what the model cannot see (allocator slack, previews). @default 0.05 */
  headroom?: number;
}

const isCpuServer = (s: ServerMemory): boolean => (s.device ?? '').toLowerCase() === 'cpu';

/** Bytes of `kind` the estimate gives. */
function estimateOf(e: WorkflowEstimate, kind: MemoryKind): number {
  return kind === 'gpu' ? e.gpu.bytes : kind === 'cpu' ? e.cpu.bytes : e.cpuDevice.bytes;
}

/** Capacity the server offers for `kind`; null when unknown. */
function capacityOf(s: ServerMemory, kind: MemoryKind): number | null {
  if (kind === 'cpuDevice') return s.vramTotal ?? s.ramTotal ?? null;
  if (kind === 'gpu') return s.vramTotal;
  return s.ramTotal == null ? null : s.ramTotal - PROCESS_RAM_BYTES;
}

const emptyBounds = (): LearnedBounds => ({ lower: null, upper: null, ooms: 0, successes: 0 });

/** Checks a state object read from storage; returns an empty state for anything unreadable. */
function readState(x: unknown): MemoryModelState {
  const out: MemoryModelState = { version: 1, entries: {}, labels: {} };
  if (!x || typeof x !== 'object' || (x as { version?: unknown }).version !== 1) return out;
  const labels = (x as { labels?: unknown }).labels;
  if (labels && typeof labels === 'object') {
    for (const [key, label] of Object.entries(labels as Record<string, unknown>)) if (typeof label === 'string') out.labels![key] = label.slice(0, 200);
  }
  const entries = (x as { entries?: unknown }).entries;
  if (!entries || typeof entries !== 'object') return out;
  const ratio = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) && v > 0 ? v : null);
  const count = (v: unknown): number => (typeof v === 'number' && Number.isInteger(v) && v >= 0 ? v : 0);
  for (const [server, shapes] of Object.entries(entries as Record<string, unknown>)) {
    if (!shapes || typeof shapes !== 'object') continue;
    for (const [key, kinds] of Object.entries(shapes as Record<string, unknown>)) {
      if (!kinds || typeof kinds !== 'object') continue;
      for (const kind of ['gpu', 'cpu', 'cpuDevice'] as const) {
        const b = (kinds as Record<string, unknown>)[kind] as Record<string, unknown> | undefined;
        if (!b || typeof b !== 'object') continue;
        ((out.entries[server] ??= {})[key] ??= {})[kind] = { lower: ratio(b.lower), upper: ratio(b.upper), ooms: count(b.ooms), successes: count(b.successes) };
      }
    }
  }
  return out;
}

/**
 * Merges two learned states (two processes, or the store's copy and this process's): the highest
 * lower bound and the lowest upper bound win; counts add up.
 */
export function mergeMemoryStates(a: MemoryModelState, b: MemoryModelState): MemoryModelState {
  const out = readState(a);
  const other = readState(b);
  out.labels = { ...other.labels, ...out.labels };
  for (const [server, shapes] of Object.entries(other.entries)) {
    for (const [key, kinds] of Object.entries(shapes)) {
      for (const [kind, bb] of Object.entries(kinds) as Array<[MemoryKind, LearnedBounds]>) {
        const slot = ((out.entries[server] ??= {})[key] ??= {});
        const cur = slot[kind];
        if (!cur) {
          slot[kind] = { ...bb };
          continue;
        }
        cur.lower = maxOrNull(cur.lower, bb.lower);
        cur.upper = minOrNull(cur.upper, bb.upper);
        cur.ooms += bb.ooms;
        cur.successes += bb.successes;
      }
    }
  }
  return out;
}

const maxOrNull = (a: number | null, b: number | null): number | null => (a === null ? b : b === null ? a : Math.max(a, b));
const minOrNull = (a: number | null, b: number | null): number | null => (a === null ? b : b === null ? a : Math.min(a, b));

/**
 * Creates a memory model, optionally from stored state.
 * @example
 * const mm = createMemoryModel({ state: await store.getMeta('memory-model') });
 * mm.predict(workflow, { name: 'gpu-8', vramTotal: 8 * 2 ** 30, vramFree: null }).fits // false
 */
export function createMemoryModel(opts: MemoryModelOptions = {}): MemoryModel {
  const state = readState(opts.state);
  const headroom = opts.headroom ?? 0.05;
  if (!(headroom >= 0 && headroom < 1)) throw new RangeError(`headroom must be in [0, 1), got ${String(headroom)}`);

  const bounds = (server: string, key: string, kind: MemoryKind, wf: ApiWorkflow): LearnedBounds => {
    (state.labels ??= {})[key] ??= shapeLabel(wf);
    const slot = ((state.entries[server] ??= {})[key] ??= {});
    return (slot[kind] ??= emptyBounds());
  };

  /** The correction for a shape, over every server: need/estimate within [lower, upper], 1 when unbounded. */
  const ratioFor = (key: string, kind: MemoryKind): { ratio: number; why: string } => {
    let lower: number | null = null;
    let upper: number | null = null;
    const from: string[] = [];
    for (const [server, shapes] of Object.entries(state.entries)) {
      const b = shapes[key]?.[kind];
      if (!b) continue;
      if (b.lower !== null && (lower === null || b.lower > lower)) lower = b.lower;
      if (b.upper !== null && (upper === null || b.upper < upper)) upper = b.upper;
      if (b.ooms + b.successes > 0) from.push(`${server}: ${b.ooms} OOM, ${b.successes} ok`);
    }
    // Contradictory bounds (an OOM caused by something else resident) keep the cautious side.
    let ratio = 1;
    if (upper !== null) ratio = Math.min(ratio, upper);
    if (lower !== null) ratio = Math.max(ratio, lower);
    const why = from.length === 0 ? 'no history' : `x${ratio.toFixed(2)} learned (${from.join('; ')})`;
    return { ratio, why };
  };

  const kindsFor = (s: ServerMemory): MemoryKind[] => (isCpuServer(s) ? ['cpuDevice'] : ['gpu', 'cpu']);

  const predict = (workflow: ApiWorkflow, server: ServerMemory): MemoryPrediction => {
    const e = estimateWorkflow(workflow);
    const key = shapeKey(workflow);
    let best: MemoryPrediction | null = null;
    for (const kind of kindsFor(server)) {
      const est = estimateOf(e, kind);
      if (kind === 'cpu' && est === 0) continue;
      const { ratio, why } = ratioFor(key, kind);
      const need = Math.round(est * ratio);
      const cap = capacityOf(server, kind);
      const usable = cap === null ? null : Math.floor(cap * (1 - headroom));
      const fits = usable === null ? null : need <= usable;
      const peak = kind === 'gpu' ? e.gpu : kind === 'cpu' ? e.cpu : e.cpuDevice;
      const where = kind === 'gpu' ? 'GPU' : kind === 'cpu' ? 'RAM (CPU tensor)' : 'RAM (CPU server)';
      const unknown = e.unknownNodes.length > 0 ? `; not counted: ${e.unknownNodes.slice(0, 5).join(', ')}` : '';
      const basis = `${where} ${formatBytes(need)} at ${peak.what}${peak.nodeId ? ` (node ${peak.nodeId})` : ''}, ${why}; ${server.name} offers ${usable === null ? 'unknown' : formatBytes(usable)}${unknown}`;
      const p: MemoryPrediction = { needBytes: need, capacityBytes: usable, fits, basis, kind };
      // The binding kind: one that does not fit, else the one with the least room.
      if (!best || rank(p) < rank(best)) best = p;
    }
    return best ?? { needBytes: e.gpu.bytes, capacityBytes: null, fits: null, basis: 'nothing to estimate', kind: 'gpu' };
  };

  return {
    predict,
    estimate: estimateWorkflow,
    observeOom({ server, workflow, text, residentBytes }) {
      const amount = parseOomAmount(text);
      if (!amount) return null;
      const e = estimateWorkflow(workflow);
      const kind: MemoryKind = isCpuServer(server) ? 'cpuDevice' : amount.device === 'cpu' ? 'cpu' : 'gpu';
      let lowerBytes: number;
      if (kind === 'cpu') lowerBytes = amount.triedBytes;
      else if (kind === 'cpuDevice') lowerBytes = amount.triedBytes + PROCESS_RAM_BYTES;
      else {
        const inUse = amount.inUseBytes ?? (amount.totalBytes !== undefined ? 0 : CUDA_CONTEXT_BYTES);
        // In use + tried is what that node needed; it failed, so the need is above the capacity too.
        lowerBytes = Math.max(inUse + amount.triedBytes - (residentBytes ?? 0), amount.totalBytes !== undefined && !residentBytes ? amount.totalBytes + 1 : 0);
      }
      const est = estimateOf(e, kind);
      if (est <= 0) return lowerBytes;
      const b = bounds(server.name, shapeKey(workflow), kind, workflow);
      b.ooms += 1;
      const ratio = lowerBytes / est;
      if (ratio > 1) b.lower = maxOrNull(b.lower, ratio);
      return lowerBytes;
    },
    observeSuccess({ server, workflow, peakUsedBytes }) {
      const e = estimateWorkflow(workflow);
      const key = shapeKey(workflow);
      for (const kind of kindsFor(server)) {
        const est = estimateOf(e, kind);
        const cap = capacityOf(server, kind);
        if (est <= 0) continue;
        const b = bounds(server.name, key, kind, workflow);
        b.successes += 1;
        if (cap !== null) b.upper = minOrNull(b.upper, cap / est);
        // Seen in use is a sample of the peak: a lower bound, never above the capacity.
        if (kind !== 'cpu' && peakUsedBytes !== undefined && peakUsedBytes / est > 1) b.lower = maxOrNull(b.lower, Math.min(peakUsedBytes, cap ?? peakUsedBytes) / est);
      }
    },
    toJSON: () => structuredClone(state),
  };
}

/** A model that does not fit ranks first, then the one with the least room left. */
function rank(p: MemoryPrediction): number {
  if (p.fits === false) return -1 - p.needBytes / Math.max(1, p.capacityBytes ?? 1);
  // Unknown capacity says nothing: a known fit is the better answer.
  if (p.capacityBytes === null) return 2;
  return (p.capacityBytes - p.needBytes) / p.capacityBytes;
}

/** A model rebuilt from `toJSON()` output (unreadable parts are dropped, not thrown on). */
export function memoryModelFromJSON(state: unknown, opts: Omit<MemoryModelOptions, 'state'> = {}): MemoryModel {
  return createMemoryModel({ ...opts, state: readState(state) });
}
