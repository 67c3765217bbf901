/**
 * `npm run bench [name...]`: runs every benchmark (or the named ones), prints tables and writes JSON
 * results under `bench-results/`.
 */
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { formatTable, type BenchResult } from './harness.js';

const here = dirname(fileURLToPath(import.meta.url));
const wanted = process.argv.slice(2);
const files = readdirSync(here)
  .filter((f) => f.endsWith('.bench.js'))
  .filter((f) => wanted.length === 0 || wanted.includes(f.replace(/\.bench\.js$/, '')))
  .sort();

if (files.length === 0) {
  process.stderr.write(`bench: no benchmark matches ${wanted.join(', ')}\n`);
  process.exit(2);
}

const outDir = join(process.cwd(), 'bench-results');
mkdirSync(outDir, { recursive: true });
const all: BenchResult[] = [];
for (const f of files) {
  const mod = (await import(join(here, f))) as { run: () => Promise<BenchResult> };
  const started = Date.now();
  const result = await mod.run();
  all.push(result);
  process.stdout.write(`\n== ${result.title} (${((Date.now() - started) / 1000).toFixed(1)} s)\n${formatTable(result.rows)}\n`);
  for (const n of result.notes ?? []) process.stdout.write(`  note: ${n}\n`);
  writeFileSync(join(outDir, `${result.name}.json`), JSON.stringify({ ...result, at: new Date().toISOString(), node: process.version }, null, 2) + '\n');
}
process.stdout.write(`\nwrote ${all.length} result file(s) to ${outDir}\n`);
