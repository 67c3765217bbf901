import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SqliteStore, UNFINISHED_PAGE_SQL } from '../../src/store/sqlite.js';
import { SQLITE_MIGRATIONS } from '../../src/store/migrations/sqlite.js';
import { describeStoreContract } from './contract.js';
import { makeJob } from './fixtures.js';

describeStoreContract('sqlite', async ({ clock }) => {
  const dir = mkdtempSync(join(tmpdir(), 'cg-sqlite-'));
  const path = join(dir, 'jobs.db');
  const store = new SqliteStore({ path, clock });
  return {
    store,
    reopen: async () => new SqliteStore({ path, clock }),
    writeCorruptRow: async (id, kind, createdAt) => {
      const db = new Database(path);
      try {
        const insert = db.prepare(
          `INSERT INTO jobs (id, status, workflow, original_parameters, options, attempts, created_at, updated_at) VALUES (?, 'running', ?, '{}', '{}', ?, ?, ?)`,
        );
        if (kind === 'truncated') insert.run(id, '{"3":{"class_type":"KSampler","inputs":{"seed":11258999', '[]', createdAt, createdAt);
        else insert.run(id, '{"3":{"inputs":{}}}', '{"not":"an array"}', createdAt, createdAt);
      } finally {
        db.close();
      }
    },
    cleanup: async () => {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
});

describe('SqliteStore specifics', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'cg-sqlite-'));
  });
  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('migrates a version-1 database: existing jobs are counted and their full-copy attempts still read back', async () => {
    const path = join(dir, 'v1.db');
    const db = new Database(path);
    const v1 = SQLITE_MIGRATIONS[0];
    if (!v1) throw new Error('no migration 1');
    db.exec(v1.sql);
    db.exec('CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)');
    db.prepare('INSERT INTO schema_migrations VALUES (1, ?, 0)').run(v1.name);
    const failed = makeJob({ status: 'failed', retryCount: 1, endedAt: 5, error: { code: 'COMFYUI_OOM', category: 'c', message: 'm', hint: 'h', retryable: true } });
    const attempts = [{ number: 1, server: 's', promptId: 'p', status: 'failed', workflow: failed.workflow, code: 'COMFYUI_OOM', startedAt: 1 }];
    const insert = db.prepare(
      `INSERT INTO jobs (id, status, workflow, original_parameters, options, attempts, recovery_history, retry_count, error, error_code, created_at, updated_at, ended_at)
       VALUES (?, ?, ?, '{}', '{}', ?, ?, ?, ?, ?, 1, 1, ?)`,
    );
    insert.run(failed.id, 'failed', JSON.stringify(failed.workflow), JSON.stringify(attempts), JSON.stringify([{ attempt: 1, code: 'COMFYUI_OOM', strategy: 'free_memory', changes: [], success: false, server: null, promptId: null, message: 'm', startedAt: 1, endedAt: 2 }]), 1, JSON.stringify(failed.error), 'COMFYUI_OOM', 5);
    insert.run('q1', 'queued', JSON.stringify(failed.workflow), '[]', '[]', 0, null, null, null);
    db.close();
    const store = new SqliteStore({ path });
    await store.init();
    try {
      const s = await store.stats();
      expect(s).toMatchObject({ total: 2, byStatus: { failed: 1, queued: 1 }, errorsByCode: { COMFYUI_OOM: 1 }, attemptErrorsByCode: { COMFYUI_OOM: 1 }, totalAttempts: 1, totalRetries: 1, retriedJobs: { terminal: 1, completed: 0 } });
      expect(s.recoveries).toEqual({ free_memory: { succeeded: 0, failed: 1, pending: 0 } });
      expect((await store.getJob(failed.id))?.attempts[0]?.workflow).toEqual(failed.workflow);
      await store.deleteJob('q1');
      expect((await store.countByStatus()).total).toBe(1);
    } finally {
      await store.close();
    }
  });

  it('walks unfinished jobs from the covering index alone, even after ANALYZE', async () => {
    const path = join(dir, 'plan.db');
    const store = new SqliteStore({ path });
    await store.init();
    for (let i = 0; i < 30; i++) await store.createJob(makeJob({ id: `p-${i}`, createdAt: 1_700_000_000_000 + i }));
    await store.close();
    const db = new Database(path);
    // One index search and no sort: each page costs O(log n + limit) however many jobs wait.
    const plan = () => (db.prepare(`EXPLAIN QUERY PLAN ${UNFINISHED_PAGE_SQL}`).all('queued', 0, '', 10) as Array<{ detail: string }>).map((r) => r.detail);
    try {
      expect(plan()).toEqual([expect.stringContaining('USING COVERING INDEX jobs_unfinished')]);
      db.exec('ANALYZE');
      expect(plan()).toEqual([expect.stringContaining('USING COVERING INDEX jobs_unfinished')]);
    } finally {
      db.close();
    }
  });

  it('creates missing folders, uses WAL with synchronous=FULL, and records applied migrations', async () => {
    const path = join(dir, 'nested', 'deeper', 'jobs.db');
    const store = new SqliteStore({ path });
    await store.init();
    await store.close();
    const db = new Database(path, { readonly: true });
    try {
      expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
      const versions = db.prepare('SELECT version, name FROM schema_migrations ORDER BY version').all();
      expect(versions).toEqual(SQLITE_MIGRATIONS.map((m) => ({ version: m.version, name: m.name })));
    } finally {
      db.close();
    }
  });

  it('applies synchronous=FULL by default and NORMAL when asked', async () => {
    // synchronous is a per-connection setting, so it is read through the store's own connection.
    const byDefault = new SqliteStore({ path: join(dir, 'default.db') });
    await byDefault.init();
    expect(await byDefault.settings()).toMatchObject({ journalMode: 'wal', synchronous: 'FULL' });
    await byDefault.close();
    const normal = new SqliteStore({ path: join(dir, 'normal.db'), synchronous: 'NORMAL' });
    await normal.init();
    expect(await normal.settings()).toMatchObject({ journalMode: 'wal', synchronous: 'NORMAL' });
    await normal.close();
  });

  it('migrates once when two stores open a new file at the same time', async () => {
    const path = join(dir, 'race.db');
    const a = new SqliteStore({ path });
    const b = new SqliteStore({ path });
    await Promise.all([a.init(), b.init()]);
    await a.createJob(makeJob({ id: 'j1' }));
    expect((await b.getJob('j1'))?.id).toBe('j1');
    await a.close();
    await b.close();
    const db = new Database(path, { readonly: true });
    try {
      expect(db.prepare('SELECT count(*) AS n FROM schema_migrations').get()).toEqual({ n: SQLITE_MIGRATIONS.length });
    } finally {
      db.close();
    }
  });

  it('fails init with STORE_UNAVAILABLE naming the path when the file cannot be opened', async () => {
    // Make the "folder" a regular file so mkdir and open fail.
    const blocker = join(dir, 'blocker');
    new Database(blocker).close();
    const bad = new SqliteStore({ path: join(blocker, 'jobs.db') });
    await expect(bad.init()).rejects.toMatchObject({ code: 'STORE_UNAVAILABLE', message: expect.stringContaining(blocker) });
  });

  it('fails init with STORE_UNAVAILABLE at once for a folder under /proc (a recursive mkdir never returns there on Node 20)', async () => {
    const bad = new SqliteStore({ path: '/proc/comfyguard-test/x/jobs.db' });
    await expect(bad.init()).rejects.toMatchObject({ code: 'STORE_UNAVAILABLE', message: expect.stringContaining('/proc/comfyguard-test') });
  });
});
