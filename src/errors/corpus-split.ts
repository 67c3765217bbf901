/**
 * The seen / unseen split of the labelled corpora (issue 18). Rules are written from the "seen" part
 * only; the "unseen" part is held out to measure how the rules do on errors they were not written
 * from.
 *
 * The unit is the source thread (an issue, a pull request, a page): every line from one thread lands in
 * the same part, so two quotes from one report never sit on both sides. The part is a pure function of the
 * thread's address (SHA-256 of the normalised URL), so it is stable, needs no state and cannot be tuned
 * by looking at results. Threads that the vendored public corpus already quotes are "seen" whatever their
 * hash: the existing rules were written from them. The checked-in list
 * `test/errors/fixtures/split.json` records the outcome and a test keeps it equal to this function.
 */
import { createHash } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import type { CorpusLine } from './corpus.js';

export type CorpusPart = 'seen' | 'unseen';

/** Share of threads held out (by hash): 2 in 5. */
export const UNSEEN_BUCKETS = 2;
export const BUCKETS = 5;

/** The thread a source address belongs to: lower-cased host and path, no fragment, query or trailing slash. */
export function sourceThread(source: string): string {
  const trimmed = source.trim();
  try {
    const u = new URL(trimmed);
    return `${u.host.toLowerCase()}${u.pathname.replace(/\/+$/, '')}`.toLowerCase();
  } catch {
    return trimmed.replace(/[#?].*$/, '').replace(/\/+$/, '').toLowerCase();
  }
}

/** The hash bucket (0..BUCKETS-1) of a thread. */
export function threadBucket(thread: string): number {
  const digest = createHash('sha256').update(thread, 'utf8').digest();
  return digest.readUInt32BE(0) % BUCKETS;
}

/** The part a thread falls in by hash alone. */
export function partOfThread(thread: string): CorpusPart {
  return threadBucket(thread) < UNSEEN_BUCKETS ? 'unseen' : 'seen';
}

const sourceOf = (line: CorpusLine): string | undefined => {
  const s = (line as { source?: unknown }).source;
  return typeof s === 'string' && s.trim() !== '' ? s : undefined;
};

export interface CorpusSplit {
  seen: CorpusLine[];
  unseen: CorpusLine[];
}

/**
 * Splits the corpora: every `pinnedSeen` line (the public corpus) is seen, and so is any other line whose
 * thread a pinned line quotes; the rest go by `partOfThread`. Lines without a source are seen.
 */
export function splitCorpus(pinnedSeen: readonly CorpusLine[], others: readonly CorpusLine[]): CorpusSplit {
  const pinnedThreads = new Set(pinnedSeen.map(sourceOf).filter((s): s is string => s !== undefined).map(sourceThread));
  const seen: CorpusLine[] = [...pinnedSeen];
  const unseen: CorpusLine[] = [];
  for (const line of others) {
    const source = sourceOf(line);
    if (source === undefined) {
      seen.push(line);
      continue;
    }
    const thread = sourceThread(source);
    if (pinnedThreads.has(thread) || partOfThread(thread) === 'seen') seen.push(line);
    else unseen.push(line);
  }
  return { seen, unseen };
}

/** The checked-in record of the split: `test/errors/fixtures/split.json`. */
export function splitFilePath(): string {
  return fileURLToPath(new URL('../../test/errors/fixtures/split.json', import.meta.url));
}

export interface SplitRecord {
  rule: string;
  seen: string[];
  unseen: string[];
}

/** The split as written to split.json: the ids of each part, sorted. */
export function splitRecord(split: CorpusSplit): SplitRecord {
  const ids = (lines: readonly CorpusLine[]) => lines.map((l) => l.id).sort();
  return {
    rule: `unseen: extended-corpus lines whose source thread hashes (sha256 of the normalised URL, first 4 bytes mod ${BUCKETS}) below ${UNSEEN_BUCKETS}, unless the public corpus quotes the thread; everything else is seen`,
    seen: ids(split.seen),
    unseen: ids(split.unseen),
  };
}
