/**
 * Turns a server probe into a verdict with its problems, and renders it for people or as JSON.
 * Pure: no I/O, so every rule is unit-testable.
 */
import type { LearnedMemory } from '../../jobs/learned-memory.js';
import type { ServerProbe } from './probe.js';

export type Severity = 'error' | 'warning';
export interface Problem {
  severity: Severity;
  message: string;
  /** What to check or do about it, when there is a usual cause. */
  hint?: string;
}

/** A server that did not answer `--wait`'s probes: booting (a proxy answers 5xx) or unreachable, since when. */
export interface DownInfo {
  state: 'booting' | 'unreachable';
  since: number;
  probes: number;
}

/** `unusable`: no job can run; `degraded`: jobs run but something will hurt; `ok`: nothing found. */
export type Verdict = 'ok' | 'degraded' | 'unusable';

export interface ServerReport {
  url: string;
  verdict: Verdict;
  problems: Problem[];
  version: string | null;
  python: string | null;
  torch: string | null;
  latencyMs: number | null;
  devices: Array<{ name: string; type: string; vramTotal: number; vramFree: number }>;
  ramTotal: number | null;
  ramFree: number | null;
  nodeTypes: number | null;
  missingCoreNodes: string[];
  checkpoints: string[] | null;
  queue: { running: number; pending: number } | null;
  websocket: boolean | null;
  features: { clientPromptId: boolean; partialTargets: boolean; scopedInterrupt: boolean };
  /** Still down after the probes of `--wait` (null when it answered, or with one probe only). */
  down: DownInfo | null;
}

/** Nodes of the stock text-to-image graph; a server without them cannot run the usual workflows. */
export const CORE_NODES = ['CheckpointLoaderSimple', 'CLIPTextEncode', 'EmptyLatentImage', 'KSampler', 'VAEDecode', 'SaveImage'] as const;
const LOW_VRAM_BYTES = 2 * 2 ** 30;
const LONG_QUEUE = 20;

/** The verdict and problems of one server. */
export function assessServer(p: ServerProbe, down: DownInfo | null = null): ServerReport {
  const problems: Problem[] = [];
  const error = (message: string, hint?: string) => problems.push({ severity: 'error', message, ...(hint ? { hint } : {}) });
  const warn = (message: string) => problems.push({ severity: 'warning', message });

  const stats = p.systemStats.ok ? p.systemStats.value : null;
  if (!p.systemStats.ok) {
    const s = p.systemStats.status;
    if (s === 401 || s === 403) error(`the server refused us (HTTP ${s}): check the auth token, or a proxy's Origin check`);
    else {
      const since = down && down.probes > 1 ? `${down.state} since ${new Date(down.since).toISOString().replace(/\.\d{3}Z$/, 'Z')} (${down.probes} probes): ` : '';
      error(`${since}not reachable: ${p.systemStats.error}`, unreachableHint(p.url, p.systemStats.error, s));
    }
  }
  const devices = (stats?.devices ?? []).map((d) => ({ name: d.name, type: d.type, vramTotal: d.vram_total, vramFree: d.vram_free }));
  if (stats) {
    if (devices.length === 0 || devices.every((d) => d.type === 'cpu')) warn('no GPU: the server runs on CPU, generation will be very slow');
    for (const d of devices) {
      if (d.type !== 'cpu' && d.vramTotal > 0 && d.vramFree < Math.min(LOW_VRAM_BYTES, d.vramTotal * 0.1)) {
        warn(`${d.name}: only ${gib(d.vramFree)} of ${gib(d.vramTotal)} VRAM free; large jobs will hit out-of-memory (comfyguard will free memory and scale down)`);
      }
    }
    if (!p.capabilities.version) warn('the server does not report comfyui_version; optional features (client prompt ids, scoped interrupt) stay off');
    else if (!p.capabilities.supportsClientPromptId) warn(`ComfyUI ${p.capabilities.version} predates client-chosen prompt ids (0.3.45): reconciling after a disconnect is less exact; upgrade if you can`);
  }

  let missingCoreNodes: string[] = [];
  if (stats && !p.nodeTypes.ok) error(`cannot list node types (GET /object_info): ${p.nodeTypes.error}`);
  if (p.nodeTypes.ok) {
    const have = new Set(p.nodeTypes.value);
    missingCoreNodes = CORE_NODES.filter((n) => !have.has(n));
    if (p.nodeTypes.value.length === 0) error('the server lists no node types at all: its node registry failed to load');
    else if (missingCoreNodes.length > 0) warn(`core nodes missing: ${missingCoreNodes.join(', ')}; standard workflows will fail with COMFYUI_MISSING_NODE`);
  }
  if (stats && !p.checkpoints.ok) warn(`cannot list checkpoints (GET /models/checkpoints): ${p.checkpoints.error}`);
  if (p.checkpoints.ok && p.checkpoints.value.length === 0) warn('no checkpoints installed: workflows that load a checkpoint will fail with COMFYUI_MODEL_MISSING');
  if (stats && !p.queue.ok) warn(`cannot read the queue (GET /queue): ${p.queue.error}`);
  if (p.queue.ok && p.queue.value.pending > LONG_QUEUE) warn(`${p.queue.value.pending} prompts pending: new jobs will wait (comfyguard routes to less busy servers)`);
  if (stats && !p.websocket.ok) warn(`WebSocket /ws failed (${p.websocket.error}): progress falls back to polling, and results arrive later`);

  const verdict: Verdict = problems.some((x) => x.severity === 'error') ? 'unusable' : problems.length > 0 ? 'degraded' : 'ok';
  return {
    url: p.url,
    verdict,
    problems,
    version: p.capabilities.version ?? null,
    python: typeof stats?.system.python_version === 'string' ? stats.system.python_version : null,
    torch: typeof stats?.system.pytorch_version === 'string' ? stats.system.pytorch_version : null,
    latencyMs: p.systemStats.ok ? p.systemStats.ms : null,
    devices,
    ramTotal: typeof stats?.system.ram_total === 'number' ? stats.system.ram_total : null,
    ramFree: typeof stats?.system.ram_free === 'number' ? stats.system.ram_free : null,
    nodeTypes: p.nodeTypes.ok ? p.nodeTypes.value.length : null,
    missingCoreNodes,
    checkpoints: p.checkpoints.ok ? p.checkpoints.value : null,
    queue: p.queue.ok ? p.queue.value : null,
    websocket: stats ? p.websocket.ok : null,
    features: {
      clientPromptId: p.capabilities.supportsClientPromptId,
      partialTargets: p.capabilities.supportsPartialTargets,
      scopedInterrupt: p.capabilities.supportsScopedInterrupt,
    },
    down: p.systemStats.ok ? null : down,
  };
}

/** A human-readable report of several servers. */
export function renderReports(reports: ServerReport[]): string {
  const out: string[] = [];
  for (const r of reports) {
    out.push(`${r.url}  ${r.verdict.toUpperCase()}`);
    const row = (k: string, v: string) => out.push(`  ${k.padEnd(12)} ${v}`);
    if (r.version !== null || r.python !== null) {
      row('version', `ComfyUI ${r.version ?? 'unknown'}${r.python ? `, python ${r.python.split(' ')[0]}` : ''}${r.torch ? `, torch ${r.torch}` : ''}`);
    }
    if (r.latencyMs !== null) row('latency', `${r.latencyMs} ms (GET /system_stats)`);
    for (const d of r.devices) row('device', d.type === 'cpu' ? `${d.name} (CPU)` : `${d.name}: ${gib(d.vramFree)} free of ${gib(d.vramTotal)} VRAM`);
    if (r.ramTotal !== null) row('RAM', `${gib(r.ramFree ?? 0)} free of ${gib(r.ramTotal)}`);
    if (r.nodeTypes !== null) row('node types', `${r.nodeTypes}${r.missingCoreNodes.length === 0 ? ' (core nodes present)' : ` (missing: ${r.missingCoreNodes.join(', ')})`}`);
    if (r.checkpoints !== null) row('checkpoints', r.checkpoints.length === 0 ? 'none' : `${r.checkpoints.length}: ${list(r.checkpoints, 6)}`);
    if (r.queue !== null) row('queue', `${r.queue.running} running, ${r.queue.pending} pending`);
    if (r.websocket !== null) row('websocket', r.websocket ? 'ok' : 'failed');
    if (r.version !== null) {
      const yn = (b: boolean) => (b ? 'yes' : 'no');
      row('features', `client prompt_id ${yn(r.features.clientPromptId)}, partial targets ${yn(r.features.partialTargets)}, scoped interrupt ${yn(r.features.scopedInterrupt)}`);
    }
    if (r.problems.length === 0) out.push('  no problems found');
    for (const p of r.problems) {
      out.push(`  ${p.severity === 'error' ? 'ERROR' : 'warn '}  ${p.message}`);
      if (p.hint) out.push(`  hint   ${p.hint}`);
    }
    out.push('');
  }
  const unusable = reports.filter((r) => r.verdict === 'unusable').length;
  out.push(
    unusable === 0
      ? `${reports.length} server(s) checked: all usable${reports.some((r) => r.verdict === 'degraded') ? ' (see warnings)' : ''}`
      : `${reports.length} server(s) checked: ${unusable} unusable`,
  );
  return `${out.join('\n')}\n`;
}

const KIND_WORDS = { gpu: 'GPU', cpu: 'RAM (CPU tensor)', cpuDevice: 'RAM (CPU server)' } as const;

/**
 * The learned memory section: per server and workflow shape, the bounds on the real need as
 * multiples of the shape estimate, and how many OOMs and successes taught them.
 */
export function renderLearnedMemory(learned: LearnedMemory, store: string): string {
  const out = [`learned memory (store ${store})`];
  if (learned.entries.length === 0) out.push('  nothing learned yet: no OOM or success has been recorded in this store');
  let server: string | null = null;
  let shape: string | null = null;
  for (const e of learned.entries) {
    if (e.server !== server) {
      server = e.server;
      shape = null;
      out.push(`  ${server}`);
    }
    if (e.shape !== shape) {
      shape = e.shape;
      out.push(`    ${e.label ?? 'a workflow shape'} (shape ${e.shape})`);
    }
    out.push(`      ${KIND_WORDS[e.kind]}: ${boundsWords(e.lower, e.upper, e.ooms)} (${e.ooms} OOM, ${e.successes} ok)`);
  }
  return `${out.join('\n')}\n`;
}

/** "need x1.10 .. x1.40 of the estimate", "need at most x2.11 …", "no bound yet". */
function boundsWords(lower: number | null, upper: number | null, ooms: number): string {
  const x = (r: number) => `x${r.toFixed(2)}`;
  if (lower !== null && upper !== null) return `need ${x(lower)} .. ${x(upper)} of the estimate`;
  if (lower !== null) return `need at least ${x(lower)} of the estimate`;
  if (upper !== null) return `need at most ${x(upper)} of the estimate`;
  // An OOM sets a lower bound only when it says more than the estimate already did.
  return ooms > 0 ? 'the estimate held (its OOMs needed no more than it predicted)' : 'no bound yet';
}

/** The usual causes of a server that does not answer, from what the connection said. */
export function unreachableHint(url: string, error: string, status: number | undefined): string {
  let where = url;
  try {
    const u = new URL(url);
    where = `${u.hostname}:${u.port || (u.protocol === 'https:' ? '443' : '80')}`;
  } catch {
    // Keep the URL as given.
  }
  if (/ECONNREFUSED/.test(error)) {
    return `nothing listens on ${where}. Is ComfyUI running? Is it the right port (ComfyUI's default is 8188)? If ComfyUI runs on another machine or in a container, start it with --listen 0.0.0.0 (and publish the port).`;
  }
  if (/ENOTFOUND|EAI_AGAIN/.test(error)) return `the host name in ${url} does not resolve: check the spelling, or use the IP address.`;
  if (/timed? ?out|ETIMEDOUT|UND_ERR_CONNECT_TIMEOUT/i.test(error)) {
    return `no answer from ${where} in time: a firewall may drop the connection, the host may be wrong, or ComfyUI is still starting (loading custom nodes takes a while); try again in a minute.`;
  }
  if (status !== undefined && status >= 500) return `something answers on ${where} but ComfyUI is not ready (HTTP ${status}): a proxy in front of a ComfyUI that is still booting, or one that crashed; check its log.`;
  if (status === 404) return `something answers on ${where}, but it is not ComfyUI (no /system_stats): check the port, or the path prefix of a proxy.`;
  return `check that ComfyUI is running and reachable from here: curl ${url}/system_stats`;
}

function gib(bytes: number): string {
  return `${(bytes / 2 ** 30).toFixed(1)} GiB`;
}

function list(items: string[], max: number): string {
  return items.length <= max ? items.join(', ') : `${items.slice(0, max).join(', ')}, … (+${items.length - max})`;
}
