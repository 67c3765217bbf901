import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SqliteStore } from '../../src/store/sqlite.js';
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
});
