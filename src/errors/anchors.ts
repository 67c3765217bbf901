/**
 * Literal anchors: the classifier's speed trick. Each message pattern gets the longest literal
 * that every match of it must contain; one combined scan per text finds which anchors occur, and
 * only patterns whose anchor occurred are run. Patterns without a usable anchor always run.
 */

/** Length of the quantifier at `j` (with its lazy `?`), or 0 when there is none. */
function quantifierLength(src: string, j: number): number {
  const c = src[j];
  let n = 0;
  if (c === '*' || c === '+' || c === '?') n = 1;
  else if (c === '{') {
    const m = /^\{\d+(?:,\d*)?\}/.exec(src.slice(j, j + 16));
    if (m) n = m[0].length;
  }
  if (n > 0 && src[j + n] === '?') n++;
  return n;
}

/** Position after an escape sequence that starts at `i` (the backslash). */
function skipEscape(src: string, i: number): number {
  const n = src[i + 1];
  if (n === 'x') return i + 4;
  if (n === 'u') return src[i + 2] === '{' ? src.indexOf('}', i) + 1 || src.length : i + 6;
  if (n === 'c') return i + 3;
  if ((n === 'p' || n === 'P' || n === 'k') && (src[i + 2] === '{' || src[i + 2] === '<')) {
    const close = src.indexOf(src[i + 2] === '{' ? '}' : '>', i);
    return close < 0 ? src.length : close + 1;
  }
  return i + 2;
}

/**
 * The longest literal (lower-cased, at least 3 characters) that any match of the regex source must
 * contain, or '' when none can be proven (top-level alternation, or only classes and groups).
 * Conservative by construction: a wrong '' only costs speed, never a missed match.
 */
export function requiredLiteral(src: string): string {
  let depth = 0;
  let best = '';
  let cur = '';
  const flush = () => {
    if (cur.length > best.length) best = cur;
    cur = '';
  };
  let i = 0;
  while (i < src.length) {
    const c = src[i] as string;
    let literal: string | null = null;
    let next = i + 1;
    if (c === '\\') {
      const n = src[i + 1];
      next = skipEscape(src, i);
      if (n !== undefined && !/[dDwWsSbBnrtfv0-9xucpPk]/.test(n)) literal = n;
    } else if (c === '[') {
      let j = i + 1;
      if (src[j] === '^') j++;
      if (src[j] === ']') j++;
      while (j < src.length && src[j] !== ']') j += src[j] === '\\' ? 2 : 1;
      next = j + 1;
    } else if (c === '(') {
      depth++;
    } else if (c === ')') {
      depth = Math.max(0, depth - 1);
    } else if (c === '|') {
      if (depth === 0) return '';
    } else if (!'.^$*+?{}'.includes(c)) {
      literal = c;
    }
    const q = c === '(' || c === '|' ? 0 : quantifierLength(src, next);
    if (q > 0 || literal === null || depth > 0) flush();
    else cur += literal;
    i = next + q;
  }
  flush();
  return best.length >= 3 ? best.toLowerCase() : '';
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}

/** Finds, in one pass per text, which of a fixed set of literal anchors occur (case-insensitively). */
export class AnchorScanner {
  readonly size: number;
  readonly #re: RegExp | null;
  /** matched text (lower-cased) -> every anchor id it implies (itself and the anchors inside it). */
  readonly #implied = new Map<string, number[]>();

  constructor(anchors: readonly string[]) {
    this.size = anchors.length;
    const sorted = anchors.map((a, id) => ({ a, id })).sort((x, y) => y.a.length - x.a.length);
    for (const { a } of sorted) {
      const ids: number[] = [];
      anchors.forEach((b, id) => {
        if (a.includes(b)) ids.push(id);
      });
      this.#implied.set(a, ids);
    }
    this.#re = sorted.length === 0 ? null : new RegExp(sorted.map(({ a }) => escapeRegExp(a)).join('|'), 'gi');
  }

  /** Marks found anchors in `found` (cleared first). Returns false when it could not tell (then run everything). */
  scan(text: string, found: Uint8Array): boolean {
    found.fill(0);
    const re = this.#re;
    if (re === null) return true;
    re.lastIndex = 0;
    for (let m = re.exec(text); m !== null; m = re.exec(text)) {
      const ids = this.#implied.get(m[0].toLowerCase());
      if (ids === undefined) return false; // case folding we cannot map back: be safe
      for (const id of ids) found[id] = 1;
      // Step one character, not past the match, so overlapping anchors are found too.
      re.lastIndex = m.index + 1;
    }
    return true;
  }
}
