/**
 * Redis store (ioredis), following the original Redis persistence spec: a job's state is saved when
 * it is created, updated on progress and status changes, and expires (configurable TTL, default
 * 24 h) once terminal; per-status sorted sets let a restarted process list the active jobs.
 *
 * Each job is one hash holding the JSON document plus a version. Writes read the document, change
 * it in JS, and commit with a Lua compare-and-set on the version that also moves the job between
 * the index sets, so status CAS, idempotency and index upkeep are atomic. Durability is whatever
 * the server is configured for: use `appendonly yes` + `appendfsync always` to make a transition
 * durable when its call returns.
 */
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { isTerminal, type AttemptRecord, type Checkpoint, type JobRecord, type JobStatus, type RecoveryStep } from '../jobs/types.js';
import { systemClock, type Clock } from '../util/clock.js';
import { checkJob, parseJson } from './codec.js';
import type { CorruptJob, JobPage, JobQuery, JobStore, ServerBlock, StatusCounts, StoreStats, UnfinishedJob, UnfinishedPage } from './contract.js';
import { countsFromCounters, statContribution, statsFromCounters } from './counters.js';
import { describeCause, redactUrl, StoreError } from './errors.js';
import {
  decodeUnfinishedCursor,
  encodeUnfinishedCursor,
  newerFirst,
  normalizeQuery,
  toPage,
  UNFINISHED_ORDER,
  unfinishedLimit,
  unfinishedSummary,
  type KeysetPosition,
  type NormalizedQuery,
} from './query.js';
import {
  applyAttempt,
  applyPatch,
  applyProgress,
  applyRecoveryStep,
  applyTransition,
  assertAttempt,
  assertBlock,
  assertExtraNames,
  assertProgress,
  assertRecoveryStep,
  cleanPatch,
  metaText,
  stampEnd,
  statusList,
} from './record-ops.js';
import { CREATE_LUA, DELETE_LUA, DELETE_ONE_LUA, PRUNE_LUA, QUARANTINE_LUA, WRITE_LUA } from './redis-scripts.js';
import { decodeDoc as decodeStored, encodeDoc } from './workflow-diff.js';

export interface RedisStoreOptions {
  /** `redis://[user:pass@]host:port[/db]` or `rediss://...`. */
  url: string;
  /** Prefix of every key. @default 'comfyguard:' */
  keyPrefix?: string;
  /**
   * How long a terminal job stays readable before Redis expires it. `null` keeps it until
   * `deleteTerminalBefore`; `0` deletes it as soon as it ends. @default 86_400_000 (24 h)
   */
  terminalTtlMs?: number | null;
  /** @default systemClock */
  clock?: Clock;
  /** CLIENT SETNAME of our connection, so operators (and tests) can find it. @default 'comfyguard-store' */
  connectionName?: string;
  /** Bound on one command, queued time included, so an outage never hangs a call. @default 10_000 */
  commandTimeoutMs?: number;
  /** Reconnect attempts a queued command waits through before failing with STORE_UNAVAILABLE. @default 5 */
  maxRetriesPerRequest?: number;
  /** @default 5000 */
  connectTimeoutMs?: number;
  /** Connection errors outside any call (ioredis reconnects by itself). @default ignored */
  onError?: (err: StoreError) => void;
}

type Resolved = Required<Omit<RedisStoreOptions, 'onError'>> & Pick<RedisStoreOptions, 'onError'>;
type ScriptHost = Record<'cgCreate' | 'cgWrite' | 'cgDelete' | 'cgPrune' | 'cgDeleteOne' | 'cgQuarantine', (...args: Array<string | number>) => Promise<unknown>>;
type Decoded = { ok: true; job: JobRecord } | { ok: false; corrupt: CorruptJob };

const NON_TERMINAL: JobStatus[] = ['queued', 'running', 'recovering'];
const CHUNK = 500;
const MAX_CAS_ROUNDS = 200;
const UNAVAILABLE_MESSAGES = [/connection is closed/i, /command timed out/i, /stream isn't writeable/i, /max retries per request/i, /reached the max retries/i, /connect etimedout/i];

/** True when `e` means Redis could not be reached (as opposed to a command error). */
export function isRedisConnectionError(e: unknown): boolean {
  if (!(e instanceof Error)) return false;
  if (e.name === 'MaxRetriesPerRequestError') return true;
  const code = (e as { code?: unknown }).code;
  if (typeof code === 'string' && /^(ECONNREFUSED|ECONNRESET|EPIPE|ETIMEDOUT|EHOSTUNREACH|ENOTFOUND|EAI_AGAIN)$/.test(code)) return true;
  return UNAVAILABLE_MESSAGES.some((re) => re.test(e.message));
}

/** Redis-backed JobStore. */
export class RedisStore implements JobStore {
  readonly #o: Resolved;
  readonly #p: string;
  readonly #target: string;
  #redis: Redis | null = null;
  #state: 'new' | 'open' | 'closed' = 'new';
  #closing: Promise<void> | null = null;
  #initializing: Promise<void> | null = null;

  constructor(opts: RedisStoreOptions) {
    this.#o = {
      keyPrefix: 'comfyguard:',
      terminalTtlMs: 86_400_000,
      clock: systemClock,
      connectionName: 'comfyguard-store',
      commandTimeoutMs: 10_000,
      maxRetriesPerRequest: 5,
      connectTimeoutMs: 5000,
      ...opts,
    };
    const ttl = this.#o.terminalTtlMs;
    if (ttl !== null && (!Number.isInteger(ttl) || ttl < 0)) {
      throw new StoreError('STORE_BAD_URL', `terminalTtlMs must be a whole number of ms >= 0 or null, got ${String(ttl)}`, { backend: 'redis' });
    }
    this.#p = this.#o.keyPrefix;
    this.#target = redactUrl(opts.url);
  }

  /** The key prefix (every key this store writes starts with it). */
  get keyPrefix(): string {
    return this.#p;
  }

  /** The CLIENT SETNAME of this store's connection. */
  get connectionName(): string {
    return this.#o.connectionName;
  }

  /** Connects and checks that the server supports the commands used (Redis >= 6.2). */
  init(): Promise<void> {
    if (this.#state === 'closed') return Promise.reject(this.#closedError('init'));
    // Memoised: concurrent callers share one connect; a failed init can be retried.
    this.#initializing ??= this.#open().catch((e: unknown) => {
      this.#initializing = null;
      throw e;
    });
    return this.#initializing;
  }

  async #open(): Promise<void> {
    const redis = new Redis(this.#o.url, {
      lazyConnect: true,
      connectionName: this.#o.connectionName,
      connectTimeout: this.#o.connectTimeoutMs,
      commandTimeout: this.#o.commandTimeoutMs,
      maxRetriesPerRequest: this.#o.maxRetriesPerRequest,
      enableOfflineQueue: true,
      // Reconnect forever, backing off to 2 s; each queued command gives up after maxRetriesPerRequest.
      retryStrategy: (times) => Math.min(100 * 2 ** times, 2000),
      protocol: 2,
      scripts: {
        cgCreate: { lua: CREATE_LUA, numberOfKeys: 5 },
        cgWrite: { lua: WRITE_LUA, numberOfKeys: 6 },
        cgDelete: { lua: DELETE_LUA, numberOfKeys: 0 },
        cgPrune: { lua: PRUNE_LUA, numberOfKeys: 0 },
        cgDeleteOne: { lua: DELETE_ONE_LUA, numberOfKeys: 0 },
        cgQuarantine: { lua: QUARANTINE_LUA, numberOfKeys: 0 },
      },
    });
    // ioredis emits 'error' on every failed reconnect; without a listener it only logs, but the
    // owner may want to know (health endpoint, logs).
    let lastError: unknown;
    redis.on('error', (err: unknown) => {
      lastError = err;
      this.#o.onError?.(new StoreError('STORE_UNAVAILABLE', `Redis at ${this.#target}: ${describeCause(err)}`, { backend: 'redis', cause: err }));
    });
    try {
      await redis.connect();
      const info = String(await redis.info('server'));
      const version = /redis_version:(\d+)\.(\d+)/.exec(info);
      if (version && (Number(version[1]) < 6 || (Number(version[1]) === 6 && Number(version[2]) < 2))) {
        throw new StoreError('STORE_ERROR', `init: Redis at ${this.#target} is ${version[1]}.${version[2]}; comfyguard needs Redis 6.2 or newer`, { backend: 'redis', operation: 'init' });
      }
    } catch (e) {
      redis.disconnect();
      if (e instanceof StoreError) throw e;
      // connect() only says "Connection is closed."; the socket error before it says why.
      const cause = lastError ?? e;
      throw new StoreError('STORE_UNAVAILABLE', `init: Redis at ${this.#target} is not reachable: ${describeCause(cause)}`, { backend: 'redis', operation: 'init', cause });
    }
    this.#redis = redis;
    this.#state = 'open';
  }

  /** Inserts a job; a repeated idempotency key returns the job that holds it. */
  async createJob(input: JobRecord): Promise<{ created: boolean; job: JobRecord }> {
    return this.#run('createJob', input?.id, async (redis) => {
      const checked = checkJob(input);
      const job = checked.ok ? stampEnd(input, this.#o.clock.now()) : input;
      if (!checked.ok) throw new StoreError('STORE_INVALID_JOB', `createJob: invalid job ${String(job?.id)}: ${checked.error}`, { backend: 'redis', operation: 'createJob', jobId: job?.id });
      assertExtraNames('redis', 'createJob', job.id, job);
      const token = randomUUID();
      const doc = JSON.stringify(encodeDoc(job));
      const idem = job.idempotencyKey ?? '';
      const terminal = isTerminal(job.status);
      const reply = await this.#scripts(redis).cgCreate(
        this.#jobKey(job.id),
        this.#statusKey(job.status),
        this.#k('created'),
        this.#k('ended'),
        this.#k(`idem:${idem}`),
        job.id,
        doc,
        job.status,
        job.createdAt,
        terminal ? (job.endedAt ?? '') : '',
        token,
        idem,
        this.#ttlArg(),
        this.#p,
        contributionText(job),
      );
      const [outcome, id, storedDoc, storedToken] = asStrings(reply, 4);
      if (outcome === 'duplicate') throw new StoreError('STORE_DUPLICATE_JOB', `createJob: a job with id ${job.id} already exists`, { backend: 'redis', operation: 'createJob', jobId: job.id });
      const decoded = decodeDoc(id ?? job.id, storedDoc ?? null);
      if (!decoded.ok) throw corruptError('createJob', decoded.corrupt);
      return { created: outcome === 'created' || storedToken === token, job: decoded.job };
    });
  }

  /** The job, or null (also once a terminal job has expired); a damaged row throws STORE_CORRUPT_ROW. */
  async getJob(id: string): Promise<JobRecord | null> {
    return this.#run('getJob', id, async (redis) => {
      const [doc = null, status = null] = await redis.hmget(this.#jobKey(id), 'doc', 'status');
      if (doc === null && status === null) return null;
      const d = decodeDoc(id, doc);
      if (!d.ok) {
        await this.#quarantine(redis, d.corrupt);
        throw corruptError('getJob', d.corrupt);
      }
      return d.job;
    });
  }

  /** Compare-and-set on status. */
  async transition(id: string, from: JobStatus | readonly JobStatus[], to: JobStatus, patch?: Partial<JobRecord>): Promise<JobRecord | null> {
    const clean = cleanPatch('redis', 'transition', id, patch);
    const froms = statusList(from);
    return this.#mutate('transition', id, 'null', (job, now) => (froms.includes(job.status) ? applyTransition(job, to, clean, now) : null));
  }

  /** Upserts an attempt by number. */
  async recordAttempt(id: string, attempt: AttemptRecord): Promise<void> {
    assertAttempt('redis', id, attempt);
    await this.#mutate('recordAttempt', id, 'throw', (job, now) => applyAttempt(job, attempt, now));
  }

  /** Appends a recovery step, or replaces the last one. */
  async appendRecoveryStep(id: string, step: RecoveryStep, opts?: { replaceLast?: boolean }): Promise<void> {
    assertRecoveryStep('redis', id, step);
    await this.#mutate('appendRecoveryStep', id, 'throw', (job, now) => applyRecoveryStep(job, step, opts?.replaceLast === true, now));
  }

  /** Sets progress and, when given, the checkpoint. */
  async updateProgress(id: string, progress: number, checkpoint?: Checkpoint): Promise<void> {
    assertProgress('redis', id, progress, checkpoint);
    await this.#mutate('updateProgress', id, 'throw', (job, now) => applyProgress(job, progress, checkpoint, now));
  }

  /** Patches fields other than id and status. */
  async patchJob(id: string, patch: Partial<Omit<JobRecord, 'id' | 'status'>>): Promise<void> {
    const clean = cleanPatch('redis', 'patchJob', id, patch);
    await this.#mutate('patchJob', id, 'throw', (job, now) => applyPatch(job, clean, now));
  }

  /** Non-terminal jobs from the status index sets, oldest first; unreadable or missing rows are reported. */
  async listNonTerminal(): Promise<{ jobs: JobRecord[]; corrupt: CorruptJob[] }> {
    return this.#run('listNonTerminal', undefined, async (redis) => {
      const keys = NON_TERMINAL.map((s) => this.#statusKey(s));
      const ids = asStrings(await redis.call('ZUNION', keys.length, ...keys), 0);
      const jobs: JobRecord[] = [];
      const corrupt: CorruptJob[] = [];
      for (const d of await this.#fetch(redis, ids)) {
        if (d.ok) {
          if (!isTerminal(d.job.status)) jobs.push(d.job);
        } else {
          await this.#quarantine(redis, d.corrupt);
          corrupt.push(d.corrupt);
        }
      }
      return { jobs, corrupt };
    });
  }

  /** Newest first with keyset pagination over the createdAt sorted sets. */
  async query(q: JobQuery): Promise<JobPage> {
    return this.#run('query', undefined, async (redis) => {
      const nq = normalizeQuery(q, 'redis');
      const keys = nq.statuses ? nq.statuses.map((s) => this.#statusKey(s)) : [this.#k('created')];
      const want = nq.limit + 1;
      const found: Array<KeysetPosition & { job: JobRecord }> = [];
      const corrupt: CorruptJob[] = [];
      const gone: string[] = [];
      let after = nq.after;
      // Expired jobs leave index entries behind until pruned; keep reading until the page is full.
      for (let round = 0; round < 100 && found.length < want; round++) {
        const need = want - found.length;
        const lists = await Promise.all(keys.map((k) => this.#zDesc(redis, k, { ...nq, after }, need)));
        const candidates = lists.flat().sort(newerFirst).slice(0, need);
        if (candidates.length === 0) break;
        const decoded = await this.#fetch(redis, candidates.map((c) => c.id));
        candidates.forEach((c, i) => {
          const d = decoded[i];
          if (d?.ok) found.push({ ...c, job: d.job });
          else if (d && d.corrupt.error === MISSING) gone.push(c.id);
          else if (d) corrupt.push(d.corrupt);
          if (d && !d.ok) void this.#quarantine(redis, d.corrupt).catch(() => undefined);
        });
        after = candidates[candidates.length - 1] ?? after;
        if (candidates.length < need) break;
      }
      if (gone.length) await this.#scripts(redis).cgPrune(this.#p, ...gone);
      const page = toPage(found, nq.limit);
      return { jobs: page.items.map((x) => x.job), nextCursor: page.nextCursor, ...(corrupt.length ? { corrupt } : {}) };
    });
  }

  /** The job holding this idempotency key, if any. */
  async findByIdempotencyKey(key: string): Promise<JobRecord | null> {
    return this.#run('findByIdempotencyKey', undefined, async (redis) => {
      const id = await redis.get(this.#k(`idem:${key}`));
      if (id === null) return null;
      const [d] = await this.#fetch(redis, [id]);
      if (!d || (!d.ok && d.corrupt.error === MISSING)) return null;
      if (!d.ok) throw corruptError('findByIdempotencyKey', d.corrupt);
      return d.job;
    });
  }

  /** Aggregates from the `stats` counters hash (after taking expired jobs out of it). */
  async stats(): Promise<StoreStats> {
    return this.#run('stats', undefined, async (redis) => statsFromCounters(await this.#counters(redis)));
  }

  /** Totals by status from the counters. */
  async countByStatus(): Promise<StatusCounts> {
    return this.#run('countByStatus', undefined, async (redis) => countsFromCounters(await this.#counters(redis)));
  }

  /** One page of unfinished jobs from the status sets (oldest first within each). */
  async listUnfinished(opts: { cursor?: string | null; limit?: number } = {}): Promise<UnfinishedPage> {
    return this.#run('listUnfinished', undefined, async (redis) => {
      const limit = unfinishedLimit(opts.limit);
      let pos = decodeUnfinishedCursor(opts.cursor, 'redis');
      let status = pos?.status ?? 0;
      const ids: Array<{ status: number; createdAt: number; id: string }> = [];
      while (ids.length < limit && status < UNFINISHED_ORDER.length) {
        const key = this.#statusKey(UNFINISHED_ORDER[status] ?? 'queued');
        const need = limit - ids.length;
        const min = pos && pos.status === status ? String(pos.createdAt) : '-inf';
        for (let offset = 0; ids.length < limit; ) {
          const batch = need + 16;
          const flat = asStrings(await redis.call('ZRANGE', key, min, '+inf', 'BYSCORE', 'LIMIT', offset, batch, 'WITHSCORES'), 0);
          for (let i = 0; i + 1 < flat.length && ids.length < limit; i += 2) {
            const e = { status, id: flat[i] ?? '', createdAt: Number(flat[i + 1]) };
            // Entries sharing the cursor's timestamp sort by id; skip the ones already returned.
            if (pos && pos.status === status && (e.createdAt < pos.createdAt || (e.createdAt === pos.createdAt && e.id <= pos.id))) continue;
            ids.push(e);
          }
          if (flat.length < batch * 2) break;
          offset += batch;
        }
        if (ids.length < limit) {
          status += 1;
          pos = null;
        }
      }
      const jobs: UnfinishedJob[] = [];
      const corrupt: CorruptJob[] = [];
      for (const d of await this.#fetch(redis, ids.map((e) => e.id))) {
        if (d.ok) {
          if (!isTerminal(d.job.status)) jobs.push(unfinishedSummary(d.job));
        } else {
          await this.#quarantine(redis, d.corrupt);
          corrupt.push(d.corrupt);
        }
      }
      const last = ids[ids.length - 1];
      return { jobs, corrupt, nextCursor: ids.length === limit && last ? encodeUnfinishedCursor(last) : null };
    });
  }

  /** Quarantined jobs, found unreadable by an earlier read. */
  async listCorrupt(): Promise<CorruptJob[]> {
    return this.#run('listCorrupt', undefined, async (redis) => {
      const flat = asStrings(await redis.hgetall(this.#k('corrupt')).then((o) => Object.entries(o)), 0);
      const out: CorruptJob[] = [];
      for (let i = 0; i + 1 < flat.length; i += 2) out.push({ id: flat[i] ?? '', error: flat[i + 1] ?? '' });
      return out.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    });
  }

  /** Deletes one job by id, readable or not, with its index entries and counters. */
  async deleteJob(id: string): Promise<boolean> {
    return this.#run('deleteJob', id, async (redis) => Number(await this.#scripts(redis).cgDeleteOne(this.#p, id)) === 1);
  }

  /** Records a block; the hash expires with its longest block. */
  async blockServer(block: ServerBlock): Promise<void> {
    assertBlock('redis', block);
    await this.#run('blockServer', undefined, async (redis) => {
      const key = this.#k(`blocks:${block.workflowHash}`);
      await redis.hset(key, block.server, JSON.stringify({ code: block.code, reason: block.reason, until: block.until }));
      const ttl = Math.ceil(block.until - this.#o.clock.now());
      // Keep the hash while any block in it lasts; never shorten a longer expiry.
      if (ttl > 0 && ttl > (await redis.pttl(key))) await redis.pexpire(key, ttl);
    });
  }

  /** Blocks in force at `now`; removes the expired ones. */
  async blockedServers(workflowHash: string, now: number): Promise<Array<Omit<ServerBlock, 'workflowHash'>>> {
    return this.#run('blockedServers', undefined, async (redis) => {
      const key = this.#k(`blocks:${workflowHash}`);
      const all = await redis.hgetall(key);
      const live: Array<Omit<ServerBlock, 'workflowHash'>> = [];
      const expired: string[] = [];
      for (const [server, text] of Object.entries(all)) {
        const parsed = parseJson(text, 'block');
        const b = parsed.ok ? (parsed.value as { code?: unknown; reason?: unknown; until?: unknown }) : null;
        if (!b || typeof b.until !== 'number' || b.until <= now) expired.push(server);
        else live.push({ server, code: String(b.code), reason: String(b.reason), until: b.until });
      }
      if (expired.length) await redis.hdel(key, ...expired);
      return live.sort((a, b) => (a.server < b.server ? -1 : a.server > b.server ? 1 : 0));
    });
  }

  /** A meta value, or null. */
  async getMeta(key: string): Promise<unknown> {
    return this.#run('getMeta', undefined, async (redis) => {
      const text = await redis.hget(this.#k('meta'), key);
      return text === null ? null : (JSON.parse(text) as unknown);
    });
  }

  /** Sets a meta value. */
  async setMeta(key: string, value: unknown): Promise<void> {
    const text = metaText('redis', key, value);
    await this.#run('setMeta', undefined, (redis) => redis.hset(this.#k('meta'), key, text));
  }

  /** Meta entries under a prefix, by key (the meta hash is small: identity and learned data). */
  async listMeta(prefix: string): Promise<Array<{ key: string; value: unknown }>> {
    return this.#run('listMeta', undefined, async (redis) =>
      Object.entries(await redis.hgetall(this.#k('meta')))
        .filter(([k]) => k.startsWith(prefix))
        .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
        .map(([key, text]) => ({ key, value: JSON.parse(text) as unknown })),
    );
  }

  /** Deletes terminal jobs that ended before `cutoff` and prunes index entries of expired ones. */
  async deleteTerminalBefore(cutoff: number): Promise<number> {
    return this.#run('deleteTerminalBefore', undefined, async (redis) => {
      const ids = asStrings(await redis.call('ZRANGE', this.#k('ended'), '-inf', `(${cutoff}`, 'BYSCORE'), 0);
      let n = 0;
      for (let i = 0; i < ids.length; i += CHUNK) n += asStrings(await this.#scripts(redis).cgDelete(this.#p, cutoff, ...ids.slice(i, i + CHUNK)), 0).length;
      return n;
    });
  }

  /** Deletes those of `ids` still terminal and ended before `cutoff` (the same script, per id checked); returns them. */
  async deleteTerminal(ids: readonly string[], cutoff: number): Promise<string[]> {
    if (ids.length === 0) return [];
    return this.#run('deleteTerminal', undefined, async (redis) => {
      const out: string[] = [];
      for (let i = 0; i < ids.length; i += CHUNK) out.push(...asStrings(await this.#scripts(redis).cgDelete(this.#p, cutoff, ...ids.slice(i, i + CHUNK)), 0));
      return out;
    });
  }

  /** PING. */
  async ping(): Promise<void> {
    await this.#run('ping', undefined, (redis) => redis.ping());
  }

  /** Waits for replies in flight (QUIT), or drops the connection if Redis is away; idempotent. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#state = 'closed';
      const redis = this.#redis;
      this.#redis = null;
      if (!redis) return;
      if (redis.status !== 'ready') {
        redis.disconnect();
        return;
      }
      await redis.quit().catch(() => redis.disconnect());
    })();
    return this.#closing;
  }

  #k(suffix: string): string {
    return `${this.#p}${suffix}`;
  }

  #jobKey(id: string): string {
    return this.#k(`job:${id}`);
  }

  #statusKey(status: JobStatus): string {
    return this.#k(`status:${status}`);
  }

  #ttlArg(): string {
    return this.#o.terminalTtlMs === null ? '' : String(this.#o.terminalTtlMs);
  }

  #scripts(redis: Redis): ScriptHost {
    return redis as unknown as ScriptHost;
  }

  // A method, not an inline check, because close() can flip the state while a call awaits.
  #isClosed(): boolean {
    return this.#state === 'closed';
  }

  #closedError(operation: string): StoreError {
    return new StoreError('STORE_CLOSED', `${operation}: the Redis store is closed`, { backend: 'redis', operation });
  }

  /** Runs one operation, turning driver failures into StoreErrors. */
  async #run<T>(operation: string, jobId: string | undefined, fn: (redis: Redis) => Promise<T>): Promise<T> {
    const redis = this.#redis;
    if (!redis || this.#state !== 'open') {
      throw this.#state === 'closed' ? this.#closedError(operation) : new StoreError('STORE_CLOSED', `${operation}: the Redis store was used before init()`, { backend: 'redis', operation });
    }
    try {
      return await fn(redis);
    } catch (e) {
      if (e instanceof StoreError) throw e;
      const ids = jobId === undefined ? {} : { jobId };
      if (this.#isClosed()) throw this.#closedError(operation);
      if (isRedisConnectionError(e)) {
        throw new StoreError('STORE_UNAVAILABLE', `${operation}: Redis at ${this.#target} is unreachable (a write may or may not have applied; retrying is safe): ${describeCause(e)}`, {
          backend: 'redis',
          operation,
          ...ids,
          cause: e,
        });
      }
      throw new StoreError('STORE_ERROR', `${operation}: Redis at ${this.#target} failed: ${describeCause(e)}`, { backend: 'redis', operation, ...ids, cause: e });
    }
  }

  /**
   * Optimistic read-modify-write: read doc + version, apply `change`, commit with the CAS script;
   * on a version conflict read again. `change` returning null aborts (a lost status CAS).
   */
  async #mutate(operation: string, id: string, missing: 'null' | 'throw', change: (job: JobRecord, now: number) => JobRecord | null): Promise<JobRecord | null> {
    return this.#run(operation, id, async (redis) => {
      const token = randomUUID();
      const key = this.#jobKey(id);
      for (let round = 0; round < MAX_CAS_ROUNDS; round++) {
        const [doc = null, version = null] = await redis.hmget(key, 'doc', 'v');
        if (doc === null && version === null) {
          if (missing === 'null') return null;
          throw new StoreError('STORE_JOB_NOT_FOUND', `${operation}: no job with id ${id}`, { backend: 'redis', operation, jobId: id });
        }
        const d = decodeDoc(id, doc);
        if (!d.ok) {
          await this.#quarantine(redis, d.corrupt);
          throw corruptError(operation, d.corrupt);
        }
        if (version === null) throw corruptError(operation, { id, error: 'the job hash has no version field (half-written)' });
        const next = change(d.job, this.#o.clock.now());
        if (!next) return null;
        const terminal = isTerminal(next.status);
        const idem = next.idempotencyKey;
        const reply = await this.#scripts(redis).cgWrite(
          key,
          this.#statusKey(d.job.status),
          this.#statusKey(next.status),
          this.#k('created'),
          this.#k('ended'),
          idem ? this.#k(`idem:${idem}`) : key,
          version,
          JSON.stringify(encodeDoc(next)),
          next.status,
          id,
          next.createdAt,
          terminal ? (next.endedAt ?? this.#o.clock.now()) : '',
          token,
          this.#ttlArg(),
          idem ? '1' : '0',
          this.#p,
          contributionText(next),
        );
        if (reply === 'ok') return next;
        if (reply === 'missing') {
          if (missing === 'null') return null;
          throw new StoreError('STORE_JOB_NOT_FOUND', `${operation}: no job with id ${id}`, { backend: 'redis', operation, jobId: id });
        }
      }
      throw new StoreError('STORE_ERROR', `${operation}: job ${id} kept changing under ${MAX_CAS_ROUNDS} concurrent writers`, { backend: 'redis', operation, jobId: id });
    });
  }

  /** Counter values, after taking jobs whose TTL fired out of them (a bounded batch per call). */
  async #counters(redis: Redis): Promise<Array<[string, number]>> {
    const time = asStrings(await redis.call('TIME'), 2);
    const now = Number(time[0]) * 1000 + Math.floor(Number(time[1]) / 1000);
    const due = asStrings(await redis.call('ZRANGE', this.#k('expires'), '-inf', now, 'BYSCORE', 'LIMIT', 0, 1000), 0);
    if (due.length) await this.#scripts(redis).cgPrune(this.#p, ...due);
    return Object.entries(await redis.hgetall(this.#k('stats'))).map(([k, v]) => [k, Number(v)]);
  }

  async #quarantine(redis: Redis, c: CorruptJob): Promise<void> {
    if (c.error === MISSING) return;
    await this.#scripts(redis).cgQuarantine(this.#p, c.id, c.error || 'unreadable');
  }

  /** Reads and decodes documents in pipelined batches, keeping the order of `ids`. */
  async #fetch(redis: Redis, ids: string[]): Promise<Decoded[]> {
    const out: Decoded[] = [];
    for (let i = 0; i < ids.length; i += CHUNK) {
      const slice = ids.slice(i, i + CHUNK);
      const pipe = redis.pipeline();
      for (const id of slice) pipe.hmget(this.#jobKey(id), 'doc', 'status');
      const replies = (await pipe.exec()) ?? [];
      slice.forEach((id, j) => {
        const [err, value] = replies[j] ?? [new Error('no reply'), null];
        if (err) throw err;
        const [doc = null, status = null] = (value as Array<string | null> | null) ?? [];
        out.push(doc === null && status === null ? { ok: false, corrupt: { id, error: MISSING } } : decodeDoc(id, doc));
      });
    }
    return out;
  }

  /** Up to `count` (createdAt, id) entries of one sorted set after the query's cursor, newest first. */
  async #zDesc(redis: Redis, key: string, q: Pick<NormalizedQuery, 'since' | 'until' | 'after'>, count: number): Promise<KeysetPosition[]> {
    const max = q.after ? String(q.after.createdAt) : q.until !== null ? `(${q.until}` : '+inf';
    const min = q.since !== null ? String(q.since) : '-inf';
    const out: KeysetPosition[] = [];
    const batch = count + 16;
    for (let offset = 0; out.length < count; ) {
      const flat = asStrings(await redis.call('ZRANGE', key, max, min, 'BYSCORE', 'REV', 'LIMIT', offset, batch, 'WITHSCORES'), 0);
      for (let i = 0; i + 1 < flat.length && out.length < count; i += 2) {
        const pos = { id: flat[i] ?? '', createdAt: Number(flat[i + 1]) };
        // Entries at the cursor's own timestamp sort by id; skip the ones already returned.
        if (q.after && newerFirst(pos, q.after) <= 0) continue;
        if (q.until !== null && pos.createdAt >= q.until) continue;
        out.push(pos);
      }
      if (flat.length < batch * 2) break;
      offset += batch;
    }
    return out;
  }
}

const MISSING = 'the job hash does not exist (an index entry points to a deleted or expired job)';

function corruptError(operation: string, c: CorruptJob): StoreError {
  return new StoreError('STORE_CORRUPT_ROW', `${operation}: job ${c.id} cannot be read: ${c.error}`, { backend: 'redis', operation, jobId: c.id });
}

function decodeDoc(id: string, doc: string | null): Decoded {
  if (doc === null) return { ok: false, corrupt: { id, error: 'the job hash has no doc field (half-written)' } };
  const parsed = parseJson(doc, 'doc');
  if (!parsed.ok) return { ok: false, corrupt: { id, error: parsed.error } };
  const checked = checkJob(decodeStored(parsed.value));
  if (!checked.ok) return { ok: false, corrupt: { id, error: checked.error } };
  if (checked.value.id !== id) return { ok: false, corrupt: { id, error: `the document belongs to job ${checked.value.id}` } };
  return { ok: true, job: checked.value };
}

/** A Redis array reply as strings; nested RESP3 pairs are flattened. `min` pads with ''. */
function asStrings(reply: unknown, min: number): string[] {
  const flat = Array.isArray(reply) ? reply.flat() : [];
  const out = flat.map((x) => (x === null || x === undefined ? '' : String(x)));
  while (out.length < min) out.push('');
  return out;
}


/** What a job adds to the counters, as `name\tn\n` lines for the Lua scripts. */
function contributionText(job: JobRecord): string {
  let out = '';
  for (const [k, n] of statContribution(job)) out += `${k.replace(/[\t\n]/g, ' ')}\t${n}\n`;
  return out;
}
