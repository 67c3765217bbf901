/**
 * `comfyguard run WORKFLOW.json`: runs one job through an in-process guard (memory store), shows
 * live progress, tells the recovery story, and saves the outputs (to `--out`, else the current
 * folder; `--no-save` only prints where they are). When no server answers within `--server-wait`
 * it stops with COMFYUI_CONNECTION_ERROR, what each server said, and a hint.
 * Exit 0 completed, 1 failed / timed out / cancelled / no server, 2 bad usage.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { basename, extname, join, resolve, sep } from 'node:path';
import type { Command } from 'commander';
import { createGuard } from '../../jobs/guard.js';
import type { Guard } from '../../jobs/guard-api.js';
import type { JobRecord, OutputRef } from '../../jobs/types.js';
import { addConfigOptions, parseDuration, requireServers, resolveConfig, type SettingKey } from '../config.js';
import { createCliLogger } from '../logger.js';
import { parseParams, readWorkflowFile } from '../run/input.js';
import { attemptOrdinal, degradedWarning, ProgressView, recoveryStory } from '../run/render.js';
import { UsageError, withUsage } from '../usage.js';

const KEYS: readonly SettingKey[] = ['servers', 'maxRetries', 'requestTimeoutMs', 'generationTimeoutMs', 'jobTimeoutMs', 'stallTimeoutMs', 'logLevel', 'logFormat'];

interface RunFlags extends Record<string, unknown> {
  param?: string[];
  out?: string;
  save?: boolean;
  priority?: string;
  json?: boolean;
  serverWait?: string;
}

/** How long `run` waits for a server that does not answer (a cold ComfyUI loads for a while). */
const DEFAULT_SERVER_WAIT_MS = 30_000;

/** What `run` says when no server answered: ComfyUI's most common first-run causes. */
export const NO_SERVER_HINT =
  'Is ComfyUI running? Check the URL and port (ComfyUI listens on 8188 by default); if comfyguard runs on another machine or in a container, start ComfyUI with --listen 0.0.0.0. `comfyguard doctor --server URL` checks a server; --server-wait 2m waits longer for one that is still booting.';

async function run(workflowPath: string, flags: RunFlags): Promise<void> {
  const workflow = await readWorkflowFile(workflowPath);
  const params = parseParams(flags.param ?? []);
  const priority = flags.priority === undefined ? undefined : Number(flags.priority);
  if (priority !== undefined && !Number.isInteger(priority)) throw new UsageError(`--priority: expected an integer, got ${JSON.stringify(flags.priority)}`);
  const cfg = resolveConfig({ flags, keys: KEYS, defaults: { logLevel: 'warn' } });
  const serverWaitMs = flags.serverWait === undefined ? DEFAULT_SERVER_WAIT_MS : parseDuration(flags.serverWait, '--server-wait');
  const servers = requireServers(cfg);
  const urlOf = new Map(servers.map((u) => [new URL(u).host, u]));
  const logger = createCliLogger(cfg.logLevel, 'comfyguard', cfg.logFormat);
  const guard = await createGuard({
    servers: servers.map((url) => ({ url, name: new URL(url).host })),
    store: 'memory:',
    maxRetries: cfg.maxRetries,
    requestTimeoutMs: cfg.requestTimeoutMs,
    generationTimeoutMs: cfg.generationTimeoutMs,
    jobTimeoutMs: cfg.jobTimeoutMs,
    stallTimeoutMs: cfg.stallTimeoutMs,
    cleanupIntervalMs: 0,
    progressThrottleMs: 200,
    logger,
    // Nothing serves comfyguard's own download route here: point at the ComfyUI server's /view.
    outputUrl: (server, f) => viewUrl(urlOf.get(server) ?? server, f),
  });
  let jobId: string | null = null;
  const stopSignals = onInterrupt(guard, () => jobId);
  try {
    const { id } = await guard.submit(workflow, { params, ...(priority !== undefined ? { priority } : {}) }).catch((err: unknown) => {
      throw asUsageError(err, workflowPath);
    });
    jobId = id;
    const view = new ProgressView((s) => process.stderr.write(s), process.stderr.isTTY === true, { workflow });
    const watchdog = new ServerWatchdog(guard, id, serverWaitMs, (s) => view.note(s));
    let final: JobRecord | null = null;
    let shownAttempt = 0;
    try {
      for await (const e of guard.progress(id)) {
        if ((e.type === 'attempt_started' || e.type === 'progress') && e.attempt !== shownAttempt) {
          shownAttempt = e.attempt;
          const job = await guard.get(id);
          const server = e.type === 'attempt_started' ? e.server : (job?.attempts.find((a) => a.number === e.attempt)?.server ?? null);
          // Attempt N is the N-th submission, whatever number the record carries.
          view.attempt(job ? (attemptOrdinal(job, e.attempt) ?? job.attempts.length) : e.attempt, server);
        }
        view.event(e);
        if (e.type === 'state' && ['completed', 'failed', 'timed_out', 'cancelled'].includes(e.to)) final = e.job;
      }
    } finally {
      watchdog.stop();
    }
    view.done();
    final ??= await guard.get(id);
    if (!final) throw new Error(`job ${id} disappeared from the in-memory store`);
    if (watchdog.gaveUp) {
      noServer(watchdog.gaveUp, serverWaitMs, flags.json === true, final);
      process.exitCode = 1;
      return;
    }
    const saveTo = flags.save === false ? null : (flags.out ?? '.');
    const saved = saveTo !== null && final.status === 'completed' ? await download(guard, final.outputs, saveTo) : [];
    if (flags.json) process.stdout.write(`${JSON.stringify(summary(final, saved), null, 2)}\n`);
    else report(final, saved);
    process.exitCode = final.status === 'completed' ? 0 : 1;
  } finally {
    stopSignals();
    await guard.close();
  }
}

function report(job: JobRecord, saved: string[]): void {
  const secs = ((job.endedAt ?? job.updatedAt) - job.createdAt) / 1000;
  const out = (s: string) => process.stdout.write(`${s}\n`);
  const story = recoveryStory(job);
  if (story.length > 0) {
    out(`recovery (${story.length} step${story.length === 1 ? '' : 's'}):`);
    for (const line of story) out(line);
  }
  const warning = degradedWarning(job);
  if (warning) out(warning);
  if (job.status === 'completed') {
    const server = job.attempts.at(-1)?.server;
    out(`completed in ${secs.toFixed(1)} s after ${job.attempts.length} attempt${job.attempts.length === 1 ? '' : 's'}${server ? ` on ${server}` : ''} (job ${job.id})`);
    if (job.outputs.length === 0) out('no output files');
    else if (saved.length > 0) for (const p of saved) out(`saved ${p}`);
    else {
      out('outputs:');
      for (const o of job.outputs) out(`  ${o.url}  (node ${o.node}, ${o.server})`);
    }
    return;
  }
  const err = job.error;
  process.stderr.write(`comfyguard run: job ${job.status.replace('_', ' ')}${err ? ` with ${err.code}` : ''} after ${job.attempts.length} attempt(s)\n`);
  if (err) {
    process.stderr.write(`  ${err.message}\n`);
    if (err.nodeId) process.stderr.write(`  node: ${err.nodeId}${err.nodeType ? ` (${err.nodeType})` : ''}\n`);
    process.stderr.write(`  hint: ${err.hint}\n`);
  }
}

function summary(job: JobRecord, saved: string[]) {
  return {
    id: job.id,
    status: job.status,
    attempts: job.attempts.length,
    error: job.error,
    outputs: job.outputs,
    saved,
    recovery: job.recoveryHistory.map((s) => ({ attempt: s.attempt, code: s.code, strategy: s.strategy, changes: s.changes, success: s.success })),
  };
}

/**
 * Downloads every output into `dir` (subfolders kept, nothing written outside `dir`). An existing
 * file is never overwritten: the new one gets a numbered name (`x_00001_-1.png`).
 */
async function download(guard: Guard, outputs: OutputRef[], dir: string): Promise<string[]> {
  const root = resolve(dir);
  const saved: string[] = [];
  for (const o of outputs) {
    const sub = o.subfolder.split(/[\\/]+/).filter((p) => p !== '' && p !== '.' && p !== '..');
    const target = join(root, ...sub, basename(o.filename));
    if (!target.startsWith(root + sep)) continue;
    const file = await guard.fetchOutput(o.server, { filename: o.filename, subfolder: o.subfolder, type: o.type });
    await mkdir(join(root, ...sub), { recursive: true });
    saved.push(await writeNew(target, file.data));
  }
  return saved;
}

async function writeNew(target: string, data: Uint8Array): Promise<string> {
  const ext = extname(target);
  const stem = target.slice(0, target.length - ext.length);
  for (let n = 0; ; n++) {
    const path = n === 0 ? target : `${stem}-${n}${ext}`;
    try {
      await writeFile(path, data, { flag: 'wx' });
      return path;
    } catch (err) {
      if ((err as { code?: unknown }).code !== 'EEXIST' || n >= 999) throw err;
    }
  }
}

/**
 * Gives up on a job that could not reach any server within `waitMs`: it tells once that it is
 * waiting (and for what), and when the time is up with no submission made and no server healthy,
 * cancels the job and keeps what each server last said.
 */
class ServerWatchdog {
  gaveUp: Array<{ url: string; error: string | null }> | null = null;
  readonly #timers: Array<ReturnType<typeof setTimeout>> = [];

  constructor(guard: Guard, jobId: string, waitMs: number, note: (s: string) => void) {
    const down = async () => {
      const job = await guard.get(jobId);
      if (!job || job.attempts.length > 0 || ['completed', 'failed', 'timed_out', 'cancelled'].includes(job.status)) return null;
      const servers = await guard.servers();
      return servers.some((s) => s.healthy) ? null : servers;
    };
    // A first word early, so a user is not left looking at nothing while the guard retries.
    this.#timers.push(
      setTimeout(() => {
        void down().then((servers) => {
          if (servers) note(`waiting for a ComfyUI server (up to ${Math.round(waitMs / 1000)} s): ${servers.map((s) => `${s.url}: ${s.lastError ?? 'no answer yet'}`).join('; ')}`);
        });
      }, Math.min(2_000, waitMs / 2)),
      setTimeout(() => {
        void down().then((servers) => {
          if (!servers) return;
          this.gaveUp = servers.map((s) => ({ url: s.url, error: s.lastError }));
          return guard.cancel(jobId);
        }).catch(() => undefined);
      }, waitMs),
    );
  }

  stop(): void {
    for (const t of this.#timers) clearTimeout(t);
  }
}

/** The report of a run that found no server. */
function noServer(servers: Array<{ url: string; error: string | null }>, waitMs: number, json: boolean, job: JobRecord): void {
  const message = `No ComfyUI server answered within ${Math.round(waitMs / 1000)} s.`;
  if (json) {
    process.stdout.write(`${JSON.stringify({ ...summary(job, []), status: 'failed', error: { code: 'COMFYUI_CONNECTION_ERROR', category: 'transient', message, hint: NO_SERVER_HINT, servers } }, null, 2)}\n`);
    return;
  }
  process.stderr.write(`comfyguard run: job failed with COMFYUI_CONNECTION_ERROR: ${message}\n`);
  for (const s of servers) process.stderr.write(`  ${s.url}: ${s.error ?? 'no answer'}\n`);
  process.stderr.write(`  hint: ${NO_SERVER_HINT}\n`);
}

function viewUrl(base: string, f: { filename: string; subfolder: string; type: string }): string {
  const q = new URLSearchParams({ filename: f.filename, subfolder: f.subfolder, type: f.type });
  return `${base}/view?${q.toString()}`;
}

/** First Ctrl-C cancels the job (the run then ends normally and exits 1); a second one exits at once. */
function onInterrupt(guard: Guard, jobId: () => string | null): () => void {
  let count = 0;
  const handler = () => {
    count++;
    if (count > 1) process.exit(130);
    process.stderr.write('\ncancelling (Ctrl-C again to quit at once)...\n');
    const id = jobId();
    if (id) void guard.cancel(id).catch(() => undefined);
  };
  process.on('SIGINT', handler);
  return () => process.off('SIGINT', handler);
}

/** A job the guard refused as invalid is bad usage: say which parameter or file. */
function asUsageError(err: unknown, workflowPath: string): unknown {
  const e = err as { code?: unknown; field?: unknown; message?: unknown };
  if (e?.code !== 'INVALID_JOB' || typeof e.message !== 'string') return err;
  const field = typeof e.field === 'string' ? e.field : '';
  if (field.startsWith('params.')) return new UsageError(`--param ${field.slice('params.'.length)}: ${e.message}`);
  if (field === 'workflow') return new UsageError(`workflow file ${JSON.stringify(workflowPath)}: ${e.message}`);
  return new UsageError(e.message);
}

/** Registers `run`. */
export function register(program: Command): void {
  const cmd = program
    .command('run')
    .description('run one workflow with retries and recovery, show progress, print where the outputs are')
    .argument('<workflow.json>', 'workflow in ComfyUI API format ("Save (API)")')
    .option('--param <key=value>', 'set a named parameter (width, height, steps, seed, prompt, ckpt_name, ...); repeatable', (v: string, prev: string[] | undefined) => [...(prev ?? []), v])
    .option('--out <dir>', 'save the outputs into this folder (default: the current folder)')
    .option('--no-save', 'do not download the outputs; print where they are on the server')
    .option('--server-wait <ms>', `how long to wait for a server that does not answer (30s, 2m; default ${DEFAULT_SERVER_WAIT_MS / 1000}s)`)
    .option('--priority <n>', 'job priority (higher runs first)')
    .option('--json', 'print the result as JSON');
  addConfigOptions(cmd, KEYS, { logLevel: '"warn"' });
  cmd.action(withUsage('run', run));
}
