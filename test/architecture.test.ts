/**
 * Layers are folders with one-way imports (DESIGN.md "Layers"). This test reads every source file's
 * relative imports and fails on an edge the table does not allow, or on a value import where only
 * types may cross.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';
import { describe, expect, it } from 'vitest';

const SRC = join(import.meta.dirname, '..', 'src');

/**
 * layer -> layers it may import. `type:` edges may carry types only; `jobs/types` is the job model
 * (plain data and its constants), which the store, recovery and telemetry layers share.
 */
const ALLOWED: Record<string, string[]> = {
  util: [],
  comfy: ['util'],
  errors: ['util', 'type:comfy'],
  resilience: ['util', 'errors', 'comfy'],
  pool: ['util', 'comfy', 'resilience', 'errors'],
  recovery: ['util', 'comfy', 'errors', 'type:jobs', 'jobs/types'],
  queue: ['util'],
  store: ['util', 'type:jobs', 'jobs/types'],
  jobs: ['util', 'comfy', 'errors', 'resilience', 'pool', 'recovery', 'store', 'queue'],
  telemetry: ['util', 'type:jobs', 'jobs/types', 'errors'],
  sim: ['util', 'type:comfy', 'comfy/validate', 'comfy/pyfmt'],
  server: ['util', 'comfy', 'errors', 'jobs', 'telemetry'],
  cli: ['util', 'comfy', 'errors', 'jobs', 'queue', 'server', 'sim', 'telemetry', 'store', 'pool', 'resilience'],
  bench: ['*'],
  web: [],
};

function* sourceFiles(dir: string): Generator<string> {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) yield* sourceFiles(p);
    else if (name.endsWith('.ts') && !name.endsWith('.test.ts')) yield p;
  }
}

const IMPORT = /^\s*(import|export)\s+(type\s+)?[^'";]*?from\s+'(\.[^']+)'/gm;

describe('layering', () => {
  it('imports point one way, as DESIGN.md lays the layers out', () => {
    const violations: string[] = [];
    for (const file of sourceFiles(SRC)) {
      const rel = relative(SRC, file);
      const layer = rel.includes('/') ? rel.split('/')[0]! : null;
      if (!layer) continue; // src/index.ts is the public surface: it may re-export anything
      const allowed = ALLOWED[layer];
      if (!allowed) {
        violations.push(`${rel}: folder "${layer}" is not in the layer table`);
        continue;
      }
      for (const m of readFileSync(file, 'utf8').matchAll(IMPORT)) {
        const typeOnly = Boolean(m[2]);
        const target = relative(SRC, normalize(join(dirname(file), m[3]!)));
        const to = target.includes('/') ? target.split('/')[0]! : '(root)';
        if (to === layer || allowed.includes('*')) continue;
        if (allowed.includes(to) || allowed.includes(target.replace(/\.js$/, ''))) continue;
        if (allowed.includes(`type:${to}`) && typeOnly) continue;
        violations.push(`${rel} imports ${typeOnly ? 'types from ' : ''}${target}`);
      }
    }
    expect(violations).toEqual([]);
  });
});
