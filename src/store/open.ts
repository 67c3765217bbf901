/**
 * `openStore(url)`: one URL selects the backend. The store is returned un-initialised (constructors
 * do no I/O); the caller awaits `init()`.
 *
 * @example
 * const store = openStore('sqlite:./data/comfyguard.db'); await store.init();
 */
import { isAbsolute, resolve } from 'node:path';
import type { Clock } from '../util/clock.js';
import type { JobStore } from './contract.js';
import { redactUrl, StoreError } from './errors.js';
import { MemoryStore } from './memory.js';
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
    case 'sqlite':
      return new SqliteStore({ path: sqlitePath(url, opts.cwd), ...clock, ...opts.sqlite });
    case 'postgres':
    case 'redis':
      throw new StoreError('STORE_BAD_URL', `store URL ${redactUrl(url)}: this backend is being added`);
  }
}
