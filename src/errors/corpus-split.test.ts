import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { readCorpus } from './corpus.js';
import { partOfThread, sourceThread, splitCorpus, splitFilePath, splitRecord, threadBucket, type SplitRecord } from './corpus-split.js';
import { ERROR_REGISTRY, isErrorCode } from './codes.js';

const fixture = (name: string) => fileURLToPath(new URL(`../../test/errors/fixtures/${name}`, import.meta.url));
const pub = readCorpus(readFileSync(fixture('public.jsonl'), 'utf8'));
const ext = readCorpus(readFileSync(fixture('extended.jsonl'), 'utf8'));
const sourceOf = (l: (typeof ext)[number]) => String((l as { source?: unknown }).source);

describe('extended corpus', () => {
  it('has unique ids, a source address, a known code and the registry category on every line', () => {
    const ids = new Set<string>();
    for (const line of ext) {
      expect(ids.has(line.id), line.id).toBe(false);
      ids.add(line.id);
      expect(sourceOf(line), line.id).toMatch(/^https:\/\//);
      expect(isErrorCode(line.code), line.id).toBe(true);
      if (isErrorCode(line.code)) expect((line as { category?: unknown }).category, line.id).toBe(ERROR_REGISTRY[line.code].category);
      expect(String((line as { notes?: unknown }).notes ?? '').length, line.id).toBeGreaterThan(0);
    }
    for (const line of pub) expect(ids.has(line.id), line.id).toBe(false);
  });
});

describe('seen/unseen split', () => {
  it('normalises a source to its thread (no fragment, query, trailing slash or case)', () => {
    expect(sourceThread('https://GitHub.com/Comfy-Org/ComfyUI/issues/123#issuecomment-9')).toBe('github.com/comfy-org/comfyui/issues/123');
    expect(sourceThread('https://github.com/a/b/issues/1/?x=1')).toBe('github.com/a/b/issues/1');
  });

  it('puts a thread in a part by its hash alone, the same every time', () => {
    const t = 'github.com/comfy-org/comfyui/issues/123';
    expect(threadBucket(t)).toBe(threadBucket(t));
    expect(partOfThread(t)).toBe(threadBucket(t) < 2 ? 'unseen' : 'seen');
  });

  it('keeps every public line and every thread the public corpus quotes on the seen side', () => {
    const { seen, unseen } = splitCorpus(pub, ext);
    const publicThreads = new Set(pub.map((l) => sourceThread(sourceOf(l))));
    for (const l of pub) expect(seen).toContain(l);
    for (const l of unseen) expect(publicThreads.has(sourceThread(sourceOf(l))), l.id).toBe(false);
    expect(seen.length + unseen.length).toBe(pub.length + ext.length);
  });

  it('never splits a thread across the parts', () => {
    const { seen, unseen } = splitCorpus(pub, ext);
    const seenThreads = new Set(seen.map((l) => sourceThread(sourceOf(l))));
    for (const l of unseen) expect(seenThreads.has(sourceThread(sourceOf(l))), l.id).toBe(false);
  });

  it('matches the checked-in split.json (rerun `npm run eval:classifier -- --write-split` after adding lines)', () => {
    const recorded = JSON.parse(readFileSync(splitFilePath(), 'utf8')) as SplitRecord;
    expect(splitRecord(splitCorpus(pub, ext))).toEqual(recorded);
  });

  it('holds out a real share of the extended corpus', () => {
    const { unseen } = splitCorpus(pub, ext);
    expect(unseen.length).toBeGreaterThanOrEqual(Math.floor(ext.length * 0.3));
  });
});
