/**
 * `openStore(url)`: one URL selects the backend. The store is returned un-initialised (constructors
 * do no I/O); the caller awaits `init()`.
 *
 * URLs: `sqlite:./data/comfyguard.db` (the default), `sqlite:/abs/path.db`, `sqlite::memory:`,
 * `sqlite:./data/comfyguard.db?synchronous=NORMAL` (faster writes; the last commits can be lost on power loss),
 * `postgres://user:pass@host:5432/db?schema=comfyguard`, `redis://host:6379/0?prefix=comfyguard:&ttl=86400`
 * (`ttl` in seconds for terminal jobs, `0` deletes them at once, `none` keeps them), `memory:`.
 *
 * @example
 * const store = openStore('sqlite:./data/comfyguard.db'); await store.init();
 */
import { isAbsolute, resolve } from 'node:path';
import type { Clock } from '../util/clock.js';
import type { JobStore } from './contract.js';
import { redactUrl, StoreError } from './errors.js';
import { MemoryStore } from './memory.js';
import { PostgresStore, type PostgresStoreOptions } from './postgres.js';
import { RedisStore, type RedisStoreOptions } from './redis.js';
import { SqliteStore } from './sqlite.js';

/** Where the store lives when nothing is configured. */
export const DEFAULT_STORE_URL = 'sqlite:./data/comfyguard.db';

export interface OpenStoreOptions {
  /** @default systemClock */
  clock?: Clock;
  /** Base folder for relative SQLite paths. @default process.cwd() */
  cwd?: string;
  sqlite?: {
    /** @default 'FULL' */
    synchronous?: 'FULL' | 'NORMAL';
    /** @default 5000 */
    busyTimeoutMs?: number;
  };
  /** Overrides for the PostgreSQL store (win over URL parameters). */
  postgres?: Partial<Omit<PostgresStoreOptions, 'connectionString' | 'clock'>>;
  /** Overrides for the Redis store (win over URL parameters). */
  redis?: Partial<Omit<RedisStoreOptions, 'url' | 'clock'>>;
}

/** The backend a URL selects, or a STORE_BAD_URL error naming the URL and its scheme. */
export function storeKind(url: string): 'memory' | 'sqlite' | 'postgres' | 'redis' {
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(url)?.[1]?.toLowerCase();
  switch (scheme) {
    case 'memory':
      return 'memory';
    case 'sqlite':
      return 'sqlite';
    case 'postgres':
    case 'postgresql':
      return 'postgres';
    case 'redis':
    case 'rediss':
      return 'redis';
    default:
      throw new StoreError(
        'STORE_BAD_URL',
        `unsupported store URL ${JSON.stringify(redactUrl(url))}: ${scheme === undefined ? 'it has no scheme' : `the scheme "${scheme}:" is not supported`}; use sqlite:PATH, sqlite::memory:, postgres://..., redis://... or memory:`,
      );
  }
}

/** The file path of a `sqlite:` URL: `sqlite:./data/x.db`, `sqlite:/abs/x.db`, `sqlite:///abs/x.db`, `sqlite::memory:`. */
export function sqlitePath(url: string, cwd: string = process.cwd()): string {
  let rest = url.slice('sqlite:'.length);
  if (rest.startsWith('//')) rest = rest.slice(2);
  if (rest === '') throw new StoreError('STORE_BAD_URL', `store URL "${url}" names no SQLite file; use e.g. ${DEFAULT_STORE_URL}`);
  if (rest === ':memory:') return rest;
  return isAbsolute(rest) ? rest : resolve(cwd, rest);
}

/** Builds the store a URL names. Throws STORE_BAD_URL for anything it cannot use. */
export function openStore(url: string = DEFAULT_STORE_URL, opts: OpenStoreOptions = {}): JobStore {
  const clock = opts.clock ? { clock: opts.clock } : {};
  switch (storeKind(url)) {
    case 'memory':
      return new MemoryStore(clock);
    case 'sqlite': {
      // `?synchronous=NORMAL` trades durability on power loss for write speed (see SqliteStoreOptions).
      const m = /^(.*)\?synchronous=(FULL|NORMAL)$/i.exec(url);
      const synchronous = m?.[2]?.toUpperCase() as 'FULL' | 'NORMAL' | undefined;
      return new SqliteStore({ path: sqlitePath(m?.[1] ?? url, opts.cwd), ...clock, ...(synchronous ? { synchronous } : {}), ...opts.sqlite });
    }
    case 'postgres': {
      const { rest, params } = takeParams(url, ['schema']);
      return new PostgresStore({ connectionString: rest, ...(params.schema ? { schema: params.schema } : {}), ...clock, ...opts.postgres });
    }
    case 'redis': {
      const { rest, params } = takeParams(url, ['prefix', 'ttl']);
      const fromUrl: Partial<RedisStoreOptions> = {};
      if (params.prefix !== undefined) fromUrl.keyPrefix = params.prefix;
      if (params.ttl !== undefined) fromUrl.terminalTtlMs = parseTtl(url, params.ttl);
      return new RedisStore({ url: rest, ...fromUrl, ...clock, ...opts.redis });
    }
  }
}

/** Removes our own query parameters so the driver never sees them. */
function takeParams(url: string, names: string[]): { rest: string; params: Record<string, string> } {
  let u: URL;
  try {
    u = new URL(url);
  } catch (e) {
    throw new StoreError('STORE_BAD_URL', `store URL ${JSON.stringify(redactUrl(url))} is not a valid URL`, { cause: e });
  }
  const params: Record<string, string> = {};
  for (const n of names) {
    const v = u.searchParams.get(n);
    if (v !== null) params[n] = v;
    u.searchParams.delete(n);
  }
  return { rest: u.toString(), params };
}

/** `ttl` URL parameter: seconds, `0` (delete at once) or `none` (keep). */
function parseTtl(url: string, raw: string): number | null {
  if (raw === 'none') return null;
  const seconds = Number(raw);
  if (!Number.isFinite(seconds) || seconds < 0) {
    throw new StoreError('STORE_BAD_URL', `store URL ${JSON.stringify(redactUrl(url))}: ttl must be seconds >= 0 or "none", got ${JSON.stringify(raw)}`);
  }
  return Math.round(seconds * 1000);
}
