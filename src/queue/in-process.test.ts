import { describe, expect, it } from 'vitest';
import { InProcessDispatcher } from './in-process.js';

describe('InProcessDispatcher', () => {
  it('runs higher priority first, then first in first out, within the concurrency limit', async () => {
    const d = new InProcessDispatcher({ concurrency: 1 });
    const order: string[] = [];
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    await d.start(async (id) => {
      order.push(id);
      if (id === 'blocker') await gate;
    });
    await d.enqueue('blocker', 0);
    await d.enqueue('low', -5);
    await d.enqueue('a', 0);
    await d.enqueue('high', 10);
    await d.enqueue('b', 0);
    expect(await d.counts()).toEqual({ waiting: 4, active: 1 });
    release();
    await d.onIdle();
    expect(order).toEqual(['blocker', 'high', 'a', 'b', 'low']);
    await d.close();
  });

  it('removes a waiting job and ignores a duplicate enqueue', async () => {
    const d = new InProcessDispatcher({ concurrency: 1 });
    await d.enqueue('x', 0);
    await d.enqueue('x', 0);
    expect(await d.counts()).toEqual({ waiting: 1, active: 0 });
    expect(await d.remove('x')).toBe(true);
    expect(await d.remove('x')).toBe(false);
    await d.close();
  });

  it('aborts running handlers on close and waits for them', async () => {
    const d = new InProcessDispatcher({ concurrency: 2 });
    let aborted = 0;
    await d.start(
      (_id, signal) =>
        new Promise<void>((resolve) =>
          signal.addEventListener('abort', () => {
            aborted++;
            resolve();
          }),
        ),
    );
    await d.enqueue('a', 0);
    await d.enqueue('b', 0);
    await d.close();
    expect(aborted).toBe(2);
    await expect(d.enqueue('c', 0)).rejects.toThrow('closed');
  });

  it('refuses a nonsense concurrency', () => {
    expect(() => new InProcessDispatcher({ concurrency: 0 })).toThrow('concurrency must be an integer >= 1');
  });
});
