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

/** Splits a regex source at its top-level `|` (outside groups and classes). */
export function topLevelAlternatives(src: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < src.length; i++) {
    const c = src[i];
    if (c === '\\') {
      i++;
      continue;
    }
    if (c === '[') {
      i++;
      if (src[i] === '^') i++;
      if (src[i] === ']') i++;
      while (i < src.length && src[i] !== ']') i += src[i] === '\\' ? 2 : 1;
      continue;
    }
    if (c === '(') depth++;
    else if (c === ')') depth = Math.max(0, depth - 1);
    else if (c === '|' && depth === 0) {
      out.push(src.slice(start, i));
      start = i + 1;
    }
  }
  out.push(src.slice(start));
  return out;
}

/**
 * Anchors of a regex source: one required literal per top-level alternative, or null when some
 * alternative has none (then the pattern must always be run).
 */
export function requiredLiterals(src: string): string[] | null {
  const lits: string[] = [];
  for (const alt of topLevelAlternatives(src)) {
    const lit = requiredLiteral(alt);
    if (lit === '') return null;
    lits.push(lit);
  }
  return [...new Set(lits)];
}

/**
 * Finds, in one pass per text, which of a fixed set of literal anchors occur, case-insensitively:
 * an Aho-Corasick automaton compiled to a dense transition table over the characters the anchors
 * use (a few nanoseconds per character, independent of the number of anchors).
 *
 * Case folding matches the rules' `/i` regexes: only ASCII letters fold, and a non-ASCII character
 * never matches an ASCII one. Anchors with non-ASCII characters cannot be tracked here and are
 * reported as always found (their patterns simply always run).
 */
export class AnchorScanner {
  readonly size: number;
  /** ASCII code -> symbol class (0 = a character no anchor uses). */
  readonly #classOf = new Uint8Array(128);
  readonly #width: number;
  /** Transitions: table[state * width + class] = next state * width. */
  readonly #table: Int32Array;
  /** States at or past this offset have anchors ending at them. */
  readonly #terminalFrom: number;
  /** Anchor ids ending at terminal state k (k = state - first terminal): outIds[outStart[k] .. outStart[k+1]). */
  readonly #outStart: Int32Array;
  readonly #outIds: Int32Array;
  readonly #always: number[] = [];

  constructor(anchors: readonly string[]) {
    this.size = anchors.length;
    const usable: Array<{ a: string; id: number }> = [];
    anchors.forEach((a, id) => {
      if (a === '' || [...a].some((ch) => ch.charCodeAt(0) > 127)) this.#always.push(id);
      else usable.push({ a: a.toLowerCase(), id });
    });
    // Symbol classes: one per distinct (folded) character used by an anchor.
    let width = 1;
    for (const { a } of usable) {
      for (let i = 0; i < a.length; i++) {
        const code = a.charCodeAt(i);
        if (this.#classOf[code] === 0) {
          this.#classOf[code] = width;
          if (code >= 97 && code <= 122) this.#classOf[code - 32] = width;
          width++;
        }
      }
    }
    this.#width = width;
    // 1. The trie.
    const children: Array<Map<number, number>> = [new Map()];
    const outputs: number[][] = [[]];
    for (const { a, id } of usable) {
      let s = 0;
      for (let i = 0; i < a.length; i++) {
        const c = this.#classOf[a.charCodeAt(i)] as number;
        let next = children[s]?.get(c);
        if (next === undefined) {
          next = children.length;
          children.push(new Map());
          outputs.push([]);
          children[s]?.set(c, next);
        }
        s = next;
      }
      outputs[s]?.push(id);
    }
    // 2. Breadth-first: failure links folded into a dense transition table, outputs merged.
    const n = children.length;
    const delta = n < 65_536 ? new Uint16Array(n * width) : new Int32Array(n * width);
    const fail = new Int32Array(n);
    const queue: number[] = [];
    for (let c = 1; c < width; c++) {
      const t = children[0]?.get(c);
      if (t !== undefined) {
        delta[c] = t;
        queue.push(t);
      }
    }
    for (let qi = 0; qi < queue.length; qi++) {
      const s = queue[qi] as number;
      const f = fail[s] as number;
      if (s !== 0) outputs[s]?.push(...(outputs[f] ?? []));
      for (let c = 1; c < width; c++) {
        const t = children[s]?.get(c);
        if (t !== undefined) {
          delta[s * width + c] = t;
          fail[t] = delta[f * width + c] as number;
          queue.push(t);
        } else {
          delta[s * width + c] = delta[f * width + c] as number;
        }
      }
    }
    // 3. Renumber: non-terminal states first, terminal ones last, so the scan tells a terminal state
    //    by one comparison; store transitions pre-multiplied by the width (no multiply per character).
    const newId = new Int32Array(n);
    let next = 0;
    for (let st = 0; st < n; st++) if ((outputs[st]?.length ?? 0) === 0) newId[st] = next++;
    const firstTerminal = next;
    for (let st = 0; st < n; st++) if ((outputs[st]?.length ?? 0) > 0) newId[st] = next++;
    const table = new Int32Array(n * width);
    for (let st = 0; st < n; st++) {
      const base = (newId[st] as number) * width;
      for (let c = 0; c < width; c++) table[base + c] = (newId[delta[st * width + c] as number] as number) * width;
    }
    const outStart = new Int32Array(n - firstTerminal + 1);
    const ids: number[] = [];
    const byNew: number[][] = new Array<number[]>(n - firstTerminal);
    for (let st = 0; st < n; st++) {
      const id = newId[st] as number;
      if (id >= firstTerminal) byNew[id - firstTerminal] = outputs[st] ?? [];
    }
    byNew.forEach((list, k) => {
      outStart[k] = ids.length;
      ids.push(...list);
    });
    outStart[byNew.length] = ids.length;
    this.#table = table;
    this.#terminalFrom = firstTerminal * width;
    this.#outStart = outStart;
    this.#outIds = Int32Array.from(ids);
  }

  /**
   * Marks found anchors in `found` (cleared first) and lists them, each once, in `list`. Returns
   * how many are listed.
   */
  scan(text: string, found: Uint8Array, list: Int32Array): number {
    found.fill(0);
    let n = 0;
    for (const id of this.#always) {
      found[id] = 1;
      list[n++] = id;
    }
    const classOf = this.#classOf;
    const table = this.#table;
    const terminalFrom = this.#terminalFrom;
    const width = this.#width;
    const outStart = this.#outStart;
    const outIds = this.#outIds;
    let s = 0;
    for (let i = 0, len = text.length; i < len; i++) {
      const code = text.charCodeAt(i);
      // Non-ASCII never matches an ASCII anchor character under /i: class 0, like any unused character.
      s = table[s + (code < 128 ? (classOf[code] as number) : 0)] as number;
      if (s >= terminalFrom) {
        const k = (s - terminalFrom) / width;
        const end = outStart[k + 1] as number;
        for (let j = outStart[k] as number; j < end; j++) {
          const id = outIds[j] as number;
          if (found[id] === 0) {
            found[id] = 1;
            list[n++] = id;
          }
        }
      }
    }
    return n;
  }
}
