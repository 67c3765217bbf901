/**
 * Access to the PostgreSQL and Redis servers the store tests need (127.0.0.1:5432 and :6379,
 * started by `bash scripts/services.sh`). When one is missing the tests FAIL with a message saying
 * how to start it; they never skip.
 */
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import pg from 'pg';
import { Redis } from 'ioredis';

export const PG_ADMIN_URL = process.env.COMFYGUARD_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
export const REDIS_URL = process.env.COMFYGUARD_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

/** A short random lower-case suffix for database, schema, prefix and application names. */
export function randomSuffix(): string {
  return randomBytes(5).toString('hex');
}

/** Runs `fn` with a short-lived admin client on `url`; a connection failure says how to start PostgreSQL. */
export async function withPg<T>(url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000 });
  client.on('error', () => undefined);
  try {
    await client.connect();
  } catch (e) {
    await client.end().catch(() => undefined);
    throw new Error(`PostgreSQL is not reachable at ${url} (${e instanceof Error ? e.message : String(e)}). The store tests need it: run \`bash scripts/services.sh\`.`, { cause: e });
  }
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** Creates a fresh database `cg_test_<random>` through the admin database; returns its URL and a dropper. */
export async function createTestDatabase(): Promise<{ name: string; url: string; drop: () => Promise<void> }> {
  const name = `cg_test_${randomSuffix()}`;
  await withPg(PG_ADMIN_URL, (c) => c.query(`CREATE DATABASE ${name}`));
  const u = new URL(PG_ADMIN_URL);
  u.pathname = `/${name}`;
  return {
    name,
    url: u.toString(),
    drop: () => withPg(PG_ADMIN_URL, (c) => c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)).then(() => undefined),
  };
}

/** A Redis admin connection; failing to connect says how to start Redis. */
export async function connectRedis(url: string = REDIS_URL): Promise<Redis> {
  const r = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1, retryStrategy: () => null, connectTimeout: 5000 });
  let lastError: unknown;
  r.on('error', (e: unknown) => {
    lastError = e;
  });
  try {
    await r.connect();
  } catch (e) {
    r.disconnect();
    const why = lastError ?? e;
    throw new Error(`Redis is not reachable at ${url} (${why instanceof Error ? why.message : String(why)}). The store tests need it: run \`bash scripts/services.sh\`.`, { cause: e });
  }
  return r;
}

/** A loopback port with nothing listening on it (bound, then released). */
export async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
