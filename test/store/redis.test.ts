import type { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { isStoreError } from '../../src/store/errors.js';
import { RedisStore, type RedisStoreOptions } from '../../src/store/redis.js';
import { describeStoreContract } from './contract.js';
import { makeAttempt, makeJob, makeStep, waitFor } from './fixtures.js';
import { closedPort, connectRedis, randomSuffix, REDIS_URL } from './services.js';
import { TcpProxy } from './tcp-proxy.js';

let admin: Redis;

beforeAll(async () => {
  admin = await connectRedis();
});

afterAll(async () => {
  await admin?.quit();
});

/** Deletes every key under `prefix`. */
async function dropPrefix(prefix: string): Promise<void> {
  let cursor = '0';
  do {
    const [next, keys] = await admin.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
    if (keys.length) await admin.unlink(...keys);
    cursor = next;
  } while (cursor !== '0');
}

/** CLIENT KILLs every connection named `name`; returns how many. */
async function killClients(name: string): Promise<number> {
  const list = String(await admin.client('LIST'));
  const ids = list
    .split('\n')
    .filter((line) => line.includes(` name=${name} `))
    .map((line) => /(?:^|\s)id=(\d+)/.exec(line)?.[1])
    .filter((x): x is string => x !== undefined);
  for (const id of ids) await admin.client('KILL', 'ID', id);
  return ids.length;
}

describeStoreContract('redis', async ({ clock }) => {
  const prefix = `cgtest:${randomSuffix()}:`;
  const opts: RedisStoreOptions = { url: REDIS_URL, keyPrefix: prefix, clock, connectionName: `cgtest-${randomSuffix()}` };
  const store = new RedisStore(opts);
  return {
    store,
    reopen: async () => new RedisStore(opts),
    writeCorruptRow: async (id, kind, createdAt) => {
      const whole = JSON.stringify(makeJob({ id, status: 'running', createdAt }));
      const doc = kind === 'truncated' ? whole.slice(0, 150) : JSON.stringify({ id, status: 'running', createdAt });
      await admin.hset(`${prefix}job:${id}`, { doc, status: 'running', v: '1', createdAt: String(createdAt) });
      await admin.zadd(`${prefix}status:running`, createdAt, id);
      await admin.zadd(`${prefix}created`, createdAt, id);
    },
    cleanup: async () => {
      await store.close();
      await dropPrefix(prefix);
    },
  };
});

describe('RedisStore specifics', () => {
  const prefixes: string[] = [];
  const opened: RedisStore[] = [];
  const proxies: TcpProxy[] = [];
  const open = (extra: Partial<RedisStoreOptions> = {}) => {
    const prefix = `cgtest:${randomSuffix()}:`;
    prefixes.push(prefix);
    const s = new RedisStore({ url: REDIS_URL, keyPrefix: prefix, connectionName: `cgtest-${randomSuffix()}`, ...extra });
    opened.push(s);
    return s;
  };

  afterEach(async () => {
    await Promise.all(opened.splice(0).map((s) => s.close()));
    await Promise.all(proxies.splice(0).map((p) => p.stop()));
    for (const p of prefixes.splice(0)) await dropPrefix(p);
  });

  it('keeps a job in its status index while active and gives it the TTL once terminal, readable until it expires', async () => {
    const s = open({ terminalTtlMs: 3_600_000 });
    await s.init();
    const job = makeJob({ idempotencyKey: `idem-${randomSuffix()}` });
    await s.createJob(job);
    const p = s.keyPrefix;
    expect(await admin.zscore(`${p}status:queued`, job.id)).toBe(String(job.createdAt));
    expect(await admin.pttl(`${p}job:${job.id}`)).toBe(-1);
    await s.transition(job.id, 'queued', 'running');
    expect(await admin.zscore(`${p}status:queued`, job.id)).toBeNull();
    expect(await admin.zscore(`${p}status:running`, job.id)).not.toBeNull();
    await s.transition(job.id, 'running', 'completed', { progress: 100 });
    const ttl = await admin.pttl(`${p}job:${job.id}`);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(3_600_000);
    expect(await admin.pttl(`${p}idem:${job.idempotencyKey}`)).toBeGreaterThan(0);
    expect((await s.getJob(job.id))?.status).toBe('completed');
    expect((await s.listNonTerminal()).jobs).toEqual([]);
  });

  it('drops index entries of jobs that expired, and a lapsed idempotency key can be used again', async () => {
    const s = open({ terminalTtlMs: 60_000 });
    await s.init();
    const key = `idem-${randomSuffix()}`;
    const job = makeJob({ idempotencyKey: key });
    await s.createJob(job);
    await s.transition(job.id, 'queued', 'failed');
    // Simulate the TTL firing.
    await admin.del(`${s.keyPrefix}job:${job.id}`, `${s.keyPrefix}idem:${key}`);
    expect(await s.getJob(job.id)).toBeNull();
    expect((await s.query({})).jobs).toEqual([]);
    expect((await s.stats()).total).toBe(0);
    expect(await admin.zscore(`${s.keyPrefix}created`, job.id)).toBeNull();
    expect(await admin.zscore(`${s.keyPrefix}status:failed`, job.id)).toBeNull();
    expect((await s.createJob(makeJob({ idempotencyKey: key }))).created).toBe(true);
  });

  it('deletes a job as soon as it ends when terminalTtlMs is 0', async () => {
    const s = open({ terminalTtlMs: 0 });
    await s.init();
    const job = makeJob();
    await s.createJob(job);
    expect((await s.transition(job.id, 'queued', 'cancelled'))?.status).toBe('cancelled');
    expect(await s.getJob(job.id)).toBeNull();
    expect(await admin.exists(`${s.keyPrefix}job:${job.id}`)).toBe(0);
  });

  it('keeps terminal jobs without expiry when terminalTtlMs is null', async () => {
    const s = open({ terminalTtlMs: null });
    await s.init();
    const job = makeJob();
    await s.createJob(job);
    await s.transition(job.id, 'queued', 'completed');
    expect(await admin.pttl(`${s.keyPrefix}job:${job.id}`)).toBe(-1);
  });

  it('reports a non-terminal index entry whose job hash is gone as corrupt, with its id', async () => {
    const s = open();
    await s.init();
    const a = makeJob();
    const b = makeJob();
    await s.createJob(a);
    await s.createJob(b);
    await admin.del(`${s.keyPrefix}job:${a.id}`);
    const { jobs, corrupt } = await s.listNonTerminal();
    expect(jobs.map((j) => j.id)).toEqual([b.id]);
    expect(corrupt.map((c) => c.id)).toEqual([a.id]);
  });

  it('reconnects after CLIENT KILL of its connection and loses nothing', async () => {
    const s = open();
    await s.init();
    const jobs = Array.from({ length: 10 }, (_, i) => makeJob({ createdAt: 1_700_000_000_000 + i }));
    for (const j of jobs) await s.createJob(j);
    expect(await killClients(s.connectionName)).toBe(1);
    for (const j of jobs) expect((await s.transition(j.id, 'queued', 'running'))?.status).toBe('running');
    const { jobs: listed } = await s.listNonTerminal();
    expect(listed.map((j) => j.id)).toEqual(jobs.map((j) => j.id));
    expect(String(await admin.client('LIST'))).toContain(` name=${s.connectionName} `);
  });

  it('completes writes in flight when its connection is killed, each applied once', async () => {
    const s = open();
    await s.init();
    const jobs = Array.from({ length: 10 }, () => makeJob());
    for (const j of jobs) await s.createJob(j);
    const ops = jobs.flatMap((j) => [s.appendRecoveryStep(j.id, makeStep()), s.recordAttempt(j.id, makeAttempt(1)), s.transition(j.id, 'queued', 'running'), s.updateProgress(j.id, 55)]);
    expect(await killClients(s.connectionName)).toBe(1);
    const settled = await Promise.allSettled(ops);
    expect(settled.filter((r) => r.status === 'rejected')).toEqual([]);
    for (const j of jobs) {
      const got = await s.getJob(j.id);
      expect(got).toMatchObject({ status: 'running', progress: 55 });
      expect(got?.recoveryHistory).toHaveLength(1);
      expect(got?.attempts).toHaveLength(1);
    }
  });

  it('fails with STORE_UNAVAILABLE, not a hang, while Redis is away, then recovers with its data', async () => {
    const proxy = await TcpProxy.start('127.0.0.1', Number(new URL(REDIS_URL).port || 6379));
    proxies.push(proxy);
    const s = open({ url: `redis://127.0.0.1:${proxy.port}`, maxRetriesPerRequest: 1, commandTimeoutMs: 3000 });
    await s.init();
    const job = makeJob();
    await s.createJob(job);
    await proxy.stop();
    const err = await s.transition(job.id, 'queued', 'running').catch((e: unknown) => e);
    expect(isStoreError(err, 'STORE_UNAVAILABLE')).toBe(true);
    expect((err as Error).message).toContain(`127.0.0.1:${proxy.port}`);
    await proxy.restart();
    await waitFor(async () => s.ping().then(() => true, () => false), 'the store to reconnect through the proxy');
    expect((await s.transition(job.id, 'queued', 'running'))?.status).toBe('running');
    expect((await s.getJob(job.id))?.workflow).toEqual(job.workflow);
  });

  it('rejects init with STORE_UNAVAILABLE when nothing listens, without credentials in the message', async () => {
    const port = await closedPort();
    const s = open({ url: `redis://:hunter2@127.0.0.1:${port}` });
    const err = await s.init().catch((e: unknown) => e);
    expect(isStoreError(err, 'STORE_UNAVAILABLE')).toBe(true);
    expect((err as Error).message).toContain(`127.0.0.1:${port}`);
    expect((err as Error).message).toContain('ECONNREFUSED');
    expect((err as Error).message).not.toContain('hunter2');
  });
});
