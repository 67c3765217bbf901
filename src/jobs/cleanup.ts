/**
 * Cleanup of old terminal jobs, and with `cleanupOutputs` of their output files on the servers.
 * Records go first and outputs follow only the records actually deleted (`store.deleteTerminal`
 * checks each job again atomically), so a job retried meanwhile keeps its files; a server that
 * cannot delete or does not answer is reported per file and never holds back record deletion.
 */
import { messageOf } from '../comfy/transport.js';
import type { OutputDeleter, OutputFile, OutputFileResult } from '../pool/output-deleter.js';
import type { JobStore } from '../store/contract.js';
import { TERMINAL_STATUSES, type JobRecord } from './types.js';

/**
 * What became of one output file of a deleted job: the deleter's answer, or `kept` when a job that
 * stays still lists the same file (ComfyUI served that job from its cache: both point at one file).
 */
export type CleanupFileResult = (OutputFileResult | (OutputFile & { result: 'kept'; reason: string })) & { server: string };

/** What a cleanup run did. */
export interface CleanupReport {
  olderThanHours: number;
  /** Job records deleted. */
  deleted: number;
  /** What became of their output files; null when output cleanup is off (`cleanupOutputs`). */
  outputs: OutputCleanupReport | null;
}

export interface OutputCleanupReport {
  /** Files by outcome, over every deleted job. */
  deleted: number;
  cannot: number;
  failed: number;
  kept: number;
  /** Records deleted without being read (unreadable rows): their files, if any, are unknown and left. */
  unreadRecords: number;
  /** Each deleted job that had outputs, with what became of each file (the first `MAX_LISTED_JOBS`). */
  jobs: Array<{ id: string; files: CleanupFileResult[] }>;
  /** Deleted jobs with outputs beyond those listed in `jobs`. */
  moreJobs: number;
}

/** Jobs listed one by one in a report (and in the log); the counts cover all. */
export const MAX_LISTED_JOBS = 1_000;
const MAX_LOGGED_JOBS = 100;
const PAGE = 200;

/**
 * Deletes terminal jobs that ended before `cutoff` page by page, then their files where the server
 * allows it, except files a remaining job still lists. That check reads every remaining job once
 * per run (only when deleted jobs had outputs): the price of never breaking a kept job's outputs.
 */
export async function cleanupWithOutputs(deps: { store: JobStore; deleter: OutputDeleter; cutoff: number; signal?: AbortSignal }): Promise<{ deleted: number; outputs: OutputCleanupReport }> {
  const { store, deleter, cutoff } = deps;
  const report: OutputCleanupReport = { deleted: 0, cannot: 0, failed: 0, kept: 0, unreadRecords: 0, jobs: [], moreJobs: 0 };
  const gone: Array<Pick<JobRecord, 'id' | 'outputs'>> = [];
  let deleted = 0;
  let cursor: string | undefined;
  // createdAt <= endedAt, so every job that ended before the cutoff was created before it.
  for (;;) {
    const page = await store.query({ status: [...TERMINAL_STATUSES], until: cutoff, limit: PAGE, ...(cursor ? { cursor } : {}) });
    const old = page.jobs.filter((j) => j.endedAt !== null && j.endedAt < cutoff);
    if (old.length > 0) {
      const ids = new Set(await store.deleteTerminal(old.map((j) => j.id), cutoff));
      deleted += ids.size;
      for (const j of old) if (ids.has(j.id) && j.outputs.length > 0) gone.push({ id: j.id, outputs: j.outputs });
    }
    if (!page.nextCursor) break;
    cursor = page.nextCursor;
  }
  // What the walk could not read (damaged rows) goes too, as cleanup always did; its files are unknown.
  report.unreadRecords = await store.deleteTerminalBefore(cutoff);
  if (gone.length > 0) {
    const stillListed = await filesOfRemainingJobs(store, new Set(gone.flatMap((j) => j.outputs.map((o) => fileKey(o.server, o)))));
    addJobs(report, gone, await deleteFiles(deleter, gone, stillListed, deps.signal));
  }
  return { deleted: deleted + report.unreadRecords, outputs: report };
}

/** Of `keys`, those some job still in the store lists, with that job's id. */
async function filesOfRemainingJobs(store: JobStore, keys: Set<string>): Promise<Map<string, string>> {
  const found = new Map<string, string>();
  let cursor: string | undefined;
  for (;;) {
    const page = await store.query({ limit: 1_000, ...(cursor ? { cursor } : {}) });
    for (const j of page.jobs) for (const o of j.outputs) if (keys.has(fileKey(o.server, o))) found.set(fileKey(o.server, o), j.id);
    if (!page.nextCursor) return found;
    cursor = page.nextCursor;
  }
}

const fileKey = (server: string, f: OutputFile) => `${server}\u0000${f.type}\u0000${f.subfolder}\u0000${f.filename}`;

/** One call per server (servers in parallel); a file two deleted jobs share is deleted once. */
async function deleteFiles(deleter: OutputDeleter, jobs: Array<Pick<JobRecord, 'outputs'>>, stillListed: Map<string, string>, signal: AbortSignal | undefined): Promise<Map<string, CleanupFileResult>> {
  const results = new Map<string, CleanupFileResult>();
  const perServer = new Map<string, Map<string, OutputFile>>();
  for (const job of jobs) {
    for (const o of job.outputs) {
      const key = fileKey(o.server, o);
      const file = { filename: o.filename, subfolder: o.subfolder, type: o.type };
      const keeper = stillListed.get(key);
      if (keeper !== undefined) {
        results.set(key, { ...file, server: o.server, result: 'kept', reason: `job ${keeper} still lists this file (ComfyUI served it from its cache)` });
        continue;
      }
      const files = perServer.get(o.server) ?? new Map<string, OutputFile>();
      files.set(key, file);
      perServer.set(o.server, files);
    }
  }
  await Promise.all(
    [...perServer].map(async ([server, byKey]) => {
      const files = [...byKey.values()];
      let answers: OutputFileResult[];
      try {
        answers = await deleter.deleteOutputs(server, files, signal ? { signal } : {});
      } catch (err) {
        // A custom deleter that throws still cannot stop cleanup: its files are reported failed.
        answers = files.map((f) => ({ ...f, result: 'failed', reason: `the output deleter failed: ${messageOf(err)}` }));
      }
      files.forEach((f, i) => {
        const a = answers[i] ?? { ...f, result: 'failed' as const, reason: 'the output deleter gave no answer for this file' };
        results.set(fileKey(server, f), { ...a, server });
      });
    }),
  );
  return results;
}

function addJobs(report: OutputCleanupReport, jobs: Array<Pick<JobRecord, 'id' | 'outputs'>>, results: Map<string, CleanupFileResult>): void {
  for (const job of jobs) {
    const files = job.outputs.map((o) => results.get(fileKey(o.server, o))!);
    for (const f of files) report[f.result]++;
    if (report.jobs.length < MAX_LISTED_JOBS) report.jobs.push({ id: job.id, files });
    else report.moreJobs++;
  }
}

/** One line per run, plus one per job (the first hundred) saying what became of its files. */
export function logCleanup(logger: { info(o: object, msg?: string): void; warn(o: object, msg?: string): void }, r: CleanupReport): void {
  const o = r.outputs;
  if (!o) {
    if (r.deleted > 0) logger.info({ deleted: r.deleted, olderThanHours: r.olderThanHours }, `cleanup: deleted ${r.deleted} jobs that ended over ${r.olderThanHours} h ago`);
    return;
  }
  for (const job of o.jobs.slice(0, MAX_LOGGED_JOBS)) logger.info({ jobId: job.id, files: job.files }, `cleanup: job ${job.id}: ${describeFiles(job.files)}`);
  const unlisted = o.jobs.length - Math.min(o.jobs.length, MAX_LOGGED_JOBS) + o.moreJobs;
  const summary =
    `cleanup: deleted ${r.deleted} jobs that ended over ${r.olderThanHours} h ago; output files: ${o.deleted} deleted, ${o.cannot} cannot be deleted, ${o.failed} failed, ${o.kept} kept (still listed by a kept job)` +
    (unlisted > 0 ? ` (${unlisted} more jobs not logged one by one)` : '') +
    (o.unreadRecords > 0 ? `; ${o.unreadRecords} unreadable records deleted without their files` : '');
  const fields = { deleted: r.deleted, olderThanHours: r.olderThanHours, files: { deleted: o.deleted, cannot: o.cannot, failed: o.failed, kept: o.kept }, unreadRecords: o.unreadRecords };
  if (o.failed > 0) logger.warn(fields, summary);
  else logger.info(fields, summary);
}

/** "2 deleted on gpu-1; 1 cannot on gpu-2 (ComfyUI has no API…)". */
function describeFiles(files: CleanupFileResult[]): string {
  const groups = new Map<string, number>();
  for (const f of files) {
    const key = `${f.result} on ${f.server}${f.result === 'deleted' ? '' : ` (${f.reason})`}`;
    groups.set(key, (groups.get(key) ?? 0) + 1);
  }
  return [...groups].map(([k, n]) => `${n} ${k}`).join('; ');
}
