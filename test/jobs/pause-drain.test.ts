import { afterEach, describe, expect, it } from 'vitest';
import { sd15Txt2img } from '../fixtures/workflows/index.js';
import { startRig, type Rig } from './harness.js';

let rig: Rig | null = null;
afterEach(async () => {
  await rig?.close();
  rig = null;
});

/** Lets the dispatcher and the event loop run many turns without a wall-clock sleep. */
async function turns(n: number): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r));
}

describe('pause, resume and drain', () => {
  it('keeps queued jobs waiting while paused and starts them on resume', async () => {
    rig = await startRig([{}]);
    rig.guard.pause();
    expect(rig.guard.isPaused()).toBe(true);
    const { id } = await rig.guard.submit(sd15Txt2img());
    await turns(200);
    expect((await rig.guard.get(id))!.status).toBe('queued');
    rig.guard.resume();
    const job = await rig.guard.wait(id);
    expect(job.status).toBe('completed');
  });

  it('leaves the guard paused after an emergency stop', async () => {
    rig = await startRig([{}]);
    await rig.guard.emergencyStop();
    expect(rig.guard.isPaused()).toBe(true);
    const { id } = await rig.guard.submit(sd15Txt2img());
    await turns(200);
    expect((await rig.guard.get(id))!.status).toBe('queued');
    rig.guard.resume();
    expect((await rig.guard.wait(id)).status).toBe('completed');
  });

  it('an emergency stop cancels queued jobs beyond one page of the store (1,200 jobs, pages of 500)', async () => {
    rig = await startRig([{}]);
    rig.guard.pause();
    const ids: string[] = [];
    for (let i = 0; i < 1_200; i++) ids.push((await rig.guard.submit(sd15Txt2img())).id);
    const res = await rig.guard.emergencyStop();
    expect(res.cancelled).toBe(1_200);
    expect((await rig.guard.stats()).byStatus.cancelled).toBe(1_200);
    for (const id of [ids[0]!, ids[599]!, ids[1_199]!]) expect((await rig.guard.get(id))!.status).toBe('cancelled');
  });

  it('sends nothing to a drained server and uses it again once undrained', async () => {
    rig = await startRig([{}, {}]);
    rig.guard.drain('sim-0');
    expect((await rig.guard.servers()).find((s) => s.name === 'sim-0')!.drained).toBe(true);
    const ids = await Promise.all([1, 2, 3].map(async () => (await rig!.guard.submit(sd15Txt2img())).id));
    for (const id of ids) expect((await rig.guard.wait(id)).server).toBe('sim-1');
    rig.guard.drain('sim-0', false);
    rig.guard.drain('sim-1');
    const { id } = await rig.guard.submit(sd15Txt2img());
    expect((await rig.guard.wait(id)).server).toBe('sim-0');
    expect(() => rig!.guard.drain('nope')).toThrow(/no server named nope/);
  });
});
