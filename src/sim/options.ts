/**
 * Simulator options: the public `SimulatorOptions`, their defaults, and the parsers shared with the
 * CLI (`24GiB`, `checkpoints=a.safetensors;loras=x.safetensors`). Every parser throws a
 * SimConfigError naming the bad part.
 */
import type { Clock } from '../util/clock.js';
import { DEFAULT_MODELS } from './catalog.js';
import { SimConfigError } from './errors.js';

/** What a node gate sees: the node about to run its function. */
export interface NodeGateInfo {
  promptId: string;
  nodeId: string;
  classType: string;
}

/** Options of `startSimulator`. */
export interface SimulatorOptions {
  /** TCP port; 0 (default in process) picks a free one. */
  port?: number;
  /** Listen address. @default '127.0.0.1' */
  host?: string;
  /** Name shown in stats and logs. @default 'sim-<port>' */
  name?: string;
  /** Total GPU memory: bytes or '24GiB' / '512MiB'. @default 24 GiB */
  vram?: number | string;
  /** System RAM the server reports and CPU-side tensors must fit in. @default 32 GiB */
  ram?: number | string;
  /** 'cuda' (default) or 'cpu' (a `--cpu` server, as in the recorded captures). */
  device?: 'cuda' | 'cpu';
  /** Model files per folder; folders not given keep the default set. */
  models?: Partial<Record<string, string[]>>;
  /** Milliseconds per sampler step (and per plain node). @default 5 */
  stepMs?: number;
  /** Fault SPEC, e.g. `oom=0.1,ws_drop=0.05,http503@/prompt=0.5`. */
  faults?: string;
  /** Seed of the fault PRNG streams. @default 1 */
  seed?: number;
  /** Reported `comfyui_version`. @default '0.3.64' */
  version?: string;
  /** How long a crash keeps the port closed. @default 200 */
  crashDowntimeMs?: number;
  /** Node types this server does not have (as if the custom node failed to import). */
  removeNodeTypes?: string[];
  /** Delay added by the `slow` fault. @default 2000 */
  slowMs?: number;
  /** How long one `refuse` fault keeps the port closed (rate < 1). @default 500 */
  refuseMs?: number;
  /** Send sampler previews (like `--preview-method auto`). @default false */
  previews?: boolean;
  /** Where output/input/temp files live. @default a fresh directory under the OS temp dir */
  dataDir?: string;
  /** Emulate ComfyUI issue #16010 (a same-clientId reconnect is unregistered when the old socket closes). @default true */
  reconnectBug?: boolean;
  /** Request body cap (`--max-upload-size`). @default 100 MiB */
  maxUploadSize?: number;
  /**
   * Also serve two custom-node routes that delete output files (ComfyUI itself has none):
   * ComfyUI-Image-Browsing's `DELETE /image-browsing/delete` and a per-file
   * `DELETE /sim-ext/delete_output?filename=&subfolder=&type=`. @default false
   */
  deleteRoutes?: boolean;
  /** Time source for step delays and downtime. @default systemClock */
  clock?: Clock;
  /**
   * Called when a node is about to run its function (after `executing` was sent). The node waits
   * for the returned promise: tests use it to hold a node while they act on the server.
   */
  nodeGate?: (info: NodeGateInfo) => Promise<void> | void;
}

const UNITS: Record<string, number> = {
  b: 1,
  k: 1e3,
  kb: 1e3,
  kib: 2 ** 10,
  m: 1e6,
  mb: 1e6,
  mib: 2 ** 20,
  g: 1e9,
  gb: 1e9,
  gib: 2 ** 30,
  t: 1e12,
  tb: 1e12,
  tib: 2 ** 40,
};

/** Parses a byte size: a number of bytes or `<n><unit>` (B, KB/KiB, MB/MiB, GB/GiB, TB/TiB). */
export function parseSize(value: number | string, where: string): number {
  if (typeof value === 'number') {
    if (!Number.isFinite(value) || value <= 0) throw new SimConfigError(where, `expected a positive number of bytes, got ${value}`);
    return Math.floor(value);
  }
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(value);
  const unit = UNITS[(m?.[2] ?? '').toLowerCase() || 'b'];
  if (!m || unit === undefined) {
    throw new SimConfigError(where, `"${value}" is not a size; use bytes or a unit such as 8GiB, 512MiB`);
  }
  const bytes = Math.floor(Number(m[1]) * unit);
  if (bytes <= 0) throw new SimConfigError(where, `"${value}" must be larger than zero`);
  return bytes;
}

/** Parses `checkpoints=a.safetensors,b.ckpt;loras=x.safetensors` into folder -> files. */
export function parseModelsSpec(spec: string, where = '--models'): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const part of spec.split(';')) {
    if (part.trim() === '') continue;
    const eq = part.indexOf('=');
    const folder = (eq < 0 ? part : part.slice(0, eq)).trim();
    if (eq < 0 || !/^[A-Za-z0-9_]+$/.test(folder)) {
      throw new SimConfigError(where, `"${part.trim()}" must be folder=file1,file2 (folder: letters, digits, _)`);
    }
    if (folder in out) throw new SimConfigError(where, `folder "${folder}" is given twice`);
    const files = part
      .slice(eq + 1)
      .split(',')
      .map((f) => f.trim())
      .filter((f) => f !== '');
    for (const f of files) {
      if (f.includes('..') || f.startsWith('/')) throw new SimConfigError(where, `file "${f}" in folder "${folder}" must be a relative name`);
    }
    out[folder] = files;
  }
  return out;
}

/** Options after defaults and validation. */
export interface ResolvedOptions {
  port: number;
  host: string;
  name: string | undefined;
  vram: number;
  ram: number;
  device: 'cuda' | 'cpu';
  models: Record<string, string[]>;
  stepMs: number;
  faults: string;
  seed: number;
  version: string;
  crashDowntimeMs: number;
  removeNodeTypes: string[];
  slowMs: number;
  refuseMs: number;
  previews: boolean;
  dataDir: string | undefined;
  reconnectBug: boolean;
  maxUploadSize: number;
  deleteRoutes: boolean;
}

function nonNegative(v: unknown, where: string, fallback: number): number {
  if (v === undefined) return fallback;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw new SimConfigError(where, `expected a number >= 0, got ${String(v)}`);
  return v;
}

/** Applies defaults and validates; throws SimConfigError naming the bad option. */
export function resolveOptions(opts: SimulatorOptions = {}): ResolvedOptions {
  const port = nonNegative(opts.port, 'port', 0);
  if (!Number.isInteger(port) || port > 65535) throw new SimConfigError('port', `expected an integer 0..65535, got ${port}`);
  if (opts.device !== undefined && opts.device !== 'cuda' && opts.device !== 'cpu') {
    throw new SimConfigError('device', `expected "cuda" or "cpu", got ${String(opts.device)}`);
  }
  const seed = nonNegative(opts.seed, 'seed', 1);
  if (!Number.isInteger(seed)) throw new SimConfigError('seed', `expected an integer, got ${seed}`);
  const models: Record<string, string[]> = {};
  for (const [folder, files] of Object.entries(DEFAULT_MODELS)) models[folder] = [...files];
  for (const [folder, files] of Object.entries(opts.models ?? {})) {
    if (!Array.isArray(files) || files.some((f) => typeof f !== 'string')) {
      throw new SimConfigError(`models.${folder}`, 'expected a list of file names');
    }
    models[folder] = [...files];
  }
  return {
    port,
    host: opts.host ?? '127.0.0.1',
    name: opts.name,
    vram: parseSize(opts.vram ?? 24 * 2 ** 30, 'vram'),
    ram: parseSize(opts.ram ?? 32 * 2 ** 30, 'ram'),
    device: opts.device ?? 'cuda',
    models,
    stepMs: nonNegative(opts.stepMs, 'stepMs', 5),
    faults: opts.faults ?? '',
    seed,
    version: opts.version ?? '0.3.64',
    crashDowntimeMs: nonNegative(opts.crashDowntimeMs, 'crashDowntimeMs', 200),
    removeNodeTypes: [...(opts.removeNodeTypes ?? [])],
    slowMs: nonNegative(opts.slowMs, 'slowMs', 2000),
    refuseMs: nonNegative(opts.refuseMs, 'refuseMs', 500),
    previews: opts.previews ?? false,
    dataDir: opts.dataDir,
    reconnectBug: opts.reconnectBug ?? true,
    maxUploadSize: nonNegative(opts.maxUploadSize, 'maxUploadSize', 100 * 2 ** 20),
    deleteRoutes: opts.deleteRoutes ?? false,
  };
}
