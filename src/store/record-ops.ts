/**
 * The store operations as pure functions over a JobRecord. The memory and Redis stores apply them
 * to a decoded record; the SQL stores express the same rules in SQL. Keeping the rules in one
 * place is what makes every backend behave the same under the contract suite.
 */
import type { ZodType } from 'zod';
import { isTerminal, type AttemptRecord, type Checkpoint, type JobRecord, type JobStatus, type RecoveryStep } from '../jobs/types.js';
import { checkPatch, checkValue, attemptRecordSchema, recoveryStepRecordSchema, checkpointRecordSchema } from './codec.js';
import type { ServerBlock } from './contract.js';
import { StoreError, type StoreBackend } from './errors.js';
import { EXTRA_FIELD_NAME, extraFields } from './sql-columns.js';

/** `from` as a list. */
export function statusList(from: JobStatus | readonly JobStatus[]): JobStatus[] {
  return typeof from === 'string' ? [from] : [...from];
}

/** Drops keys whose value is `undefined`: they mean "not in the patch", not "set to undefined". */
export function definedEntries<T extends object>(patch: T): Partial<T> {
  const out: Partial<T> = {};
  for (const [k, v] of Object.entries(patch)) if (v !== undefined) (out as Record<string, unknown>)[k] = v;
  return out;
}

/**
 * Validates a patch for `transition`/`patchJob` and returns only its defined fields. `status` is
 * dropped (the transition's `to` wins), and so are `createdAt` and `idempotencyKey`, which are
 * fixed at creation (indexes are built on them); a caller may pass a whole record as the patch.
 * Changing `id` is refused.
 */
export function cleanPatch(backend: StoreBackend, operation: string, id: string, patch: Partial<JobRecord> | undefined): Partial<JobRecord> {
  if (!patch) return {};
  const defined = definedEntries(patch);
  if (defined.id !== undefined && defined.id !== id) {
    throw new StoreError('STORE_INVALID_JOB', `${operation}: a patch cannot change a job's id (${id} -> ${defined.id})`, { backend, operation, jobId: id });
  }
  delete defined.id;
  delete defined.status;
  delete defined.createdAt;
  delete defined.idempotencyKey;
  assertExtraNames(backend, operation, id, defined);
  const checked = checkPatch(defined);
  if (!checked.ok) throw new StoreError('STORE_INVALID_JOB', `${operation}: invalid patch for job ${id}: ${checked.error}`, { backend, operation, jobId: id });
  return defined;
}

/** Fields unknown to the store must have plain names (the SQL stores address them by JSON path). */
export function assertExtraNames(backend: StoreBackend, operation: string, id: string, record: object): void {
  const extra = extraFields(record);
  for (const name of Object.keys(extra ?? {})) {
    if (!EXTRA_FIELD_NAME.test(name)) {
      throw new StoreError('STORE_INVALID_JOB', `${operation}: job ${id} has a field named ${JSON.stringify(name.slice(0, 40))}; record fields must be identifiers`, { backend, operation, jobId: id });
    }
  }
}

/** Throws STORE_INVALID_JOB when `value` does not match `schema`. */
export function assertValid<T>(backend: StoreBackend, operation: string, id: string, what: string, schema: ZodType<T>, value: unknown): void {
  const checked = checkValue(schema, value);
  if (!checked.ok) throw new StoreError('STORE_INVALID_JOB', `${operation}: invalid ${what} for job ${id}: ${checked.error}`, { backend, operation, jobId: id });
}

/** Validates the arguments of `recordAttempt`. */
export function assertAttempt(backend: StoreBackend, id: string, attempt: AttemptRecord): void {
  assertValid(backend, 'recordAttempt', id, 'attempt', attemptRecordSchema, attempt);
}

/** Validates the arguments of `appendRecoveryStep`. */
export function assertRecoveryStep(backend: StoreBackend, id: string, step: RecoveryStep): void {
  assertValid(backend, 'appendRecoveryStep', id, 'recovery step', recoveryStepRecordSchema, step);
}

/** Validates the arguments of `updateProgress`. */
export function assertProgress(backend: StoreBackend, id: string, progress: number, checkpoint: Checkpoint | undefined): void {
  if (typeof progress !== 'number' || !Number.isFinite(progress)) {
    throw new StoreError('STORE_INVALID_JOB', `updateProgress: progress for job ${id} must be a finite number, got ${String(progress)}`, { backend, operation: 'updateProgress', jobId: id });
  }
  if (checkpoint !== undefined) assertValid(backend, 'updateProgress', id, 'checkpoint', checkpointRecordSchema, checkpoint);
}

/** When a job reaches (or is created in) a terminal state without an `endedAt`, the store stamps it so cleanup and TTLs work. */
export function stampEnd(job: JobRecord, now: number): JobRecord {
  return isTerminal(job.status) && job.endedAt === null ? { ...job, endedAt: now } : job;
}

/** `transition` on a record: assumes the caller already checked `from`. */
export function applyTransition(job: JobRecord, to: JobStatus, patch: Partial<JobRecord>, now: number): JobRecord {
  return stampEnd({ ...job, ...patch, id: job.id, status: to, updatedAt: patch.updatedAt ?? now }, now);
}

/** `recordAttempt` on a record: replaces the attempt with the same number or appends it. */
export function applyAttempt(job: JobRecord, attempt: AttemptRecord, now: number): JobRecord {
  const idx = job.attempts.findIndex((a) => a.number === attempt.number);
  const attempts = idx === -1 ? [...job.attempts, attempt] : job.attempts.map((a, i) => (i === idx ? attempt : a));
  return { ...job, attempts, server: attempt.server, promptId: attempt.promptId, updatedAt: now };
}

/** `appendRecoveryStep` on a record. */
export function applyRecoveryStep(job: JobRecord, step: RecoveryStep, replaceLast: boolean, now: number): JobRecord {
  const history = replaceLast && job.recoveryHistory.length > 0 ? [...job.recoveryHistory.slice(0, -1), step] : [...job.recoveryHistory, step];
  return { ...job, recoveryHistory: history, updatedAt: now };
}

/** `updateProgress` on a record. */
export function applyProgress(job: JobRecord, progress: number, checkpoint: Checkpoint | undefined, now: number): JobRecord {
  return { ...job, progress, ...(checkpoint === undefined ? {} : { checkpoint }), updatedAt: now };
}

/** `patchJob` on a record. */
export function applyPatch(job: JobRecord, patch: Partial<JobRecord>, now: number): JobRecord {
  return stampEnd({ ...job, ...patch, id: job.id, status: job.status, updatedAt: patch.updatedAt ?? now }, now);
}

/** Validates a server block (the same checks on every backend). */
export function assertBlock(backend: StoreBackend, b: ServerBlock): void {
  const bad = (what: string) => new StoreError('STORE_INVALID_JOB', `blockServer: ${what}`, { backend, operation: 'blockServer' });
  if (typeof b?.server !== 'string' || b.server === '') throw bad('server must be a non-empty string');
  if (typeof b.workflowHash !== 'string' || b.workflowHash === '') throw bad('workflowHash must be a non-empty string');
  if (typeof b.code !== 'string' || typeof b.reason !== 'string') throw bad('code and reason must be strings');
  if (typeof b.until !== 'number' || !Number.isFinite(b.until)) throw bad('until must be a finite ms timestamp');
}

/** JSON text of a meta value; refuses what JSON cannot hold so a stored value always reads back equal. */
export function metaText(backend: StoreBackend, key: string, value: unknown): string {
  if (typeof key !== 'string' || key === '') throw new StoreError('STORE_INVALID_JOB', 'setMeta: the key must be a non-empty string', { backend, operation: 'setMeta' });
  let text: string | undefined;
  try {
    text = JSON.stringify(value);
  } catch (e) {
    throw new StoreError('STORE_INVALID_JOB', `setMeta: the value of ${key} is not JSON-serialisable`, { backend, operation: 'setMeta', cause: e });
  }
  if (text === undefined) throw new StoreError('STORE_INVALID_JOB', `setMeta: the value of ${key} is not JSON-serialisable`, { backend, operation: 'setMeta' });
  return text;
}
