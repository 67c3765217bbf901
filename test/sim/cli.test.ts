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

  it('exits 2 (bad usage) on a bad flag when run as a program', async () => {
    const { out, exited } = run(['--faults', 'boom=1']);
    expect(await exited).toBe(2);
    expect(out.stderr).toContain("option '--faults <spec>' argument 'boom=1' is invalid. \"boom=1\": unknown fault kind \"boom\"");
  });
});

async function started(args: string[]) {
  const r = run(['--port', '0', '--step-ms', '0', ...args]);
  await waitUntil(() => /listening on http:\/\/\S+/.test(r.out.stdout) || r.out.code !== undefined, 'the URL', 30_000);
  const url = /listening on (http:\/\/\S+)/.exec(r.out.stdout)?.[1];
  if (!url) throw new Error(`no URL\nstdout: ${r.out.stdout}\nstderr: ${r.out.stderr}`);
  return { ...r, url };
}

async function answers(url: string): Promise<boolean> {
  try {
    return (await fetch(`${url}/system_stats`)).ok;
  } catch {
    return false;
  }
}

describe('comfyguard sim survives its own faults', () => {
  it('a taken --port is an error naming the port, without a listener-leak warning', async () => {
    const first = await started([]);
    const port = new URL(first.url).port;
    const second = run(['--port', port]);
    expect(await second.exited).toBe(1);
    expect(second.out.stderr).toContain(`comfyguard sim: port ${port} on 127.0.0.1 is already in use`);
    expect(second.out.stderr).not.toContain('MaxListenersExceededWarning');
    first.child.kill('SIGTERM');
    expect(await first.exited).toBe(0);
  });

  it('comes back after POST /_sim/crash, on the same port, and still stops on SIGTERM', async () => {
    const sim = await started(['--crash-downtime-ms', '300']);
    expect((await fetch(`${sim.url}/_sim/crash`, { method: 'POST' })).status).toBe(200);
    await waitUntil(async () => !(await answers(sim.url)), 'the crash to close the port', 15_000);
    await waitUntil(() => answers(sim.url), 'the simulator to come back', 15_000);
    expect(sim.out.code).toBeUndefined();
    sim.child.kill('SIGTERM');
    expect(await sim.exited).toBe(0);
  });

  it('comes back after a crash=1 fault fired by a prompt', async () => {
    const sim = await started(['--faults', 'crash=1', '--crash-downtime-ms', '300']);
    const prompt = { '1': { class_type: 'EmptyImage', inputs: { width: 8, height: 8, batch_size: 1, color: 0 } }, '2': { class_type: 'SaveImage', inputs: { images: ['1', 0], filename_prefix: 'x' } } };
    await fetch(`${sim.url}/prompt`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ prompt }) }).catch(() => undefined);
    await waitUntil(async () => ((await (await fetch(`${sim.url}/_sim/stats`).catch(() => null))?.json().catch(() => null)) as { faults?: Record<string, number> } | null)?.faults?.crash === 1, 'the crash to be counted', 15_000);
    expect(sim.out.code).toBeUndefined();
    sim.child.kill('SIGTERM');
    expect(await sim.exited).toBe(0);
  });

  it('keeps running while a refuse fault closes its port, and listens again', async () => {
    const sim = await started([]);
    const set = await fetch(`${sim.url}/_sim/faults`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ faults: 'refuse=0.5' }) });
    expect(set.status).toBe(200);
    await waitUntil(async () => !(await answers(sim.url)), 'a refused connection', 15_000);
    await waitUntil(() => answers(sim.url), 'the port to open again', 15_000);
    expect(sim.out.code).toBeUndefined();
    sim.child.kill('SIGTERM');
    expect(await sim.exited).toBe(0);
  });
});
