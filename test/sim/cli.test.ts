/**
 * `comfyguard sim` as a user runs it: a child process that prints its URL, serves ComfyUI's API,
 * and stops cleanly on SIGTERM; bad flag values exit non-zero naming the flag.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { afterEach, describe, expect, it } from 'vitest';
import { register } from '../../src/cli/commands/sim.js';
import { waitUntil } from './helpers.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const children: ChildProcess[] = [];
afterEach(() => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});

function run(args: string[]) {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'sim', ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  const out = { stdout: '', stderr: '', code: undefined as number | null | undefined };
  child.stdout?.on('data', (d: Buffer) => (out.stdout += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (out.stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve((out.code = code))));
  return { child, out, exited };
}

describe('comfyguard sim', () => {
  it('prints its URL, serves the ComfyUI API and stops on SIGTERM', async () => {
    const { child, out, exited } = run(['--port', '0', '--vram', '8GiB', '--faults', 'oom=0.5', '--name', 'cli-sim', '--step-ms', '0']);
    await waitUntil(() => /listening on http:\/\/\S+/.test(out.stdout) || out.code !== undefined, 'the URL', 30_000);
    const url = /listening on (http:\/\/\S+)/.exec(out.stdout)?.[1];
    expect(url, out.stderr).toBeDefined();
    expect(out.stdout).toContain('"cli-sim"');
    expect(out.stdout).toContain('faults  oom=0.5');
    const stats = (await (await fetch(`${url}/system_stats`)).json()) as { devices: Array<{ vram_total: number }> };
    expect(stats.devices[0]?.vram_total).toBe(8 * 2 ** 30);
    expect(await (await fetch(`${url}/_sim/faults`)).json()).toEqual({ faults: 'oom=0.5' });
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(out.stdout).toContain('simulator stopped');
  });

  it.each([
    [['--vram', 'lots'], "option '--vram <size>' argument 'lots' is invalid. \"lots\" is not a size"],
    [['--port', '99999'], "option '--port <port>' argument '99999' is invalid"],
    [['--faults', 'oom=2'], "option '--faults <spec>' argument 'oom=2' is invalid"],
    [['--models', 'checkpoints'], "option '--models <spec>' argument 'checkpoints' is invalid"],
    [['--step-ms', '-3'], "option '--step-ms <ms>' argument '-3' is invalid"],
    [['--device', 'tpu'], "option '--device <device>' argument 'tpu' is invalid"],
  ])('rejects %j with a message naming the flag', async (args, message) => {
    let stderr = '';
    const program = new Command().exitOverride().configureOutput({ writeErr: (t) => (stderr += t), writeOut: () => undefined });
    register(program);
    await expect(program.parseAsync(['sim', ...args], { from: 'user' })).rejects.toMatchObject({ exitCode: 1 });
    expect(stderr).toContain(message);
  });

  it('exits non-zero on a bad flag when run as a program', async () => {
    const { out, exited } = run(['--faults', 'boom=1']);
    expect(await exited).toBe(1);
    expect(out.stderr).toContain("option '--faults <spec>' argument 'boom=1' is invalid. \"boom=1\": unknown fault kind \"boom\"");
  });
});
