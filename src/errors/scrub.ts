/**
 * Scrubbing of anything that may reach a user: messages and hints never carry stack traces, file
 * system paths, host names, IP addresses, URLs or tokens. Evidence keeps the raw text; only the
 * rendered words go through here.
 */
import { firstLine } from './text.js';

const TRACE_LINE =
  /^[ \t]*(?:File "[^"\n]*", line \d+[^\n]*|Traceback \(most recent call last\):?|at [^\n]*:\d+:\d+\)?|[~^ ]*\^[~^ ]*|During handling of the above exception[^\n]*|The above exception was the direct cause[^\n]*)[ \t]*$/gm;
const URL = /\b[a-z][a-z0-9+.-]{1,15}:\/\/[^\s'"<>`)\]}]+/gi;
const EMAIL = /\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b/g;
const BEARER = /\b(bearer|basic|token)\s+[A-Za-z0-9._~+/=-]{8,}/gi;
const KEY_VALUE =
  /\b((?:x-)?(?:api[_-]?key|apikey|api[_-]?secret|access[_-]?token|auth[_-]?token|refresh[_-]?token|client[_-]?secret|secret|password|passwd|pwd|authorization|token|session[_-]?id|cookie|api_key_comfy_org|auth_token_comfy_org)["']?\s*[:=]\s*["']?)(?!<|(?:bearer|basic|token)\s)[^\s"',;&}]+/gi;
const JWT = /\beyJ[\w-]{5,}\.[\w-]{5,}\.[\w-]{5,}/g;
const PREFIXED_TOKEN = /\b(?:sk|pk|rk|hf|ghp|gho|ghu|ghs|ghr|glpat|xox[abprs]|AKIA|ASIA|AIza|key|tok)[-_][A-Za-z0-9_-]{16,}/g;
// Lookbehinds make these start only at the beginning of a run: linear time, not quadratic.
const LONG_HEX = /(?<![A-Za-z0-9_])[A-Fa-f0-9]{32,}(?![A-Za-z0-9_])/g;
const LONG_B64 = /(?<![A-Za-z0-9+/_-])[A-Za-z0-9+/_-]{40,}={0,2}/g;
/** Drive or UNC paths; inner segments may contain spaces when another separator follows. */
const WIN_PATH = /(?:\b[A-Za-z]:|\\\\[^\\\s]+)[\\/](?:[^\\/\n'"<>|:*?]*[\\/])*[^\s\\/'"<>|,;)\]]*/g;
/** Markup tags, but not our own placeholders (scrubbing must be idempotent). */
const HTML_TAG = /<(?!(?:path|url|host|ip|email|redacted)>)\/?[a-z][^<>\n]{0,200}>/gi;
const IPV4 = /\b(?:\d{1,3}\.){3}\d{1,3}(?::\d{1,5})?\b/g;
const IPV6 = /\[?\b(?:[0-9a-f]{1,4}:){3,7}[0-9a-f]{1,4}\b\]?(?::\d{1,5})?|\[::1?\](?::\d{1,5})?|(?<![\w:])::1\b|::ffff:[\d.]+/gi;
const HOST =
  /\b(?:localhost(?::\d{1,5})?|(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+(?:com|org|net|io|ai|co|dev|app|cloud|xyz|info|biz|us|uk|de|cn|jp|ru|fr|eu|tv|gg|run|host|local|internal|lan|site|online|tech|chat|space|pro|studio|ml|gpu|proxy)(?::\d{1,5})?|(?:[a-z0-9-]+\.)+[a-z0-9-]+:\d{2,5})\b/gi;
const TOKEN_WITH_SLASH = /(?<![^\s'"<>()[\]{},;`])[^\s'"<>()[\]{},;`]*[\\/][^\s'"<>()[\]{},;`]*/g;
/** Short slash words that are not paths. */
const SLASH_WORDS = /^(?:n\/a|i\/o|and\/or|it\/s|s\/it|w\/|w\/o|[\d./:%]+|<url>|\/)$/i;

/** Runs of token characters ([A-Za-z0-9+/_=-]) long enough to hide a secret. */
// Anchored at a run's start (line start or a non-token character): linear, and faster in V8 than a lookbehind.
const RUN_19 = /(?:^|[^A-Za-z0-9+/_=-])[A-Za-z0-9+/_=-]{19}/;
const RUN_40 = /(?:^|[^A-Za-z0-9+/_=-])[A-Za-z0-9+/_=-]{40}/;

/**
 * A token with a slash is a path when it is rooted (`/x`, `~/x`, `./x`), uses backslashes, has two
 * separators, or names a file; "CUDA/torch" or "and/or" are words.
 */
function looksLikePath(m: string): boolean {
  if (m.length < 3 || SLASH_WORDS.test(m)) return false;
  if (/^(?:[/\\~]|\.{1,2}[/\\])/.test(m) || m.includes('\\')) return true;
  const seps = m.split('/').length - 1;
  return seps >= 2 || /\/[^/]*\.[A-Za-z0-9]{1,8}\W*$/.test(m);
}

function mixedToken(s: string): boolean {
  return /\d/.test(s) && /[A-Za-z]/.test(s);
}

const DIGIT_DOT_DIGIT = /\d\.\d/;
/** Cheap pre-check for HOST: a known TLD after a dot, a host:port, or localhost. */
const TLD_HINT = /\.(?:com|org|net|io|ai|co|dev|app|cloud|xyz|info|biz|us|uk|de|cn|jp|ru|fr|eu|tv|gg|run|host|local|internal|lan|site|online|tech|chat|space|pro|studio|ml|gpu|proxy)\b/i;
/** A dotted host name with a port (HOST's port form); plain "17:10:56" times do not count. */
const PORT_HINT = /[a-z0-9-]\.[a-z0-9-]+:\d{2,5}\b/i;
/** Cheap pre-check for HOST: a known TLD after a dot, a host:port, or localhost. */
function hostHint(s: string): boolean {
  if (s.includes('ocalhost') || s.includes('OCALHOST')) return true;
  if (!s.includes('.')) return false;
  return TLD_HINT.test(s) || (s.includes(':') && PORT_HINT.test(s));
}
/** Plain words only: nothing that could be a path, URL, host, IP or token (the common case, kept cheap). */
const PLAIN = /^[A-Za-z0-9_ #()[\]+,'"!?-]{0,31}$/;

/**
 * Removes stack-trace lines, URLs, e-mail addresses, tokens and secrets, file system paths,
 * IP addresses and host names from a text. Idempotent. Each pass runs only when a cheap check says
 * its target could be present: this is on the classifier's hot path.
 */
export function scrubText(text: string): string {
  let s = text.length > 16_384 ? text.slice(0, 16_384) : text;
  if (PLAIN.test(s)) return s.trim();
  // One look at which characters occur decides which passes can change anything.
  const newline = s.includes('\n');
  const slash = s.includes('/') || s.includes('\\');
  const colon = s.includes(':');
  if (newline || s.includes('File "') || s.includes('Traceback') || s.includes('^') || (colon && /\bat\s/.test(s))) s = s.replace(TRACE_LINE, '');
  if (s.includes('<')) s = s.replace(HTML_TAG, ' ');
  // URLs first: a query string's secrets go with the URL.
  if (colon && slash && s.includes('://')) s = s.replace(URL, '<url>');
  if ((colon || s.includes('=')) && SECRET_ASSIGN.test(s)) s = s.replace(KEY_VALUE, '$1<redacted>');
  if (AUTH_SCHEME.test(s)) s = s.replace(BEARER, '$1 <redacted>');
  if (s.includes('eyJ')) s = s.replace(JWT, '<redacted>');
  if (s.includes('@')) s = s.replace(EMAIL, '<email>');
  // Paths before token runs: a path is one long run, and once it is "<path>" the run checks are cheap.
  if (slash && (colon || s.includes('\\\\'))) s = s.replace(WIN_PATH, '<path>');
  if (slash) s = s.replace(TOKEN_WITH_SLASH, (m) => (looksLikePath(m) ? '<path>' : m));
  if (RUN_19.test(s)) {
    s = s.replace(PREFIXED_TOKEN, (m) => (mixedToken(m) ? '<redacted>' : m));
    s = s.replace(LONG_HEX, '<redacted>');
    if (RUN_40.test(s)) s = s.replace(LONG_B64, (m) => (mixedToken(m) ? '<redacted>' : m));
  }
  if (colon && RISKY_COLON.test(s)) s = s.replace(IPV6, '<ip>');
  if (s.includes('.') && DIGIT_DOT_DIGIT.test(s)) s = s.replace(IPV4, '<ip>');
  if (hostHint(s)) s = s.replace(HOST, '<host>');
  if (s.includes('<path>')) s = s.replace(/(?:<path>[\s\\/]*){2,}/g, '<path> ');
  if (newline) s = s.replace(/[ \t]+\n/g, '\n').replace(/\n{3,}/g, '\n\n');
  return s.trim();
}

/** A secret's keyword followed by an assignment (`api_key=`, `"token": `). */
const SECRET_ASSIGN = /(?:key|token|secret|pass(?:word|wd)?|pwd|auth\w*|cookie|session[_-]?id|comfy_org)["']?\s*[:=]/i;
/** An auth scheme followed by a credential. */
const AUTH_SCHEME = /(?:bearer|basic|token)\s+\S{8}/i;

/** A secret or a stack-trace line, by cheap substring checks first. */
function secretOrTrace(s: string): boolean {
  if ((s.includes(':') || s.includes('=')) && SECRET_ASSIGN.test(s)) return true;
  if ((s.includes('earer') || s.includes('EARER') || s.includes('asic') || s.includes('ASIC') || s.includes('oken') || s.includes('OKEN')) && AUTH_SCHEME.test(s)) return true;
  if (s.includes('Traceback') || s.includes('File "') || s.includes('^') || s.includes('During handling of') || s.includes('direct cause')) return true;
  return s.includes(':') && /\bat\s[^\n]*:\d+:\d+/.test(s);
}

const RISKY_CHAR = /[/\\@<>`]/;
const RISKY_COLON = /:[/\\:]|:[^:]*:[^:]*:/;
const DOTTED_NUMBER = /\d\.\d+\.\d/;
const LONG_RUN = /(?:^|[^A-Za-z0-9+_=-])([A-Za-z0-9+_=-]{19,})/g;

/**
 * True when a short line could hold anything `scrubText` removes: a separator, `@`, markup, a
 * colon before a separator, three colons, a dotted host with a port or a known TLD, a dotted number
 * that may be an IP, a long mixed token, a JWT, `localhost`, a secret assignment or a stack-trace
 * line. Conservative: false means scrubbing would not change the line. Simple regexes, because V8
 * runs a character-class regex several times faster than a JavaScript loop over the characters.
 */
function mayNeedScrub(s: string): boolean {
  if (RISKY_CHAR.test(s)) return true;
  if (s.includes('eyJ') || s.includes('ocalhost') || s.includes('OCALHOST')) return true;
  const dot = s.includes('.');
  if (s.includes(':') && (RISKY_COLON.test(s) || (dot && PORT_HINT.test(s)))) return true;
  if (dot && (DOTTED_NUMBER.test(s) || TLD_HINT.test(s))) return true;
  LONG_RUN.lastIndex = 0;
  for (let m = LONG_RUN.exec(s); m !== null; m = LONG_RUN.exec(s)) if (mixedToken(m[1] ?? '')) return true;
  return secretOrTrace(s);
}

const PLACEHOLDER = /<(?:path|url|host|ip|email|redacted)>/g;

/** One short, scrubbed line of a detail (an exception message, a node type), or '' if nothing is left. */
export function safeDetail(text: string | undefined, max = 160): string {
  if (!text) return '';
  // Short plain names (node types, input names, ids) are the common case.
  if (text.length <= 31 && PLAIN.test(text)) return text.trim();
  const first = firstLine(text, max + 40);
  // Most lines ("RuntimeError: CUDA error: misaligned address", "FLUX 1.1 [pro]") need no scrubbing.
  if (!mayNeedScrub(first)) return first.length <= max ? first : firstLine(first, max);
  // A path cut at the end is still recognised as a path: scrubbing a little more than we show is enough.
  const line = firstLine(scrubText(first), max);
  // Nothing but placeholders and punctuation left: say nothing rather than "<path>".
  if (line.includes('<') && line.replace(PLACEHOLDER, '').replace(/[\s:;,.'"()-]/g, '') === '') return '';
  return line;
}

/** A model file name without its directories (`SDXL\x.safetensors` -> `x.safetensors`), scrubbed. */
export function modelBasename(name: string): string {
  const base = name.split(/[\\/]/).filter((p) => p !== '').pop() ?? '';
  return safeDetail(base, 120);
}

/** A server name fit for a user message: simple configured names only, never a host, IP or URL. */
export function safeServerName(name: string | undefined): string | undefined {
  if (!name) return undefined;
  const n = name.trim();
  if (n === '' || n.length > 64 || /[.:/\\@\s]/.test(n)) return undefined;
  return scrubText(n) === n ? n : undefined;
}
