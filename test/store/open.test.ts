import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { MemoryStore } from '../../src/store/memory.js';
import { DEFAULT_STORE_URL, openStore, sqlitePath, storeKind } from '../../src/store/open.js';
import { PostgresStore } from '../../src/store/postgres.js';
import { RedisStore } from '../../src/store/redis.js';
import { SqliteStore } from '../../src/store/sqlite.js';
import type { JobStore } from '../../src/store/contract.js';
import { isStoreError } from '../../src/store/errors.js';
import { makeJob } from './fixtures.js';
import { connectRedis, createTestDatabase, randomSuffix, REDIS_URL, withPg } from './services.js';

function badUrl(url: string): Error {
  try {
    openStore(url);
  } catch (e) {
    if (isStoreError(e, 'STORE_BAD_URL')) return e;
    throw e;
  }
  throw new Error(`openStore(${url}) did not throw`);
}

describe('openStore', () => {
  const stores: JobStore[] = [];
  const cleanups: Array<() => Promise<void>> = [];
  afterEach(async () => {
    await Promise.all(stores.splice(0).map((s) => s.close()));
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  it('opens SQLite with synchronous=FULL by default and NORMAL when the URL asks for it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cg-open-sync-'));
    cleanups.push(async () => rmSync(dir, { recursive: true, force: true }));
    const full = openStore(`sqlite:${join(dir, 'a.db')}`) as SqliteStore;
    const normal = openStore(`sqlite:${join(dir, 'b.db')}?synchronous=NORMAL`) as SqliteStore;
    stores.push(full, normal);
    await full.init();
    await normal.init();
    expect(await full.settings()).toMatchObject({ synchronous: 'FULL', path: join(dir, 'a.db') });
    expect(await normal.settings()).toMatchObject({ synchronous: 'NORMAL', path: join(dir, 'b.db') });
  });

  it('maps each scheme to its backend', () => {
    expect(storeKind('memory:')).toBe('memory');
    expect(storeKind('sqlite:./x.db')).toBe('sqlite');
    expect(storeKind('postgres://h/db')).toBe('postgres');
    expect(storeKind('postgresql://h/db')).toBe('postgres');
    expect(storeKind('redis://h:6379')).toBe('redis');
    expect(storeKind('rediss://h:6379')).toBe('redis');
    expect(openStore('memory:')).toBeInstanceOf(MemoryStore);
    expect(openStore('sqlite::memory:')).toBeInstanceOf(SqliteStore);
    expect(openStore('postgresql://127.0.0.1/x')).toBeInstanceOf(PostgresStore);
    expect(openStore('rediss://127.0.0.1:6380')).toBeInstanceOf(RedisStore);
  });

  it('names the bad scheme and the URL (without its password) in the error', () => {
    const e = badUrl('mysql://root:secret@db/jobs');
    expect(e.message).toContain('"mysql:"');
    expect(e.message).toContain('mysql://root:***@db/jobs');
    expect(e.message).not.toContain('secret');
    expect(badUrl('./data/jobs.db').message).toContain('no scheme');
    expect(badUrl('sqlite:').message).toContain('names no SQLite file');
    expect(badUrl('redis://127.0.0.1:6379?ttl=soon').message).toContain('ttl');
  });

  it('resolves sqlite paths: relative to cwd, absolute, triple-slash and :memory:', () => {
    expect(sqlitePath('sqlite:./data/a.db', '/srv/app')).toBe('/srv/app/data/a.db');
    expect(sqlitePath('sqlite:data/a.db', '/srv/app')).toBe('/srv/app/data/a.db');
    expect(sqlitePath('sqlite:/var/lib/cg.db')).toBe('/var/lib/cg.db');
    expect(sqlitePath('sqlite:///var/lib/cg.db')).toBe('/var/lib/cg.db');
    expect(sqlitePath('sqlite::memory:')).toBe(':memory:');
  });

  it('opens the default SQLite file under ./data/, creating the folder', async () => {
    const cwd = mkdtempSync(join(tmpdir(), 'cg-open-'));
    cleanups.push(async () => rmSync(cwd, { recursive: true, force: true }));
    expect(DEFAULT_STORE_URL).toBe('sqlite:./data/comfyguard.db');
    const store = openStore(undefined, { cwd });
    stores.push(store);
    await store.init();
    await store.createJob(makeJob({ id: 'j1' }));
    expect(existsSync(join(cwd, 'data', 'comfyguard.db'))).toBe(true);
  });

  it('opens PostgreSQL in the schema named by ?schema=', async () => {
    const db = await createTestDatabase();
    cleanups.push(db.drop);
    const store = openStore(`${db.url}?schema=from_url`, { postgres: { applicationName: 'cg_open_test' } });
    stores.push(store);
    await store.init();
    await store.createJob(makeJob({ id: 'pg-1' }));
    const n = await withPg(db.url, async (c) => (await c.query('SELECT count(*)::int AS n FROM from_url.jobs')).rows[0]?.n);
    expect(n).toBe(1);
  });

  it('opens Redis with the prefix and terminal TTL (seconds) from the URL', async () => {
    const admin = await connectRedis();
    const prefix = `cgtest:${randomSuffix()}:`;
    cleanups.push(async () => {
      const keys = await admin.keys(`${prefix}*`);
      if (keys.length) await admin.del(...keys);
      await admin.quit();
    });
    const store = openStore(`${REDIS_URL}?prefix=${encodeURIComponent(prefix)}&ttl=60`);
    stores.push(store);
    await store.init();
    await store.createJob(makeJob({ id: 'r-1' }));
    await store.transition('r-1', 'queued', 'completed');
    const ttl = await admin.pttl(`${prefix}job:r-1`);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(60_000);
  });
});
