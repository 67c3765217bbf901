/**
 * `comfyguard classify [FILE]`: reads error evidence as JSON Lines in the corpus format (`id`,
 * `where`, `exception_type`, `message`, optional `http_status`, `body`) from FILE or stdin and
 * writes one JSON line per input: `{"id","code","category","retryable"}`. A bad line gives
 * `{"line": N, "error": "..."}` (saying what a line should look like) and the run continues; the
 * exit code is 1 if any line was bad. Input whose first line is not a JSON object (a pasted
 * error message or traceback) is classified as one plain-text message, with its message and hint.
 */
import type { Command } from 'commander';
import { createReadStream, readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import type { Readable, Writable } from 'node:stream';
import { classify, compileRules, type ClassifierRules } from '../../errors/index.js';
import { corpusEvidence, parseCorpusLine } from '../../errors/corpus.js';
import { UsageError, withUsage } from '../usage.js';

export interface ClassifyStreamOptions {
  rules?: ClassifierRules;
  /** Also write the rule id, message and hint of each classification. */
  verbose?: boolean;
}

/** What one input line should look like, for the error of a bad line. */
export const EXPECTED_LINE = 'expected one JSON object per line, e.g. {"id":"1","where":"execution","exception_type":"torch.OutOfMemoryError","message":"CUDA out of memory"}, or plain text (the whole input as one message)';

/** Pasted text is classified whole; more than this is cut (the deciding line is near the top or the end of a traceback). */
const MAX_TEXT = 256 * 1024;

function isJsonObjectLine(raw: string): boolean {
  const t = raw.trim();
  if (!t.startsWith('{')) return false;
  try {
    const v = JSON.parse(t) as unknown;
    return typeof v === 'object' && v !== null && !Array.isArray(v);
  } catch {
    return false;
  }
}

/** Classifies a JSONL stream line by line (memory stays flat for any input size), or pasted plain text as one message. */
export async function classifyStream(input: Readable, output: Writable, opts: ClassifyStreamOptions = {}): Promise<{ lines: number; bad: number }> {
  const rl = createInterface({ input, crlfDelay: Infinity });
  let lineNo = 0;
  let lines = 0;
  let bad = 0;
  let mode: 'jsonl' | 'text' | null = null;
  let text = '';
  const write = async (out: Record<string, unknown>) => {
    if (!output.write(`${JSON.stringify(out)}\n`)) await new Promise<void>((resolve) => output.once('drain', () => resolve()));
  };
  for await (const raw of rl) {
    lineNo++;
    if (mode === null) {
      if (raw.trim() === '') continue;
      mode = isJsonObjectLine(raw) ? 'jsonl' : 'text';
    }
    if (mode === 'text') {
      if (text.length < MAX_TEXT) text += `${raw}\n`;
      continue;
    }
    if (raw.trim() === '') continue;
    lines++;
    const parsed = parseCorpusLine(raw);
    let out: Record<string, unknown>;
    if (!parsed.ok) {
      bad++;
      out = { line: lineNo, ...(parsed.id !== undefined ? { id: parsed.id } : {}), error: `${parsed.error}; ${EXPECTED_LINE}` };
    } else {
      // The JSON line carries no words unless verbose: skip rendering them.
      const c = classify(corpusEvidence(parsed.line), { ...(opts.rules ? { rules: opts.rules } : {}), render: opts.verbose === true });
      out = { id: parsed.line.id, code: c.code, category: c.category, retryable: c.retryable };
      if (opts.verbose) Object.assign(out, { rule: c.rule, message: c.message, hint: c.hint });
    }
    await write(out);
  }
  if (mode === 'text') {
    // A person pasted an error: they want the words, not only the code.
    const c = classify({ kind: 'text', message: text.slice(0, MAX_TEXT).trimEnd() }, { ...(opts.rules ? { rules: opts.rules } : {}), render: true });
    await write({ id: 'text', code: c.code, category: c.category, retryable: c.retryable, ...(opts.verbose ? { rule: c.rule } : {}), message: c.message, hint: c.hint });
    lines = 1;
  }
  return { lines, bad };
}

function loadRules(path: string): ClassifierRules {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new UsageError(`--rules: cannot read ${path}: ${e instanceof Error ? e.message : String(e)}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text) as unknown;
  } catch (e) {
    throw new UsageError(`--rules: ${path} is not JSON: ${e instanceof Error ? e.message : String(e)}`);
  }
  try {
    return compileRules(json);
  } catch (e) {
    throw new UsageError(`--rules: ${e instanceof Error ? e.message : String(e)}`);
  }
}

async function run(file: string | undefined, flags: { rules?: string; verbose?: boolean }): Promise<void> {
  const rules = flags.rules ? loadRules(flags.rules) : undefined;
  let input: Readable;
  if (file && file !== '-') {
    const stream = createReadStream(file);
    // Surface a missing file as bad usage, before any output.
    await new Promise<void>((resolve, reject) => {
      stream.once('open', () => resolve());
      stream.once('error', (e) => reject(new UsageError(`cannot read ${file}: ${e.message}`)));
    });
    input = stream;
  } else {
    input = process.stdin;
  }
  const { bad } = await classifyStream(input, process.stdout, { ...(rules ? { rules } : {}), ...(flags.verbose ? { verbose: true } : {}) });
  if (bad > 0) {
    process.stderr.write(`comfyguard classify: ${bad} bad line(s)\n`);
    process.exitCode = 1;
  }
}

/** Registers `classify`. */
export function register(program: Command): void {
  program
    .command('classify')
    .description('classify error evidence into comfyguard error codes: JSON Lines (id, where, exception_type, message, http_status), or a pasted error message as plain text')
    .argument('[file]', 'JSONL file to read (default: stdin)')
    .option('--rules <file>', 'JSON file with custom classifier rules (see README "Errors")')
    .option('--verbose', 'also print the matching rule, the message and the hint')
    .action(withUsage('classify', run));
}
