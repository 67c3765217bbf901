import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { corpusEvidence, evaluateCorpus, formatCorpusReport, parseCorpusLine, readCorpus } from './corpus.js';
import { classify } from './classify.js';
import { ERROR_REGISTRY, isErrorCode } from './codes.js';

const VENDORED = fileURLToPath(new URL('../../test/errors/fixtures/public.jsonl', import.meta.url));
const SHARED = fileURLToPath(new URL('../../../shared/error-corpus/public.jsonl', import.meta.url));
const corpus = readCorpus(readFileSync(VENDORED, 'utf8'));

describe('public error corpus', () => {
  it('classifies at least 98% of the public corpus to its expected code (misses are printed)', () => {
    const report = evaluateCorpus(corpus);
    expect(report.total).toBe(corpus.length);
    if (report.accuracy < 0.98) throw new Error(`corpus accuracy below 98%:\n${formatCorpusReport(report)}`);
    expect(report.accuracy).toBeGreaterThanOrEqual(0.98);
  });

  it('labels every line with a known code whose registry category matches the corpus category', () => {
    for (const line of corpus) {
      expect(isErrorCode(line.code), line.id).toBe(true);
      const category = (line as { category?: unknown }).category;
      if (isErrorCode(line.code)) expect(category, line.id).toBe(ERROR_REGISTRY[line.code].category);
    }
  });

  it('decides the same with and without rendering words, and uses registry words when not rendering', () => {
    for (const line of corpus) {
      const full = classify(corpusEvidence(line));
      const bare = classify(corpusEvidence(line), { render: false });
      expect({ ...bare, message: full.message, hint: full.hint }, line.id).toEqual(full);
      expect(bare.message, line.id).toBe(ERROR_REGISTRY[bare.code].message);
    }
  });

  it('never uses the label or the notes as classifier input', () => {
    for (const line of corpus.slice(0, 20)) {
      const withLabel = classify(corpusEvidence(line));
      const flipped = classify(corpusEvidence({ ...line, code: 'INTERNAL_ERROR', notes: 'COMFYUI_OOM out of memory' } as typeof line));
      expect(flipped.code, line.id).toBe(withLabel.code);
    }
  });

  it.runIf(existsSync(SHARED))('vendored copy is identical to ../shared/error-corpus/public.jsonl', () => {
    expect(readFileSync(VENDORED, 'utf8')).toBe(readFileSync(SHARED, 'utf8'));
  });

  it('parses corpus lines strictly enough to name what is wrong', () => {
    expect(parseCorpusLine('{"id":"x","message":"boom"}')).toMatchObject({ ok: true, line: { id: 'x', message: 'boom' } });
    expect(parseCorpusLine('{"id":7,"message":"boom","http_status":null,"exception_type":null}')).toMatchObject({ ok: true, line: { id: '7' } });
    const noMessage = parseCorpusLine('{"id":"x"}');
    expect(noMessage.ok).toBe(false);
    if (!noMessage.ok) expect(noMessage.error).toMatch(/message/);
    const broken = parseCorpusLine('{"id":');
    expect(broken.ok).toBe(false);
    if (!broken.ok) expect(broken.error).toMatch(/invalid JSON/);
  });

  it('prints per-code accuracy, a confusion table and the misses', () => {
    const text = formatCorpusReport(evaluateCorpus([...corpus.slice(0, 5), { id: 'fake', message: 'CUDA out of memory', code: 'COMFYUI_DISK_FULL' }]));
    expect(text).toMatch(/accuracy per code/);
    expect(text).toMatch(/confusion/);
    expect(text).toMatch(/fake: expected COMFYUI_DISK_FULL, got COMFYUI_OOM/);
  });
});
