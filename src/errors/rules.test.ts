import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { AnchorScanner, requiredLiteral, topLevelAlternatives } from './anchors.js';
import { classify } from './classify.js';
import { corpusEvidence, readCorpus } from './corpus.js';
import { DEFAULT_RULES } from './default-rules.js';
import { observe, type Facts } from './evidence.js';
import { builtinRules, ClassifierRules, ClassifierRulesError, compileRules, type RuleSpec } from './rules.js';

const corpus = readCorpus(readFileSync(new URL('../../test/errors/fixtures/public.jsonl', import.meta.url), 'utf8'));

/** An independent, slow reference matcher: every condition checked directly, every regex run in full. */
function naiveFirstMatch(specs: readonly RuleSpec[], f: Facts): number {
  const re = (s: string) => new RegExp(s, 'im');
  const inStatus = (n: number | undefined, items: Array<number | string>) =>
    n !== undefined &&
    items.some((it) => {
      if (typeof it === 'number') return n === it;
      const cls = /^([1-5])xx$/.exec(it);
      if (cls) return Math.floor(n / 100) === Number(cls[1]);
      const [lo, hi] = it.split('-').map(Number) as [number, number | undefined];
      return n >= lo && n <= (hi ?? lo);
    });
  return specs.findIndex((r) => {
    const w = r.when;
    if (w.kind && !w.kind.includes(f.kind)) return false;
    if (w.where && !w.where.includes(f.where)) return false;
    if (w.hasHttpStatus !== undefined && (f.httpStatus !== undefined) !== w.hasHttpStatus) return false;
    if (w.httpStatus && !inStatus(f.httpStatus, w.httpStatus)) return false;
    if (w.transportCode && !w.transportCode.includes(f.transportCode)) return false;
    if (w.wsCloseCode && !inStatus(f.wsCloseCode, w.wsCloseCode)) return false;
    if (w.timeoutPhase && !w.timeoutPhase.includes(f.timeoutPhase)) return false;
    if (w.validationType && !w.validationType.includes(f.validationType)) return false;
    if (w.byOwner !== undefined && f.byOwner !== w.byOwner) return false;
    if (w.exceptionType !== undefined && (f.exceptionType === '' || !re(w.exceptionType).test(f.exceptionType))) return false;
    if (w.nodeType !== undefined && (f.nodeType === '' || !re(w.nodeType).test(f.nodeType))) return false;
    if (w.input !== undefined && (f.input === '' || !re(w.input).test(f.input))) return false;
    if (w.value !== undefined && !re(w.value).test(f.value)) return false;
    if (w.path !== undefined && !re(w.path).test(f.path)) return false;
    if (w.message && !w.message.some((m) => re(m).test(f.text))) return false;
    if (w.messageAll && !w.messageAll.every((m) => re(m).test(f.text))) return false;
    if (w.notMessage && w.notMessage.some((m) => re(m).test(f.text))) return false;
    return true;
  });
}

/** Deterministic pseudo-random numbers (no flaky tests). */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

describe('literal anchors', () => {
  it('finds the longest literal every match must contain, and none under top-level alternation', () => {
    expect(requiredLiteral('No space left on device')).toBe('no space left on device');
    expect(requiredLiteral(String.raw`Errno 28\b`)).toBe('errno 28');
    expect(requiredLiteral(String.raw`CUDA error: [^\n]*`)).toBe('cuda error: ');
    expect(requiredLiteral(String.raw`timed? ?out`)).toBe('time');
    expect(requiredLiteral(String.raw`(?:a|b)cdef{2,3}ghij`)).toBe('ghij');
    expect(requiredLiteral(String.raw`\.safetensors`)).toBe('.safetensors');
    expect(requiredLiteral('a|bcd')).toBe('');
    expect(requiredLiteral(String.raw`\d+\s*`)).toBe('');
    expect(topLevelAlternatives(String.raw`a(b|c)|[|]d|e\|f`)).toEqual(['a(b|c)', '[|]d', String.raw`e\|f`]);
  });

  it('gives every alternative of every built-in text pattern an anchor (none runs on every text)', () => {
    const unanchored = builtinRules().rules.flatMap((r) =>
      [...(r.message ?? []), ...(r.messageAll ?? []), ...(r.notMessage ?? [])].flatMap((p) => p.alts.filter((a) => a.anchor < 0).map((a) => `${r.id}: ${a.re.source}`)),
    );
    expect(unanchored).toEqual([]);
  });

  it('scans case-insensitively like the /i regexes, including overlapping and nested anchors', () => {
    const anchors = ['out of memory', 'memory', 'cuda error: ', 'or: o', '服务器繁忙', 'abc'];
    const sc = new AnchorScanner(anchors);
    const found = new Uint8Array(anchors.length);
    const list = new Int32Array(anchors.length);
    const n = sc.scan('RuntimeError: CUDA ERROR: Out Of Memory', found, list);
    expect([...found]).toEqual([1, 1, 1, 1, 1, 0]); // non-ASCII anchors are always "found"
    expect([...list.slice(0, n)].sort()).toEqual([0, 1, 2, 3, 4]);
    sc.scan('ＡＢＣ ǅ abC', found, list);
    expect(found[5]).toBe(1);
    sc.scan('ＡＢＣ', found, list);
    expect(found[5]).toBe(0);
  });

  it('decides exactly like a naive matcher on the corpus, mutated corpus texts and noise', () => {
    const table = builtinRules();
    const next = rng(42);
    const texts: Array<{ kind: 'text'; where?: string; exceptionType?: string; message: string; httpStatus?: number }> = [];
    const wheres = ['execution_error', 'http_response', 'ws', 'log', 'python_exception', 'client_side', undefined];
    for (const line of corpus) {
      const ev = corpusEvidence(line) as (typeof texts)[number];
      texts.push(ev);
      texts.push({ ...ev, message: ev.message.toUpperCase() });
      texts.push({ ...ev, message: ev.message.toLowerCase(), where: wheres[Math.floor(next() * wheres.length)] });
      const a = Math.floor(next() * ev.message.length);
      texts.push({ ...ev, message: ev.message.slice(a) + ' ü ' + ev.message.slice(0, a) });
      const other = corpus[Math.floor(next() * corpus.length)]!;
      texts.push({ kind: 'text', message: `${other.message}\n${ev.message}`, httpStatus: [undefined, 400, 403, 429, 500, 502][Math.floor(next() * 6)] });
    }
    for (let i = 0; i < 200; i++) {
      let s = '';
      const n = Math.floor(next() * 80);
      for (let k = 0; k < n; k++) s += 'abcdefghijklmnopqrstuvwxyz :_-.0123456789ERO\n'[Math.floor(next() * 45)];
      texts.push({ kind: 'text', message: s });
    }
    let compared = 0;
    for (const ev of texts) {
      for (const f of observe(ev).facts) {
        expect(table.firstMatch(f), ev.message.slice(0, 120)).toBe(naiveFirstMatch(DEFAULT_RULES, f));
        compared++;
      }
    }
    expect(compared).toBeGreaterThan(900);
  });
});

describe('compileRules', () => {
  it('puts config rules first, so they override the built-in decision', () => {
    const rules = compileRules([{ id: 'acme.quota', code: 'COMFYUI_OVERLOADED', when: { message: ['quota exhausted for acme'] } }]);
    expect(rules.ids[0]).toBe('acme.quota');
    const c = classify({ kind: 'execution_error', data: { exception_type: 'RuntimeError', exception_message: 'Quota exhausted for ACME image API' } }, { rules });
    expect(c).toMatchObject({ code: 'COMFYUI_OVERLOADED', rule: 'acme.quota', category: 'transient' });
    // The built-in table alone says generation error.
    expect(classify({ kind: 'execution_error', data: { exception_type: 'RuntimeError', exception_message: 'Quota exhausted for ACME image API' } }).code).toBe('COMFYUI_GENERATION_ERROR');
  });

  it('places rules before/after a built-in rule, replaces by id, disables, or starts from an empty table', () => {
    const base = builtinRules().ids;
    const placed = compileRules({
      rules: [
        { id: 'x.before', code: 'COMFYUI_OOM', before: 'disk.full', when: { message: ['xyzzy'] } },
        { id: 'x.after', code: 'COMFYUI_OOM', after: 'disk.full', when: { message: ['xyzzy'] } },
        { id: 'oom.text', code: 'COMFYUI_GPU_FAULT', when: { message: ['out of memory'] } },
      ],
      disable: ['process.died'],
    });
    const ids = placed.ids;
    expect(ids.indexOf('x.before')).toBe(ids.indexOf('disk.full') - 1);
    expect(ids.indexOf('x.after')).toBe(ids.indexOf('disk.full') + 1);
    expect(ids).not.toContain('process.died');
    expect(ids.indexOf('oom.text')).toBe(base.indexOf('oom.text') + 1); // replaced in place (x.before/after shifted it by one, process.died removed one)
    expect(classify({ kind: 'text', message: 'CUDA out of memory' }, { rules: placed }).code).toBe('COMFYUI_GPU_FAULT');
    const only = compileRules({ defaults: false, rules: [{ id: 'all', code: 'COMFYUI_SERVER_ERROR', when: {} }] });
    expect(only.ids).toEqual(['all']);
    expect(classify({ kind: 'text', message: 'CUDA out of memory' }, { rules: only }).code).toBe('COMFYUI_SERVER_ERROR');
  });

  it('applies a rule hint and a retryable override', () => {
    const rules = compileRules([{ id: 'acme.moderation', code: 'COMFYUI_INVALID_PARAMETERS', retryable: true, hint: 'Rephrase the prompt.', when: { message: ['acme says no'] } }]);
    const c = classify({ kind: 'text', message: 'ACME says no' }, { rules });
    expect(c).toMatchObject({ code: 'COMFYUI_INVALID_PARAMETERS', retryable: true, hint: 'Rephrase the prompt.' });
  });

  it('matches structured conditions: status classes and ranges, close-code ranges, node type, input, value, path', () => {
    const rules = compileRules({
      defaults: false,
      rules: [
        { id: 's.range', code: 'COMFYUI_OVERLOADED', when: { httpStatus: ['520-527'] } },
        { id: 's.class', code: 'COMFYUI_AUTH_ERROR', when: { httpStatus: ['4xx'], path: '^/prompt$' } },
        { id: 'ws.range', code: 'COMFYUI_STALLED', when: { wsCloseCode: ['4000-4999'] } },
        { id: 'v.input', code: 'COMFYUI_MODEL_MISSING', when: { validationType: ['value_not_in_list'], nodeType: 'Loader$', input: '^weights$', value: '\\.bin$' } },
        { id: 'rest', code: 'INTERNAL_ERROR', when: {} },
      ],
    });
    expect(classify({ kind: 'http', status: 524 }, { rules }).rule).toBe('s.range');
    expect(classify({ kind: 'http', status: 404, path: '/prompt' }, { rules }).rule).toBe('s.class');
    expect(classify({ kind: 'http', status: 404, path: '/view' }, { rules }).rule).toBe('rest');
    expect(classify({ kind: 'ws_close', code: 4321 }, { rules }).rule).toBe('ws.range');
    const body = (value: string) => ({
      error: { type: 'prompt_outputs_failed_validation', message: 'Prompt outputs failed validation', details: '', extra_info: {} },
      node_errors: { '7': { class_type: 'AcmeLoader', dependent_outputs: [], errors: [{ type: 'value_not_in_list', message: 'Value not in list', details: `weights: '${value}' not in []`, extra_info: { input_name: 'weights', received_value: value } }] } },
    });
    expect(classify({ kind: 'validation', body: body('w.bin') }, { rules }).rule).toBe('v.input');
    expect(classify({ kind: 'validation', body: body('w.txt') }, { rules }).rule).toBe('rest');
  });

  it('rejects bad configuration with an error naming the rule and the field', () => {
    const bad = (config: unknown) => {
      try {
        compileRules(config);
      } catch (e) {
        expect(e).toBeInstanceOf(ClassifierRulesError);
        return (e as ClassifierRulesError).issues.join('\n');
      }
      throw new Error('compileRules accepted bad config');
    };
    expect(bad([{ id: 'ok', code: 'COMFYUI_OOM', when: {} }, { id: 'bad.regex', code: 'COMFYUI_OOM', when: { message: ['(unclosed'] } }])).toMatch(/rules\[1\] \("bad\.regex"\): when\.message\[0\]: invalid regular expression/);
    expect(bad([{ id: 'bad.code', code: 'COMFYUI_NOPE', when: {} }])).toMatch(/rules\[0\] \("bad\.code"\): code/);
    expect(bad([{ id: 'bad.field', code: 'COMFYUI_OOM', when: { mesage: ['x'] } }])).toMatch(/rules\[0\] \("bad\.field"\)/);
    expect(bad([{ id: 'bad.status', code: 'COMFYUI_OOM', when: { httpStatus: ['fivexx'] } }])).toMatch(/httpStatus/);
    expect(bad({ rules: [{ id: 'a', code: 'COMFYUI_OOM', when: {}, before: 'no.such.rule' }] })).toMatch(/before: no built-in rule "no\.such\.rule"/);
    expect(bad({ disable: ['no.such.rule'] })).toMatch(/disable: no built-in rule/);
    expect(bad([{ id: 'dup', code: 'COMFYUI_OOM', when: {} }, { id: 'dup', code: 'COMFYUI_OOM', when: {} }])).toMatch(/duplicate id/);
    expect(bad('not a config')).toMatch(/config/);
  });

  it('accepts single values where lists are expected, and returns an already compiled table as is', () => {
    const rules = compileRules([{ id: 'one', code: 'COMFYUI_OOM', when: { message: 'zorp', kind: 'text' } }]);
    expect(classify({ kind: 'text', message: 'ZORP!' }, { rules }).rule).toBe('one');
    expect(compileRules(rules)).toBe(rules);
    expect(rules).toBeInstanceOf(ClassifierRules);
    expect(compileRules(undefined).ids).toEqual(builtinRules().ids);
  });

  it('compiles the custom-rules example in the README', () => {
    const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
    const section = readme.slice(readme.indexOf('\n## Errors'));
    const json = /```json\n([\s\S]*?)```/.exec(section)?.[1];
    expect(json).toBeDefined();
    const rules = compileRules(JSON.parse(json!) as unknown);
    expect(rules.ids.slice(0, 1)).toEqual(['acme.vendor-quota']);
    const c = classify({ kind: 'execution_error', data: { exception_type: 'Exception', exception_message: 'Quota exceeded for ACME' } }, { rules });
    expect(c.code).toBe('COMFYUI_OVERLOADED');
  });
});
