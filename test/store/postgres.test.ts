import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { PostgresStore, type PostgresStoreOptions } from '../../src/store/postgres.js';
import { POSTGRES_MIGRATIONS } from '../../src/store/migrations/postgres.js';
import { isStoreError, type StoreError } from '../../src/store/errors.js';
import type { JobRecord } from '../../src/jobs/types.js';
import { describeStoreContract } from './contract.js';
import { makeAttempt, makeJob, makeStep, waitFor } from './fixtures.js';
import { closedPort, createTestDatabase, randomSuffix, withPg } from './services.js';
import { TcpProxy } from './tcp-proxy.js';

let db: { name: string; url: string; drop: () => Promise<void> };

beforeAll(async () => {
  db = await createTestDatabase();
});

afterAll(async () => {
  await db?.drop();
});

/** Terminates every backend of our test database opened by `applicationName`; returns how many. */
async function terminateBackends(applicationName: string): Promise<number> {
  return withPg(db.url, async (c) => {
    const r = await c.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND application_name = $2', [db.name, applicationName]);
    return r.rowCount ?? 0;
  });
}

describeStoreContract('postgres', async ({ clock }) => {
  const schema = `t_${randomSuffix()}`;
  const opts: PostgresStoreOptions = { connectionString: db.url, schema, clock, applicationName: `cg_contract_${schema}` };
  const store = new PostgresStore(opts);
  return {
    store,
    reopen: async () => new PostgresStore(opts),
    writeCorruptRow: async (id, kind, createdAt) => {
      await withPg(db.url, async (c) => {
        // jsonb cannot hold unparseable text, so "truncated" is what a naive writer leaves: the
        // JSON text of the workflow cut short and stored as a string, and a half-written attempt.
        const [workflow, attempts] = kind === 'truncated' ? [JSON.stringify('{"3":{"class_type":"KSampler","inputs":{"seed":112589'), '[{"number":1,"server":"http://gpu-1:8188"}]'] : ['[1, 2]', '{"not": "an array"}'];
        await c.query(
          `INSERT INTO "${schema}".jobs (id, status, workflow, original_parameters, options, attempts, created_at, updated_at) VALUES ($1, 'running', $2::jsonb, '{}', '{}', $3::jsonb, $4, $4)`,
          [id, workflow, attempts, createdAt],
        );
      });
    },
    cleanup: async () => {
      await store.close();
      await withPg(db.url, (c) => c.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`));
    },
  };
});

describe('PostgresStore specifics', () => {
  const opened: PostgresStore[] = [];
  const proxies: TcpProxy[] = [];
  const open = (extra: Partial<PostgresStoreOptions> = {}) => {
    const schema = `s_${randomSuffix()}`;
    const s = new PostgresStore({ connectionString: db.url, schema, applicationName: `cg_${schema}`, ...extra });
    opened.push(s);
    return s;
  };

  afterEach(async () => {
    await Promise.all(opened.splice(0).map((s) => s.close()));
    await Promise.all(proxies.splice(0).map((p) => p.stop()));
  });

  it('creates the jobs table with JSONB columns, an error_code index and one schema_migrations row per version', async () => {
    const schema = `s_${randomSuffix()}`;
    const a = open({ schema });
    const b = open({ schema });
    // Two processes starting together: the advisory lock makes one wait for the other.
    await Promise.all([a.init(), b.init()]);
    await withPg(db.url, async (c) => {
      const versions = await c.query(`SELECT version, name FROM "${schema}".schema_migrations ORDER BY version`);
      expect(versions.rows).toEqual(POSTGRES_MIGRATIONS.map((m) => ({ version: m.version, name: m.name })));
      const cols = await c.query(`SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = $1 AND table_name = 'jobs'`, [schema]);
      const types = Object.fromEntries(cols.rows.map((r: { column_name: string; data_type: string }) => [r.column_name, r.data_type]));
      expect(types).toMatchObject({
        status: 'text',
        error_code: 'text',
        error_message: 'text',
        retry_count: 'integer',
        recovery_history: 'jsonb',
        original_parameters: 'jsonb',
        last_checkpoint: 'jsonb',
        server: 'text',
        prompt_id: 'text',
        created_at: 'bigint',
        updated_at: 'bigint',
      });
      const idx = await c.query(`SELECT indexdef FROM pg_indexes WHERE schemaname = $1 AND tablename = 'jobs'`, [schema]);
      expect(idx.rows.some((r: { indexdef: string }) => /\(error_code\)/.test(r.indexdef))).toBe(true);
    });
    await a.init();
  });

  it('stores error_code and error_message in their own columns', async () => {
    const schema = `s_${randomSuffix()}`;
    const s = open({ schema });
    await s.init();
    const job = makeJob();
    await s.createJob(job);
    await s.transition(job.id, 'queued', 'failed', { error: { code: 'COMFYUI_OOM', category: 'recoverable', message: 'Out of memory', hint: 'h', retryable: true } });
    await withPg(db.url, async (c) => {
      const r = await c.query(`SELECT error_code, error_message, ended_at FROM "${schema}".jobs WHERE id = $1`, [job.id]);
      expect(r.rows[0]).toMatchObject({ error_code: 'COMFYUI_OOM', error_message: 'Out of memory' });
    });
  });

  it('reconnects after pg_terminate_backend of its connections and loses nothing', async () => {
    const errors: StoreError[] = [];
    const s = open({ onError: (e) => errors.push(e) });
    await s.init();
    const jobs = Array.from({ length: 20 }, (_, i) => makeJob({ createdAt: 1_700_000_000_000 + i }));
    await Promise.all(jobs.map((j) => s.createJob(j)));
    const killed = await terminateBackends(s.applicationName);
    expect(killed).toBeGreaterThan(0);
    // The pool hears about its killed idle connections through its 'error' event; the process must survive it.
    await waitFor(() => errors.length > 0, 'the pool to report its killed idle connections');
    expect(errors[0]?.code).toBe('STORE_UNAVAILABLE');
    for (const j of jobs) expect((await s.transition(j.id, 'queued', 'running'))?.status).toBe('running');
    const { jobs: listed, corrupt } = await s.listNonTerminal();
    expect(corrupt).toEqual([]);
    expect(listed.map((j) => j.id)).toEqual(jobs.map((j) => j.id));
  });

  it('settles every call in flight while its connections are killed, applying each write once', async () => {
    const s = open({ retries: 10, retryDelayMs: 20 });
    await s.init();
    const jobs = Array.from({ length: 15 }, () => makeJob());
    await Promise.all(jobs.map((j) => s.createJob(j)));
    const ops = jobs.flatMap((j) => [
      s.recordAttempt(j.id, makeAttempt(1)),
      s.appendRecoveryStep(j.id, makeStep()),
      s.updateProgress(j.id, 30),
      s.transition(j.id, 'queued', 'running'),
    ]);
    // The calls are already running; the kill lands while many of them hold a connection.
    expect(await terminateBackends(s.applicationName)).toBeGreaterThan(0);
    const settled = await Promise.allSettled(ops);
    const failures = settled.filter((r) => r.status === 'rejected');
    expect(failures).toEqual([]);
    for (const j of jobs) {
      const got = await s.getJob(j.id);
      expect(got).toMatchObject({ status: 'running', progress: 30 });
      expect(got?.attempts).toHaveLength(1);
      expect(got?.recoveryHistory).toHaveLength(1);
    }
  });

  it('fails with STORE_UNAVAILABLE naming the server, without hanging, while the database is away, then recovers with its data', async () => {
    const proxy = await TcpProxy.start('127.0.0.1', Number(new URL(db.url).port || 5432));
    proxies.push(proxy);
    const u = new URL(db.url);
    u.host = `127.0.0.1:${proxy.port}`;
    const s = open({ connectionString: u.toString(), retries: 2, retryDelayMs: 10, connectTimeoutMs: 2000 });
    await s.init();
    const job = makeJob();
    await s.createJob(job);
    await proxy.stop();
    const err = await s.transition(job.id, 'queued', 'running').catch((e: unknown) => e);
    expect(isStoreError(err, 'STORE_UNAVAILABLE')).toBe(true);
    expect((err as Error).message).toContain(`127.0.0.1:${proxy.port}`);
    await proxy.restart();
    expect((await s.transition(job.id, 'queued', 'running'))?.status).toBe('running');
    expect((await s.getJob(job.id))?.workflow).toEqual(job.workflow);
  });

  it('rejects init with STORE_UNAVAILABLE when nothing listens', async () => {
    const port = await closedPort();
    const s = open({ connectionString: `postgres://postgres:secret@127.0.0.1:${port}/nowhere`, retries: 1, retryDelayMs: 10 });
    const err = await s.init().catch((e: unknown) => e);
    expect(isStoreError(err, 'STORE_UNAVAILABLE')).toBe(true);
    expect((err as Error).message).toContain(`127.0.0.1:${port}`);
    expect((err as Error).message).not.toContain('secret');
  });

  it('reports a job whose attempts column is not an array as STORE_CORRUPT_ROW on write', async () => {
    const schema = `s_${randomSuffix()}`;
    const s = open({ schema });
    await s.init();
    const job: JobRecord = makeJob();
    await s.createJob(job);
    await withPg(db.url, (c) => c.query(`UPDATE "${schema}".jobs SET attempts = '{"x": 1}' WHERE id = $1`, [job.id]));
    const err = await s.recordAttempt(job.id, makeAttempt(1)).catch((e: unknown) => e);
    expect(isStoreError(err, 'STORE_CORRUPT_ROW')).toBe(true);
    expect((err as StoreError).jobId).toBe(job.id);
  });
});

