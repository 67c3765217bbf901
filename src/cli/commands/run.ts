/**
 * `comfyguard run WORKFLOW.json`: runs one job through an in-process guard (memory store), shows
 * live progress, tells the recovery story, prints (and optionally downloads) the outputs.
 * Exit 0 completed, 1 failed / timed out / cancelled, 2 bad usage.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { basename, join, resolve, sep } from 'node:path';
import type { Command } from 'commander';
import { createGuard } from '../../jobs/guard.js';
import type { Guard } from '../../jobs/guard-api.js';
import type { JobRecord, OutputRef } from '../../jobs/types.js';
import { addConfigOptions, requireServers, resolveConfig, type SettingKey } from '../config.js';
import { createCliLogger } from '../logger.js';
import { parseParams, readWorkflowFile } from '../run/input.js';
import { ProgressView, recoveryStory } from '../run/render.js';
import { UsageError, withUsage } from '../usage.js';

const KEYS: readonly SettingKey[] = ['servers', 'maxRetries', 'requestTimeoutMs', 'generationTimeoutMs', 'jobTimeoutMs', 'stallTimeoutMs', 'logLevel'];

interface RunFlags extends Record<string, unknown> {
  param?: string[];
  out?: string;
  priority?: string;
  json?: boolean;
}

async function run(workflowPath: string, flags: RunFlags): Promise<void> {
  const workflow = await readWorkflowFile(workflowPath);
  const params = parseParams(flags.param ?? []);
  const priority = flags.priority === undefined ? undefined : Number(flags.priority);
  if (priority !== undefined && !Number.isInteger(priority)) throw new UsageError(`--priority: expected an integer, got ${JSON.stringify(flags.priority)}`);
  const cfg = resolveConfig({ flags, keys: KEYS, defaults: { logLevel: 'warn' } });
  const servers = requireServers(cfg);
  const urlOf = new Map(servers.map((u) => [new URL(u).host, u]));
  const logger = createCliLogger(cfg.logLevel);
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
    const view = new ProgressView((s) => process.stderr.write(s), process.stderr.isTTY === true);
    let final: JobRecord | null = null;
    let shownAttempt = 0;
    for await (const e of guard.progress(id)) {
      if (e.type === 'progress' && e.attempt !== shownAttempt) {
        shownAttempt = e.attempt;
        const job = await guard.get(id);
        view.attempt(e.attempt, job?.attempts.find((a) => a.number === e.attempt)?.server ?? null);
      }
      view.event(e);
      if (e.type === 'state' && ['completed', 'failed', 'timed_out', 'cancelled'].includes(e.to)) final = e.job;
    }
    view.done();
    final ??= await guard.get(id);
    if (!final) throw new Error(`job ${id} disappeared from the in-memory store`);
    const saved = flags.out && final.status === 'completed' ? await download(guard, final.outputs, flags.out) : [];
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
  if (job.degraded) out(`note: ran with degraded quality (level ${job.degraded.level}, factor ${job.degraded.factor})`);
  if (job.status === 'completed') {
    out(`completed in ${secs.toFixed(1)} s after ${job.attempts.length} attempt${job.attempts.length === 1 ? '' : 's'} (job ${job.id})`);
    out(job.outputs.length === 0 ? 'no output files' : 'outputs:');
    for (const o of job.outputs) out(`  ${o.url}  (node ${o.node}, ${o.server})`);
    for (const p of saved) out(`  saved ${p}`);
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

/** Downloads every output into `dir` (subfolders kept, nothing written outside `dir`). */
async function download(guard: Guard, outputs: OutputRef[], dir: string): Promise<string[]> {
  const root = resolve(dir);
  const saved: string[] = [];
  for (const o of outputs) {
    const sub = o.subfolder.split(/[\\/]+/).filter((p) => p !== '' && p !== '.' && p !== '..');
    const target = join(root, ...sub, basename(o.filename));
    if (!target.startsWith(root + sep)) continue;
    const file = await guard.fetchOutput(o.server, { filename: o.filename, subfolder: o.subfolder, type: o.type });
    await mkdir(join(root, ...sub), { recursive: true });
    await writeFile(target, file.data);
    saved.push(target);
  }
  return saved;
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
    .option('--out <dir>', 'download the outputs into this folder')
    .option('--priority <n>', 'job priority (higher runs first)')
    .option('--json', 'print the result as JSON');
  addConfigOptions(cmd, KEYS);
  cmd.action(withUsage('run', run));
}
