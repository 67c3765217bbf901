/**
 * The CLI's pino logger, on stderr (stdout stays for results), written synchronously so nothing is
 * lost on exit. Two formats: `json` (pino's lines, for log collectors) and `human` (one readable
 * line per event: time, level, component, message and the few fields that identify what it is
 * about; no stack traces, no HTML bodies, no nested objects).
 */
import { pino, type Logger as PinoLogger } from 'pino';
import type { LogFormat, LogLevel } from './config.js';

/** A pino logger at `level` writing to stderr in `format`. */
export function createCliLogger(level: LogLevel, name = 'comfyguard', format: LogFormat = 'json', write: (line: string) => void = writeStderr): PinoLogger {
  if (format === 'json') {
    if (write === writeStderr) return pino({ name, level, base: { pid: process.pid } }, pino.destination({ dest: 2, sync: true }));
    return pino({ name, level, base: { pid: process.pid } }, { write });
  }
  return pino({ name, level, base: null, timestamp: pino.stdTimeFunctions.epochTime }, { write: (line: string) => write(`${humanLine(line)}\n`) });
}

function writeStderr(s: string): void {
  process.stderr.write(s);
}

const LEVELS: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO ', 40: 'WARN ', 50: 'ERROR', 60: 'FATAL' };
/** Fields that say what a line is about, shown after the message in this order. */
const SHOWN = ['server', 'jobId', 'job', 'code', 'port', 'url', 'store', 'signal', 'status', 'attempt'];
const HIDDEN = new Set(['level', 'time', 'msg', 'pid', 'hostname', 'name', 'v', 'component', 'err', 'error']);

/** One pino JSON line as one readable line: `10:31:02 WARN  [guard] message: cause (server=a)`. */
export function humanLine(json: string): string {
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(json) as Record<string, unknown>;
  } catch {
    return clean(json);
  }
  const time = typeof o.time === 'number' ? new Date(o.time).toISOString().slice(11, 19) : '';
  const level = LEVELS[Number(o.level)] ?? String(o.level);
  const component = typeof o.component === 'string' ? ` [${o.component}]` : '';
  const cause = errorText(o.err ?? o.error);
  const msg = clean(typeof o.msg === 'string' ? o.msg : '');
  const fields: string[] = [];
  for (const k of SHOWN) if (isScalar(o[k])) fields.push(`${k}=${clean(String(o[k]))}`);
  for (const [k, v] of Object.entries(o)) {
    if (HIDDEN.has(k) || SHOWN.includes(k) || !isScalar(v)) continue;
    if (fields.length >= 6) break;
    fields.push(`${k}=${clean(String(v))}`);
  }
  const text = cause && !msg.includes(cause) ? `${msg}: ${cause}` : msg;
  return `${time} ${level}${component} ${text}${fields.length > 0 ? ` (${fields.join(', ')})` : ''}`.trimEnd();
}

function isScalar(v: unknown): v is string | number | boolean {
  return typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean';
}

/** The first line of an error's message, without its stack or an HTML body. */
function errorText(err: unknown): string {
  if (typeof err === 'string') return clean(err);
  if (err && typeof err === 'object') {
    const m = (err as { message?: unknown }).message;
    if (typeof m === 'string') return clean(m);
  }
  return '';
}

/** One line, at most 200 characters, HTML reduced to its text ("<html><title>503…" -> "503 …"). */
export function clean(s: string): string {
  let t = s;
  if (/<(html|body|head|title|h1|center|hr|!doctype)\b/i.test(t)) {
    const title = /<title>([^<]*)<\/title>/i.exec(t)?.[1] ?? /<h1>([^<]*)<\/h1>/i.exec(t)?.[1];
    const at = t.search(/<(!doctype|html|head|body|center|h1|title)\b/i);
    t = `${t.slice(0, at).trimEnd()}${title ? ` ${title.trim()}` : ' (HTML page)'}`;
  }
  const line = (t.split('\n').find((l) => l.trim() !== '') ?? '').replace(/\s+/g, ' ').trim();
  return line.length > 200 ? `${line.slice(0, 197)}...` : line;
}
