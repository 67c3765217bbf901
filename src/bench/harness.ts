/**
 * Benchmark plumbing: every `*.bench.ts` in this folder exports `run(): Promise<BenchResult>`;
 * `run.ts` finds them, prints a table per result and writes `bench-results/<name>.json`.
 */
export interface BenchResult {
  /** File-safe name, e.g. `protocol`. */
  name: string;
  title: string;
  /** One row per measurement; keys are the table's columns. */
  rows: Array<Record<string, string | number>>;
  notes?: string[];
}

/** Percentile of a numeric sample (nearest rank). */
export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  const idx = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[idx] ?? 0;
}

/** Rounds for display. */
export function round(n: number, digits = 1): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}

/** Renders rows as a fixed-width text table. */
export function formatTable(rows: Array<Record<string, string | number>>): string {
  if (rows.length === 0) return '(no rows)';
  const cols = [...new Set(rows.flatMap((r) => Object.keys(r)))];
  const width = cols.map((c) => Math.max(c.length, ...rows.map((r) => String(r[c] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(width[i] ?? 0)).join('  ');
  return [line(cols), line(width.map((w) => '-'.repeat(w))), ...rows.map((r) => line(cols.map((c) => String(r[c] ?? ''))))].join('\n');
}
