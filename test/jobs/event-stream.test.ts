import diagnostics from 'node:diagnostics_channel';
import { afterEach, describe, expect, it } from 'vitest';
import type { GuardEvent } from '../../src/jobs/guard-api.js';
import { sd15Txt2img } from '../fixtures/workflows/index.js';
import { startRig, type Rig } from './harness.js';

let rig: Rig | null = null;
afterEach(async () => {
  await rig?.close();
  rig = null;
});

describe('the guard event stream', () => {
  it("carries a job's attempts and ComfyUI's own execution events for the current attempt, in order", async () => {
    rig = await startRig([{}]);
    const all: GuardEvent[] = [];
    const off = rig.guard.onEvent((e) => all.push(e));
    const wf = sd15Txt2img();
    wf['3']!.inputs.steps = 4;
    const { id } = await rig.guard.submit(wf);
    const job = await rig.guard.wait(id);
    off();
    expect(job.status).toBe('completed');
    const mine = all.filter((e) => e.type !== 'pool' && e.jobId === id);
    const types = mine.map((e) => e.type);
    expect(types.indexOf('attempt_started')).toBeGreaterThan(-1);
    expect(types.indexOf('attempt_started')).toBeLessThan(types.indexOf('comfy'));
    expect(types.lastIndexOf('comfy')).toBeLessThan(types.indexOf('attempt_settled'));
    const comfy = mine.flatMap((e) => (e.type === 'comfy' ? [e.message] : []));
    const kinds = comfy.map((m) => m.type);
    // The socket is open before the prompt is sent: even the first message of the first job arrives.
    expect(kinds[0]).toBe('execution_start');
    expect(kinds).toContain('executing');
    expect(kinds).toContain('executed');
    expect(kinds).toContain('execution_success');
    // Per-node, per-step progress as ComfyUI sent it (4 sampler steps on node 3).
    const sampler = comfy.filter((m) => m.type === 'progress' && m.data.node === '3');
    expect(sampler.map((m) => (m.type === 'progress' ? [m.data.value, m.data.max] : null))).toContainEqual([4, 4]);
    // Every ComfyUI message is the attempt's own prompt.
    for (const m of comfy) if ('prompt_id' in m.data && m.data.prompt_id !== undefined) expect(m.data.prompt_id).toBe(job.promptId);
    const settled = mine.find((e) => e.type === 'attempt_settled');
    expect(settled).toMatchObject({ outcome: 'completed', attempt: 1, code: null });
  });

  it('publishes every event on node:diagnostics_channel under comfyguard:<type>', async () => {
    rig = await startRig([{}]);
    const seen: string[] = [];
    const onState = (m: unknown) => seen.push(`state:${(m as { to: string }).to}`);
    const onSettled = (m: unknown) => seen.push(`settled:${(m as { outcome: string }).outcome}`);
    diagnostics.subscribe('comfyguard:state', onState);
    diagnostics.subscribe('comfyguard:attempt_settled', onSettled);
    try {
      const { id } = await rig.guard.submit(sd15Txt2img());
      await rig.guard.wait(id);
    } finally {
      diagnostics.unsubscribe('comfyguard:state', onState);
      diagnostics.unsubscribe('comfyguard:attempt_settled', onSettled);
    }
    expect(seen).toContain('state:queued');
    expect(seen).toContain('settled:completed');
    expect(seen.at(-1)).toBe('state:completed');
  });

  it('carries pool changes: a server held out of rotation turns unhealthy on the stream', async () => {
    rig = await startRig([{}]);
    const pool: GuardEvent[] = [];
    rig.guard.onEvent((e) => {
      if (e.type === 'pool') pool.push(e);
    });
    (rig.guard as unknown as { pool: { markUnhealthy(n: string, why: string): void } }).pool.markUnhealthy('sim-0', 'GPU fault');
    expect(pool).toContainEqual(expect.objectContaining({ type: 'pool', change: expect.objectContaining({ type: 'health', server: 'sim-0', healthy: false }) }));
  });
});
