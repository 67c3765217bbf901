/**
 * `comfyguard demo`: two simulated ComfyUI servers (a big GPU, and a small one with realistic
 * faults), the HTTP service and dashboard over them, and a stream of sample jobs, so a newcomer
 * watches recovery happen: one readable line per event, a summary when it stops. Memory store by
 * default: a demo leaves nothing behind. Port 8080 unless named (a free one if 8080 is taken);
 * a port named with --port that is taken is an error. Ctrl-C stops it.
 */
import type { Command } from 'commander';
import type { JobRecord } from '../../jobs/types.js';
import { startSimulator, type Simulator } from '../../sim/index.js';
import { addConfigOptions, resolveConfig, type SettingKey } from '../config.js';
import { sampleJob } from '../demo/samples.js';
import { createCliLogger } from '../logger.js';
import { attemptOrdinal, degradedWarning, describeChanges } from '../run/render.js';
import { startStack, type RunningStack } from '../stack.js';
import { describeTally, SessionTally } from '../tally.js';
import { UsageError, withUsage } from '../usage.js';

const KEYS: readonly SettingKey[] = ['host', 'port', 'store', 'apiKey', 'logLevel', 'logFormat'];

/** The demo's own defaults, as `demo --help` shows them. */
const DEMO_DEFAULTS = { store: 'memory:', logLevel: 'warn' } as const;

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
  const cfg = resolveConfig({ flags, keys: KEYS, defaults: DEMO_DEFAULTS });
  // Only the default port may move when taken; one the user named is theirs.
  const portNamed = flags.port !== undefined || (process.env.COMFYGUARD_PORT ?? '') !== '';
  const jobLimit = flags.jobs === undefined ? Infinity : int(flags.jobs, '--jobs', 1, 0);
  if (flags.once && jobLimit === Infinity) throw new UsageError('--once needs --jobs N (how many jobs to run before stopping)');
  const intervalMs = int(flags.interval, '--interval', 0, 2_000);
  const stepMs = int(flags.stepMs, '--step-ms', 0, 40);
  const seed = int(flags.seed, '--seed', 0, 7);
  const logger = createCliLogger(cfg.logLevel, 'comfyguard-demo', cfg.logFormat);
  const out = (s: string) => process.stdout.write(`${s}\n`);

  const sims: Simulator[] = [];
  let stack: RunningStack | null = null;
  let tally: SessionTally | null = null;
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
      // The demo runs on one machine: a newcomer's webhook receiver is on loopback too.
      webhookTargets: { allowLoopback: true },
      errorSpike: { threshold: 10, windowMs: 60_000 },
      logger,
      logAnalytics: false,
      fallbackPort: !portNamed,
    });
    const { guard, url } = stack;
    tally = new SessionTally(guard);
    if (stack.movedFromPort !== null) out(`port ${stack.movedFromPort} is taken: the demo listens on a free port instead (name one with --port)`);
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
    // Lines of one job are written in event order even though a recovery line looks the job up.
    const lines = new Map<string, Promise<void>>();
    const say = (jobId: string, line: () => Promise<string | null> | string | null) => {
      const next = (lines.get(jobId) ?? Promise.resolve()).then(line).then((l) => {
        if (l !== null) out(l);
      }, () => undefined);
      lines.set(jobId, next);
      return next;
    };
    let allDone: () => void = () => undefined;
    const done = new Promise<void>((resolve) => (allDone = resolve));
    const off = guard.onEvent((e) => {
      if (e.type === 'pool') return;
      const j = mine.get(e.jobId);
      if (!j) return;
      if (e.type === 'recovery') {
        const key = `${e.jobId}:${e.step.attempt}:${e.step.strategy}`;
        if (told.has(key)) return;
        told.add(key);
        void say(e.jobId, async () => {
          const job = await guard.get(e.jobId);
          const n = job ? attemptOrdinal(job, e.step.attempt) : null;
          const server = job?.attempts.find((a) => a.number === e.step.attempt)?.server;
          const what = n === null ? `no server can run it as is (${e.step.code})` : `attempt ${n}${server ? ` on ${server}` : ''} failed with ${e.step.code}`;
          return `  #${j.n} ${j.name}: ${what} -> ${e.step.strategy}${describeChanges(e.step.changes)}`;
        });
        return;
      }
      if (e.type !== 'state' || !['completed', 'failed', 'timed_out', 'cancelled'].includes(e.to)) return;
      if (finished.has(e.jobId)) return;
      finished.add(e.jobId);
      void say(e.jobId, () => `  #${j.n} ${j.name}: ${summarize(e.job)}`).then(() => {
        if (finished.size >= jobLimit) allDone();
      });
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
    if (tally) out(`summary: ${describeTally(tally.counts())}`);
    tally?.stop();
    await stack?.close();
    await Promise.all(sims.map((s) => s.close()));
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

/** The final line of a job: outcome, time, server, attempts, and for a failure its code and message. */
export function summarize(job: JobRecord): string {
  const secs = (((job.endedAt ?? job.updatedAt) - job.createdAt) / 1000).toFixed(1);
  const where = job.attempts.at(-1)?.server;
  const n = job.attempts.length;
  const head = `${job.status.replace('_', ' ')} in ${secs} s${where ? ` on ${where}` : ''} after ${n} attempt${n === 1 ? '' : 's'}`;
  const steps = job.recoveryHistory.length;
  const recovered = job.status === 'completed' && steps > 0 ? ` (recovered in ${steps} step${steps === 1 ? '' : 's'}: ${job.recoveryHistory.map((s) => s.strategy).join(', ')})` : '';
  const err = job.status !== 'completed' && job.error ? `: ${job.error.code}: ${oneLine(job.error.message)}` : '';
  const warning = job.status === 'completed' ? degradedWarning(job, { reason: false }) : null;
  return `${head}${recovered}${err}${warning ? `\n    ${warning}` : ''}`;
}

function oneLine(s: string): string {
  const line = s.split('\n')[0] ?? '';
  return line.length > 200 ? `${line.slice(0, 197)}...` : line;
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
    .description('start two simulated ComfyUI servers (one small GPU with faults, both on free ports), the service and a stream of sample jobs; in-memory store, nothing is left behind')
    .option('--jobs <n>', 'stop submitting after n jobs (default: keep going)')
    .option('--once', 'exit when the --jobs have finished (after checking the service answers)')
    .option('--interval <ms>', 'pause between submissions', '2000')
    .option('--step-ms <ms>', 'simulated time per sampler step', '40')
    .option('--faults <spec>', `faults of the small GPU, e.g. "oom=0.1" or "" for none (default: ${DEMO_FAULTS})`)
    .option('--seed <n>', 'seed of the simulated faults', '7');
  addConfigOptions(cmd, KEYS, { store: '"memory:"', logLevel: '"warn"', port: '8080 (a free port if 8080 is taken)' });
  cmd.action(withUsage('demo', demo));
}
