/**
 * Storage form of attempts: an attempt's workflow is kept as the nodes that differ from the job's
 * own workflow (`wd: { set, drop }`) instead of a full copy, so a job with a 17 KB workflow and
 * three attempts stores the workflow once plus what each attempt changed. Pure functions; every
 * backend applies them at its boundary (PostgreSQL also has the same encoding as an SQL function,
 * `cg_encode_attempts`, see `./migrations/postgres.ts`). Rows written before this encoding hold
 * full workflows and still read back: decoding only touches attempts that carry `wd`.
 */

type Obj = Record<string, unknown>;

function isObject(x: unknown): x is Obj {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

/** One attempt as stored: `workflow` replaced by the nodes it changes against `base`. */
export function encodeAttempt(attempt: unknown, base: unknown): unknown {
  if (!isObject(attempt) || !isObject(attempt.workflow) || !isObject(base) || 'wd' in attempt) return attempt;
  const wf = attempt.workflow;
  const set: Obj = {};
  for (const [id, node] of Object.entries(wf)) {
    if (!(id in base) || JSON.stringify(node) !== JSON.stringify(base[id])) set[id] = node;
  }
  const drop = Object.keys(base).filter((id) => !(id in wf));
  const { workflow: _full, ...rest } = attempt;
  return { ...rest, wd: { set, drop } };
}

/** The attempts array as stored. */
export function encodeAttempts(attempts: unknown, base: unknown): unknown {
  return Array.isArray(attempts) ? attempts.map((a) => encodeAttempt(a, base)) : attempts;
}

/** One stored attempt back to its whole form; anything not in the stored form is returned as is. */
export function decodeAttempt(stored: unknown, base: unknown): unknown {
  if (!isObject(stored) || !isObject(stored.wd) || 'workflow' in stored || !isObject(base)) return stored;
  const { wd, ...rest } = stored as Obj & { wd: { set?: unknown; drop?: unknown } };
  const set = isObject(wd.set) ? wd.set : {};
  const drop = new Set(Array.isArray(wd.drop) ? wd.drop.map(String) : []);
  const workflow: Obj = {};
  // Keep the base's node order, then nodes the attempt added.
  for (const [id, node] of Object.entries(base)) if (!drop.has(id)) workflow[id] = id in set ? set[id] : node;
  for (const [id, node] of Object.entries(set)) if (!(id in workflow)) workflow[id] = node;
  return { ...rest, workflow };
}

/** The attempts array back to its whole form. */
export function decodeAttempts(attempts: unknown, base: unknown): unknown {
  return Array.isArray(attempts) ? attempts.map((a) => decodeAttempt(a, base)) : attempts;
}

/** A whole job document in storage form (memory and Redis keep documents). */
export function encodeDoc<T extends { workflow: unknown; attempts: unknown }>(job: T): T {
  return { ...job, attempts: encodeAttempts(job.attempts, job.workflow) };
}

/** A stored job document back to its whole form; leaves anything unexpected for validation to report. */
export function decodeDoc(doc: unknown): unknown {
  if (!isObject(doc)) return doc;
  return 'attempts' in doc ? { ...doc, attempts: decodeAttempts(doc.attempts, doc.workflow) } : doc;
}
