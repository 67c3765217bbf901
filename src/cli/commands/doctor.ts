/**
 * `comfyguard doctor --server URL [...]`: checks each ComfyUI server the way comfyguard will use it
 * and prints a verdict with the problems found. Exit 1 when a server is unusable. With `--wait`, a
 * server that does not answer yet (still booting) is probed again on comfyguard's readiness backoff
 * until it answers or the time is up, and the report says since when it was down.
 */
import type { Command } from 'commander';
import { Readiness } from '../../pool/health.js';
import { addConfigOptions, parseDuration, requireServers, resolveConfig, type SettingKey } from '../config.js';
import { probeServer, type ServerProbe } from '../doctor/probe.js';
import { assessServer, renderReports, type DownInfo } from '../doctor/report.js';
import { withUsage } from '../usage.js';

const KEYS: readonly SettingKey[] = ['servers', 'requestTimeoutMs'];

async function doctor(flags: Record<string, unknown>): Promise<void> {
  const cfg = resolveConfig({ flags, keys: KEYS, defaults: { requestTimeoutMs: 10_000 } });
  const servers = requireServers(cfg);
  const waitMs = flags['wait'] === undefined ? 0 : parseDuration(flags['wait'], '--wait');
  const probes = await Promise.all(servers.map((url) => probeUntilUp(url, cfg.requestTimeoutMs, waitMs)));
  const reports = probes.map(({ probe, down }) => assessServer(probe, down));
  process.stdout.write(flags['json'] ? `${JSON.stringify(reports, null, 2)}\n` : renderReports(reports));
  if (reports.some((r) => r.verdict === 'unusable')) process.exitCode = 1;
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
    .description('check ComfyUI servers: reachability, latency, VRAM, node types, models, queue, WebSocket, features')
    .option('--json', 'print the reports as JSON')
    .option('--wait <ms>', 'keep probing a server that does not answer yet (still booting) for this long, e.g. 2m (default: one probe)');
  addConfigOptions(cmd, KEYS);
  cmd.action(withUsage('doctor', doctor));
}
