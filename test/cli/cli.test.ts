/**
 * The comfyguard binary, run as users run it (`node dist/cli/main.js …` as a child process), against
 * simulators on loopback port 0.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { txt2img } from '../../src/cli/demo/samples.js';
import { SETTINGS } from '../../src/cli/config.js';
import { createGuard } from '../../src/jobs/guard.js';
import { startSimulator, type Simulator } from '../../src/sim/index.js';
import { deleteQueueKeys, REDIS_URL, requireRedis, TEST_PREFIX, uniqueQueueName } from '../queue/redis.js';
import { CliProcess, ensureBuilt, runCli } from './binary.js';

let dir: string;
const sims: Simulator[] = [];
const procs: CliProcess[] = [];

beforeAll(async () => {
  await ensureBuilt();
  dir = await mkdtemp(join(tmpdir(), 'cg-cli-'));
}, 240_000);
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});
afterEach(async () => {
  await Promise.all(procs.splice(0).map((p) => p.kill()));
  await Promise.all(sims.splice(0).map((s) => s.close()));
});

async function sim(opts: Parameters<typeof startSimulator>[0] = {}): Promise<Simulator> {
  const s = await startSimulator({ stepMs: 1, ...opts });
  sims.push(s);
  return s;
}

async function workflowFile(name: string, o: Partial<Parameters<typeof txt2img>[0]> = {}): Promise<string> {
  const file = join(dir, name);
  const wf = txt2img({ ckpt: 'v1-5-pruned-emaonly.ckpt', width: 512, height: 512, batch: 1, steps: 10, seed: 42, prompt: 'a red fox', ...o });
  await writeFile(file, JSON.stringify(wf));
  return file;
}

async function closedPort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const { port } = srv.address() as AddressInfo;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

describe('comfyguard --help and usage errors', () => {
  it('--help lists every command', async () => {
    const r = await runCli(['--help']);
    expect(r.code).toBe(0);
    for (const c of ['serve', 'run', 'demo', 'doctor', 'sim']) expect(r.stdout).toMatch(new RegExp(`^\\s+${c} `, 'm'));
  });

  it('serve --help lists every setting with its flag and environment variable', async () => {
    const r = await runCli(['serve', '--help']);
    expect(r.code).toBe(0);
    for (const s of SETTINGS) {
      expect(r.stdout).toContain(s.flag.split(' ')[0]!);
      expect(r.stdout).toContain(s.env);
    }
    expect(r.stdout).toContain('defaults < config file < environment < flags');
  });

  it('an unknown flag or command is bad usage: exit 2 naming it', async () => {
    const r = await runCli(['run', 'x.json', '--bogus']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("unknown option '--bogus'");
    const c = await runCli(['runn']);
    expect(c.code).toBe(2);
    expect(c.stderr).toContain("unknown command 'runn'");
    expect(c.stderr).toContain('Did you mean run?');
  });

  it('demo --help shows the demo\'s own defaults (memory store, port 8080 or a free one)', async () => {
    const r = await runCli(['demo', '--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/--store\s+COMFYGUARD_STORE\s+store\s+"memory:"/);
    expect(r.stdout).toMatch(/--port\s+COMFYGUARD_PORT\s+port\s+8080 \(a free port if 8080 is taken\)/);
    expect(r.stdout).not.toContain('sqlite:./data/comfyguard.db');
  });

  it('a bad flag value exits 2 naming the flag; a bad environment value names the variable', async () => {
    const r = await runCli(['doctor', '--server', 'ftp://nope']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^comfyguard doctor: --server: "ftp:\/\/nope" must be an http/m);
    const e = await runCli(['doctor'], { env: { COMFYUI_URL: 'http://127.0.0.1:8188', REQUEST_TIMEOUT_MS: 'soon' } });
    expect(e.code).toBe(2);
    expect(e.stderr).toContain('environment variable REQUEST_TIMEOUT_MS');
  });

  it('run without any server says how to give one (exit 2)', async () => {
    const wf = await workflowFile('no-server.json');
    const r = await runCli(['run', wf]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('no ComfyUI server given');
    expect(r.stderr).toContain('COMFYUI_URL');
  });

  it('run exits 2 naming a bad JSON file, a UI-format workflow, or a bad --param', async () => {
    const bad = join(dir, 'broken.json');
    await writeFile(bad, '{ "3": ');
    const a = await runCli(['run', bad, '--server', 'http://127.0.0.1:1']);
    expect(a.code).toBe(2);
    expect(a.stderr).toContain(`workflow file "${bad}" is not valid JSON`);

    const ui = join(dir, 'ui.json');
    await writeFile(ui, JSON.stringify({ last_node_id: 9, nodes: [], links: [] }));
    const b = await runCli(['run', ui, '--server', 'http://127.0.0.1:1']);
    expect(b.code).toBe(2);
    expect(b.stderr).toContain('UI format');

    const wf = await workflowFile('ok.json');
    const c = await runCli(['run', wf, '--server', 'http://127.0.0.1:1', '--param', 'width']);
    expect(c.code).toBe(2);
    expect(c.stderr).toContain('--param "width": expected key=value');
  });
});

describe('comfyguard run', () => {
  it('completes a workflow on a simulator and downloads the outputs into --out', async () => {
    // Slow enough steps that progress is reported between the first and the last event.
    const s = await sim({ name: 'gpu', stepMs: 40 });
    const wf = await workflowFile('run-ok.json', { steps: 20 });
    const out = join(dir, 'outputs');
    const r = await runCli(['run', wf, '--server', s.url, '--param', 'seed=7', '--out', out]);
    expect(r.stderr).not.toContain('comfyguard run:');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/completed in [\d.]+ s after 1 attempt on 127\.0\.0\.1:\d+/);
    const saved = /^saved (\S+)/m.exec(r.stdout)?.[1];
    expect(saved && saved.startsWith(out) && existsSync(saved)).toBe(true);
    // The downloaded file is the image the server serves (PNG signature).
    const bytes = await readFile(saved!);
    expect([...bytes.subarray(0, 4)]).toEqual([0x89, 0x50, 0x4e, 0x47]);
    // Plain progress lines when stderr is not a terminal: percentage, elapsed time, the node.
    expect(r.stderr).toMatch(/attempt 1 running on 127\.0\.0\.1:\d+/);
    expect(r.stderr).toMatch(/progress \d+% [\d.]+ s elapsed, ETA [\d.]+ s \(attempt 1/);
    expect(r.stderr).toMatch(/progress 100% [\d.]+ s elapsed \(attempt 1/);
  });

  it('saves the outputs into the current folder by default, never over an existing file; --no-save prints their URLs', async () => {
    const s = await sim();
    const wf = await workflowFile('run-cwd.json');
    const cwd = await mkdtemp(join(dir, 'cwd-'));
    const first = await runCli(['run', wf, '--server', s.url], { cwd });
    expect(first.code, first.stderr).toBe(0);
    const a = /^saved (\S+)/m.exec(first.stdout)?.[1];
    expect(a && a.startsWith(cwd) && existsSync(a)).toBe(true);
    // Same seed, same file name on the server: the second copy gets a new name.
    const second = await runCli(['run', wf, '--server', s.url], { cwd });
    const b = /^saved (\S+)/m.exec(second.stdout)?.[1];
    expect(b && b !== a && existsSync(b)).toBe(true);
    const none = await runCli(['run', wf, '--server', s.url, '--no-save'], { cwd });
    expect(none.code).toBe(0);
    expect(none.stdout).not.toContain('saved ');
    const url = /(http:\/\/\S+\/view\?filename=\S+)/.exec(none.stdout)?.[1];
    expect((await fetch(url!)).status).toBe(200);
  });

  it('against a dead port: waits as told, then exits 1 with the code, what the server said, and a hint', async () => {
    const port = await closedPort();
    const wf = await workflowFile('run-dead.json');
    const r = await runCli(['run', wf, '--server', `http://127.0.0.1:${port}`, '--server-wait', '3s']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('waiting for a ComfyUI server (up to 3 s)');
    expect(r.stderr).toContain('comfyguard run: job failed with COMFYUI_CONNECTION_ERROR: No ComfyUI server answered within 3 s.');
    expect(r.stderr).toMatch(new RegExp(`http://127\\.0\\.0\\.1:${port}: unreachable since \\S+Z: .*ECONNREFUSED`));
    expect(r.stderr).toMatch(/hint: Is ComfyUI running\? .*--listen 0\.0\.0\.0/);
  });

  it('waits for a server that is still booting and runs the job the moment it answers', async () => {
    const port = await closedPort();
    const wf = await workflowFile('run-boot.json');
    const p = new CliProcess(['run', wf, '--server', `http://127.0.0.1:${port}`, '--server-wait', '2m', '--no-save']);
    procs.push(p);
    // Nothing listens yet: the run says it waits (on stderr), then the server boots.
    await expect.poll(() => p.stderr, { timeout: 30_000, interval: 50 }).toContain('waiting for a ComfyUI server');
    await sim({ port });
    expect((await p.exited).code, p.stderr).toBe(0);
    expect(p.stdout).toMatch(/completed in [\d.]+ s after 1 attempt/);
  });

  it('tells the recovery story when out-of-memory recovery changed the workflow', async () => {
    const s = await sim({ vram: '4GiB' });
    const wf = await workflowFile('run-oom.json', { width: 1024, height: 1024, batch: 8, steps: 10 });
    const r = await runCli(['run', wf, '--server', s.url, '--max-retries', '12'], { cwd: dir });
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^recovery \(1 step\):$/m);
    // One planned step: which attempt failed with what, every change it combined, and how the next attempt did.
    expect(r.stdout).toMatch(/1\. attempt 1 on \S+ failed with COMFYUI_OOM .*; reduce_batch: .*node 5 EmptyLatentImage\.batch_size 8 -> \d.*VAEDecodeTiled.* -> attempt 2 completed/);
    expect(r.stdout).not.toMatch(/ x\b|did not help/);
    // Never a silent change: the result's difference from the request is a warning line.
    expect(r.stdout).toMatch(/^warning: the result differs from the request: node 5 batch_size 8 -> \d/m);
    expect(r.stdout).toMatch(/completed in [\d.]+ s after 2 attempts/);
  });

  it('exits 1 with the message and the hint on a permanent error, without retrying', async () => {
    const s = await sim();
    const wf = await workflowFile('run-bad.json', { sampler: 'euler_typo' });
    const r = await runCli(['run', wf, '--server', s.url], { cwd: dir });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('job failed with COMFYUI_INVALID_PARAMETERS after 1 attempt(s)');
    expect(r.stderr).toMatch(/input sampler_name: "euler_typo" is not allowed \(ComfyUI allows \d+ values here/);
    expect(r.stderr).toMatch(/^ {2}hint: \S.+/m);
    expect(s.stats().executions).toEqual({});
  });

  it('takes the server from COMFYUI_URL and prints JSON with --json', async () => {
    const s = await sim();
    const wf = await workflowFile('run-env.json');
    const r = await runCli(['run', wf, '--json'], { env: { COMFYUI_URL: s.url }, cwd: dir });
    expect(r.code).toBe(0);
    const result = JSON.parse(r.stdout) as { status: string; attempts: number; outputs: unknown[] };
    expect(result).toMatchObject({ status: 'completed', attempts: 1 });
    expect(result.outputs.length).toBeGreaterThan(0);
  });
});

describe('comfyguard doctor', () => {
  it('reports a healthy simulator as OK with its version, VRAM, node types and checkpoints', async () => {
    const s = await sim({ vram: '8GiB' });
    const r = await runCli(['doctor', '--server', s.url]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`${s.url}  OK`);
    expect(r.stdout).toContain('ComfyUI 0.3.64');
    expect(r.stdout).toMatch(/of 8\.0 GiB VRAM/);
    expect(r.stdout).toMatch(/node types\s+\d+ \(core nodes present\)/);
    expect(r.stdout).toContain('v1-5-pruned-emaonly.ckpt');
    expect(r.stdout).toMatch(/websocket\s+ok/);
    expect(r.stdout).toContain('client prompt_id yes');
  });

  it('exits 1 for a closed port and lists the problem; warns about a server without checkpoints', async () => {
    const port = await closedPort();
    const s = await sim({ models: { checkpoints: [] } });
    const r = await runCli(['doctor', '--server', `http://127.0.0.1:${port}`, '--server', s.url]);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain(`http://127.0.0.1:${port}  UNUSABLE`);
    expect(r.stdout).toMatch(/ERROR {2}not reachable: .*ECONNREFUSED/);
    expect(r.stdout).toContain(`hint   nothing listens on 127.0.0.1:${port}. Is ComfyUI running? Is it the right port (ComfyUI's default is 8188)?`);
    expect(r.stdout).toContain('--listen 0.0.0.0');
    expect(r.stdout).toContain(`${s.url}  DEGRADED`);
    expect(r.stdout).toContain('no checkpoints installed');
    expect(r.stdout).toContain('2 server(s) checked: 1 unusable');
  });

  it('--store lists what the memory model learned in that store, per server and workflow shape', async () => {
    const s = await sim({ vram: '8GiB', name: 'lone' });
    const store = `sqlite:${join(dir, 'learned.db')}`;
    // A job too big for 8 GiB as asked: its OOM and the success after recovery both teach the model.
    const guard = await createGuard({ servers: [{ url: s.url, name: 'lone' }], store, cleanupIntervalMs: 0, retry: { baseMs: 20, capMs: 200 } });
    try {
      const wf = txt2img({ ckpt: 'sd_xl_base_1.0.safetensors', width: 1024, height: 1024, batch: 8, steps: 4, seed: 1, prompt: 'a lighthouse' });
      expect((await guard.wait((await guard.submit(wf)).id)).status).toBe('completed');
    } finally {
      await guard.close();
    }
    const r = await runCli(['doctor', '--server', s.url, '--store', store]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`learned memory (store ${store})`);
    expect(r.stdout).toMatch(/^ {2}lone$/m);
    // The OOM'd workflow and the tiled variant that ran are two shapes, each with what it taught.
    expect(r.stdout).toMatch(/^ {4}sdxl: sd_xl_base_1\.0\.safetensors; .*KSampler, SaveImage, VAEDecode \(shape k[0-9a-f]{8}\)\n {6}GPU: (the estimate held \(its OOMs needed no more than it predicted\)|need .+ of the estimate) \(1 OOM, 0 ok\)$/m);
    expect(r.stdout).toMatch(/^ {4}sdxl: .*VAEDecodeTiled \(shape k[0-9a-f]{8}\)\n {6}GPU: need at most x\d+\.\d\d of the estimate \(0 OOM, 1 ok\)$/m);
    const json = JSON.parse((await runCli(['doctor', '--server', s.url, '--store', store, '--json'])).stdout) as { servers: unknown[]; memoryModel: { entries: Array<{ server: string; ooms: number }> } };
    expect(json.servers).toHaveLength(1);
    expect(json.memoryModel.entries).toContainEqual(expect.objectContaining({ server: 'lone', kind: 'gpu', ooms: 1, successes: 0 }));
  });

  it('--wait keeps probing a server that does not answer and says since when it is down', async () => {
    const port = await closedPort();
    const r = await runCli(['doctor', '--server', `http://127.0.0.1:${port}`, '--wait', '1s']);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/ERROR {2}unreachable since \d{4}-\d\d-\d\dT[\d:]+Z \((\d+) probes\): not reachable: .*ECONNREFUSED/);
    expect(Number(/\((\d+) probes\)/.exec(r.stdout)?.[1])).toBeGreaterThan(1);
  });
});

describe('comfyguard serve', () => {
  it('serves the API and metrics over a simulator from env settings, and drains on SIGTERM', async () => {
    const s = await sim();
    const p = new CliProcess(['serve', '--port', '0', '--comfy-port', '0', '--store', 'memory:'], { env: { COMFYUI_URL: s.url, LOG_LEVEL: 'warn' } });
    procs.push(p);
    const url = (await p.waitFor(/listening on (http:\/\/\S+)/))[1]!;
    const health = await fetch(`${url}/api/health`);
    expect(health.status).toBe(200);
    // --comfy-port: the ComfyUI API at the root of its own port.
    const comfyUrl = (await p.waitFor(/ComfyUI\s+(http:\/\/\S+)/))[1]!;
    expect(comfyUrl).not.toContain('/comfy');
    expect(await (await fetch(`${comfyUrl}/api/prompt`)).json()).toMatchObject({ exec_info: { queue_remaining: 0 } });
    const wf = JSON.parse(await readFile(await workflowFile('serve.json'), 'utf8')) as unknown;
    const submitted = await fetch(`${url}/api/jobs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ workflow: wf }) });
    expect(submitted.status).toBe(202);
    const metrics = await (await fetch(`${url}/metrics`)).text();
    expect(metrics).toContain('comfyguard_jobs{status=');
    const { id } = (await submitted.json()) as { id: string };
    await expect.poll(async () => ((await (await fetch(`${url}/api/jobs/${id}`)).json()) as { status: string }).status, { timeout: 60_000, interval: 50 }).toBe('completed');
    p.child.kill('SIGTERM');
    expect(await p.exited).toEqual({ code: 0, signal: null });
    expect(p.stdout).toContain('comfyguard stopped: 1 job finished: 1 completed');
  });

  it('dispatches through BullMQ on Redis with --queue, and fails clearly when Redis is down', async () => {
    await requireRedis();
    const s = await sim();
    const queueName = uniqueQueueName();
    const queue = `${REDIS_URL}?queue=${queueName}&prefix=${TEST_PREFIX}`;
    const p = new CliProcess(['serve', '--server', s.url, '--port', '0', '--store', 'memory:', '--queue', queue]);
    procs.push(p);
    try {
      const url = (await p.waitFor(/listening on (http:\/\/\S+)/))[1]!;
      const wf = JSON.parse(await readFile(await workflowFile('serve-bullmq.json'), 'utf8')) as unknown;
      const res = await fetch(`${url}/api/jobs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ workflow: wf }) });
      const { id } = (await res.json()) as { id: string };
      await expect
        .poll(async () => ((await (await fetch(`${url}/api/jobs/${id}`)).json()) as { status: string }).status, { timeout: 60_000, interval: 50 })
        .toBe('completed');
      p.child.kill('SIGTERM');
      expect(await p.exited).toEqual({ code: 0, signal: null });
    } finally {
      await deleteQueueKeys(queueName);
    }

    const down = await runCli(['serve', '--server', s.url, '--port', '0', '--store', 'memory:', '--queue', `redis://127.0.0.1:${await closedPort()}`]);
    expect(down.code).toBe(1);
    expect(down.stderr).toMatch(/Redis is not reachable at redis:\/\/127\.0\.0\.1:\d+/);
  });

  it('refuses to listen beyond loopback without an API key (exit 2), before creating the default ./data store', async () => {
    const cwd = await mkdtemp(join(dir, 'expose-'));
    const r = await runCli(['serve', '--server', 'http://127.0.0.1:1', '--host', '0.0.0.0', '--port', '0'], { cwd });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('without an API key');
    expect(existsSync(join(cwd, 'data'))).toBe(false);
  });

  it('exits 1 naming the store when PostgreSQL does not answer or the SQLite path is unusable', async () => {
    const pg = await runCli(['serve', '--server', 'http://127.0.0.1:1', '--port', '0', '--store', `postgres://cg:secret@127.0.0.1:${await closedPort()}/db`]);
    expect(pg.code).toBe(1);
    expect(pg.stderr).toMatch(/^comfyguard serve: store postgres:\/\/cg:\*\*\*@127\.0\.0\.1:\d+\/db: .*unreachable/m);
    expect(pg.stderr).not.toContain('secret');
    const lite = await runCli(['serve', '--server', 'http://127.0.0.1:1', '--port', '0', '--store', 'sqlite:/proc/x/cg.db'], { timeoutMs: 30_000 });
    expect(lite.code).toBe(1);
    expect(lite.stderr).toContain('comfyguard serve: store sqlite:/proc/x/cg.db: cannot create the folder /proc/x');
  });

  it('a taken --port is an error naming the port (serve and demo)', async () => {
    const s = await sim();
    const taken = createServer();
    await new Promise<void>((r) => taken.listen(0, '127.0.0.1', r));
    const { port } = taken.address() as AddressInfo;
    try {
      const serve = await runCli(['serve', '--server', s.url, '--port', String(port), '--store', 'memory:']);
      expect(serve.code).toBe(1);
      expect(serve.stderr).toContain(`comfyguard serve: port ${port} on 127.0.0.1 is already in use`);
      const demo = await runCli(['demo', '--port', String(port), '--jobs', '1', '--once']);
      expect(demo.code).toBe(1);
      expect(demo.stderr).toContain(`comfyguard demo: port ${port} on 127.0.0.1 is already in use`);
      expect(demo.stdout).not.toContain('running at');
    } finally {
      await new Promise<void>((r) => taken.close(() => r()));
    }
  });
});

describe('comfyguard demo', () => {
  it('demo --once --jobs 4 runs the jobs, checks its URL answers, warns of a changed result and exits 0', async () => {
    const r = await runCli(['demo', '--once', '--jobs', '4', '--port', '0', '--interval', '50', '--step-ms', '2', '--faults', ''], { timeoutMs: 120_000 });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/comfyguard demo is running at http:\/\/127\.0\.0\.1:\d+/);
    expect(r.stdout.match(/^#\d .* submitted/gm)).toHaveLength(4);
    expect(r.stdout).toMatch(/demo finished: 4 job\(s\) done; GET \S+\/api\/health -> 200/);
    expect(r.stdout).toMatch(/^summary: 4 jobs finished: 4 completed/m);
    // The missing checkpoint completes on the fallback model, and the line says so.
    expect(r.stdout).toMatch(/#4 sd15-missing-model: completed .*\n {4}warning: the result differs from the request: node 4 ckpt_name "dreamshaper_8\.safetensors" -> "v1-5-pruned-emaonly\.ckpt"\n/);
  });

  it('with faults, tells one readable line per event: no JSON, stack traces or HTML on either stream', async () => {
    const r = await runCli(['demo', '--once', '--jobs', '6', '--port', '0', '--interval', '20', '--step-ms', '2', '--faults', 'oom=0.3,http503=0.2,ws_drop=0.2', '--log-level', 'info'], { timeoutMs: 120_000 });
    expect(r.code, r.stderr).toBe(0);
    const lines = `${r.stdout}\n${r.stderr}`.split('\n').filter((l) => l.trim() !== '');
    for (const l of lines) {
      expect(l).not.toMatch(/^\s*\{/);
      expect(l).not.toMatch(/^\s+at \S+ \(|<html|<body|<\/?h1>/i);
    }
    // Attempts: "attempt N" is the N-th submission; every step says what failed and what is tried.
    for (const m of r.stdout.matchAll(/^ {2}#\d+ \S+: attempt (\d+) on \S+ failed with (\w+) -> (\w+)/gm)) expect(Number(m[1])).toBeGreaterThanOrEqual(1);
    expect(r.stdout).not.toMatch(/\[recovery: .* x/);
    // A random 503 fault may cost the bad sampler one transient retry before its permanent verdict.
    expect(r.stdout).toMatch(/^ {2}#6 bad-sampler: failed in [\d.]+ s on \S+ after [12] attempts?: COMFYUI_INVALID_PARAMETERS: .*"euler_typo" is not allowed/m);
    // The missing checkpoint's step names what it did.
    expect(r.stdout).toMatch(/#4 sd15-missing-model: no server can run it as is \(COMFYUI_MODEL_MISSING\) -> switch_model/);
    expect(r.stdout).toMatch(/^summary: 6 jobs finished: \d+ completed/m);
  });

  it('serves the dashboard while running and stops cleanly on Ctrl-C', async () => {
    const p = new CliProcess(['demo', '--jobs', '2', '--port', '0', '--interval', '50', '--step-ms', '2']);
    procs.push(p);
    const url = (await p.waitFor(/running at (http:\/\/\S+)/))[1]!;
    expect((await fetch(`${url}/`)).status).toBe(200);
    expect((await fetch(`${url}/api/health`)).status).toBe(200);
    await p.waitFor(/all 2 sample job\(s\) finished; still serving/);
    const jobs = (await (await fetch(`${url}/api/jobs`)).json()) as { jobs: unknown[] };
    expect(jobs.jobs).toHaveLength(2);
    p.child.kill('SIGINT');
    expect(await p.exited).toEqual({ code: 0, signal: null });
    expect(p.stdout).toContain('stopping the demo');
    expect(p.stdout).toMatch(/^summary: 2 jobs finished: \d+ completed/m);
  });
});
