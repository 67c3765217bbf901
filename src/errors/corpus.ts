/**
 * The labelled error corpus format (JSON Lines: `id`, `where`, `exception_type`, `message`, and
 * optionally `http_status`, `body`, `code`), its reading, and accuracy evaluation. Shared by
 * `comfyguard classify`, `npm run eval:classifier`, the corpus gate test and the benchmark.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { classify, type Classification, type ClassifyOptions } from './classify.js';
import { ERROR_CATEGORIES, ERROR_CODES, ERROR_REGISTRY, isErrorCode, type ErrorCategory, type ErrorCode } from './codes.js';
import type { Evidence } from './evidence.js';

const corpusLineSchema = z
  .object({
    id: z.union([z.string(), z.number()]).transform(String),
    where: z.string().nullish(),
    exception_type: z.string().nullish(),
    message: z.string(),
    http_status: z.number().int().nullish(),
    body: z.unknown().optional(),
    code: z.string().optional(),
  })
  .passthrough();

export type CorpusLine = z.infer<typeof corpusLineSchema>;

/** Parses one JSONL line; the error says what is wrong in plain words. */
export function parseCorpusLine(raw: string): { ok: true; line: CorpusLine } | { ok: false; error: string; id?: string } {
  let json: unknown;
  try {
    json = JSON.parse(raw) as unknown;
  } catch (e) {
    return { ok: false, error: `invalid JSON: ${e instanceof Error ? e.message : String(e)}` };
  }
  const parsed = corpusLineSchema.safeParse(json);
  if (!parsed.success) {
    const id = typeof json === 'object' && json !== null && 'id' in json ? String((json as { id: unknown }).id) : undefined;
    const issue = parsed.error.issues[0];
    const what = issue ? `${issue.path.join('.') || 'line'}: ${issue.message}` : 'not a corpus line';
    return { ok: false, error: `not a corpus line (${what})`, ...(id !== undefined ? { id } : {}) };
  }
  return { ok: true, line: parsed.data };
}

/** The classifier evidence for a corpus line (its `code` and `notes` are never inputs). */
export function corpusEvidence(line: CorpusLine): Evidence {
  return {
    kind: 'text',
    message: line.message,
    ...(line.where ? { where: line.where } : {}),
    ...(line.exception_type ? { exceptionType: line.exception_type } : {}),
    ...(typeof line.http_status === 'number' ? { httpStatus: line.http_status } : {}),
    ...(line.body !== undefined ? { body: line.body } : {}),
  };
}

/** Reads a whole JSONL text into lines, skipping blank ones; throws on the first bad line. */
export function readCorpus(text: string): CorpusLine[] {
  const out: CorpusLine[] = [];
  text.split('\n').forEach((raw, i) => {
    if (raw.trim() === '') return;
    const r = parseCorpusLine(raw);
    if (!r.ok) throw new Error(`line ${i + 1}: ${r.error}`);
    out.push(r.line);
  });
  return out;
}

/** Where the corpus is: `../shared/error-corpus/public.jsonl` next to the repository, else the vendored copy. */
export function defaultCorpusPath(): string {
  // This file is src/errors/corpus.ts or dist/errors/corpus.js: the repository root is two levels up.
  const root = new URL('../../', import.meta.url);
  const shared = fileURLToPath(new URL('../shared/error-corpus/public.jsonl', root));
  return existsSync(shared) ? shared : fileURLToPath(new URL('test/errors/fixtures/public.jsonl', root));
}

/** The extended corpus collected for issue 18 (`test/errors/fixtures/extended.jsonl`); it lives only in the repository. */
export function extendedCorpusPath(): string {
  return fileURLToPath(new URL('../../test/errors/fixtures/extended.jsonl', import.meta.url));
}

export interface CorpusMiss {
  id: string;
  expected: string;
  got: ErrorCode;
  rule: string;
  message: string;
  /** Whether the category was still right although the code was not. */
  categoryOk: boolean;
  confidence: Classification['confidence'];
}

export interface CorpusReport {
  total: number;
  correct: number;
  accuracy: number;
  /** lines whose classified category equals the expected code's category */
  categoryCorrect: number;
  categoryAccuracy: number;
  /** expected code -> { total, correct } */
  perCode: Record<string, { total: number; correct: number }>;
  /** expected category -> { total, correct } (correct: the classified category matches) */
  perCategory: Record<string, { total: number; correct: number }>;
  /** expected -> got -> count */
  confusion: Record<string, Record<string, number>>;
  misses: CorpusMiss[];
}

/** The expected category: the line's `category` when it names one, else the registry category of its code. */
function expectedCategoryOf(line: CorpusLine): string {
  const given = (line as { category?: unknown }).category;
  if (typeof given === 'string' && (ERROR_CATEGORIES as readonly string[]).includes(given)) return given;
  return line.code !== undefined && isErrorCode(line.code) ? ERROR_REGISTRY[line.code].category : 'unknown';
}

/** Classifies every labelled line and compares with its expected code and category. */
export function evaluateCorpus(lines: CorpusLine[], opts: ClassifyOptions = {}): CorpusReport {
  const perCode: CorpusReport['perCode'] = {};
  const perCategory: CorpusReport['perCategory'] = {};
  let categoryCorrect = 0;
  const confusion: CorpusReport['confusion'] = {};
  const misses: CorpusMiss[] = [];
  let total = 0;
  let correct = 0;
  for (const line of lines) {
    if (line.code === undefined) continue;
    total++;
    const c: Classification = classify(corpusEvidence(line), opts);
    const stats = (perCode[line.code] ??= { total: 0, correct: 0 });
    stats.total++;
    const expectedCategory = expectedCategoryOf(line);
    const catStats = (perCategory[expectedCategory] ??= { total: 0, correct: 0 });
    catStats.total++;
    const categoryOk = c.category === expectedCategory;
    if (categoryOk) {
      categoryCorrect++;
      catStats.correct++;
    }
    const row = (confusion[line.code] ??= {});
    row[c.code] = (row[c.code] ?? 0) + 1;
    if (c.code === line.code) {
      correct++;
      stats.correct++;
    } else {
      misses.push({ id: line.id, expected: line.code, got: c.code, rule: c.rule, message: line.message, categoryOk, confidence: c.confidence });
    }
  }
  return {
    total,
    correct,
    accuracy: total === 0 ? 0 : correct / total,
    categoryCorrect,
    categoryAccuracy: total === 0 ? 0 : categoryCorrect / total,
    perCode,
    perCategory,
    confusion,
    misses,
  };
}

const short = (code: string) => code.replace(/^COMFYUI_/, '');

const pct = (n: number, d: number) => (d === 0 ? 0 : (n / d) * 100).toFixed(1);

/**
 * Renders a report: code and category accuracy, accuracy per code and per category, the confusion table
 * (rows expected, columns got), and every miss unless `misses: false`.
 */
export function formatCorpusReport(r: CorpusReport, opts: { misses?: boolean } = {}): string {
  const out: string[] = [];
  out.push(
    `classified ${r.correct}/${r.total} correctly (${(r.accuracy * 100).toFixed(1)}%)`,
    `category right ${r.categoryCorrect}/${r.total} (${(r.categoryAccuracy * 100).toFixed(1)}%)`,
    '',
    'accuracy per category:',
  );
  for (const cat of [...ERROR_CATEGORIES, ...Object.keys(r.perCategory).filter((k) => !(ERROR_CATEGORIES as readonly string[]).includes(k))]) {
    const s = r.perCategory[cat as ErrorCategory];
    if (!s) continue;
    out.push(`  ${cat.padEnd(11)}  ${String(s.correct).padStart(3)}/${String(s.total).padEnd(3)}  ${pct(s.correct, s.total).padStart(5)}%`);
  }
  out.push('', 'accuracy per code:');
  const codes = [...new Set([...ERROR_CODES.filter((c) => r.perCode[c]), ...Object.keys(r.perCode)])];
  const w = Math.max(...codes.map((c) => c.length), 4);
  for (const c of codes) {
    const s = r.perCode[c];
    if (!s) continue;
    out.push(`  ${c.padEnd(w)}  ${String(s.correct).padStart(3)}/${String(s.total).padEnd(3)}  ${((s.correct / s.total) * 100).toFixed(1).padStart(5)}%`);
  }
  const cols = [...new Set(Object.values(r.confusion).flatMap((row) => Object.keys(row)))].sort(
    (a, b) => (isErrorCode(a) ? ERROR_CODES.indexOf(a) : 99) - (isErrorCode(b) ? ERROR_CODES.indexOf(b) : 99),
  );
  out.push('', 'confusion (rows: expected, columns: classified as):');
  const cw = cols.map((c) => Math.max(short(c).length, 3));
  const rw = Math.max(...codes.map((c) => short(c).length), 8);
  out.push(`  ${''.padEnd(rw)}  ${cols.map((c, i) => short(c).padStart(cw[i] ?? 3)).join(' ')}`);
  for (const c of codes) {
    const row = r.confusion[c] ?? {};
    out.push(`  ${short(c).padEnd(rw)}  ${cols.map((col, i) => String(row[col] ?? '.').padStart(cw[i] ?? 3)).join(' ')}`);
  }
  if (opts.misses === false) {
    out.push('', `misclassified: ${r.misses.length} (not listed)`);
    return out.join('\n');
  }
  out.push('', r.misses.length === 0 ? 'misclassified: none' : `misclassified (${r.misses.length}):`);
  for (const m of r.misses) {
    const text = m.message.replace(/\s+/g, ' ').slice(0, 160);
    const notes = [`rule ${m.rule}`, `confidence ${m.confidence}`, ...(m.categoryOk ? ['category right'] : [])].join(', ');
    out.push(`  ${m.id}: expected ${m.expected}, got ${m.got} (${notes})`, `      ${text}`);
  }
  return out.join('\n');
}
