/**
 * `npm run eval:classifier`: classifies the labelled corpora and prints, for the "seen" part (the
 * public corpus and the extended threads rules may be written from) and the held-out "unseen" part
 * (see corpus-split.ts), code and category accuracy, accuracy per category and per code, and the
 * confusion table. Seen misses are listed; unseen misses only with `--show-unseen` (so rule work does
 * not look at them). Always exits 0: it reports, the tests gate.
 *
 *   npm run eval:classifier                     both parts
 *   npm run eval:classifier -- --show-unseen    also list the unseen misses
 *   npm run eval:classifier -- FILE             one corpus file, every miss listed
 *   npm run eval:classifier -- --write-split    rewrite test/errors/fixtures/split.json
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { defaultCorpusPath, evaluateCorpus, extendedCorpusPath, formatCorpusReport, readCorpus, type CorpusReport } from './corpus.js';
import { splitCorpus, splitFilePath, splitRecord } from './corpus-split.js';

const args = process.argv.slice(2);
const flags = new Set(args.filter((a) => a.startsWith('--')));
const file = args.find((a) => !a.startsWith('--'));

const pct = (r: CorpusReport, n: number) => `${n}/${r.total} (${((n / Math.max(r.total, 1)) * 100).toFixed(1)}%)`;

if (file) {
  const path = resolve(file);
  const report = evaluateCorpus(readCorpus(readFileSync(path, 'utf8')));
  process.stdout.write(`corpus: ${path}\n${formatCorpusReport(report)}\n`);
} else {
  const publicPath = defaultCorpusPath();
  const extendedPath = extendedCorpusPath();
  const split = splitCorpus(readCorpus(readFileSync(publicPath, 'utf8')), readCorpus(readFileSync(extendedPath, 'utf8')));
  if (flags.has('--write-split')) {
    writeFileSync(splitFilePath(), `${JSON.stringify(splitRecord(split), null, 2)}\n`);
    process.stdout.write(`wrote ${splitFilePath()}\n`);
  }
  const seen = evaluateCorpus(split.seen);
  const unseen = evaluateCorpus(split.unseen);
  const out: string[] = [
    `corpora: ${publicPath} (all seen) + ${extendedPath} (split by source thread)`,
    '',
    'part     lines  code right        category right',
    `seen     ${String(seen.total).padStart(5)}  ${pct(seen, seen.correct).padEnd(16)}  ${pct(seen, seen.categoryCorrect)}`,
    `unseen   ${String(unseen.total).padStart(5)}  ${pct(unseen, unseen.correct).padEnd(16)}  ${pct(unseen, unseen.categoryCorrect)}`,
    '',
    '=== seen (rules are written from this part) ===',
    formatCorpusReport(seen),
    '',
    '=== unseen (held out) ===',
    formatCorpusReport(unseen, { misses: flags.has('--show-unseen') }),
  ];
  process.stdout.write(`${out.join('\n')}\n`);
}
