/**
 * Layers are folders with one-way imports (DESIGN.md "Layers"). This test parses every source file
 * with the TypeScript compiler (the dashboard's `src/web/*.js` too) and reads every module edge:
 * static imports and re-exports, side-effect imports, dynamic `import()` and `import('…')` types.
 * It fails on an edge the layer table does not allow, on a value import where only types may cross,
 * on a relative import that resolves to no file, and on any import cycle, type-only ones included.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import ts from 'typescript';
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

/** One module edge found in a source file. */
interface Edge {
  /** The specifier as written; null for a dynamic `import()` of a computed value. */
  specifier: string | null;
  /** Erased at compile time: `import type`, `export type … from`, `import('…').T` in a type. */
  typeOnly: boolean;
  kind: 'import' | 'export' | 'side-effect' | 'dynamic' | 'import-type';
}

/** Every module edge of one file, read from its syntax tree (comments and strings cannot fool it). */
function edgesOf(fileName: string, text: string): Edge[] {
  const kind = fileName.endsWith('.js') ? ts.ScriptKind.JS : ts.ScriptKind.TS;
  const sf = ts.createSourceFile(fileName, text, ts.ScriptTarget.Latest, false, kind);
  const edges: Edge[] = [];
  const literal = (e: ts.Node | undefined): string | null => (e && ts.isStringLiteralLike(e) ? e.text : null);
  const visit = (node: ts.Node): void => {
    if (ts.isImportDeclaration(node)) {
      const clause = node.importClause;
      edges.push({
        specifier: literal(node.moduleSpecifier),
        // `import { type A }` is not type-only: under verbatimModuleSyntax the import stays and loads the module.
        typeOnly: clause?.isTypeOnly ?? false,
        kind: clause ? 'import' : 'side-effect',
      });
    } else if (ts.isExportDeclaration(node) && node.moduleSpecifier) {
      edges.push({ specifier: literal(node.moduleSpecifier), typeOnly: node.isTypeOnly, kind: 'export' });
    } else if (ts.isImportEqualsDeclaration(node) && ts.isExternalModuleReference(node.moduleReference)) {
      edges.push({ specifier: literal(node.moduleReference.expression), typeOnly: node.isTypeOnly, kind: 'import' });
    } else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword) {
      edges.push({ specifier: literal(node.arguments[0]), typeOnly: false, kind: 'dynamic' });
    } else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument)) {
      edges.push({ specifier: literal(node.argument.literal), typeOnly: true, kind: 'import-type' });
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return edges;
}

/**
 * The source file a relative specifier names (NodeNext: `./x.js` is `./x.ts` before the build), or
 * null when none exists. Bare specifiers (packages, `node:`) are not ours to check.
 */
function resolveRelative(from: string, specifier: string): string | null {
  const base = join(dirname(from), specifier);
  const candidates = base.endsWith('.js') ? [base.slice(0, -3) + '.ts', base] : [base];
  return candidates.find((c) => existsSync(c) && statSync(c).isFile()) ?? null;
}

/** The import cycles of a graph, one per strongly connected component (Tarjan), each as a path. */
function findCycles(graph: ReadonlyMap<string, ReadonlySet<string>>): string[][] {
  let counter = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const cycles: string[][] = [];
  const strongConnect = (v: string): void => {
    index.set(v, counter);
    low.set(v, counter);
    counter++;
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) {
        strongConnect(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v)!, index.get(w)!));
      }
    }
    if (low.get(v) !== index.get(v)) return;
    const component: string[] = [];
    let w: string;
    do {
      w = stack.pop()!;
      onStack.delete(w);
      component.push(w);
    } while (w !== v);
    if (component.length > 1 || graph.get(v)?.has(v)) cycles.push(cyclePath(graph, new Set(component)));
  };
  for (const v of [...graph.keys()].sort()) if (!index.has(v)) strongConnect(v);
  return cycles;
}

/** One concrete cycle inside a strongly connected component, from its first member back to it. */
function cyclePath(graph: ReadonlyMap<string, ReadonlySet<string>>, component: ReadonlySet<string>): string[] {
  const start = [...component].sort()[0]!;
  // Breadth-first from start's successors back to start, staying inside the component: a shortest cycle.
  const previous = new Map<string, string>();
  const queue = [start];
  while (queue.length > 0) {
    const v = queue.shift()!;
    for (const w of [...(graph.get(v) ?? [])].sort()) {
      if (!component.has(w) || previous.has(w)) continue;
      previous.set(w, v);
      if (w === start) {
        const path = [start];
        for (let u = previous.get(start)!; u !== start; u = previous.get(u)!) path.unshift(u);
        return [start, ...path.slice(0, -1), start];
      }
      queue.push(w);
    }
  }
  return [start, start];
}

function* sourceFiles(dir: string): Generator<string> {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) yield* sourceFiles(p);
    else if (name.endsWith('.ts') && !name.endsWith('.test.ts')) yield p;
    else if (name.endsWith('.js') && relative(SRC, p).startsWith('web/')) yield p;
  }
}

const layerOf = (rel: string): string | null => (rel.includes('/') ? rel.split('/')[0]! : null);

/** The whole of src/: every layering violation, and every file's resolved relative imports. */
function scan(): { violations: string[]; graph: Map<string, Set<string>>; edges: number } {
  const violations: string[] = [];
  const graph = new Map<string, Set<string>>();
  let edges = 0;
  for (const file of sourceFiles(SRC)) {
    const rel = relative(SRC, file);
    const layer = layerOf(rel);
    const allowed = layer ? ALLOWED[layer] : ['*']; // src/index.ts is the public surface: it may re-export anything
    const targets = new Set<string>();
    graph.set(rel, targets);
    if (!allowed) {
      violations.push(`${rel}: folder "${layer}" is not in the layer table`);
      continue;
    }
    for (const edge of edgesOf(file, readFileSync(file, 'utf8'))) {
      if (edge.specifier === null) {
        // A computed `import(x)` cannot be checked; only a layer that may import anything may use one.
        if (!allowed.includes('*')) violations.push(`${rel}: dynamic import of a computed specifier`);
        continue;
      }
      if (!edge.specifier.startsWith('.')) continue;
      const resolved = resolveRelative(file, edge.specifier);
      if (!resolved) {
        violations.push(`${rel}: '${edge.specifier}' resolves to no file`);
        continue;
      }
      edges++;
      const target = relative(SRC, resolved);
      targets.add(target);
      const to = layerOf(target) ?? '(root)';
      if (to === layer || allowed.includes('*')) continue;
      if (allowed.includes(to) || allowed.includes(target.replace(/\.(ts|js)$/, ''))) continue;
      if (allowed.includes(`type:${to}`) && edge.typeOnly) continue;
      violations.push(`${rel} ${edge.kind === 'import' ? 'imports' : `has a ${edge.kind} edge to`} ${edge.typeOnly ? 'types from ' : ''}${target}`);
    }
  }
  return { violations, graph, edges };
}

describe('import reader', () => {
  it('finds every kind of module edge and tells type-only ones apart', () => {
    const source = [
      "import './polyfill.js';",
      "import type { A } from './a.js';",
      "import { type B, c } from './b.js';",
      "import * as d from './d.js';",
      "export type { E } from './e.js';",
      "export * from './f.js';",
      "// import { fake } from './comment.js';",
      "const s = \"import x from './string.js'\";",
      "type G = import('./g.js').G;",
      "const h = await import('./h.js');",
      'const i = await import(name);',
      "import j = require('./j.js');",
    ].join('\n');
    expect(edgesOf('x.ts', source)).toEqual([
      { specifier: './polyfill.js', typeOnly: false, kind: 'side-effect' },
      { specifier: './a.js', typeOnly: true, kind: 'import' },
      { specifier: './b.js', typeOnly: false, kind: 'import' },
      { specifier: './d.js', typeOnly: false, kind: 'import' },
      { specifier: './e.js', typeOnly: true, kind: 'export' },
      { specifier: './f.js', typeOnly: false, kind: 'export' },
      { specifier: './g.js', typeOnly: true, kind: 'import-type' },
      { specifier: './h.js', typeOnly: false, kind: 'dynamic' },
      { specifier: null, typeOnly: false, kind: 'dynamic' },
      { specifier: './j.js', typeOnly: false, kind: 'import' },
    ]);
  });

  it('reads the browser modules of the dashboard as JavaScript', () => {
    expect(edgesOf('app.js', "import { api } from './api.js';\nexport { h } from './views.js';")).toEqual([
      { specifier: './api.js', typeOnly: false, kind: 'import' },
      { specifier: './views.js', typeOnly: false, kind: 'export' },
    ]);
  });

  it('reports each cycle once as a path, self-imports included, and nothing for a DAG', () => {
    const g = (edges: Record<string, string[]>) => new Map(Object.entries(edges).map(([k, v]) => [k, new Set(v)]));
    expect(findCycles(g({ a: ['b'], b: ['c'], c: ['a', 'd'], d: [], e: ['e'] }))).toEqual([
      ['a', 'b', 'c', 'a'],
      ['e', 'e'],
    ]);
    expect(findCycles(g({ a: ['b', 'c'], b: ['c'], c: [] }))).toEqual([]);
  });
});

describe('layering', () => {
  const { violations, graph, edges } = scan();

  it('reads the whole source tree, the dashboard included', () => {
    expect([...graph.keys()]).toContain('web/app.js');
    const fromApp = [...(graph.get('web/app.js') ?? [])];
    expect(fromApp.length).toBeGreaterThan(0);
    expect(fromApp.every((t) => t.startsWith('web/'))).toBe(true);
    expect(edges).toBeGreaterThan(graph.size);
  });

  it('imports point one way, as DESIGN.md lays the layers out', () => {
    expect(violations).toEqual([]);
  });

  it('has no import cycle, not even through type-only imports', () => {
    expect(findCycles(graph).map((c) => c.join(' -> '))).toEqual([]);
  });
});
