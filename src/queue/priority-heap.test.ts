import { describe, expect, it } from 'vitest';
import { PriorityHeap } from './priority-heap.js';

describe('PriorityHeap', () => {
  it('pops by priority then arrival, through interleaved pushes, removals and duplicates', () => {
    const h = new PriorityHeap();
    // A reference model: a sorted array (the old implementation), checked against the heap.
    const model: Array<{ id: string; p: number; seq: number }> = [];
    let seq = 0;
    let state = 12345;
    const rand = (n: number) => {
      state = (state * 1103515245 + 12345) % 2 ** 31;
      return state % n;
    };
    for (let step = 0; step < 5000; step++) {
      const op = rand(10);
      if (op < 6) {
        const id = `j${rand(400)}`;
        const p = rand(5) - 2;
        const added = h.push(id, p);
        expect(added).toBe(!model.some((m) => m.id === id));
        if (added) model.push({ id, p, seq: seq++ });
      } else if (op < 8) {
        model.sort((a, b) => b.p - a.p || a.seq - b.seq);
        expect(h.pop()).toBe(model.shift()?.id);
      } else {
        const id = `j${rand(400)}`;
        const i = model.findIndex((m) => m.id === id);
        expect(h.remove(id)).toBe(i >= 0);
        if (i >= 0) model.splice(i, 1);
      }
      expect(h.size).toBe(model.length);
    }
  });
});
