/**
 * A ComfyUI client's prompt_id belongs to that client: a second client cannot reuse it to take
 * over the first one's history, interrupt or queue entries.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeGuard } from './fake-guard.js';
import { listen, postJson, tinyWorkflow, type TestServer } from './helpers.js';

let guard: FakeGuard;
let srv: TestServer;

beforeAll(async () => {
  guard = await new FakeGuard().init();
  srv = await listen({ guard, dashboard: false });
});

afterAll(async () => {
  await srv?.close();
  await guard?.close();
});

describe('prompt_id ownership on /comfy', () => {
  it('refuses a prompt_id another client already uses, and keeps the first job behind it', async () => {
    const first = await postJson(`${srv.url}/comfy/prompt`, { prompt: tinyWorkflow(), client_id: 'alice', prompt_id: 'shared-1' });
    expect(first.status).toBe(200);
    const firstId = ((await guard.store.query({ limit: 10 })).jobs[0]!).id;
    const second = await postJson(`${srv.url}/comfy/prompt`, { prompt: tinyWorkflow(), client_id: 'mallory', prompt_id: 'shared-1' });
    expect(second.status).toBe(409);
    expect(await second.json()).toMatchObject({ error: { code: 'PROMPT_ID_TAKEN', type: 'prompt_id_taken' } });
    // A job id is taken too: naming one as your prompt_id would shadow that job.
    const third = await postJson(`${srv.url}/comfy/prompt`, { prompt: tinyWorkflow(), client_id: 'mallory', prompt_id: firstId });
    expect(third.status).toBe(409);

    await guard.advance(firstId, 'running');
    // Another client's interrupt and delete by that prompt_id do nothing.
    expect((await postJson(`${srv.url}/comfy/interrupt?clientId=mallory`, { prompt_id: 'shared-1' })).status).toBe(200);
    expect((await postJson(`${srv.url}/comfy/queue?clientId=mallory`, { delete: ['shared-1'] })).status).toBe(200);
    expect((await guard.get(firstId))?.status).toBe('running');
    // The owner's own interrupt works.
    expect((await postJson(`${srv.url}/comfy/interrupt?clientId=alice`, { prompt_id: 'shared-1' })).status).toBe(200);
    expect((await guard.get(firstId))?.status).toBe('cancelled');
    const history = (await (await fetch(`${srv.url}/comfy/history/shared-1?clientId=mallory`)).json()) as Record<string, unknown>;
    expect(history).toEqual({});
    const own = (await (await fetch(`${srv.url}/comfy/history/shared-1?clientId=alice`)).json()) as Record<string, unknown>;
    expect(Object.keys(own)).toEqual(['shared-1']);
  });
});
