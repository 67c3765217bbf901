/**
 * Python value semantics the simulator needs to answer exactly like ComfyUI: `str()`/`repr()` of
 * JSON values, and the `int()`/`float()` conversions `validate_inputs` applies to widget values.
 * ComfyUI builds its error texts with these, so a client matching on them sees the same bytes.
 */

/** A Python exception raised by a conversion: its type name and `str(ex)`. */
export class PyError extends Error {
  constructor(
    readonly pyType: string,
    message: string,
  ) {
    super(message);
    this.name = 'PyError';
  }
}

/** Python type name of a JSON value, as `type(x).__name__` prints it. */
export function pyTypeName(v: unknown): string {
  if (v === null || v === undefined) return 'NoneType';
  if (typeof v === 'boolean') return 'bool';
  if (typeof v === 'number') return Number.isInteger(v) ? 'int' : 'float';
  if (typeof v === 'string') return 'str';
  if (Array.isArray(v)) return 'list';
  return 'dict';
}

/** `repr()` of a Python str: single quotes unless the text holds a single quote and no double one. */
export function pyStrRepr(s: string): string {
  const quote = s.includes("'") && !s.includes('"') ? '"' : "'";
  let out = quote;
  for (const ch of s) {
    const code = ch.codePointAt(0) ?? 0;
    if (ch === '\\') out += '\\\\';
    else if (ch === quote) out += '\\' + quote;
    else if (ch === '\n') out += '\\n';
    else if (ch === '\r') out += '\\r';
    else if (ch === '\t') out += '\\t';
    else if (code < 0x20 || code === 0x7f) out += '\\x' + code.toString(16).padStart(2, '0');
    else out += ch;
  }
  return out + quote;
}

/** `repr()` of a Python float (shortest round-trip digits, Python's exponent rules). */
export function pyFloatRepr(n: number): string {
  if (Number.isNaN(n)) return 'nan';
  if (n === Infinity) return 'inf';
  if (n === -Infinity) return '-inf';
  if (n === 0) return Object.is(n, -0) ? '-0.0' : '0.0';
  const abs = Math.abs(n);
  if (abs >= 1e16 || abs < 1e-4) {
    // Python writes at least two exponent digits: 1e-05, 1e+16.
    return n.toExponential().replace(/e([+-])(\d)$/, 'e$10$2');
  }
  const s = String(n);
  return s.includes('.') || s.includes('e') ? s : `${s}.0`;
}

/**
 * `str()` of a JSON value as Python would print the object json.loads made of it. Integral
 * numbers print as ints unless `asFloat` says the value is a Python float.
 */
export function pyStr(v: unknown, asFloat = false): string {
  if (typeof v === 'string') return v;
  return pyRepr(v, asFloat);
}

/** `repr()` of a JSON value (lists and dicts nest with Python's separators). */
export function pyRepr(v: unknown, asFloat = false): string {
  if (v === null || v === undefined) return 'None';
  if (typeof v === 'boolean') return v ? 'True' : 'False';
  if (typeof v === 'number') return asFloat || !Number.isInteger(v) ? pyFloatRepr(v) : String(v);
  if (typeof v === 'string') return pyStrRepr(v);
  if (Array.isArray(v)) return `[${v.map((x) => pyRepr(x)).join(', ')}]`;
  if (typeof v === 'object') {
    const parts = Object.entries(v as Record<string, unknown>).map(([k, x]) => `${pyStrRepr(k)}: ${pyRepr(x)}`);
    return `{${parts.join(', ')}}`;
  }
  return String(v);
}

const INT_LITERAL = /^[+-]?\d+(?:_\d+)*$/;
const FLOAT_LITERAL = /^[+-]?(?:(?:\d+(?:_\d+)*)?\.?\d+(?:_\d+)*(?:[eE][+-]?\d+)?|\d+(?:_\d+)*\.|inf(?:inity)?|nan)$/i;

/** Python `int(v)` for a JSON value; throws PyError with Python's message. */
export function pyInt(v: unknown): number {
  if (typeof v === 'boolean') return v ? 1 : 0;
  if (typeof v === 'number') {
    if (Number.isNaN(v)) throw new PyError('ValueError', 'cannot convert float NaN to integer');
    if (!Number.isFinite(v)) throw new PyError('OverflowError', 'cannot convert float infinity to integer');
    return Math.trunc(v);
  }
  if (typeof v === 'string') {
    const t = v.trim();
    if (INT_LITERAL.test(t)) return Number.parseInt(t.replaceAll('_', ''), 10);
    throw new PyError('ValueError', `invalid literal for int() with base 10: ${pyStrRepr(v)}`);
  }
  throw new PyError('TypeError', `int() argument must be a string, a bytes-like object or a real number, not '${pyTypeName(v)}'`);
}

/** Python `float(v)` for a JSON value; throws PyError with Python's message. */
export function pyFloat(v: unknown): number {
  if (typeof v === 'boolean') return v ? 1 : 0;
  if (typeof v === 'number') return v;
  if (typeof v === 'string') {
    const t = v.trim();
    if (FLOAT_LITERAL.test(t)) {
      const lower = t.toLowerCase().replaceAll('_', '');
      if (lower.endsWith('nan')) return Number.NaN;
      if (lower.includes('inf')) return lower.startsWith('-') ? -Infinity : Infinity;
      return Number.parseFloat(lower);
    }
    throw new PyError('ValueError', `could not convert string to float: ${pyStrRepr(v)}`);
  }
  throw new PyError('TypeError', `float() argument must be a string or a real number, not '${pyTypeName(v)}'`);
}

/** Python truthiness, for `bool(v)`. */
export function pyTruthy(v: unknown): boolean {
  if (v === null || v === undefined || v === false || v === 0 || v === '') return false;
  if (Array.isArray(v)) return v.length > 0;
  if (typeof v === 'object') return Object.keys(v as object).length > 0;
  return true;
}

/** Python `==` between two JSON values (1 == 1.0 == True). */
export function pyEquals(a: unknown, b: unknown): boolean {
  const na = typeof a === 'boolean' ? Number(a) : a;
  const nb = typeof b === 'boolean' ? Number(b) : b;
  if (na === nb) return true;
  if (Array.isArray(na) && Array.isArray(nb)) return na.length === nb.length && na.every((x, i) => pyEquals(x, nb[i]));
  if (na && nb && typeof na === 'object' && typeof nb === 'object' && !Array.isArray(na) && !Array.isArray(nb)) {
    const ka = Object.keys(na);
    const kb = Object.keys(nb);
    return ka.length === kb.length && ka.every((k) => k in nb && pyEquals((na as Record<string, unknown>)[k], (nb as Record<string, unknown>)[k]));
  }
  return false;
}

/** Python `x in container` for a parsed JSON body; throws PyError (TypeError) where Python would. */
export function pyContains(container: unknown, key: string): boolean {
  if (typeof container === 'string') return container.includes(key);
  if (Array.isArray(container)) return container.some((x) => pyEquals(x, key));
  if (container !== null && typeof container === 'object') return Object.prototype.hasOwnProperty.call(container, key);
  throw new PyError('TypeError', `argument of type '${pyTypeName(container)}' is not iterable`);
}

const JSON_TOKEN = /"(?:[^"\\]|\\.)*"|[,:]/g;
// eslint-disable-next-line no-control-regex
const NON_ASCII = /[^\u0000-\u007f]/g;

/**
 * `json.dumps(value)` as Python writes it (what aiohttp's json_response and send_json send):
 * `", "` and `": "` separators and non-ASCII characters escaped as `\uXXXX`.
 */
export function pyJsonDumps(value: unknown): string {
  const compact = JSON.stringify(value) ?? 'null';
  return compact.replace(JSON_TOKEN, (tok) => {
    if (tok === ',') return ', ';
    if (tok === ':') return ': ';
    return tok.replace(NON_ASCII, (ch) => '\\u' + ch.charCodeAt(0).toString(16).padStart(4, '0'));
  });
}
