/**
 * Bounded text helpers for the classifier. Evidence can be huge (a 10 MB log), cyclic (an error
 * whose cause points back at itself) or hostile (getters that throw); everything here is total.
 */

/** Characters kept from the start of a long text: where the exception and its message usually are. */
export const HEAD_CHARS = 64 * 1024;
/** Characters kept from the end of a long text: where a traceback's final exception line is. */
export const TAIL_CHARS = 16 * 1024;

/** Caps a text to its first 64 KiB and last 16 KiB so no rule ever scans megabytes. */
export function capText(text: string): string {
  if (text.length <= HEAD_CHARS + TAIL_CHARS) return text;
  return `${text.slice(0, HEAD_CHARS)}\n...\n${text.slice(text.length - TAIL_CHARS)}`;
}

/** Reads `obj[key]` without letting a throwing getter or Proxy trap escape. */
export function prop(obj: unknown, key: string): unknown {
  if (typeof obj !== 'object' || obj === null) return undefined;
  try {
    return (obj as Record<string, unknown>)[key];
  } catch {
    return undefined;
  }
}

/** `prop` narrowed to a string (numbers are converted; anything else is undefined). */
export function strProp(obj: unknown, key: string): string | undefined {
  const v = prop(obj, key);
  if (typeof v === 'string') return v;
  if (typeof v === 'number' && Number.isFinite(v)) return String(v);
  return undefined;
}

/** `prop` narrowed to a finite number (numeric strings are accepted). */
export function numProp(obj: unknown, key: string): number | undefined {
  const v = prop(obj, key);
  if (typeof v === 'number' && Number.isFinite(v)) return v;
  if (typeof v === 'string' && /^\d{1,9}$/.test(v.trim())) return Number(v.trim());
  return undefined;
}

/**
 * JSON-ish rendering of any value, cycle-safe, depth- and size-bounded. Used to scan response
 * bodies and odd payloads as text; never for anything a user sees unscrubbed.
 */
export function safeStringify(value: unknown, maxChars = HEAD_CHARS): string {
  if (typeof value === 'string') return value.length > maxChars ? value.slice(0, maxChars) : value;
  const out: string[] = [];
  let size = 0;
  const seen = new WeakSet<object>();
  const push = (s: string): boolean => {
    if (size >= maxChars) return false;
    const room = maxChars - size;
    const piece = s.length > room ? s.slice(0, room) : s;
    out.push(piece);
    size += piece.length;
    return size < maxChars;
  };
  const walk = (v: unknown, depth: number): boolean => {
    if (v === null || v === undefined) return push(String(v));
    switch (typeof v) {
      case 'string':
        return push(JSON.stringify(v.length > maxChars ? v.slice(0, maxChars) : v));
      case 'number':
      case 'boolean':
      case 'bigint':
        return push(String(v));
      case 'symbol':
      case 'function':
        return push(`"<${typeof v}>"`);
      default:
        break;
    }
    const o = v as object;
    if (seen.has(o)) return push('"<cycle>"');
    if (depth > 8) return push('"<deep>"');
    seen.add(o);
    try {
      if (Array.isArray(o)) {
        if (!push('[')) return false;
        const n = Math.min(o.length, 1000);
        for (let i = 0; i < n; i++) {
          if (i > 0 && !push(',')) return false;
          if (!walk(prop(o, String(i)), depth + 1)) return false;
        }
        return push(']');
      }
      if (o instanceof Error) {
        return push(JSON.stringify(`${safeErrorName(o)}: ${safeErrorMessage(o)}`));
      }
      if (!push('{')) return false;
      let keys: string[];
      try {
        keys = Object.keys(o).slice(0, 1000);
      } catch {
        keys = [];
      }
      let first = true;
      for (const k of keys) {
        if (!first && !push(',')) return false;
        first = false;
        if (!push(`${JSON.stringify(k)}:`)) return false;
        if (!walk(prop(o, k), depth + 1)) return false;
      }
      return push('}');
    } finally {
      seen.delete(o);
    }
  };
  try {
    walk(value, 0);
  } catch {
    // A hostile value (e.g. a revoked Proxy): keep what was rendered so far.
  }
  return out.join('');
}

/** An error's `name`, never throwing. */
export function safeErrorName(e: unknown): string {
  const n = prop(e, 'name');
  return typeof n === 'string' && n !== '' ? n : 'Error';
}

/** An error's `message`, never throwing. */
export function safeErrorMessage(e: unknown): string {
  const m = prop(e, 'message');
  return typeof m === 'string' ? m : '';
}

/** The first non-empty line of a text, trimmed and capped. */
export function firstLine(text: string, max = 200): string {
  const limit = Math.min(text.length, 4096);
  let start = 0;
  while (start < limit) {
    let end = text.indexOf('\n', start);
    if (end < 0 || end > limit) end = limit;
    const t = text.slice(start, end).trim();
    if (t !== '') return t.length > max ? `${t.slice(0, max - 1)}…` : t;
    start = end + 1;
  }
  return '';
}
