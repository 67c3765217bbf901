/**
 * `comfyguard demo`: two simulated ComfyUI servers (a big GPU, and a small one with realistic
 * faults), the HTTP service and dashboard over them, and a stream of sample jobs, so a newcomer
 * watches recovery happen. Memory store by default: a demo leaves nothing behind. Ctrl-C stops it.
 */
import type { Command } from 'commander';
import type { JobRecord } from '../../jobs/types.js';
import { startSimulator, type Simulator } from '../../sim/index.js';
import { addConfigOptions, resolveConfig, type SettingKey } from '../config.js';
import { sampleJob } from '../demo/samples.js';
import { createCliLogger } from '../logger.js';
import { describeChanges } from '../run/render.js';
import { startStack, type RunningStack } from '../stack.js';
import { UsageError, withUsage } from '../usage.js';

const KEYS: readonly SettingKey[] = ['host', 'port', 'store', 'apiKey', 'logLevel'];

/** Faults of the small GPU: a few percent of OOMs, dropped sockets, 503s and stalls. */
export const DEMO_FAULTS = 'oom=0.05,ws_drop=0.05,http503=0.02,stall=0.01';

interface DemoFlags extends Record<string, unknown> {
  jobs?: string;
  once?: boolean;
  interval?: string;
  stepMs?: string;
  faults?: string;
  seed?: string;
}

function int(raw: string | undefined, flag: string, min: number, dflt: number): number {
  if (raw === undefined) return dflt;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min) throw new UsageError(`${flag}: expected an integer >= ${min}, got ${JSON.stringify(raw)}`);
  return n;
}

async function demo(flags: DemoFlags): Promise<void> {
  const cfg = resolveConfig({ flags, keys: KEYS, defaults: { store: 'memory:', logLevel: 'warn' } });
  const jobLimit = flags.jobs === undefined ? Infinity : int(flags.jobs, '--jobs', 1, 0);
  if (flags.once && jobLimit === Infinity) throw new UsageError('--once needs --jobs N (how many jobs to run before stopping)');
  const intervalMs = int(flags.interval, '--interval', 0, 2_000);
  const stepMs = int(flags.stepMs, '--step-ms', 0, 40);
  const seed = int(flags.seed, '--seed', 0, 7);
  const logger = createCliLogger(cfg.logLevel, 'comfyguard-demo');
  const out = (s: string) => process.stdout.write(`${s}\n`);

  const sims: Simulator[] = [];
  let stack: RunningStack | null = null;
  const stop = new AbortController();
  let signals = 0;
  const onSignal = () => {
    signals++;
    if (signals > 1) process.exit(130);
    out('\nstopping the demo (Ctrl-C again to quit at once)...');
    stop.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    sims.push(await startSimulator({ name: 'big-gpu', vram: '24GiB', stepMs, faults: 'ws_drop=0.02,http503=0.01', seed }));
    sims.push(await startSimulator({ name: 'small-gpu', vram: '6GiB', stepMs, faults: flags.faults ?? DEMO_FAULTS, seed: seed + 1 }));
    stack = await startStack({
      guard: {
        servers: sims.map((s) => ({ url: s.url, name: s.name })),
        store: cfg.store,
        maxRetries: 6,
        // Short watchdogs so a simulated stall or crash is recovered while the newcomer watches.
        stallTimeoutMs: 8_000,
        unreachableGraceMs: 4_000,
        healthTtlMs: 5_000,
        retry: { baseMs: 300, capMs: 3_000 },
      },
      host: cfg.host,
      port: cfg.port,
      ...(cfg.apiKey ? { apiKey: cfg.apiKey } : {}),
      metrics: true,
      errorSpike: { threshold: 10, windowMs: 60_000 },
      logger,
      logAnalytics: false,
      fallbackPort: true,
    });
    const { guard, url } = stack;
    out(`comfyguard demo is running at ${url}`);
    out(`  dashboard  ${url}/`);
    out(`  API docs   ${url}/docs`);
    out(`  metrics    ${url}/metrics`);
    for (const s of sims) out(`  simulator  ${s.name} at ${s.url}${s.name === 'small-gpu' ? ` (6 GiB, faults: ${flags.faults ?? DEMO_FAULTS})` : ' (24 GiB)'}`);
    out(jobLimit === Infinity ? 'submitting a sample job every couple of seconds; Ctrl-C to stop' : `submitting ${jobLimit} sample job(s)`);

    const mine = new Map<string, { n: number; name: string }>();
    const finished = new Set<string>();
    // Recovery steps already told (an event can repeat when a step is re-recorded).
    const told = new Set<string>();
    let allDone: () => void = () => undefined;
    const done = new Promise<void>((resolve) => (allDone = resolve));
    const off = guard.onEvent((e) => {
      if (e.type === 'recovery') {
        const j = mine.get(e.jobId);
        const key = `${e.jobId}:${e.step.attempt}:${e.step.strategy}`;
        if (told.has(key)) return;
        told.add(key);
        if (j) out(`  #${j.n} ${j.name}: ${e.step.code} on attempt ${e.step.attempt} -> ${e.step.strategy}${describeChanges(e.step.changes)}`);
        return;
      }
      if (e.type !== 'state' || !['completed', 'failed', 'timed_out', 'cancelled'].includes(e.to)) return;
      const j = mine.get(e.jobId);
      if (!j || finished.has(e.jobId)) return;
      finished.add(e.jobId);
      out(`  #${j.n} ${j.name}: ${summarize(e.job)}`);
      if (finished.size >= jobLimit) allDone();
    });

    try {
      for (let n = 1; n <= jobLimit && !stop.signal.aborted; n++) {
        const sample = sampleJob(n - 1);
        const { id } = await guard.submit(sample.workflow, { ...sample.options, ...(sample.params ? { params: sample.params } : {}) });
        mine.set(id, { n, name: sample.name });
        out(`#${n} ${sample.name} submitted (${id}): ${sample.expect}`);
        if (n < jobLimit) await pause(intervalMs, stop.signal);
      }
      if (flags.once) {
        await Promise.race([done, aborted(stop.signal)]);
        if (!stop.signal.aborted) {
          const res = await fetch(`${url}/api/health`);
          out(`demo finished: ${finished.size} job(s) done; GET ${url}/api/health -> ${res.status}`);
          if (!res.ok) process.exitCode = 1;
        }
      } else {
        if (jobLimit !== Infinity) {
          await Promise.race([done, aborted(stop.signal)]);
          if (!stop.signal.aborted) out(`all ${finished.size} sample job(s) finished; still serving ${url} (Ctrl-C to stop)`);
        }
        await aborted(stop.signal);
      }
    } finally {
      off();
    }
  } finally {
    await stack?.close();
    await Promise.all(sims.map((s) => s.close()));
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

function summarize(job: JobRecord): string {
  const secs = (((job.endedAt ?? job.updatedAt) - job.createdAt) / 1000).toFixed(1);
  const where = job.attempts.at(-1)?.server;
  const story = job.recoveryHistory.map((s) => `${s.strategy}${s.success === true ? ' ok' : s.success === false ? ' x' : ''}`).join(', ');
  const head = `${job.status} in ${secs} s${where ? ` on ${where}` : ''} after ${job.attempts.length} attempt(s)`;
  const err = job.status !== 'completed' && job.error ? `: ${job.error.code}: ${job.error.message}` : '';
  return `${head}${story ? ` [recovery: ${story}]` : ''}${err}`;
}

function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}

function aborted(signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) resolve();
    else signal.addEventListener('abort', () => resolve(), { once: true });
  });
}

/** Registers `demo`. */
export function register(program: Command): void {
  const cmd = program
    .command('demo')
    .description('start two simulated ComfyUI servers (one small GPU with faults), the service and a stream of sample jobs')
    .option('--jobs <n>', 'stop submitting after n jobs (default: keep going)')
    .option('--once', 'exit when the --jobs have finished (after checking the service answers)')
    .option('--interval <ms>', 'pause between submissions', '2000')
    .option('--step-ms <ms>', 'simulated time per sampler step', '40')
    .option('--faults <spec>', `faults of the small GPU, e.g. "oom=0.1" or "" for none (default: ${DEMO_FAULTS})`)
    .option('--seed <n>', 'seed of the simulated faults', '7');
  addConfigOptions(cmd, KEYS);
  cmd.action(withUsage('demo', demo));
}
