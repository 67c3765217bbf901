import { describe, expect, it } from 'vitest';
import { GiB, SD15, txt2img } from '../../test/support/sim-oracle.js';
import type { ServerMemory } from '../recovery/index.js';
import { cudaOomMessage } from '../sim/memory.js';
import { ManualClock } from '../../test/comfy/helpers.js';
import { MemoryStore } from '../store/memory.js';
import { SharedMemoryModel } from './shared-memory-model.js';

const g8: ServerMemory = { name: 'g8', vramTotal: 8 * GiB, vramFree: 8 * GiB, device: 'cuda' };
const wf = txt2img({ ckpt: SD15, width: 1024, height: 1024, batch: 2 });

function shared(store: MemoryStore, clock = new ManualClock()): SharedMemoryModel {
  return new SharedMemoryModel(
    () => store,
    (err) => {
      throw err;
    },
    { clock, delayMs: 2_000 },
  );
}

describe('SharedMemoryModel', () => {
  it('one process learns an OOM, another sharing the store predicts with it after load', async () => {
    const store = new MemoryStore();
    await store.init();
    const a = shared(store);
    await a.load();
    expect(a.view.predict(wf, g8).fits).toBe(true);
    a.view.observeOom({ server: g8, workflow: wf, text: cudaOomMessage(2 * GiB, 8 * GiB, 7 * GiB) });
    a.persist();
    await a.flushed();
    const b = shared(store);
    await b.load();
    expect(b.view.predict(wf, g8).fits).toBe(false);
    expect((await b.learned()).entries).toMatchObject([{ server: 'g8', ooms: 1 }]);
  });

  it('writing again does not count what was already written (counts stay those observed)', async () => {
    const store = new MemoryStore();
    await store.init();
    const a = shared(store);
    await a.load();
    a.view.observeOom({ server: g8, workflow: wf, text: cudaOomMessage(2 * GiB, 8 * GiB, 7 * GiB) });
    a.persist();
    a.persist();
    await a.flushed();
    a.view.observeSuccess({ server: g8, workflow: txt2img({ ckpt: SD15, width: 512, height: 512, batch: 1 }) });
    a.persist();
    await a.flushed();
    const rows = (await shared(store).learned()).entries;
    expect(rows.reduce((n, r) => n + r.ooms, 0)).toBe(1);
    expect(rows.reduce((n, r) => n + r.successes, 0)).toBeGreaterThanOrEqual(1);
    // Two processes' news add up.
    const b = shared(store);
    await b.load();
    b.view.observeOom({ server: g8, workflow: wf, text: cudaOomMessage(2 * GiB, 8 * GiB, 7 * GiB) });
    b.persist();
    await b.flushed();
    expect((await a.learned()).entries.reduce((n, r) => n + r.ooms, 0)).toBe(2);
  });

  it('gathers successes and writes them once after the delay (or at flush); an OOM is written at once', async () => {
    const store = new MemoryStore();
    await store.init();
    let writes = 0;
    const counting = new Proxy(store, {
      get(t, prop, r) {
        const v = Reflect.get(t, prop, r) as unknown;
        if (prop === 'setMeta') return (...a: Parameters<MemoryStore['setMeta']>) => (writes++, t.setMeta(...a));
        return typeof v === 'function' ? (v as (...x: unknown[]) => unknown).bind(t) : v;
      },
    });
    const clock = new ManualClock();
    const a = new SharedMemoryModel(() => counting, (err) => { throw err; }, { clock, delayMs: 2_000 });
    await a.load();
    for (const batch of [1, 2, 4]) {
      a.view.observeSuccess({ server: g8, workflow: txt2img({ ckpt: SD15, width: 512, height: 512, batch }) });
      a.persist({ soon: true });
    }
    for (let i = 0; i < 20; i++) await Promise.resolve();
    expect(writes).toBe(0);
    clock.advance(2_000);
    await a.flushed();
    expect(writes).toBe(1);
    a.view.observeOom({ server: g8, workflow: wf, text: cudaOomMessage(2 * GiB, 8 * GiB, 7 * GiB) });
    a.persist();
    await a.flushed();
    expect(writes).toBe(2);
    // A success still gathered when the guard closes is written by the flush.
    a.view.observeSuccess({ server: g8, workflow: wf });
    a.persist({ soon: true });
    await a.flushed();
    expect(writes).toBe(3);
    expect(clock.pending).toBe(0);
  });
});
