import { describe, expect, it } from 'vitest';
import { PyError, pyFloat, pyFloatRepr, pyInt, pyJsonDumps, pyRepr, pyStr, pyStrRepr } from './pyfmt.js';

describe('Python formatting', () => {
  it('reprs strings with Python quoting rules', () => {
    expect(pyStrRepr('abc')).toBe("'abc'");
    expect(pyStrRepr("it's")).toBe('"it\'s"');
    expect(pyStrRepr('a\'b"c')).toBe("'a\\'b\"c'");
    expect(pyStrRepr('line\nnext')).toBe("'line\\nnext'");
  });

  it('prints floats the way Python repr does', () => {
    expect(pyFloatRepr(1)).toBe('1.0');
    expect(pyFloatRepr(-0.5)).toBe('-0.5');
    expect(pyFloatRepr(1e-5)).toBe('1e-05');
    expect(pyFloatRepr(1e16)).toBe('1e+16');
    expect(pyFloatRepr(Number.NaN)).toBe('nan');
    expect(pyStr(-1, true)).toBe('-1.0');
    expect(pyStr(3)).toBe('3');
  });

  it('prints lists, dicts, None and booleans like str()', () => {
    expect(pyStr(['nearest-exact', 'bilinear'])).toBe("['nearest-exact', 'bilinear']");
    expect(pyRepr({ a: null, b: true })).toBe("{'a': None, 'b': True}");
    expect(pyStr([])).toBe('[]');
  });

  it('converts like int() and float(), with Python\'s error messages', () => {
    expect(pyInt(' 128 ')).toBe(128);
    expect(pyInt(5.7)).toBe(5);
    expect(pyInt(true)).toBe(1);
    expect(() => pyInt('abc')).toThrow(new PyError('ValueError', "invalid literal for int() with base 10: 'abc'"));
    expect(() => pyInt('5.7')).toThrow("invalid literal for int() with base 10: '5.7'");
    expect(() => pyInt(null)).toThrow("int() argument must be a string, a bytes-like object or a real number, not 'NoneType'");
    expect(pyFloat('1e3')).toBe(1000);
    expect(pyFloat('inf')).toBe(Infinity);
    expect(() => pyFloat('x1')).toThrow("could not convert string to float: 'x1'");
  });

  it('dumps JSON with json.dumps separators and ASCII escapes', () => {
    expect(pyJsonDumps({ a: [1, 'x,y:z'], b: 'é' })).toBe('{"a": [1, "x,y:z"], "b": "\\u00e9"}');
    expect(pyJsonDumps({ q: 'say "hi", ok: yes' })).toBe('{"q": "say \\"hi\\", ok: yes"}');
  });
});
