/**
 * What the memory model has learned, as people and the API read it: one row per (server, workflow
 * shape, kind of memory) with the bounds on the real need as multiples of the shape estimate. The
 * state itself lives in the store under `MEMORY_MODEL_META_KEY`, shared by every process.
 */
import { memoryModelFromJSON, type MemoryKind, type MemoryModelState } from '../recovery/index.js';
import type { JobStore } from '../store/contract.js';

/** The store meta key of the shared memory model. */
export const MEMORY_MODEL_META_KEY = 'memory-model';

/** One learned (server, shape, kind): the need is within [lower, upper] × the shape estimate. */
export interface LearnedMemoryEntry {
  server: string;
  /** The shape key (`shapeKey`): class types and model names; sizes, batch and steps left out. */
  shape: string;
  /** What the shape is (family, models, class types); null for states written before labels existed. */
  label: string | null;
  /** `gpu`: device memory; `cpu`: a CPU tensor in RAM; `cpuDevice`: everything in RAM on a CPU server. */
  kind: MemoryKind;
  /** Need ≥ lower × estimate (from OOMs, and memory seen in use during successes); null when unknown. */
  lower: number | null;
  /** Need ≤ upper × estimate (from successes); null when unknown. */
  upper: number | null;
  ooms: number;
  successes: number;
}

/** The device first, then what runs in RAM. */
const KIND_ORDER: readonly MemoryKind[] = ['gpu', 'cpuDevice', 'cpu'];

/** Everything learned, sorted by server, shape and kind (GPU first). */
export interface LearnedMemory {
  entries: LearnedMemoryEntry[];
}

/** Rows of a stored state (unreadable parts are dropped, as the model itself does). */
export function learnedMemoryFrom(state: unknown): LearnedMemory {
  const s: MemoryModelState = memoryModelFromJSON(state).toJSON();
  const entries: LearnedMemoryEntry[] = [];
  for (const [server, shapes] of Object.entries(s.entries)) {
    for (const [shape, kinds] of Object.entries(shapes)) {
      for (const kind of KIND_ORDER) {
        const b = kinds[kind];
        if (!b || b.ooms + b.successes === 0) continue;
        entries.push({ server, shape, label: s.labels?.[shape] ?? null, kind, lower: b.lower, upper: b.upper, ooms: b.ooms, successes: b.successes });
      }
    }
  }
  entries.sort((a, b) => a.server.localeCompare(b.server) || (a.label ?? a.shape).localeCompare(b.label ?? b.shape) || a.shape.localeCompare(b.shape) || KIND_ORDER.indexOf(a.kind) - KIND_ORDER.indexOf(b.kind));
  return { entries };
}

/**
 * Reads what every process learned from a store (without starting a guard).
 * @example const { entries } = await readLearnedMemory(await openStore('sqlite:./data/comfyguard.db'));
 */
export async function readLearnedMemory(store: Pick<JobStore, 'getMeta'>): Promise<LearnedMemory> {
  return learnedMemoryFrom(await store.getMeta(MEMORY_MODEL_META_KEY));
}
