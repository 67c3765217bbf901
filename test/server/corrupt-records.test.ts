/**
 * Damaged rows through the API: listed with their id, removable, and never a 500.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeGuard } from './fake-guard.js';
import { listen, tinyWorkflow, type TestServer } from './helpers.js';
import { raw } from './http-raw.js';

const damaged = (id: string) => Object.assign(new Error(`getJob: job ${id} cannot be read: Unexpected token`), { code: 'STORE_CORRUPT_ROW', jobId: id });

/** A fake guard with one unreadable row, `bad-1`, that it can list and delete. */
class DamagedGuard extends FakeGuard {
  corrupt = new Set(['bad-1']);
  override async get(id: string) {
    if (this.corrupt.has(id)) throw damaged(id);
    return super.get(id);
  }
  override async cancel(id: string) {
    if (this.corrupt.has(id)) throw damaged(id);
    return super.cancel(id);
  }
  override async list(filter = {}) {
    const page = await super.list(filter);
    return { ...page, corrupt: [...this.corrupt].map((id) => ({ id, error: 'Unexpected token } in JSON at position 12 of /var/lib/comfyguard/db' })) };
  }
  override async listCorrupt() {
    return [...this.corrupt].map((id) => ({ id, error: 'Unexpected token' }));
  }
  override async deleteJob(id: string) {
    return this.corrupt.delete(id);
  }
}

let guard: DamagedGuard;
let plain: FakeGuard;
let srv: TestServer;
let plainSrv: TestServer;

beforeAll(async () => {
  guard = await new DamagedGuard().init();
  plain = await new FakeGuard().init();
  srv = await listen({ guard, dashboard: false });
  plainSrv = await listen({ guard: plain, dashboard: false });
});

afterAll(async () => {
  await srv?.close();
  await plainSrv?.close();
  await guard?.close();
  await plain?.close();
});

describe('corrupt job records', () => {
  it('answers GET and cancel of a damaged job with 409 CORRUPT_RECORD naming how to remove it', async () => {
    for (const [method, path] of [['GET', '/api/jobs/bad-1'], ['POST', '/api/jobs/bad-1/cancel']] as const) {
      const res = await raw(srv.url, path, { method });
      expect(res.status, path).toBe(409);
      expect(res.json(), path).toMatchObject({ error: { code: 'CORRUPT_RECORD' } });
      expect((res.json() as { error: { message: string } }).error.message).toContain('DELETE /api/jobs/bad-1');
    }
  });

  it('lists damaged rows with their id in GET /api/jobs and GET /api/jobs/corrupt, without internal paths', async () => {
    await guard.submit(tinyWorkflow());
    const list = (await raw(srv.url, '/api/jobs')).json() as { jobs: unknown[]; corrupt: Array<{ id: string; error: string }> };
    expect(list.jobs.length).toBeGreaterThan(0);
    expect(list.corrupt.map((c) => c.id)).toEqual(['bad-1']);
    expect(JSON.stringify(list.corrupt)).not.toContain('/var/lib');
    expect((await raw(srv.url, '/api/jobs/corrupt')).json()).toEqual({ corrupt: [{ id: 'bad-1', error: 'Unexpected token' }] });
  });

  it('removes a damaged row with DELETE /api/jobs/:id', async () => {
    const del = await raw(srv.url, '/api/jobs/bad-1', { method: 'DELETE' });
    expect(del.status).toBe(200);
    expect((await raw(srv.url, '/api/jobs/corrupt')).json()).toEqual({ corrupt: [] });
    expect((await raw(srv.url, '/api/jobs/bad-1', { method: 'DELETE' })).status).toBe(404);
  });
});
