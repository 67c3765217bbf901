/**
 * The conformance suite every JobStore implementation runs (memory, SQLite, PostgreSQL, Redis).
 * A backend's test file calls `describeStoreContract(name, factory)`; the factory gives each test
 * a fresh, empty store plus driver-level hooks (write a damaged row, reopen the same data).
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { JOB_STATUSES, type JobRecord, type JobStatus } from '../../src/jobs/types.js';
import type { JobStore } from '../../src/store/contract.js';
import { isStoreError, type StoreErrorCode } from '../../src/store/errors.js';
import { ManualClock, makeAttempt, makeCheckpoint, makeJob, makeStep } from './fixtures.js';

/** How a damaged row looks: unparseable/truncated data, or parseable data missing required fields. */
export type CorruptKind = 'truncated' | 'wrong-shape';

export interface StoreHarness {
  store: JobStore;
  /** Opens another store over the same data, as a restarted process would. Caller closes it. */
  reopen(): Promise<JobStore>;
  /** Writes a damaged, non-terminal row for `id` directly with the driver. */
  writeCorruptRow(id: string, kind: CorruptKind, createdAt: number): Promise<void>;
  /** Releases everything the harness opened (the store included) and deletes its data. */
  cleanup(): Promise<void>;
}

export type StoreFactory = (ctx: { clock: ManualClock }) => Promise<StoreHarness>;

async function expectStoreError(p: Promise<unknown>, code: StoreErrorCode, jobId?: string): Promise<void> {
  let caught: unknown;
  try {
    await p;
  } catch (e) {
    caught = e;
  }
  expect(caught, `expected a StoreError ${code}`).toBeDefined();
  if (!isStoreError(caught, code)) throw new Error(`expected StoreError ${code}, got ${String(caught)}`, { cause: caught });
  if (jobId !== undefined) expect(caught.jobId).toBe(jobId);
}

async function all(store: JobStore, q: { status?: JobStatus | JobStatus[]; since?: number; until?: number; limit?: number } = {}): Promise<JobRecord[]> {
  const out: JobRecord[] = [];
  let cursor: string | undefined;
  for (let pages = 0; pages < 1000; pages++) {
    const page = await store.query({ ...q, ...(cursor ? { cursor } : {}) });
    out.push(...page.jobs);
    if (!page.nextCursor) return out;
    cursor = page.nextCursor;
  }
  throw new Error('query never returned a null cursor');
}

/** Registers the whole contract suite for one backend. */
export function describeStoreContract(name: string, factory: StoreFactory): void {
  describe(`JobStore contract: ${name}`, () => {
    let h: StoreHarness;
    let store: JobStore;
    let clock: ManualClock;

    beforeEach(async () => {
      clock = new ManualClock();
      h = await factory({ clock });
      store = h.store;
      await store.init();
    });

    afterEach(async () => {
      await h.cleanup();
    });

    describe('lifecycle', () => {
      it('init is idempotent and ping answers', async () => {
        await store.init();
        await expect(store.ping()).resolves.toBeUndefined();
      });

      it('refuses calls before init and after close with STORE_CLOSED; init and close are idempotent', async () => {
        const other = await h.reopen();
        await expectStoreError(other.getJob('x'), 'STORE_CLOSED');
        await Promise.all([other.init(), other.init()]);
        await other.init();
        await expect(other.ping()).resolves.toBeUndefined();
        await other.close();
        await other.close();
        await expectStoreError(other.getJob('x'), 'STORE_CLOSED');
        await expectStoreError(other.createJob(makeJob()), 'STORE_CLOSED');
      });

      it('keeps everything across a close and reopen', async () => {
        const job = makeJob({ idempotencyKey: 'k-reopen' });
        await store.createJob(job);
        await store.recordAttempt(job.id, makeAttempt(1));
        await store.transition(job.id, 'queued', 'running', { startedAt: 5 });
        await store.updateProgress(job.id, 40, makeCheckpoint(40));
        const before = await store.getJob(job.id);
        const other = await h.reopen();
        try {
          await other.init();
          expect(await other.getJob(job.id)).toEqual(before);
          expect((await other.findByIdempotencyKey('k-reopen'))?.id).toBe(job.id);
          expect((await other.listNonTerminal()).jobs.map((j) => j.id)).toEqual([job.id]);
        } finally {
          await other.close();
        }
      });
    });

    describe('createJob / getJob', () => {
      it('round-trips every field exactly, including integers above 2^32 and unicode', async () => {
        const job = makeJob({
          priority: 7,
          params: { seed: Number.MAX_SAFE_INTEGER, prompt: 'émoji 🎨 "quotes" \\ backslash', nested: { a: [1, 2, { b: null }] } },
          degraded: { level: 'reduced', factor: 0.8 },
          checkpoint: makeCheckpoint(12.5),
        });
        const res = await store.createJob(job);
        expect(res.created).toBe(true);
        expect(res.job).toEqual(job);
        expect(await store.getJob(job.id)).toEqual(job);
      });

      it('returns null for an unknown id', async () => {
        expect(await store.getJob('no-such-job')).toBeNull();
      });

      it('stamps endedAt on a job created in a terminal state without one', async () => {
        clock.current = 1_800_000_009_000;
        const res = await store.createJob(makeJob({ status: 'cancelled' }));
        expect(res.job.endedAt).toBe(1_800_000_009_000);
        expect((await store.getJob(res.job.id))?.endedAt).toBe(1_800_000_009_000);
      });

      it('rejects a second job with the same id with STORE_DUPLICATE_JOB', async () => {
        const job = makeJob();
        await store.createJob(job);
        await expectStoreError(store.createJob({ ...job, priority: 3 }), 'STORE_DUPLICATE_JOB', job.id);
        expect((await store.getJob(job.id))?.priority).toBe(0);
      });

      it('rejects an invalid record with STORE_INVALID_JOB and writes nothing', async () => {
        const bad = { ...makeJob(), workflow: 'not a workflow' } as unknown as JobRecord;
        await expectStoreError(store.createJob(bad), 'STORE_INVALID_JOB');
        expect(await store.getJob(bad.id)).toBeNull();
      });

      it('returns the existing job for a repeated idempotency key', async () => {
        const first = makeJob({ idempotencyKey: 'order-42' });
        const second = makeJob({ idempotencyKey: 'order-42', priority: 9 });
        expect((await store.createJob(first)).created).toBe(true);
        const res = await store.createJob(second);
        expect(res.created).toBe(false);
        expect(res.job).toEqual(first);
        expect(await store.getJob(second.id)).toBeNull();
        expect(await store.findByIdempotencyKey('order-42')).toEqual(first);
        expect(await store.findByIdempotencyKey('order-43')).toBeNull();
      });

      it('creates exactly one job when ten callers race with the same idempotency key', async () => {
        const jobs = Array.from({ length: 10 }, () => makeJob({ idempotencyKey: 'race-key' }));
        const results = await Promise.all(jobs.map((j) => store.createJob(j)));
        const created = results.filter((r) => r.created);
        expect(created).toHaveLength(1);
        const winner = created[0]?.job.id;
        expect(new Set(results.map((r) => r.job.id))).toEqual(new Set([winner]));
        expect(await all(store)).toHaveLength(1);
      });
    });

    describe('transition', () => {
      it('applies the patch and the new status when the status matches, stamping updatedAt', async () => {
        const job = makeJob();
        await store.createJob(job);
        clock.current = 1_800_000_000_123;
        const out = await store.transition(job.id, 'queued', 'running', { startedAt: 1_800_000_000_100, server: 'http://gpu-2:8188' });
        expect(out).toMatchObject({ status: 'running', startedAt: 1_800_000_000_100, server: 'http://gpu-2:8188', updatedAt: 1_800_000_000_123 });
        expect(await store.getJob(job.id)).toEqual(out);
      });

      it('accepts a list of from-states', async () => {
        const job = makeJob({ status: 'recovering' });
        await store.createJob(job);
        expect((await store.transition(job.id, ['running', 'recovering'], 'running'))?.status).toBe('running');
      });

      it('returns null and changes nothing when the status does not match', async () => {
        const job = makeJob();
        await store.createJob(job);
        expect(await store.transition(job.id, 'running', 'completed', { progress: 100 })).toBeNull();
        expect(await store.getJob(job.id)).toEqual(job);
      });

      it('returns null for an unknown job', async () => {
        expect(await store.transition('missing', 'queued', 'running')).toBeNull();
      });

      it('stamps endedAt on reaching a terminal state unless the patch sets it', async () => {
        const a = makeJob();
        const b = makeJob();
        await store.createJob(a);
        await store.createJob(b);
        clock.current = 1_800_000_005_000;
        expect((await store.transition(a.id, 'queued', 'cancelled'))?.endedAt).toBe(1_800_000_005_000);
        expect((await store.transition(b.id, 'queued', 'failed', { endedAt: 42 }))?.endedAt).toBe(42);
      });

      it('ignores a status inside the patch (`to` wins) and keeps createdAt and idempotencyKey fixed', async () => {
        const job = makeJob({ idempotencyKey: 'fixed-key' });
        await store.createJob(job);
        const out = await store.transition(job.id, 'queued', 'running', { ...job, status: 'completed', createdAt: 5, idempotencyKey: 'other', priority: 4 });
        expect(out).toMatchObject({ status: 'running', createdAt: job.createdAt, idempotencyKey: 'fixed-key', priority: 4 });
        expect((await store.findByIdempotencyKey('fixed-key'))?.id).toBe(job.id);
        expect(await store.findByIdempotencyKey('other')).toBeNull();
        expect((await store.query({ until: job.createdAt + 1, since: job.createdAt })).jobs.map((j) => j.id)).toEqual([job.id]);
      });

      it('rejects an invalid patch with STORE_INVALID_JOB and leaves the job as it was', async () => {
        const job = makeJob();
        await store.createJob(job);
        await expectStoreError(store.transition(job.id, 'queued', 'running', { progress: 'half' } as unknown as Partial<JobRecord>), 'STORE_INVALID_JOB', job.id);
        await expectStoreError(store.transition(job.id, 'queued', 'running', { 'not a name': 1 } as unknown as Partial<JobRecord>), 'STORE_INVALID_JOB', job.id);
        expect(await store.getJob(job.id)).toEqual(job);
      });

      it('lets exactly one of ten concurrent transitions from the same state win', async () => {
        const job = makeJob();
        await store.createJob(job);
        const servers = Array.from({ length: 10 }, (_, i) => `http://gpu-${i}:8188`);
        const results = await Promise.all(servers.map((server) => store.transition(job.id, 'queued', 'running', { server })));
        const winners = results.filter((r): r is JobRecord => r !== null);
        expect(winners).toHaveLength(1);
        expect((await store.getJob(job.id))?.server).toBe(winners[0]?.server);
      });

      it('lets exactly one of two stores racing on the same job win', async () => {
        const job = makeJob();
        await store.createJob(job);
        const other = await h.reopen();
        try {
          await other.init();
          const rounds = await Promise.all([
            store.transition(job.id, 'queued', 'running', { server: 'a' }),
            other.transition(job.id, 'queued', 'running', { server: 'b' }),
          ]);
          expect(rounds.filter((r) => r !== null)).toHaveLength(1);
        } finally {
          await other.close();
        }
      });
    });

    describe('attempts, recovery steps, progress and patches', () => {
      it('inserts attempts, replaces one by number, and sets server and promptId', async () => {
        const job = makeJob();
        await store.createJob(job);
        const a1 = makeAttempt(1);
        const a2 = makeAttempt(2, { server: 'http://gpu-2:8188' });
        await store.recordAttempt(job.id, a1);
        await store.recordAttempt(job.id, a2);
        const a1done = { ...a1, status: 'failed' as const, code: 'COMFYUI_OOM', message: 'CUDA out of memory', endedAt: 1_700_000_009_000 };
        await store.recordAttempt(job.id, a1done);
        const got = await store.getJob(job.id);
        expect(got?.attempts).toEqual([a1done, a2]);
        expect(got?.server).toBe(a1done.server);
        expect(got?.promptId).toBe(a1done.promptId);
        expect(got?.status).toBe('queued');
      });

      it('keeps all of ten concurrent attempts (no lost update)', async () => {
        const job = makeJob();
        await store.createJob(job);
        await Promise.all(Array.from({ length: 10 }, (_, i) => store.recordAttempt(job.id, makeAttempt(i + 1))));
        const numbers = (await store.getJob(job.id))?.attempts.map((a) => a.number).sort((x, y) => x - y);
        expect(numbers).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
      });

      it('appends recovery steps and replaces the last one to record its outcome', async () => {
        const job = makeJob();
        await store.createJob(job);
        const s1 = makeStep({ strategy: 'free_memory' });
        const s2 = makeStep({ attempt: 2, strategy: 'reduce_batch', changes: [{ nodeId: '5', classType: 'EmptyLatentImage', input: 'batch_size', from: 4, to: 2 }] });
        await store.appendRecoveryStep(job.id, s1);
        await store.appendRecoveryStep(job.id, s2);
        const s2done = { ...s2, success: true, endedAt: 1_700_000_003_000 };
        await store.appendRecoveryStep(job.id, s2done, { replaceLast: true });
        expect((await store.getJob(job.id))?.recoveryHistory).toEqual([s1, s2done]);
      });

      it('appends when replaceLast is asked on an empty history', async () => {
        const job = makeJob();
        await store.createJob(job);
        const s = makeStep();
        await store.appendRecoveryStep(job.id, s, { replaceLast: true });
        expect((await store.getJob(job.id))?.recoveryHistory).toEqual([s]);
      });

      it('keeps all of ten concurrent recovery steps', async () => {
        const job = makeJob();
        await store.createJob(job);
        await Promise.all(Array.from({ length: 10 }, (_, i) => store.appendRecoveryStep(job.id, makeStep({ attempt: i + 1 }))));
        const attempts = (await store.getJob(job.id))?.recoveryHistory.map((s) => s.attempt).sort((x, y) => x - y);
        expect(attempts).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
      });

      it('updates progress, sets the checkpoint when given and keeps it when not', async () => {
        const job = makeJob();
        await store.createJob(job);
        clock.current = 1_800_000_000_777;
        const cp = makeCheckpoint(50);
        await store.updateProgress(job.id, 50, cp);
        await store.updateProgress(job.id, 62.5);
        const got = await store.getJob(job.id);
        expect(got?.progress).toBe(62.5);
        expect(got?.checkpoint).toEqual(cp);
        expect(got?.updatedAt).toBe(1_800_000_000_777);
      });

      it('patches fields without touching the status', async () => {
        const job = makeJob();
        await store.createJob(job);
        const error = { code: 'COMFYUI_OOM', category: 'recoverable', message: 'Out of memory', hint: 'Lower the batch size', retryable: true, nodeId: '3' };
        const outputs = [{ node: '9', filename: 'a.png', subfolder: '', type: 'output', url: '/jobs/x/outputs/a.png', server: 'http://gpu-1:8188' }];
        await store.patchJob(job.id, { retryCount: 2, error, outputs, degraded: { level: 'low', factor: 0.5 } });
        const got = await store.getJob(job.id);
        expect(got).toMatchObject({ status: 'queued', retryCount: 2, error, outputs, degraded: { level: 'low', factor: 0.5 } });
        await store.patchJob(job.id, { error: null });
        expect((await store.getJob(job.id))?.error).toBeNull();
      });

      it('rejects writes to an unknown job with STORE_JOB_NOT_FOUND', async () => {
        await expectStoreError(store.recordAttempt('ghost', makeAttempt(1)), 'STORE_JOB_NOT_FOUND', 'ghost');
        await expectStoreError(store.appendRecoveryStep('ghost', makeStep()), 'STORE_JOB_NOT_FOUND', 'ghost');
        await expectStoreError(store.updateProgress('ghost', 10), 'STORE_JOB_NOT_FOUND', 'ghost');
        await expectStoreError(store.patchJob('ghost', { retryCount: 1 }), 'STORE_JOB_NOT_FOUND', 'ghost');
      });

      it('rejects invalid attempts, steps, progress and patches with STORE_INVALID_JOB', async () => {
        const job = makeJob();
        await store.createJob(job);
        await expectStoreError(store.recordAttempt(job.id, { ...makeAttempt(1), promptId: 5 } as unknown as ReturnType<typeof makeAttempt>), 'STORE_INVALID_JOB', job.id);
        await expectStoreError(store.appendRecoveryStep(job.id, { ...makeStep(), strategy: 'pray' } as unknown as ReturnType<typeof makeStep>), 'STORE_INVALID_JOB', job.id);
        await expectStoreError(store.updateProgress(job.id, Number.NaN), 'STORE_INVALID_JOB', job.id);
        await expectStoreError(store.patchJob(job.id, { retryCount: -1 }), 'STORE_INVALID_JOB', job.id);
        expect(await store.getJob(job.id)).toEqual(job);
      });
    });

    describe('listNonTerminal', () => {
      it('returns every queued, running and recovering job, oldest first', async () => {
        const statuses: JobStatus[] = [...JOB_STATUSES, 'running', 'queued'];
        const jobs = statuses.map((status, i) => makeJob({ status, createdAt: 1_700_000_000_000 + (statuses.length - i) * 1000 }));
        for (const j of jobs) await store.createJob(j);
        const { jobs: listed, corrupt } = await store.listNonTerminal();
        expect(corrupt).toEqual([]);
        const expected = jobs.filter((j) => ['queued', 'running', 'recovering'].includes(j.status)).sort((a, b) => a.createdAt - b.createdAt);
        expect(listed).toEqual(expected);
      });
    });

    describe('query', () => {
      it('pages newest first through jobs sharing timestamps, each exactly once', async () => {
        const jobs: JobRecord[] = [];
        for (let i = 0; i < 25; i++) jobs.push(makeJob({ id: `job-${String(i).padStart(2, '0')}`, createdAt: 1_700_000_000_000 + Math.floor(i / 4) * 10 }));
        for (const j of [...jobs].reverse()) await store.createJob(j);
        const seen: string[] = [];
        let cursor: string | undefined;
        let pages = 0;
        do {
          const page = await store.query({ limit: 7, ...(cursor ? { cursor } : {}) });
          expect(page.jobs.length).toBeLessThanOrEqual(7);
          seen.push(...page.jobs.map((j) => j.id));
          cursor = page.nextCursor ?? undefined;
          pages++;
        } while (cursor && pages < 10);
        expect(pages).toBe(4);
        const expected = [...jobs].sort((a, b) => b.createdAt - a.createdAt || (a.id < b.id ? 1 : -1)).map((j) => j.id);
        expect(seen).toEqual(expected);
      });

      it('filters by one status, several statuses and a time window', async () => {
        const base = 1_700_000_000_000;
        const jobs = [
          makeJob({ status: 'queued', createdAt: base }),
          makeJob({ status: 'running', createdAt: base + 10 }),
          makeJob({ status: 'failed', createdAt: base + 20, endedAt: base + 25 }),
          makeJob({ status: 'completed', createdAt: base + 30, endedAt: base + 35 }),
          makeJob({ status: 'failed', createdAt: base + 40, endedAt: base + 45 }),
        ];
        for (const j of jobs) await store.createJob(j);
        const ids = (list: JobRecord[]) => list.map((j) => j.id);
        const [q, r, f1, c, f2] = jobs as [JobRecord, JobRecord, JobRecord, JobRecord, JobRecord];
        expect(ids(await all(store, { status: 'failed' }))).toEqual([f2.id, f1.id]);
        expect(ids(await all(store, { status: ['queued', 'completed'] }))).toEqual([c.id, q.id]);
        expect(ids(await all(store, { since: base + 10, until: base + 40 }))).toEqual([c.id, f1.id, r.id]);
        expect(ids(await all(store, { status: ['failed', 'running'], since: base + 10, until: base + 40, limit: 1 }))).toEqual([f1.id, r.id]);
        expect(await all(store, { status: 'cancelled' })).toEqual([]);
      });

      it('defaults to 50 per page and never returns more than 1000', async () => {
        for (let i = 0; i < 55; i++) await store.createJob(makeJob({ createdAt: 1_700_000_000_000 + i }));
        const first = await store.query({});
        expect(first.jobs).toHaveLength(50);
        expect(first.nextCursor).not.toBeNull();
        const big = await store.query({ limit: 5000 });
        expect(big.jobs).toHaveLength(55);
        expect(big.nextCursor).toBeNull();
      });

      it('rejects a cursor it did not produce with STORE_BAD_CURSOR', async () => {
        await expectStoreError(store.query({ cursor: 'garbage!' }), 'STORE_BAD_CURSOR');
      });
    });

    describe('stats', () => {
      it('counts jobs by status, errors by code, recoveries by strategy and outcome, attempts and retries', async () => {
        const err = (code: string) => ({ code, category: 'transient', message: 'm', hint: 'h', retryable: true });
        await store.createJob(makeJob({ status: 'queued' }));
        await store.createJob(makeJob({ status: 'running', attempts: [makeAttempt(1)], recoveryHistory: [makeStep({ strategy: 'free_memory', success: null })] }));
        await store.createJob(
          makeJob({
            status: 'failed',
            error: err('COMFYUI_OOM'),
            retryCount: 3,
            endedAt: 1,
            attempts: [makeAttempt(1, { status: 'failed', code: 'COMFYUI_OOM' }), makeAttempt(2, { status: 'failed', code: 'COMFYUI_OOM' }), makeAttempt(3, { status: 'failed', code: 'COMFYUI_OOM' })],
            recoveryHistory: [makeStep({ strategy: 'free_memory', success: false }), makeStep({ strategy: 'reduce_batch', success: false })],
          }),
        );
        await store.createJob(makeJob({ status: 'failed', error: err('COMFYUI_OOM'), endedAt: 1 }));
        await store.createJob(makeJob({ status: 'timed_out', error: err('COMFYUI_TIMEOUT'), retryCount: 1, endedAt: 1 }));
        await store.createJob(
          makeJob({
            status: 'completed',
            retryCount: 1,
            endedAt: 1,
            attempts: [makeAttempt(1, { status: 'failed', code: 'COMFYUI_STALLED' }), makeAttempt(2)],
            recoveryHistory: [makeStep({ strategy: 'reduce_batch', success: true })],
          }),
        );
        // An error left on a job that later completed is history, not a failure.
        await store.createJob(makeJob({ status: 'completed', error: err('COMFYUI_SERVER_ERROR'), endedAt: 1 }));
        const s = await store.stats();
        expect(s.total).toBe(7);
        expect(s.byStatus).toEqual({ queued: 1, running: 1, recovering: 0, completed: 2, failed: 2, timed_out: 1, cancelled: 0 });
        expect(s.errorsByCode).toEqual({ COMFYUI_OOM: 2, COMFYUI_TIMEOUT: 1 });
        expect(s.recoveries).toEqual({ free_memory: { succeeded: 0, failed: 1, pending: 1 }, reduce_batch: { succeeded: 1, failed: 1, pending: 0 } });
        expect(s.totalAttempts).toBe(6);
        expect(s.totalRetries).toBe(5);
        // Every failed attempt, also one that recovery fixed.
        expect(s.attemptErrorsByCode).toEqual({ COMFYUI_OOM: 3, COMFYUI_STALLED: 1 });
        // Terminal jobs with retries: the failed, the timed out and the completed one.
        expect(s.retriedJobs).toEqual({ terminal: 3, completed: 1 });
      });

      it('reports zeros for an empty store', async () => {
        const s = await store.stats();
        expect(s).toEqual({
          total: 0,
          byStatus: { queued: 0, running: 0, recovering: 0, completed: 0, failed: 0, timed_out: 0, cancelled: 0 },
          errorsByCode: {},
          attemptErrorsByCode: {},
          retriedJobs: { terminal: 0, completed: 0 },
          recoveries: {},
          totalAttempts: 0,
          totalRetries: 0,
        });
      });
    });

    describe('deleteTerminalBefore', () => {
      it('deletes only terminal jobs that ended before the cutoff and frees their idempotency keys', async () => {
        const old = makeJob({ status: 'completed', endedAt: 1000, idempotencyKey: 'old-key' });
        const oldFailed = makeJob({ status: 'failed', endedAt: 1999 });
        const recent = makeJob({ status: 'cancelled', endedAt: 2000 });
        const running = makeJob({ status: 'running' });
        for (const j of [old, oldFailed, recent, running]) await store.createJob(j);
        expect(await store.deleteTerminalBefore(2000)).toBe(2);
        expect(await store.getJob(old.id)).toBeNull();
        expect(await store.getJob(oldFailed.id)).toBeNull();
        expect(await store.getJob(recent.id)).not.toBeNull();
        expect(await store.getJob(running.id)).not.toBeNull();
        expect(await store.findByIdempotencyKey('old-key')).toBeNull();
        expect((await store.createJob(makeJob({ idempotencyKey: 'old-key' }))).created).toBe(true);
        expect(await store.deleteTerminalBefore(2000)).toBe(0);
        expect((await store.stats()).total).toBe(3);
      });
    });

    describe('deleteTerminal', () => {
      it('deletes only the given ids that are still terminal and ended before the cutoff, returns them, and keeps the counters right', async () => {
        const old = makeJob({ status: 'completed', endedAt: 1000, idempotencyKey: 'gone-key' });
        const oldFailed = makeJob({ status: 'failed', endedAt: 1500 });
        const notAsked = makeJob({ status: 'completed', endedAt: 1000 });
        const recent = makeJob({ status: 'cancelled', endedAt: 2000 });
        const retried = makeJob({ status: 'queued' });
        for (const j of [old, oldFailed, notAsked, recent, retried]) await store.createJob(j);
        const deleted = await store.deleteTerminal([old.id, oldFailed.id, recent.id, retried.id, 'no-such-job'], 2000);
        expect([...deleted].sort()).toEqual([old.id, oldFailed.id].sort());
        for (const j of [notAsked, recent, retried]) expect(await store.getJob(j.id)).not.toBeNull();
        expect(await store.findByIdempotencyKey('gone-key')).toBeNull();
        expect(await store.deleteTerminal([old.id], 2000)).toEqual([]);
        expect(await store.deleteTerminal([], 2000)).toEqual([]);
        expect((await store.countByStatus()).total).toBe(3);
        expect((await store.stats()).total).toBe(3);
      });
    });

    describe('fields the store does not know', () => {
      it('carries unknown record fields through create, patches and transitions, nulls included', async () => {
        const job = { ...makeJob(), cancelRequested: { at: 5, by: 'api' }, plan: null } as unknown as JobRecord;
        await store.createJob(job);
        expect(await store.getJob(job.id)).toEqual(job);
        await store.patchJob(job.id, { manualRetry: { requestedAt: 9 } } as unknown as Partial<JobRecord>);
        const moved = await store.transition(job.id, 'queued', 'running', { plan: { strategy: 'retry' }, cancelRequested: null } as unknown as Partial<JobRecord>);
        expect(moved).toMatchObject({ status: 'running', manualRetry: { requestedAt: 9 }, plan: { strategy: 'retry' }, cancelRequested: null });
        await store.recordAttempt(job.id, makeAttempt(1));
        expect(await store.getJob(job.id)).toMatchObject({ manualRetry: { requestedAt: 9 }, plan: { strategy: 'retry' }, cancelRequested: null });
        expect((await store.listNonTerminal()).jobs[0]).toMatchObject({ manualRetry: { requestedAt: 9 } });
      });
    });

    describe('attempts stored as changes to the workflow', () => {
      it('gives back each attempt\'s whole workflow: changed, added and removed nodes, via every write path', async () => {
        const job = makeJob();
        await store.createJob(job);
        const changed = structuredClone(job.workflow);
        (changed['5'] as { inputs: Record<string, unknown> }).inputs.batch_size = 2;
        delete changed['7'];
        changed['42'] = { class_type: 'VAEDecodeTiled', inputs: { tile_size: 512 } };
        const a1 = makeAttempt(1, { workflow: structuredClone(job.workflow) });
        const a2 = makeAttempt(2, { workflow: changed });
        await store.recordAttempt(job.id, a1);
        await store.recordAttempt(job.id, a2);
        expect((await store.getJob(job.id))?.attempts).toEqual([a1, a2]);
        const a3 = makeAttempt(3, { workflow: { '1': { class_type: 'Other', inputs: {} } } });
        await store.transition(job.id, 'queued', 'running', { attempts: [a1, a2, a3] });
        expect((await store.getJob(job.id))?.attempts).toEqual([a1, a2, a3]);
        // A new job workflow must not change what earlier attempts ran.
        const replaced = { '1': { class_type: 'Replacement', inputs: { x: 1 } } };
        await store.patchJob(job.id, { workflow: replaced });
        const got = await store.getJob(job.id);
        expect(got?.workflow).toEqual(replaced);
        expect(got?.attempts).toEqual([a1, a2, a3]);
        const created = makeJob({ attempts: [a1, a2] });
        await store.createJob(created);
        expect((await store.getJob(created.id))?.attempts).toEqual([a1, a2]);
      });
    });

    describe('counters', () => {
      it('follow creates, transitions, attempts, recovery steps and deletions', async () => {
        const err = { code: 'COMFYUI_OOM', category: 'recoverable', message: 'm', hint: 'h', retryable: true };
        const a = makeJob();
        const b = makeJob();
        await store.createJob(a);
        await store.createJob(b);
        expect(await store.countByStatus()).toEqual({ total: 2, byStatus: { queued: 2, running: 0, recovering: 0, completed: 0, failed: 0, timed_out: 0, cancelled: 0 } });
        await store.transition(a.id, 'queued', 'running');
        await store.recordAttempt(a.id, makeAttempt(1, { status: 'failed', code: 'COMFYUI_OOM' }));
        await store.appendRecoveryStep(a.id, makeStep({ strategy: 'free_memory' }));
        await store.appendRecoveryStep(a.id, makeStep({ strategy: 'free_memory', success: false }), { replaceLast: true });
        await store.patchJob(a.id, { retryCount: 1 });
        await store.transition(a.id, 'running', 'failed', { error: err });
        let s = await store.stats();
        expect(s.byStatus).toMatchObject({ queued: 1, running: 0, failed: 1 });
        expect(s).toMatchObject({ total: 2, errorsByCode: { COMFYUI_OOM: 1 }, attemptErrorsByCode: { COMFYUI_OOM: 1 }, totalAttempts: 1, totalRetries: 1, retriedJobs: { terminal: 1, completed: 0 } });
        expect(s.recoveries).toEqual({ free_memory: { succeeded: 0, failed: 1, pending: 0 } });
        expect(await store.deleteJob(a.id)).toBe(true);
        expect(await store.deleteJob(a.id)).toBe(false);
        s = await store.stats();
        expect(s).toMatchObject({ total: 1, errorsByCode: {}, attemptErrorsByCode: {}, totalAttempts: 0, totalRetries: 0, recoveries: {}, retriedJobs: { terminal: 0, completed: 0 } });
        expect(await store.getJob(a.id)).toBeNull();
        await store.transition(b.id, 'queued', 'completed', { endedAt: 10 });
        expect(await store.deleteTerminalBefore(11)).toBe(1);
        expect(await store.countByStatus()).toEqual({ total: 0, byStatus: { queued: 0, running: 0, recovering: 0, completed: 0, failed: 0, timed_out: 0, cancelled: 0 } });
      });
    });

    describe('listUnfinished', () => {
      it('pages through running, then recovering, then queued jobs, oldest first, each once', async () => {
        const base = 1_700_000_000_000;
        const jobs: JobRecord[] = [];
        const statuses: JobStatus[] = ['queued', 'running', 'recovering', 'completed', 'failed'];
        for (let i = 0; i < 20; i++) jobs.push(makeJob({ id: `u-${String(i).padStart(2, '0')}`, status: statuses[i % 5] as JobStatus, createdAt: base + Math.floor(i / 6) * 10 }));
        for (const j of [...jobs].reverse()) await store.createJob(j);
        const seen: string[] = [];
        let cursor: string | null = null;
        let pages = 0;
        do {
          const page = await store.listUnfinished({ cursor, limit: 3 });
          expect(page.jobs.length).toBeLessThanOrEqual(3);
          expect(page.corrupt).toEqual([]);
          seen.push(...page.jobs.map((j) => j.id));
          cursor = page.nextCursor;
          pages++;
        } while (cursor && pages < 20);
        const order = ['running', 'recovering', 'queued'];
        const expected = jobs
          .filter((j) => order.includes(j.status))
          .sort((x, y) => order.indexOf(x.status) - order.indexOf(y.status) || x.createdAt - y.createdAt || (x.id < y.id ? -1 : 1))
          .map((j) => j.id);
        expect(seen).toEqual(expected);
        await expectStoreError(store.listUnfinished({ cursor: 'garbage!' }), 'STORE_BAD_CURSOR');
      });

      it('gives the summary recovery queues by (id, status, priority, createdAt, server, promptId), current after writes', async () => {
        const queued = makeJob({ id: 's-queued', priority: 7.5, createdAt: 1_700_000_000_000 });
        const running = makeJob({ id: 's-running', priority: -2, createdAt: 1_700_000_000_001 });
        const done = makeJob({ id: 's-done', createdAt: 1_700_000_000_002 });
        for (const j of [queued, running, done]) await store.createJob(j);
        await store.transition(running.id, 'queued', 'running');
        const attempt = makeAttempt(1, { server: 'http://gpu-2:8188', promptId: 'p-summary' });
        await store.recordAttempt(running.id, attempt);
        await store.transition(done.id, 'queued', 'completed');
        const page = await store.listUnfinished({ limit: 10 });
        expect(page.jobs).toEqual([
          { id: running.id, status: 'running', priority: -2, createdAt: running.createdAt, server: 'http://gpu-2:8188', promptId: 'p-summary' },
          { id: queued.id, status: 'queued', priority: 7.5, createdAt: queued.createdAt, server: null, promptId: null },
        ]);
        expect(page.nextCursor).toBeNull();
        // A finished job leaves the walk; a re-queued one comes back with its new priority.
        await store.transition(running.id, 'running', 'failed');
        await store.transition(done.id, 'completed', 'queued', { priority: 3 });
        expect((await store.listUnfinished({ limit: 10 })).jobs.map((j) => [j.id, j.status, j.priority])).toEqual([
          [queued.id, 'queued', 7.5],
          [done.id, 'queued', 3],
        ]);
      });
    });

    describe('server blocks', () => {
      it('returns the blocks of a workflow hash still in force, replaced by server, and drops expired ones', async () => {
        await store.blockServer({ server: 'http://a:8188', workflowHash: 'wf1', code: 'COMFYUI_MISSING_NODE', reason: 'no Foo node', until: 2000 });
        await store.blockServer({ server: 'http://b:8188', workflowHash: 'wf1', code: 'COMFYUI_MODEL_MISSING', reason: 'no model', until: 1000 });
        await store.blockServer({ server: 'http://a:8188', workflowHash: 'wf2', code: 'X', reason: 'other workflow', until: 5000 });
        expect(await store.blockedServers('wf1', 500)).toEqual([
          { server: 'http://a:8188', code: 'COMFYUI_MISSING_NODE', reason: 'no Foo node', until: 2000 },
          { server: 'http://b:8188', code: 'COMFYUI_MODEL_MISSING', reason: 'no model', until: 1000 },
        ]);
        expect(await store.blockedServers('wf1', 1000)).toEqual([{ server: 'http://a:8188', code: 'COMFYUI_MISSING_NODE', reason: 'no Foo node', until: 2000 }]);
        await store.blockServer({ server: 'http://a:8188', workflowHash: 'wf1', code: 'COMFYUI_MISSING_NODE', reason: 'still no Foo', until: 9000 });
        expect(await store.blockedServers('wf1', 3000)).toEqual([{ server: 'http://a:8188', code: 'COMFYUI_MISSING_NODE', reason: 'still no Foo', until: 9000 }]);
        expect(await store.blockedServers('wf-none', 0)).toEqual([]);
        await expectStoreError(store.blockServer({ server: '', workflowHash: 'wf1', code: 'X', reason: '', until: 1 }), 'STORE_INVALID_JOB');
        const other = await h.reopen();
        try {
          await other.init();
          expect((await other.blockedServers('wf2', 0)).map((b) => b.server)).toEqual(['http://a:8188']);
        } finally {
          await other.close();
        }
      });
    });

    describe('meta', () => {
      it('stores JSON values by key, lists them by prefix in key order, and keeps them across a reopen', async () => {
        expect(await store.getMeta('instance.id')).toBeNull();
        await store.setMeta('instance.id', 'cg-1');
        await store.setMeta('learned.b', { vram: 24, models: ['x'] });
        await store.setMeta('learned.a', [1, 2]);
        await store.setMeta('learned.a', [3]);
        await store.setMeta('learnedX', true);
        expect(await store.getMeta('instance.id')).toBe('cg-1');
        expect(await store.listMeta('learned.')).toEqual([
          { key: 'learned.a', value: [3] },
          { key: 'learned.b', value: { vram: 24, models: ['x'] } },
        ]);
        await store.setMeta('learned.b', null);
        expect(await store.getMeta('learned.b')).toBeNull();
        await expectStoreError(store.setMeta('bad', () => 1), 'STORE_INVALID_JOB');
        const other = await h.reopen();
        try {
          await other.init();
          expect(await other.getMeta('instance.id')).toBe('cg-1');
        } finally {
          await other.close();
        }
      });
    });

    describe('damaged rows', () => {
      for (const kind of ['truncated', 'wrong-shape'] as const) {
        it(`reports a ${kind} row with its id and keeps going`, async () => {
          const good1 = makeJob({ createdAt: 1_700_000_000_000 });
          const good2 = makeJob({ status: 'running', createdAt: 1_700_000_000_300 });
          await store.createJob(good1);
          await store.createJob(good2);
          await h.writeCorruptRow('broken-1', kind, 1_700_000_000_100);
          const { jobs, corrupt } = await store.listNonTerminal();
          expect(jobs.map((j) => j.id)).toEqual([good1.id, good2.id]);
          expect(corrupt).toHaveLength(1);
          expect(corrupt[0]?.id).toBe('broken-1');
          expect(corrupt[0]?.error.length).toBeGreaterThan(0);

          await expectStoreError(store.getJob('broken-1'), 'STORE_CORRUPT_ROW', 'broken-1');
          const page = await store.query({});
          expect(page.jobs.map((j) => j.id)).toEqual([good2.id, good1.id]);
          expect(page.corrupt?.map((c) => c.id)).toEqual(['broken-1']);
          // Quarantined once met: listed with its id, left out of the counters, removable.
          expect((await store.listCorrupt()).map((c) => c.id)).toEqual(['broken-1']);
          expect(await store.countByStatus()).toMatchObject({ total: 2, byStatus: { queued: 1, running: 1 } });
          expect((await store.stats()).total).toBe(2);
          // Recovery's walk never queues the damaged row (a store that decodes may report it again).
          const walk = await store.listUnfinished({ limit: 10 });
          expect(walk.jobs.map((j) => j.id)).toEqual([good2.id, good1.id]);
          expect(walk.corrupt.filter((c) => c.id !== 'broken-1')).toEqual([]);
          // The healthy jobs stay fully writable.
          expect(await store.transition(good1.id, 'queued', 'running')).not.toBeNull();
          expect(await store.deleteJob('broken-1')).toBe(true);
          expect(await store.listCorrupt()).toEqual([]);
          expect(await store.getJob('broken-1')).toBeNull();
          expect(await store.countByStatus()).toMatchObject({ total: 2, byStatus: { running: 2 } });
        });
      }
    });
  });
}
