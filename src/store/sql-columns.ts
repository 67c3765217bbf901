/**
 * How a JobRecord maps onto the columns of the SQL stores (SQLite and PostgreSQL share the layout):
 * scalars in their own columns, nested data as JSON, and `error_code`/`error_message` derived from
 * `error` so failures can be counted and searched with an index.
 */
import type { JobRecord } from '../jobs/types.js';
import { checkJob, parseJson } from './codec.js';
import type { CorruptJob } from './contract.js';
import { decodeAttempts, encodeAttempts } from './workflow-diff.js';

export interface ColumnSpec {
  field: keyof JobRecord;
  column: string;
  json: boolean;
}

export const JOB_COLUMNS: readonly ColumnSpec[] = [
  { field: 'id', column: 'id', json: false },
  { field: 'status', column: 'status', json: false },
  { field: 'workflow', column: 'workflow', json: true },
  { field: 'params', column: 'original_parameters', json: true },
  { field: 'options', column: 'options', json: true },
  { field: 'priority', column: 'priority', json: false },
  { field: 'idempotencyKey', column: 'idempotency_key', json: false },
  { field: 'progress', column: 'progress', json: false },
  { field: 'server', column: 'server', json: false },
  { field: 'promptId', column: 'prompt_id', json: false },
  { field: 'attempts', column: 'attempts', json: true },
  { field: 'recoveryHistory', column: 'recovery_history', json: true },
  { field: 'retryCount', column: 'retry_count', json: false },
  { field: 'outputs', column: 'outputs', json: true },
  { field: 'error', column: 'error', json: true },
  { field: 'checkpoint', column: 'last_checkpoint', json: true },
  { field: 'degraded', column: 'degraded', json: true },
  { field: 'createdAt', column: 'created_at', json: false },
  { field: 'updatedAt', column: 'updated_at', json: false },
  { field: 'startedAt', column: 'started_at', json: false },
  { field: 'endedAt', column: 'ended_at', json: false },
];

const byField = new Map(JOB_COLUMNS.map((c) => [c.field, c]));

/**
 * Record fields without a column of their own (added to JobRecord after the schema) live in the
 * `extra` JSON column; their names must be plain identifiers so SQL JSON paths can address them.
 */
export const EXTRA_FIELD_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;

/** Fields of `record` that have no column, or null when there are none. */
export function extraFields(record: object): Record<string, unknown> | null {
  let out: Record<string, unknown> | null = null;
  for (const [k, v] of Object.entries(record)) {
    if (v === undefined || byField.has(k as keyof JobRecord)) continue;
    (out ??= {})[k] = v;
  }
  return out;
}

/** Columns derived from `error`, kept in sync on every write that sets it. */
export function errorColumns(error: JobRecord['error'] | undefined): { error_code: string | null; error_message: string | null } {
  return { error_code: error?.code ?? null, error_message: error?.message ?? null };
}

/** Column values for a field: JSON fields become text (SQL NULL for a null value). */
export function columnValue(field: keyof JobRecord, value: unknown): unknown {
  const spec = byField.get(field);
  if (!spec) throw new Error(`no column for field ${String(field)}`);
  if (!spec.json) return value;
  return value === null ? null : JSON.stringify(value);
}

/** Every column of a new row, derived columns and `extra` included; attempts in storage form. */
export function rowValues(job: JobRecord): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const c of JOB_COLUMNS) out[c.column] = columnValue(c.field, c.field === 'attempts' ? encodeAttempts(job.attempts, job.workflow) : job[c.field]);
  const extra = extraFields(job);
  return { ...out, ...errorColumns(job.error), extra: extra === null ? null : JSON.stringify(extra) };
}

/**
 * (column, value) pairs for the defined fields of a patch, derived columns included. `attempts`
 * and `workflow` are left out: the stores write them with SQL that keeps attempts in storage
 * form against the row's workflow. Fields without a column are left out too (see `extraFields`).
 */
export function patchColumns(patch: Partial<JobRecord>): Array<[string, unknown]> {
  const out: Array<[string, unknown]> = [];
  for (const [field, value] of Object.entries(patch) as Array<[keyof JobRecord, unknown]>) {
    const spec = byField.get(field);
    if (!spec || value === undefined || field === 'id' || field === 'status' || field === 'attempts' || field === 'workflow') continue;
    out.push([spec.column, columnValue(field, value)]);
  }
  if (patch.error !== undefined) for (const [k, v] of Object.entries(errorColumns(patch.error))) out.push([k, v]);
  return out;
}

export type DecodedRow = { ok: true; job: JobRecord } | { ok: false; corrupt: CorruptJob };

const NUMERIC_FIELDS = new Set<keyof JobRecord>(['priority', 'progress', 'retryCount', 'createdAt', 'updatedAt', 'startedAt', 'endedAt']);

/**
 * Rebuilds a JobRecord from a row. `jsonAsText`: SQLite returns JSON columns as text, pg returns
 * JSONB already parsed. Any failure becomes a CorruptJob naming the column, never an exception.
 */
export function decodeRow(row: Record<string, unknown>, jsonAsText: boolean): DecodedRow {
  const id = typeof row.id === 'string' ? row.id : String(row.id);
  const job: Record<string, unknown> = {};
  for (const c of JOB_COLUMNS) {
    let v = row[c.column];
    if (v === undefined) return { ok: false, corrupt: { id, error: `column ${c.column} is missing` } };
    if (c.json && jsonAsText && v !== null) {
      const parsed = parseJson(v, c.column);
      if (!parsed.ok) return { ok: false, corrupt: { id, error: parsed.error } };
      v = parsed.value;
    } else if (NUMERIC_FIELDS.has(c.field) && (typeof v === 'string' || typeof v === 'bigint')) {
      // pg returns int8 as text to avoid precision loss; our timestamps are well inside 2^53.
      v = Number(v);
    }
    job[c.field] = v;
  }
  job.attempts = decodeAttempts(job.attempts, job.workflow);
  const extra = row.extra === undefined || row.extra === null ? null : jsonAsText ? parseJson(row.extra, 'extra') : { ok: true as const, value: row.extra };
  if (extra && !extra.ok) return { ok: false, corrupt: { id, error: extra.error } };
  if (extra && typeof extra.value === 'object' && extra.value !== null) {
    for (const [k, v] of Object.entries(extra.value)) if (!(k in job)) job[k] = v;
  }
  const checked = checkJob(job);
  return checked.ok ? { ok: true, job: checked.value } : { ok: false, corrupt: { id, error: checked.error } };
}

/** Separates decoded rows into jobs and corrupt reports, keeping order. */
export function splitDecoded(decoded: DecodedRow[]): { jobs: JobRecord[]; corrupt: CorruptJob[] } {
  const jobs: JobRecord[] = [];
  const corrupt: CorruptJob[] = [];
  for (const d of decoded) {
    if (d.ok) jobs.push(d.job);
    else corrupt.push(d.corrupt);
  }
  return { jobs, corrupt };
}
