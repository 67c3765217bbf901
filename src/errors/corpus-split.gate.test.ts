/**
 * Accuracy gates on the seen and the held-out unseen corpus parts (issue 18). The thresholds sit just
 * under the figures reached when they were set, so a drop cannot go unnoticed; raise them when the
 * classifier improves. Rules are written from the seen part only: when the unseen gate fails, fix the
 * cause through seen examples (or add seen examples), do not tune on the unseen lines.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { evaluateCorpus, formatCorpusReport, readCorpus } from './corpus.js';
import { splitCorpus } from './corpus-split.js';

const fixture = (name: string) => fileURLToPath(new URL(`../../test/errors/fixtures/${name}`, import.meta.url));
const split = splitCorpus(readCorpus(readFileSync(fixture('public.jsonl'), 'utf8')), readCorpus(readFileSync(fixture('extended.jsonl'), 'utf8')));

/** Reached when set: seen 437/446 code, 441/446 category; unseen 133/173 code, 143/173 category. */
const GATES = {
  seen: { code: 0.975, category: 0.985 },
  unseen: { code: 0.76, category: 0.82 },
} as const;

describe('classifier accuracy on the seen and unseen corpus parts', () => {
  for (const part of ['seen', 'unseen'] as const) {
    it(`${part}: code and category accuracy stay at or above ${GATES[part].code * 100}% and ${GATES[part].category * 100}%`, () => {
      const r = evaluateCorpus(split[part]);
      expect(r.total).toBe(split[part].length);
      const ok = r.accuracy >= GATES[part].code && r.categoryAccuracy >= GATES[part].category;
      if (!ok) {
        const detail = formatCorpusReport(r, { misses: part === 'seen' });
        throw new Error(`${part} part: code ${(r.accuracy * 100).toFixed(1)}%, category ${(r.categoryAccuracy * 100).toFixed(1)}%\n${detail}`);
      }
      expect(r.accuracy).toBeGreaterThanOrEqual(GATES[part].code);
      expect(r.categoryAccuracy).toBeGreaterThanOrEqual(GATES[part].category);
    });
  }

  it('reports confidence low on the fallback and high on a specific rule', () => {
    const r = evaluateCorpus([
      { id: 'a', message: 'something odd happened', code: 'COMFYUI_OOM' },
      { id: 'b', message: 'torch.OutOfMemoryError: CUDA out of memory', code: 'COMFYUI_GENERATION_ERROR' },
    ]);
    expect(r.misses.map((m) => [m.id, m.confidence])).toEqual([
      ['a', 'low'],
      ['b', 'high'],
    ]);
  });
});
