/**
 * `npm run eval:classifier [FILE]`: classifies the labelled corpus (default
 * `../shared/error-corpus/public.jsonl`, else the vendored copy) and prints accuracy per code, the
 * confusion table and every misclassified line. Always exits 0: it reports, the test gates.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { defaultCorpusPath, evaluateCorpus, formatCorpusReport, readCorpus } from './corpus.js';

const arg = process.argv[2];
const path = arg ? resolve(arg) : defaultCorpusPath();
const report = evaluateCorpus(readCorpus(readFileSync(path, 'utf8')));
process.stdout.write(`corpus: ${path}\n${formatCorpusReport(report)}\n`);
