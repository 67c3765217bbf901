/**
 * Fault injection: the SPEC grammar, its parser, and the injector that decides (deterministically
 * for a seed) whether an eligible event gets a fault, and counts every fault injected.
 *
 * SPEC: comma-separated `kind[@scope]=rate`, rate in 0..1 (the chance per eligible event; 1 means
 * always). `scope` limits HTTP faults to a route: `http503@/prompt=0.5`, `reset@POST/prompt=1`.
 */
import { SimConfigError } from './errors.js';
import { hash32, mulberry32 } from './prng.js';

export const FAULT_KINDS = [
  'refuse',
  'reset',
  'http500',
  'http502',
  'http503',
  'http429',
  'slow',
  'ws_drop',
  'ws_drop_silent',
  'stall',
  'crash',
  'disk_full',
  'oom',
  'missing_model',
  'missing_node',
] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

/** HTTP faults may carry a route scope. */
const SCOPABLE: ReadonlySet<FaultKind> = new Set(['reset', 'http500', 'http502', 'http503', 'http429', 'slow']);
const METHODS = new Set(['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS']);

/** One `kind[@scope]=rate` item. */
export interface FaultRule {
  kind: FaultKind;
  rate: number;
  /** Upper-case method the scope requires, if any. */
  method?: string;
  /** Path prefix (without `/api`) the scope requires, if any. */
  path?: string;
}

/** A parsed SPEC. */
export interface FaultSpec {
  rules: FaultRule[];
  /** The SPEC in canonical form (what `GET /_sim/faults` returns). */
  text: string;
}

function isKind(s: string): s is FaultKind {
  return (FAULT_KINDS as readonly string[]).includes(s);
}

function ruleText(r: FaultRule): string {
  const scope = r.path === undefined && r.method === undefined ? '' : `@${r.method ?? ''}${r.path ?? ''}`;
  return `${r.kind}${scope}=${r.rate}`;
}

/** Parses a fault SPEC; throws SimConfigError naming the bad part. */
export function parseFaultSpec(spec: string): FaultSpec {
  if (typeof spec !== 'string') throw new SimConfigError('faults', 'the fault spec must be a string');
  const rules: FaultRule[] = [];
  const seen = new Set<string>();
  for (const raw of spec.split(',')) {
    const part = raw.trim();
    if (part === '') continue;
    const eq = part.lastIndexOf('=');
    if (eq < 0) throw new SimConfigError('faults', `"${part}" must be kind=rate, e.g. oom=0.1`);
    const head = part.slice(0, eq).trim();
    const rateText = part.slice(eq + 1).trim();
    const at = head.indexOf('@');
    const kindText = (at < 0 ? head : head.slice(0, at)).trim();
    if (!isKind(kindText)) {
      throw new SimConfigError('faults', `"${part}": unknown fault kind "${kindText}" (known: ${FAULT_KINDS.join(', ')})`);
    }
    if (!/^(?:\d+(?:\.\d*)?|\.\d+)$/.test(rateText) || Number(rateText) > 1) {
      throw new SimConfigError('faults', `"${part}": rate "${rateText}" must be a number from 0 to 1`);
    }
    const rule: FaultRule = { kind: kindText, rate: Number(rateText) };
    if (at >= 0) {
      if (!SCOPABLE.has(kindText)) {
        throw new SimConfigError('faults', `"${part}": only HTTP faults (${[...SCOPABLE].join(', ')}) take an @scope`);
      }
      const scope = head.slice(at + 1).trim();
      const m = /^([A-Za-z]*)(\/\S*)?$/.exec(scope);
      const method = m?.[1]?.toUpperCase();
      if (!m || (method !== '' && method !== undefined && !METHODS.has(method)) || (method === '' && m[2] === undefined)) {
        throw new SimConfigError('faults', `"${part}": scope "${scope}" must be a path such as /prompt, optionally after a method (POST/prompt)`);
      }
      if (method) rule.method = method;
      if (m[2] !== undefined) rule.path = normalizeScopePath(m[2]);
    }
    const key = ruleText({ ...rule, rate: 0 });
    if (seen.has(key)) throw new SimConfigError('faults', `"${part}": ${key.replace(/=0$/, '')} is given twice`);
    seen.add(key);
    rules.push(rule);
  }
  return { rules, text: rules.map(ruleText).join(',') };
}

function normalizeScopePath(p: string): string {
  let path = p.startsWith('/api/') || p === '/api' ? p.slice(4) || '/' : p;
  if (path.length > 1 && path.endsWith('/')) path = path.slice(0, -1);
  return path;
}

function scopeMatches(rule: FaultRule, method: string | undefined, path: string | undefined): boolean {
  if (rule.method !== undefined && rule.method !== method) return false;
  if (rule.path === undefined) return true;
  if (path === undefined) return false;
  return path === rule.path || path.startsWith(rule.path === '/' ? '/' : `${rule.path}/`);
}

/** Decides and counts faults. One PRNG stream per kind, restarted whenever the SPEC changes. */
export class FaultInjector {
  private spec: FaultSpec = { rules: [], text: '' };
  private streams = new Map<FaultKind, () => number>();
  private readonly counts = new Map<FaultKind, number>();

  constructor(private readonly seed: number) {}

  /** Replaces the SPEC (already parsed) and restarts the random streams. */
  set(spec: FaultSpec): void {
    this.spec = spec;
    this.streams = new Map();
  }

  get text(): string {
    return this.spec.text;
  }

  /** The rule that governs `kind` for this event (first matching scope), if any. */
  rule(kind: FaultKind, method?: string, path?: string): FaultRule | undefined {
    return this.spec.rules.find((r) => r.kind === kind && scopeMatches(r, method, path));
  }

  /** Whether any rule of this kind is active with a rate above zero. */
  active(kind: FaultKind): boolean {
    return this.spec.rules.some((r) => r.kind === kind && r.rate > 0);
  }

  /**
   * Rolls the dice for one eligible event. Does not count: call `record` once the fault was
   * actually injected (some faults find nothing to act on).
   */
  roll(kind: FaultKind, method?: string, path?: string): boolean {
    const rule = this.rule(kind, method, path);
    if (!rule || rule.rate <= 0) return false;
    if (rule.rate >= 1) return true;
    let stream = this.streams.get(kind);
    if (!stream) {
      stream = mulberry32((this.seed ^ hash32(kind)) >>> 0);
      this.streams.set(kind, stream);
    }
    return stream() < rule.rate;
  }

  /** Counts one injected fault. */
  record(kind: FaultKind): void {
    this.counts.set(kind, (this.counts.get(kind) ?? 0) + 1);
  }

  /** Injected faults per kind (kinds never injected are absent). */
  snapshot(): Record<string, number> {
    return Object.fromEntries(this.counts);
  }

  resetCounts(): void {
    this.counts.clear();
  }
}
