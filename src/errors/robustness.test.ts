import { describe, expect, it } from 'vitest';
import { classify } from './classify.js';
import { ERROR_CODES } from './codes.js';

function expectValid(c: ReturnType<typeof classify>): void {
  expect(ERROR_CODES).toContain(c.code);
  expect(typeof c.message).toBe('string');
  expect(c.message.length).toBeGreaterThan(0);
  expect(typeof c.hint).toBe('string');
  expect(typeof c.rule).toBe('string');
  expect(() => JSON.stringify(c)).not.toThrow();
}

describe('classify on bad evidence never throws', () => {
  it.each<[string, unknown]>([
    ['null', null],
    ['undefined', undefined],
    ['a number', 42],
    ['NaN', Number.NaN],
    ['a bigint', 10n],
    ['a symbol', Symbol('x')],
    ['a function', () => 1],
    ['an empty object', {}],
    ['an array', [1, 'two', { three: 3 }]],
    ['an unknown kind', { kind: 'nope', data: 1 }],
    ['a kind with the wrong field types', { kind: 'http', status: 'five hundred', headers: 7, body: Symbol('b') }],
    ['execution_error without data', { kind: 'execution_error' }],
    ['validation with a string body', { kind: 'validation', body: 'not json' }],
    ['validation with node_errors of the wrong shape', { kind: 'validation', body: { error: { type: 'x' }, node_errors: { '1': { errors: 'no' } } } }],
    ['history with garbage', { kind: 'history', entry: [1, 2, 3] }],
    ['thrown null', { kind: 'thrown', error: null }],
  ])('%s', (_name, evidence) => {
    expectValid(classify(evidence));
  });

  it('handles cyclic objects and cyclic error causes', () => {
    const cyclic: Record<string, unknown> = { kind: 'http', status: 500 };
    cyclic.body = cyclic;
    cyclic.headers = { self: cyclic };
    expectValid(classify(cyclic));
    const a = new Error('outer');
    const b = new Error('inner', { cause: a });
    (a as { cause?: unknown }).cause = b;
    expect(classify(a).code).toBe('INTERNAL_ERROR');
    const data: Record<string, unknown> = { exception_type: 'RuntimeError', exception_message: 'CUDA out of memory' };
    data.current_inputs = data;
    expect(classify({ kind: 'execution_error', data }).code).toBe('COMFYUI_OOM');
  });

  it('handles getters and proxies that throw', () => {
    const hostile = new Proxy(
      {},
      {
        get() {
          throw new Error('no get');
        },
        has() {
          throw new Error('no has');
        },
        ownKeys() {
          throw new Error('no keys');
        },
        getPrototypeOf() {
          throw new Error('no proto');
        },
      },
    );
    expectValid(classify(hostile));
    expectValid(classify({ kind: 'thrown', error: hostile }));
    expectValid(classify({ kind: 'http', status: 502, body: hostile, headers: hostile }));
    const { proxy, revoke } = Proxy.revocable({}, {});
    revoke();
    expectValid(classify(proxy));
    const getter = Object.defineProperty({ kind: 'execution_error' }, 'data', {
      get() {
        throw new Error('boom');
      },
    });
    expectValid(classify(getter));
  });

  it('classifies a 10 MB message by its head or its tail, without hanging', () => {
    const filler = 'INFO step 17/30 sampling... '.repeat(Math.ceil((10 * 1024 * 1024) / 28));
    expect(filler.length).toBeGreaterThan(10 * 1024 * 1024);
    // The final exception of a traceback is at the end: the tail is kept.
    expect(classify({ kind: 'text', where: 'log', message: `${filler}\ntorch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB` }).code).toBe('COMFYUI_OOM');
    expect(classify({ kind: 'text', where: 'log', message: `No space left on device\n${filler}` }).code).toBe('COMFYUI_DISK_FULL');
    expectValid(classify({ kind: 'execution_error', data: { exception_type: 'RuntimeError', exception_message: filler, traceback: [filler, filler] } }));
    expectValid(classify({ kind: 'http', status: 500, bodyText: filler }));
    expectValid(classify(new Error(filler)));
    // Pathological inputs for backtracking regexes: long runs without the expected terminator.
    expectValid(classify({ kind: 'text', message: `${'a '.repeat(200_000)}!` }));
    expectValid(classify({ kind: 'text', message: `C:\\${'dir '.repeat(50_000)}` }));
    expectValid(classify({ kind: 'text', message: `Value not in list: ${'x'.repeat(100_000)}` }));
  });

  it('handles deep nesting and huge bodies', () => {
    let deep: unknown = { error: 'x' };
    for (let i = 0; i < 10_000; i++) deep = { next: deep };
    expectValid(classify({ kind: 'http', status: 500, body: deep }));
    const wide: Record<string, string> = {};
    for (let i = 0; i < 100_000; i++) wide[`k${i}`] = 'v';
    expectValid(classify({ kind: 'http', status: 503, body: wide }));
    const manyNodes: Record<string, unknown> = {};
    for (let i = 0; i < 5000; i++) manyNodes[String(i)] = { class_type: 'X', errors: [{ type: 'value_smaller_than_min', message: 'Value 0 smaller than min of 1', details: 'width' }] };
    const c = classify({ kind: 'validation', body: { error: { type: 'prompt_outputs_failed_validation', message: '', details: '' }, node_errors: manyNodes } });
    expect(c.code).toBe('COMFYUI_INVALID_PARAMETERS');
    expect(c.nodeErrors?.length).toBeLessThanOrEqual(500 * 100);
  });
});
