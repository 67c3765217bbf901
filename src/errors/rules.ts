/**
 * Classifier rules as data: the spec users write (in JSON or YAML-turned-JSON), its validation, and
 * its compilation into a matcher. The built-in table lives in `default-rules.ts`; its order and tie
 * rules are documented there.
 *
 * A rule matches when every condition in `when` holds (AND); a list inside one condition matches
 * when any element does (OR). Regular expressions are JavaScript syntax, compiled case-insensitive
 * and multi-line (`im`). The first matching rule in table order decides the code.
 */
import { z } from 'zod';
import { AnchorScanner, requiredLiteral, topLevelAlternatives } from './anchors.js';
import { ERROR_CODES, ERROR_REGISTRY, type ErrorCategory, type ErrorCode } from './codes.js';
import { DEFAULT_RULES } from './default-rules.js';
import { EVIDENCE_KINDS, type Facts } from './evidence.js';
import type { RuleSpec } from './rule-spec.js';

export type { RuleSpec, RuleWhen } from './rule-spec.js';

/** What users pass in configuration: a list of rules, or rules plus built-in rule ids to disable. */
export type RulesConfig = RuleSpec[] | { rules?: RuleSpec[]; disable?: string[]; defaults?: boolean };

/** Thrown by `compileRules` for invalid configuration; `issues` names each bad rule and field. */
export class ClassifierRulesError extends Error {
  readonly code = 'COMFYGUARD_INVALID_CLASSIFIER_RULES';
  readonly issues: string[];
  constructor(issues: string[]) {
    super(`invalid classifier rules: ${issues.join('; ')}`);
    this.name = 'ClassifierRulesError';
    this.issues = issues;
  }
}

const listOf = <T extends z.ZodTypeAny>(t: T) => z.union([t, z.array(t)]).transform((v) => (Array.isArray(v) ? v : [v]) as Array<z.infer<T>>);
const statusItem = z.union([z.number().int(), z.string().regex(/^(?:[1-5]xx|\d{3,4}(?:-\d{3,4})?)$/, 'a status like 503, "5xx" or "520-527"')]);

const whenSchema = z
  .object({
    kind: listOf(z.enum(EVIDENCE_KINDS)).optional(),
    where: listOf(z.string()).optional(),
    exceptionType: z.string().optional(),
    message: listOf(z.string()).optional(),
    messageAll: listOf(z.string()).optional(),
    notMessage: listOf(z.string()).optional(),
    httpStatus: listOf(statusItem).optional(),
    hasHttpStatus: z.boolean().optional(),
    transportCode: listOf(z.string()).optional(),
    wsCloseCode: listOf(z.union([z.number().int(), z.string().regex(/^\d{4}(?:-\d{4})?$/, 'a close code like 1006 or "4000-4999"')])).optional(),
    timeoutPhase: listOf(z.string()).optional(),
    validationType: listOf(z.string()).optional(),
    nodeType: z.string().optional(),
    input: z.string().optional(),
    value: z.string().optional(),
    path: z.string().optional(),
    byOwner: z.boolean().optional(),
  })
  .strict();

const ruleSchema = z
  .object({
    id: z.string().min(1).max(200),
    code: z.enum(ERROR_CODES),
    when: whenSchema.default({}),
    hint: z.string().max(1000).optional(),
    retryable: z.boolean().optional(),
    confidence: z.enum(['high', 'low']).optional(),
    before: z.string().optional(),
    after: z.string().optional(),
  })
  .strict();

const rulesListSchema = z.array(ruleSchema);
const configObjectSchema = z
  .object({
    rules: rulesListSchema.default([]),
    disable: z.array(z.string()).default([]),
    /** false: only the config rules (a complete replacement of the built-in table). */
    defaults: z.boolean().default(true),
  })
  .strict();

/**
 * A compiled text pattern. `re` is the whole regex; `alts` are its top-level alternatives compiled
 * one by one, each with the anchor id that must have been found for it to possibly match (-1: always
 * run). Testing only the alternatives whose anchor occurred keeps the per-text cost to a few small
 * regex runs, however long the alternations are.
 */
export interface Pattern {
  re: RegExp;
  alts: ReadonlyArray<{ re: RegExp; anchor: number }>;
  source: string;
}

type Range = readonly [number, number];

/** One compiled rule. */
export interface CompiledRule {
  readonly id: string;
  readonly code: ErrorCode;
  readonly category: ErrorCategory;
  readonly retryable: boolean;
  readonly confidence: 'high' | 'low';
  readonly hint: string | undefined;
  readonly source: 'builtin' | 'config';
  readonly spec: RuleSpec;
  readonly kinds: ReadonlySet<string> | null;
  readonly where: ReadonlySet<string> | null;
  readonly exceptionType: RegExp | null;
  readonly message: readonly Pattern[] | null;
  readonly messageAll: readonly Pattern[] | null;
  readonly notMessage: readonly Pattern[] | null;
  readonly httpStatus: readonly Range[] | null;
  readonly hasHttpStatus: boolean | undefined;
  readonly transportCode: ReadonlySet<string> | null;
  readonly wsCloseCode: readonly Range[] | null;
  readonly timeoutPhase: ReadonlySet<string> | null;
  readonly validationType: ReadonlySet<string> | null;
  readonly nodeType: RegExp | null;
  readonly input: RegExp | null;
  readonly value: RegExp | null;
  readonly path: RegExp | null;
  readonly byOwner: boolean | undefined;
  /** Anchor ids of which one must be found for the rule's text condition to hold (null: no such gate). */
  readonly gate: Int32Array | null;
}

const kRules = Symbol.for('comfyguard.ClassifierRules');
const KIND_INDEX = new Map<string, number>(EVIDENCE_KINDS.map((k, i) => [k, i]));
const WHERE_INDEX = new Map<string, number>(['execution_error', 'http_response', 'ws', 'log', 'python_exception', 'client_side', 'unknown'].map((w, i) => [w, i]));

/** A compiled, immutable rule table. Build with `compileRules`; pass to `classify` as `opts.rules`. */
export class ClassifierRules {
  readonly rules: readonly CompiledRule[];
  readonly #scanner: AnchorScanner;
  /** Scratch buffer for the anchor scan; classify is synchronous, so one per table is enough. */
  readonly #found: Uint8Array;
  /** The anchors found by the last scan, each once. */
  readonly #foundList: Int32Array;
  /** Per rule: 1 when one of its gate anchors was found by the last scan. */
  readonly #gateOpen: Uint8Array;
  /** Per anchor: the rules whose gate contains it. */
  readonly #anchorRules: Int32Array[];
  readonly #byCode = new Map<string, CompiledRule[]>();
  readonly #candidates = new Map<number, Int32Array>();

  /** @internal use `compileRules`. */
  constructor(rules: CompiledRule[], anchors: string[]) {
    this.rules = Object.freeze(rules);
    this.#scanner = new AnchorScanner(anchors);
    this.#found = new Uint8Array(Math.max(1, anchors.length));
    this.#foundList = new Int32Array(Math.max(1, anchors.length));
    this.#gateOpen = new Uint8Array(Math.max(1, rules.length));
    const byAnchor: number[][] = anchors.map(() => []);
    rules.forEach((r, i) => {
      if (r.gate !== null) for (const a of r.gate) byAnchor[a]?.push(i);
    });
    this.#anchorRules = byAnchor.map((l) => Int32Array.from(l));
    for (const r of rules) {
      const list = this.#byCode.get(r.code) ?? [];
      list.push(r);
      this.#byCode.set(r.code, list);
    }
    Object.defineProperty(this, kRules, { value: true });
  }

  /** The rules that assign `code`, in table order. */
  rulesFor(code: string): readonly CompiledRule[] {
    return this.#byCode.get(code) ?? [];
  }

  /** Cross-realm safe check. */
  static [Symbol.hasInstance](x: unknown): boolean {
    return typeof x === 'object' && x !== null && (x as Record<symbol, unknown>)[kRules] === true;
  }

  /** The rule ids in evaluation order. */
  get ids(): string[] {
    return this.rules.map((r) => r.id);
  }

  /** Index of the first rule that matches `facts`, or -1. Rules at index >= `limit` are not tried. */
  firstMatch(facts: Facts, limit = this.rules.length): number {
    const found = this.#found;
    const n = this.#scanner.scan(facts.text, found, this.#foundList);
    // Open the gates of the rules whose text condition can hold: the rules using a found anchor.
    const open = this.#gateOpen;
    open.fill(0);
    for (let k = 0; k < n; k++) {
      const rules = this.#anchorRules[this.#foundList[k] as number];
      if (rules !== undefined) for (let j = 0; j < rules.length; j++) open[rules[j] as number] = 1;
    }
    const candidates = this.#candidatesFor(facts);
    for (let k = 0; k < candidates.length; k++) {
      const i = candidates[k] as number;
      if (i >= limit) break;
      const r = this.rules[i] as CompiledRule;
      if (r.gate !== null && open[i] === 0) continue;
      if (ruleMatches(r, facts, found)) {
        this.lastMatch = matched.re;
        this.lastMatchIndex = matched.index < 0 ? this.#sameCodeTextIndex(r, facts.text) : matched.index;
        return i;
      }
    }
    return -1;
  }

  /**
   * The text regex (one alternative) that decided the last successful `firstMatch`, or null when
   * that rule matched on structured fields only. Lets the caller quote the relevant line.
   */
  lastMatch: RegExp | null = null;
  /** Where `lastMatch` matched in the text (-1 when there is no text match). */
  lastMatchIndex = -1;

  /**
   * For a rule that decided without looking at the text (e.g. by exception type): where another
   * rule of the same code finds its text, so the caller can still quote the relevant line. Uses the
   * anchors of the scan just made.
   */
  #sameCodeTextIndex(rule: CompiledRule, text: string): number {
    const found = this.#found;
    for (const r of this.rulesFor(rule.code)) {
      for (const list of [r.message, r.messageAll]) {
        if (list === null) continue;
        for (const p of list) {
          // The leftmost match of the pattern: the line a reader would point at.
          let best = -1;
          for (const a of p.alts) {
            if (a.anchor >= 0 && found[a.anchor] === 0) continue;
            const m = a.re.exec(text);
            if (m !== null && (best < 0 || m.index < best)) best = m.index;
          }
          if (best >= 0) return best;
        }
      }
    }
    return -1;
  }

  /**
   * The rules that can possibly match facts of this shape (kind, where, and which structured
   * fields are present), cached per shape: most rules are excluded without looking at them.
   */
  #candidatesFor(f: Facts): Int32Array {
    // A numeric shape key: cheaper than a string on the hot path.
    const kind = KIND_INDEX.get(f.kind) ?? 15;
    const where = WHERE_INDEX.get(f.where) ?? 15;
    const key =
      kind |
      (where << 4) |
      ((f.httpStatus !== undefined ? 1 : 0) << 8) |
      ((f.transportCode !== '' ? 1 : 0) << 9) |
      ((f.wsCloseCode !== undefined ? 1 : 0) << 10) |
      ((f.timeoutPhase !== '' ? 1 : 0) << 11) |
      ((f.validationType !== '' ? 1 : 0) << 12) |
      ((f.byOwner === undefined ? 0 : f.byOwner ? 1 : 2) << 13) |
      ((f.exceptionType !== '' ? 1 : 0) << 15) |
      ((f.nodeType !== '' ? 1 : 0) << 16) |
      ((f.input !== '' ? 1 : 0) << 17);
    let list = this.#candidates.get(key);
    if (list === undefined) {
      const out: number[] = [];
      this.rules.forEach((r, i) => {
        if (r.kinds !== null && !r.kinds.has(f.kind)) return;
        if (r.where !== null && !r.where.has(f.where)) return;
        if (r.hasHttpStatus !== undefined && (f.httpStatus !== undefined) !== r.hasHttpStatus) return;
        if (r.httpStatus !== null && f.httpStatus === undefined) return;
        if (r.transportCode !== null && f.transportCode === '') return;
        if (r.wsCloseCode !== null && f.wsCloseCode === undefined) return;
        if (r.timeoutPhase !== null && f.timeoutPhase === '') return;
        if (r.validationType !== null && f.validationType === '') return;
        if (r.byOwner !== undefined && f.byOwner !== r.byOwner) return;
        if (r.exceptionType !== null && f.exceptionType === '') return;
        if (r.nodeType !== null && f.nodeType === '') return;
        if (r.input !== null && f.input === '') return;
        out.push(i);
      });
      list = Int32Array.from(out);
      // Shapes are few (kinds x where x present fields); the bound only guards against abuse.
      if (this.#candidates.size < 4096 && kind !== 15 && where !== 15) this.#candidates.set(key, list);
    }
    return list;
  }
}

/**
 * The alternative that matched (null: none), with where it matched in `matchAt.index`; anchors
 * not found rule alternatives out without running them.
 */
function testPattern(p: Pattern, text: string, found: Uint8Array): RegExp | null {
  const alts = p.alts;
  for (let i = 0; i < alts.length; i++) {
    const a = alts[i] as { re: RegExp; anchor: number };
    if (a.anchor >= 0 && found[a.anchor] === 0) continue;
    const m = a.re.exec(text);
    if (m !== null) {
      matchAt.index = m.index;
      return a.re;
    }
  }
  return null;
}

/** Where the last successful testPattern matched. */
const matchAt = { index: -1 };

function inRanges(n: number | undefined, ranges: readonly Range[]): boolean {
  if (n === undefined) return false;
  for (const [lo, hi] of ranges) if (n >= lo && n <= hi) return true;
  return false;
}

/** Rule matching; on success `matched.re` is the text regex that matched first (null when none was needed). */
const matched: { re: RegExp | null; index: number } = { re: null, index: -1 };

function ruleMatches(r: CompiledRule, f: Facts, found: Uint8Array): boolean {
  if (r.kinds !== null && !r.kinds.has(f.kind)) return false;
  if (r.where !== null && !r.where.has(f.where)) return false;
  if (r.hasHttpStatus !== undefined && (f.httpStatus !== undefined) !== r.hasHttpStatus) return false;
  if (r.httpStatus !== null && !inRanges(f.httpStatus, r.httpStatus)) return false;
  if (r.transportCode !== null && !r.transportCode.has(f.transportCode)) return false;
  if (r.wsCloseCode !== null && !inRanges(f.wsCloseCode, r.wsCloseCode)) return false;
  if (r.timeoutPhase !== null && !r.timeoutPhase.has(f.timeoutPhase)) return false;
  if (r.validationType !== null && !r.validationType.has(f.validationType)) return false;
  if (r.byOwner !== undefined && f.byOwner !== r.byOwner) return false;
  if (r.exceptionType !== null && (f.exceptionType === '' || !r.exceptionType.test(f.exceptionType))) return false;
  if (r.nodeType !== null && (f.nodeType === '' || !r.nodeType.test(f.nodeType))) return false;
  if (r.input !== null && (f.input === '' || !r.input.test(f.input))) return false;
  if (r.value !== null && !r.value.test(f.value)) return false;
  if (r.path !== null && !r.path.test(f.path)) return false;
  let first: RegExp | null = null;
  let at = -1;
  if (r.message !== null) {
    for (const p of r.message) {
      first = testPattern(p, f.text, found);
      if (first !== null) break;
    }
    if (first === null) return false;
    at = matchAt.index;
  }
  if (r.messageAll !== null) {
    for (const p of r.messageAll) {
      const m = testPattern(p, f.text, found);
      if (m === null) return false;
      if (first === null) {
        first = m;
        at = matchAt.index;
      }
    }
  }
  if (r.notMessage !== null) {
    for (const p of r.notMessage) if (testPattern(p, f.text, found) !== null) return false;
  }
  matched.re = first;
  matched.index = at;
  return true;
}

function parseRanges(items: Array<number | string>): Range[] {
  return items.map((it): Range => {
    if (typeof it === 'number') return [it, it];
    const cls = /^([1-5])xx$/.exec(it);
    if (cls) return [Number(cls[1]) * 100, Number(cls[1]) * 100 + 99];
    const [lo, hi] = it.split('-').map(Number) as [number, number | undefined];
    return [lo, hi ?? lo];
  });
}

class Compiler {
  readonly anchors: string[] = [];
  readonly #anchorIds = new Map<string, number>();
  readonly issues: string[] = [];

  regex(src: string, where: string): RegExp | null {
    try {
      return new RegExp(src, 'im');
    } catch (e) {
      this.issues.push(`${where}: invalid regular expression: ${e instanceof Error ? e.message : String(e)}`);
      return null;
    }
  }

  patterns(srcs: string[] | undefined, where: string): Pattern[] | null {
    if (srcs === undefined) return null;
    const out: Pattern[] = [];
    srcs.forEach((src, i) => {
      const re = this.regex(src, `${where}[${i}]`);
      if (re === null) return;
      const anchorOf = (lit: string): number => {
        if (lit === '') return -1;
        let id = this.#anchorIds.get(lit);
        if (id === undefined) {
          id = this.anchors.length;
          this.anchors.push(lit);
          this.#anchorIds.set(lit, id);
        }
        return id;
      };
      let alts: Array<{ re: RegExp; anchor: number }>;
      try {
        alts = topLevelAlternatives(src).map((alt) => ({ re: new RegExp(alt, 'im'), anchor: anchorOf(requiredLiteral(alt)) }));
      } catch {
        // An alternative that is not valid alone (e.g. a backreference across `|`): run the whole regex.
        alts = [{ re, anchor: -1 }];
      }
      out.push({ re, alts, source: src });
    });
    return out;
  }

  /** The union of anchors of a pattern list, when every alternative has one. */
  static gateOf(list: readonly Pattern[] | null): Int32Array | null {
    if (list === null || list.length === 0) return null;
    const ids: number[] = [];
    for (const p of list) for (const a of p.alts) {
      if (a.anchor < 0) return null;
      ids.push(a.anchor);
    }
    return Int32Array.from(new Set(ids));
  }

  rule(spec: RuleSpec, source: 'builtin' | 'config', label: string): CompiledRule {
    const w = spec.when;
    const at = (field: string) => `${label}: when.${field}`;
    const one = (src: string | undefined, field: string) => (src === undefined ? null : this.regex(src, at(field)));
    const info = ERROR_REGISTRY[spec.code];
    return {
      id: spec.id,
      code: spec.code,
      category: info.category,
      retryable: spec.retryable ?? info.retryable,
      confidence: spec.confidence ?? 'high',
      hint: spec.hint,
      source,
      spec,
      kinds: w.kind ? new Set(w.kind) : null,
      where: w.where ? new Set(w.where) : null,
      exceptionType: one(w.exceptionType, 'exceptionType'),
      message: this.patterns(w.message, at('message')),
      messageAll: this.patterns(w.messageAll, at('messageAll')),
      notMessage: this.patterns(w.notMessage, at('notMessage')),
      httpStatus: w.httpStatus ? parseRanges(w.httpStatus) : null,
      hasHttpStatus: w.hasHttpStatus,
      transportCode: w.transportCode ? new Set(w.transportCode) : null,
      wsCloseCode: w.wsCloseCode ? parseRanges(w.wsCloseCode) : null,
      timeoutPhase: w.timeoutPhase ? new Set(w.timeoutPhase) : null,
      validationType: w.validationType ? new Set(w.validationType) : null,
      nodeType: one(w.nodeType, 'nodeType'),
      input: one(w.input, 'input'),
      value: one(w.value, 'value'),
      path: one(w.path, 'path'),
      byOwner: w.byOwner,
      gate: null,
    };
  }
}

function describeZodIssues(error: z.ZodError, config: unknown): string[] {
  return error.issues.map((iss) => {
    const path = iss.path.map(String);
    // Name the rule by index and id so a long config file is easy to fix.
    const ri = path[0] === 'rules' ? 1 : 0;
    const idx = path[ri];
    let label = path.join('.');
    if (idx !== undefined && /^\d+$/.test(idx)) {
      const list = Array.isArray(config) ? config : (config as { rules?: unknown[] } | null)?.rules;
      const id = Array.isArray(list) ? (list[Number(idx)] as { id?: unknown } | undefined)?.id : undefined;
      label = `rules[${idx}]${typeof id === 'string' ? ` ("${id}")` : ''}${path.length > ri + 1 ? `: ${path.slice(ri + 1).join('.')}` : ''}`;
    }
    return `${label || 'config'}: ${iss.message}`;
  });
}

let builtinCache: ClassifierRules | undefined;

/** The built-in table, compiled once (lazily: nothing runs at import). */
export function builtinRules(): ClassifierRules {
  if (!builtinCache) builtinCache = compileRules(undefined);
  return builtinCache;
}

/**
 * Validates and compiles rule configuration into a table: config rules go before the built-in ones
 * (or `before`/`after` a named built-in rule), a config rule with a built-in id replaces it in place,
 * `disable` removes built-in rules. `undefined` gives the built-in table. Throws
 * `ClassifierRulesError` naming each bad rule.
 * @example compileRules([{ id: 'acme.quota', code: 'COMFYUI_OVERLOADED', when: { message: ['quota exhausted'] } }])
 */
export function compileRules(config?: unknown): ClassifierRules {
  if (config instanceof ClassifierRules) return config;
  let userRules: RuleSpec[] = [];
  let disable: string[] = [];
  let defaults = true;
  if (config !== undefined && config !== null) {
    // Parse by shape (not a union) so errors point into the rule that is wrong.
    if (Array.isArray(config)) {
      const parsed = rulesListSchema.safeParse(config);
      if (!parsed.success) throw new ClassifierRulesError(describeZodIssues(parsed.error, config));
      userRules = parsed.data as RuleSpec[];
    } else {
      const parsed = configObjectSchema.safeParse(config);
      if (!parsed.success) throw new ClassifierRulesError(describeZodIssues(parsed.error, config));
      userRules = parsed.data.rules as RuleSpec[];
      disable = parsed.data.disable;
      defaults = parsed.data.defaults;
    }
  }
  const issues: string[] = [];
  const base: readonly RuleSpec[] = defaults ? DEFAULT_RULES : [];
  const baseIds = new Set(base.map((r) => r.id));
  for (const id of disable) if (!baseIds.has(id)) issues.push(`disable: no built-in rule "${id}"`);
  const seen = new Set<string>();
  userRules.forEach((r, i) => {
    if (seen.has(r.id)) issues.push(`rules[${i}] ("${r.id}"): duplicate id`);
    seen.add(r.id);
    for (const key of ['before', 'after'] as const) {
      const target = r[key];
      if (target !== undefined && !baseIds.has(target)) issues.push(`rules[${i}] ("${r.id}"): ${key}: no built-in rule "${target}"`);
    }
    if (r.before !== undefined && r.after !== undefined) issues.push(`rules[${i}] ("${r.id}"): give before or after, not both`);
  });

  // Order: leading config rules, then the built-ins with replacements and before/after insertions.
  const disabled = new Set(disable);
  const replacing = new Map(userRules.filter((r) => baseIds.has(r.id)).map((r) => [r.id, r]));
  const ordered: Array<{ spec: RuleSpec; source: 'builtin' | 'config'; label: string }> = [];
  const label = (r: RuleSpec) => `rules[${userRules.indexOf(r)}] ("${r.id}")`;
  for (const r of userRules) if (!baseIds.has(r.id) && r.before === undefined && r.after === undefined) ordered.push({ spec: r, source: 'config', label: label(r) });
  for (const b of base) {
    for (const r of userRules) if (r.before === b.id && !baseIds.has(r.id)) ordered.push({ spec: r, source: 'config', label: label(r) });
    const rep = replacing.get(b.id);
    if (rep) ordered.push({ spec: rep, source: 'config', label: label(rep) });
    else if (!disabled.has(b.id)) ordered.push({ spec: b, source: 'builtin', label: `built-in rule "${b.id}"` });
    for (const r of userRules) if (r.after === b.id && !baseIds.has(r.id)) ordered.push({ spec: r, source: 'config', label: label(r) });
  }

  const compiler = new Compiler();
  const compiled = ordered.map((o) => {
    const r = compiler.rule(o.spec, o.source, o.label);
    // Gate on the any-of list, else on the first all-of pattern: either must match for the rule to.
    const gate = Compiler.gateOf(r.message) ?? (r.messageAll && r.messageAll[0] ? Compiler.gateOf([r.messageAll[0]]) : null);
    return { ...r, gate };
  });
  issues.push(...compiler.issues);
  if (issues.length > 0) throw new ClassifierRulesError(issues);
  return new ClassifierRules(compiled, compiler.anchors);
}
