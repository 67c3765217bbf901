/**
 * `comfyguard doctor --server URL [...]`: checks each ComfyUI server the way comfyguard will use it
 * and prints a verdict with the problems found. Exit 1 when a server is unusable. With `--wait`, a
 * server that does not answer yet (still booting) is probed again on comfyguard's readiness backoff
 * until it answers or the time is up, and the report says since when it was down. With `--store`,
 * it also lists what the memory model learned in that store, per server and workflow shape.
 */
import type { Command } from 'commander';
import { readLearnedMemory, type LearnedMemory } from '../../jobs/learned-memory.js';
import { Readiness } from '../../pool/health.js';
import { openStore } from '../../store/open.js';
import { redactUrl } from '../../util/outbound.js';
import { addConfigOptions, parseDuration, requireServers, resolveConfig, type SettingKey } from '../config.js';
import { probeServer, type ServerProbe } from '../doctor/probe.js';
import { assessServer, renderLearnedMemory, renderReports, type DownInfo } from '../doctor/report.js';
import { withUsage } from '../usage.js';

const KEYS: readonly SettingKey[] = ['servers', 'requestTimeoutMs', 'store'];

async function doctor(flags: Record<string, unknown>): Promise<void> {
  // No store unless one is named: doctor must not create the default SQLite file where it runs.
  const cfg = resolveConfig({ flags, keys: KEYS, defaults: { requestTimeoutMs: 10_000, store: '' } });
  const servers = requireServers(cfg);
  const waitMs = flags['wait'] === undefined ? 0 : parseDuration(flags['wait'], '--wait');
  const [probes, learned] = await Promise.all([Promise.all(servers.map((url) => probeUntilUp(url, cfg.requestTimeoutMs, waitMs))), cfg.store ? readLearned(cfg.store) : null]);
  const reports = probes.map(({ probe, down }) => assessServer(probe, down));
  if (flags['json']) {
    // Without a store the JSON stays the list of server reports it always was.
    const json = learned === null ? reports : { servers: reports, memoryModel: 'error' in learned ? { error: learned.error } : learned.memory };
    process.stdout.write(`${JSON.stringify(json, null, 2)}\n`);
  } else {
    process.stdout.write(renderReports(reports));
    if (learned !== null) {
      const where = redactUrl(cfg.store);
      process.stdout.write(`\n${'error' in learned ? `learned memory (store ${where})\n  ERROR  cannot read the store: ${learned.error}\n` : renderLearnedMemory(learned.memory, where)}`);
    }
  }
  if (reports.some((r) => r.verdict === 'unusable') || (learned !== null && 'error' in learned)) process.exitCode = 1;
}

/** What the memory model learned in a store; the store is opened for this and closed again. */
async function readLearned(url: string): Promise<{ memory: LearnedMemory } | { error: string }> {
  let store: ReturnType<typeof openStore> | null = null;
  try {
    store = openStore(url);
    await store.init();
    return { memory: await readLearnedMemory(store) };
  } catch (err) {
    return { error: err instanceof Error ? err.message : String(err) };
  } finally {
    await store?.close().catch(() => undefined);
  }
}

/** Probes until `/system_stats` answers or `waitMs` is over; says since when the server was down. */
async function probeUntilUp(url: string, timeoutMs: number, waitMs: number): Promise<{ probe: ServerProbe; down: DownInfo | null }> {
  const readiness = new Readiness({ healthTtlMs: 30_000 });
  const deadline = Date.now() + waitMs;
  let probes = 0;
  for (;;) {
    const probe = await probeServer(url, { timeoutMs });
    probes++;
    const s = probe.systemStats;
    readiness.note({
      healthy: s.ok,
      latencyMs: null,
      vramTotal: null,
      vramFree: null,
      queueRemaining: null,
      error: s.ok ? null : `${s.status !== undefined ? `HTTP ${s.status} ` : ''}${s.error}`,
      checkedAt: Date.now(),
      version: null,
    });
    const view = readiness.view();
    const next = readiness.nextProbeAt;
    if (s.ok || next === null || next >= deadline) {
      const down = view.since !== null && (view.state === 'booting' || view.state === 'unreachable') ? { state: view.state, since: view.since, probes } : null;
      return { probe, down };
    }
    await new Promise((r) => setTimeout(r, Math.max(0, next - Date.now())));
  }
}

/** Registers `doctor`. */
export function register(program: Command): void {
  const cmd = program
    .command('doctor')
    .description('check ComfyUI servers: reachability, latency, VRAM, node types, models, queue, WebSocket, features; with --store, what the memory model learned')
    .option('--json', 'print the reports as JSON')
    .option('--wait <ms>', 'keep probing a server that does not answer yet (still booting) for this long, e.g. 2m (default: one probe)');
  addConfigOptions(cmd, KEYS);
  cmd.action(withUsage('doctor', doctor));
}
