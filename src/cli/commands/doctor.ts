/**
 * `comfyguard doctor --server URL [...]`: checks each ComfyUI server the way comfyguard will use it
 * and prints a verdict with the problems found. Exit 1 when a server is unusable.
 */
import type { Command } from 'commander';
import { addConfigOptions, requireServers, resolveConfig, type SettingKey } from '../config.js';
import { probeServer } from '../doctor/probe.js';
import { assessServer, renderReports } from '../doctor/report.js';
import { withUsage } from '../usage.js';

const KEYS: readonly SettingKey[] = ['servers', 'requestTimeoutMs'];

async function doctor(flags: Record<string, unknown>): Promise<void> {
  const cfg = resolveConfig({ flags, keys: KEYS, defaults: { requestTimeoutMs: 10_000 } });
  const servers = requireServers(cfg);
  const probes = await Promise.all(servers.map((url) => probeServer(url, { timeoutMs: cfg.requestTimeoutMs })));
  const reports = probes.map(assessServer);
  process.stdout.write(flags['json'] ? `${JSON.stringify(reports, null, 2)}\n` : renderReports(reports));
  if (reports.some((r) => r.verdict === 'unusable')) process.exitCode = 1;
}

/** Registers `doctor`. */
export function register(program: Command): void {
  const cmd = program
    .command('doctor')
    .description('check ComfyUI servers: reachability, latency, VRAM, node types, models, queue, WebSocket, features')
    .option('--json', 'print the reports as JSON');
  addConfigOptions(cmd, KEYS);
  cmd.action(withUsage('doctor', doctor));
}
