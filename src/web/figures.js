// @ts-check
// The figures: totals with plain definitions, and charts over time from /api/stats/detailed
// (throughput, failure rate, errors by code, recoveries by strategy and outcome, per-server load
// and failures, and goodput: where the servers' time went). Loaded when the view opens and after jobs end (debounced), never on a timer.
import { api } from './api.js';
import { hbars, rateLine, timeBars } from './charts.js';
import { byId, fill, h } from './dom.js';
import { duration, pct } from './format.js';

/** @typedef {import('../server/api-types.js').DetailedStats} DetailedStats */

/** Loads and shows the figures for the chosen window. */
export async function refreshFigures() {
  const hours = /** @type {HTMLSelectElement} */ (byId('chart-hours')).value || '24';
  /** @type {DetailedStats} */
  const d = await api(`/api/stats/detailed?hours=${encodeURIComponent(hours)}`);
  render(d);
  return d;
}

/**
 * @param {string} k
 * @param {string | number} v
 * @param {string} [help]
 */
function stat(k, v, help) {
  return h('div', { class: 'stat' }, h('dt', {}, k), h('dd', {}, String(v)), help ? h('p', { class: 'muted small' }, help) : null);
}

/**
 * Goodput: the share of server time that went into results.
 * @param {DetailedStats['goodput']} g
 */
function goodputStat(g) {
  const t = g.total;
  const value = g.goodput === null ? '–' : pct(g.goodput);
  const help = `${duration(t.succeededSeconds * 1000)} of GPU time went into results, ${duration(t.failedSeconds * 1000)} into ${t.failedAttempts} failed attempts${t.savedSeconds > 0 ? `, ${duration(t.savedSeconds * 1000)} saved by resume and cache` : ''} (attempts this service saw end since it started)`;
  const el = stat('Goodput', value, help);
  el.id = 'goodput';
  return el;
}

/** @param {DetailedStats} d */
function render(d) {
  const b = d.byStatus;
  const failed = (b.failed ?? 0) + (b.timed_out ?? 0);
  const strategies = Object.entries(d.byStrategy);
  const stepsOk = strategies.reduce((a, [, v]) => a + v.succeeded, 0);
  const stepsBad = strategies.reduce((a, [, v]) => a + v.failed, 0);
  byId('stats').replaceChildren(
    stat('Jobs', d.totalJobs),
    stat('Completed', b.completed ?? 0),
    stat('Failed', failed, 'failed or timed out'),
    stat('Active', (b.queued ?? 0) + (b.running ?? 0) + (b.recovering ?? 0)),
    stat('Recovered jobs', pct(d.retrySuccessRate), 'of the ended jobs that hit a failure and were retried, the share that still completed'),
    stat('Recovery steps', `${stepsOk} helped / ${stepsBad} did not`, 'one job may take several steps; a step that did not help is often followed by one that did'),
    stat('Failed attempts', d.totalErrors, 'every failed attempt, including those recovery fixed'),
    goodputStat(d.goodput),
  );
  const errorRows = Object.entries(d.errorDistribution)
    .sort((x, y) => y[1] - x[1])
    .map(([code, n]) => ({ label: code, parts: [{ value: d.failuresByCode[code] ?? 0, cls: 'c-failed', name: 'ended the job' }, { value: Math.max(0, n - (d.failuresByCode[code] ?? 0)), cls: 'c-recovered', name: 'recovered or retried' }] }));
  const strategyRows = strategies
    .sort((x, y) => y[1].succeeded + y[1].failed - (x[1].succeeded + x[1].failed))
    .map(([name, v]) => ({ label: name.replace('_', ' '), parts: [{ value: v.succeeded, cls: 'c-completed', name: 'helped' }, { value: v.failed, cls: 'c-failed', name: 'did not help' }, { value: v.pending, cls: 'c-pending', name: 'running' }] }));
  const serverRows = Object.entries(d.byServer).map(([name, v]) => ({ label: `${name}${v.healthy === false ? ' (unhealthy)' : ''}`, parts: [{ value: v.completed, cls: 'c-completed', name: 'attempts completed' }, { value: v.failed, cls: 'c-failed', name: 'attempts failed' }, { value: Math.max(0, v.attempts - v.completed - v.failed), cls: 'c-pending', name: 'other' }] }));
  // Seconds with two decimals: simulated and small jobs take well under a second.
  /** @param {number} x */
  const sec = (x) => Math.round(x * 100) / 100;
  const g = d.goodput;
  const gpuRows = Object.entries(g.byServer).map(([name, v]) => ({ label: name, parts: [{ value: sec(v.succeededSeconds), cls: 'c-completed', name: 's produced results' }, { value: sec(v.failedSeconds), cls: 'c-failed', name: 's lost to failures' }, { value: sec(v.savedSeconds), cls: 'c-recovered', name: 's saved by reuse' }] }));
  const lostRows = Object.entries(g.byCode)
    .sort((x, y) => y[1].failedSeconds - x[1].failedSeconds)
    .map(([code, v]) => ({ label: code, parts: [{ value: sec(v.failedSeconds), cls: 'c-failed', name: 's lost to failures' }] }));
  const w = d.window;
  fill(byId('charts'),
    timeBars(d.overTime, [{ key: 'completed', name: 'completed', cls: 'c-completed' }, { key: 'failed', name: 'failed', cls: 'c-failed' }], { label: `Throughput: jobs ended per ${w.bucketMinutes >= 1440 ? 'day' : 'hour'}`, bucketMinutes: w.bucketMinutes }),
    timeBars(d.overTime, [{ key: 'submitted', name: 'submitted', cls: 'c-submitted' }, { key: 'recoveries', name: 'recovery steps', cls: 'c-recovered' }], { label: 'Submissions and recovery steps', bucketMinutes: w.bucketMinutes }),
    rateLine(d.overTime, { label: 'Failure rate: failed / ended jobs per bucket' }),
    hbars(errorRows, { label: 'Errors by code (all time)', empty: 'No errors.' }),
    hbars(strategyRows, { label: 'Recoveries by strategy and outcome (all time)', empty: 'No recovery was needed.' }),
    hbars(serverRows, { label: `Load and failures per server (last ${w.hours} h)`, empty: 'No attempts in this window.' }),
    hbars(gpuRows, { label: `GPU time per server, in seconds (since ${new Date(g.since).toLocaleString()})`, empty: 'No attempt has ended since the service started.', id: 'goodput-servers' }),
    hbars(lostRows, { label: 'GPU time lost to failures, by error code', empty: 'No GPU time was lost to failures.', id: 'goodput-codes' }),
    w.truncated ? h('p', { class: 'muted small' }, `Only the newest ${w.sampledJobs} jobs of the window were read.`) : null,
  );
}
