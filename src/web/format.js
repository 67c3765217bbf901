// @ts-check
// Words and numbers for people: relative times with the exact time on hover, durations, binary
// sizes, readable server errors, and the net changes recovery made to a job's result.
import { h } from './dom.js';

/** @typedef {import('../server/api-types.js').Job} Job */
/** @typedef {{ nodeId: string, classType: string, input: string, from: unknown, to: unknown }} InputChange */

/**
 * "3 s", "4 min", "2 h 5 min".
 * @param {number | null | undefined} ms
 */
export function duration(ms) {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return '–';
  if (ms < 1000) return `${Math.max(0, Math.round(ms))} ms`;
  const sec = Math.round(ms / 1000);
  if (sec < 60) return `${sec} s`;
  const min = Math.floor(sec / 60);
  if (min < 60) return sec % 60 && min < 10 ? `${min} min ${sec % 60} s` : `${min} min`;
  const hr = Math.floor(min / 60);
  if (hr < 48) return min % 60 ? `${hr} h ${min % 60} min` : `${hr} h`;
  return `${Math.round(hr / 24)} d`;
}

/**
 * "2 min ago" / "in 5 s".
 * @param {string | number} t ISO time or ms epoch
 * @param {number} [now]
 */
export function relative(t, now = Date.now()) {
  const ms = typeof t === 'number' ? t : Date.parse(t);
  const d = now - ms;
  if (Math.abs(d) < 5000) return 'just now';
  return d > 0 ? `${duration(d)} ago` : `in ${duration(-d)}`;
}

/**
 * The exact local time with the date.
 * @param {string | number} t
 */
export function exact(t) {
  const d = new Date(t);
  return `${d.toLocaleString(undefined, { year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit' })}`;
}

/**
 * A <time> showing the relative time, the exact one on hover (and for screen readers via datetime).
 * @param {string | null | undefined} t
 */
export function timeEl(t) {
  if (!t) return h('span', { class: 'muted' }, '–');
  return h('time', { datetime: t, title: exact(t), 'data-rel': t }, relative(t));
}

/** Refreshes every relative time on the page (called once a few seconds; no requests). */
export function refreshRelativeTimes() {
  const now = Date.now();
  for (const el of document.querySelectorAll('time[data-rel]')) el.textContent = relative(el.getAttribute('data-rel') ?? '', now);
}

/**
 * Milliseconds between two ISO times (or until now when `b` is null).
 * @param {string | null | undefined} a
 * @param {string | null | undefined} b
 */
export function between(a, b) {
  if (!a) return null;
  return (b ? Date.parse(b) : Date.now()) - Date.parse(a);
}

/**
 * Bytes in binary units: a 24 GiB card reads "24.0 GiB".
 * @param {number | null | undefined} n
 */
export function gib(n) {
  if (n === null || n === undefined) return '–';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${n.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
}

/** @param {number} x 0..1 */
export function pct(x) {
  return `${Math.round(x * 100)} %`;
}

const HTTP_REASONS = /** @type {Record<string, string>} */ ({
  '400': 'bad request',
  '401': 'unauthorized',
  '403': 'forbidden',
  '404': 'not found',
  '429': 'too many requests',
  '500': 'internal server error',
  '502': 'bad gateway',
  '503': 'service unavailable',
  '504': 'gateway timeout',
});

/**
 * A server's last error in words: `GET /system_stats: HTTP 503 <html>…` → "HTTP 503 (service unavailable) from GET /system_stats".
 * @param {string | null} raw
 */
export function readableError(raw) {
  if (!raw) return '';
  const http = /^(GET|POST|PUT|DELETE)?\s*(\/\S*)?:?\s*HTTP (\d{3})/.exec(raw);
  if (http) {
    const reason = HTTP_REASONS[http[3] ?? ''];
    return `HTTP ${http[3]}${reason ? ` (${reason})` : ''}${http[2] ? ` from ${http[1] ? `${http[1]} ` : ''}${http[2]}` : ''}`;
  }
  if (/ECONNREFUSED/.test(raw)) return 'connection refused: nothing listens on that address (ComfyUI down or restarting)';
  if (/ETIMEDOUT|timed? ?out/i.test(raw)) return 'no answer in time (timeout)';
  if (/ENOTFOUND|EAI_AGAIN/.test(raw)) return 'the host name does not resolve';
  if (/ECONNRESET|socket hang up/i.test(raw)) return 'the connection was cut';
  // Strip HTML bodies some proxies send.
  return raw.replace(/<[^>]*>/g, ' ').replace(/\s+/g, ' ').trim().slice(0, 200);
}

const SHORT_INPUT = /** @type {Record<string, string>} */ ({ batch_size: 'batch', ckpt_name: 'model', unet_name: 'model', noise_seed: 'seed' });

/**
 * A value as the person who wrote the workflow would write it.
 * @param {unknown} v
 */
export function val(v) {
  return typeof v === 'string' ? v : JSON.stringify(v);
}

/**
 * Where a job's result differs from what was asked: the net input changes of its recovery steps
 * (first `from`, last `to`, changes that were undone dropped) and of capacity-aware degradation.
 * @param {Job} job
 * @returns {InputChange[]}
 */
export function resultChanges(job) {
  /** @type {Map<string, InputChange>} */
  const net = new Map();
  /** @param {InputChange} c */
  const add = (c) => {
    const k = `${c.nodeId}.${c.input}`;
    const prev = net.get(k);
    net.set(k, prev ? { ...prev, to: c.to } : { ...c });
  };
  // Each step starts from the workflow the previous attempt ran, so every step's changes carry on.
  for (const step of job.recoveryHistory) for (const c of step.changes) add(c);
  // Capacity-aware recovery records the changes on the job (`degraded.changes`); older records carry only a level.
  for (const c of job.degraded?.changes ?? []) add({ nodeId: c.node, classType: c.classType ?? '', input: c.input, from: c.from, to: c.to });
  return [...net.values()].filter((c) => JSON.stringify(c.from) !== JSON.stringify(c.to));
}

/**
 * "batch 8 → 4".
 * @param {InputChange} c
 */
export function shortChange(c) {
  return `${SHORT_INPUT[c.input] ?? c.input} ${val(c.from)} → ${val(c.to)}`;
}

/**
 * "KSampler #3 batch_size: 8 → 4".
 * @param {InputChange} c
 */
export function longChange(c) {
  return `${c.classType ? `${c.classType} ` : ''}#${c.nodeId} ${c.input}: ${val(c.from)} → ${val(c.to)}`;
}

/**
 * The "changed: batch 8 → 4" badge of a job whose result is not what was asked, or null.
 * @param {Job} job
 */
export function changedBadge(job) {
  const changes = resultChanges(job);
  const fallback = job.recoveryHistory.some((s) => s.strategy === 'fallback_workflow' && s.success === true);
  if (changes.length === 0 && !fallback) return null;
  const text = fallback ? 'changed: ran a fallback workflow' : `changed: ${changes.map(shortChange).join(', ')}`;
  return h('span', { class: 'badge changed', title: 'The result differs from what was asked: recovery changed these inputs to make the job fit' }, text);
}

/**
 * A status badge.
 * @param {string} status
 * @param {string} [label]
 */
export function statusBadge(status, label) {
  return h('span', { class: `status s-${status}` }, label ?? status.replace('_', ' '));
}
