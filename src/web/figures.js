// @ts-check
// The figures: totals with plain definitions, and charts over time from /api/stats/detailed
// (throughput, failure rate, errors by code, recoveries by strategy and outcome, per-server load
// and failures). Loaded when the view opens and after jobs end (debounced), never on a timer.
import { api } from './api.js';
import { hbars, rateLine, timeBars } from './charts.js';
import { byId, fill, h } from './dom.js';
import { pct } from './format.js';

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
  );
  const errorRows = Object.entries(d.errorDistribution)
    .sort((x, y) => y[1] - x[1])
    .map(([code, n]) => ({ label: code, parts: [{ value: d.failuresByCode[code] ?? 0, cls: 'c-failed', name: 'ended the job' }, { value: Math.max(0, n - (d.failuresByCode[code] ?? 0)), cls: 'c-recovered', name: 'recovered or retried' }] }));
  const strategyRows = strategies
    .sort((x, y) => y[1].succeeded + y[1].failed - (x[1].succeeded + x[1].failed))
    .map(([name, v]) => ({ label: name.replace('_', ' '), parts: [{ value: v.succeeded, cls: 'c-completed', name: 'helped' }, { value: v.failed, cls: 'c-failed', name: 'did not help' }, { value: v.pending, cls: 'c-pending', name: 'running' }] }));
  const serverRows = Object.entries(d.byServer).map(([name, v]) => ({ label: `${name}${v.healthy === false ? ' (unhealthy)' : ''}`, parts: [{ value: v.completed, cls: 'c-completed', name: 'attempts completed' }, { value: v.failed, cls: 'c-failed', name: 'attempts failed' }, { value: Math.max(0, v.attempts - v.completed - v.failed), cls: 'c-pending', name: 'other' }] }));
  const w = d.window;
  fill(byId('charts'),
    timeBars(d.overTime, [{ key: 'completed', name: 'completed', cls: 'c-completed' }, { key: 'failed', name: 'failed', cls: 'c-failed' }], { label: `Throughput: jobs ended per ${w.bucketMinutes >= 1440 ? 'day' : 'hour'}`, bucketMinutes: w.bucketMinutes }),
    timeBars(d.overTime, [{ key: 'submitted', name: 'submitted', cls: 'c-submitted' }, { key: 'recoveries', name: 'recovery steps', cls: 'c-recovered' }], { label: 'Submissions and recovery steps', bucketMinutes: w.bucketMinutes }),
    rateLine(d.overTime, { label: 'Failure rate: failed / ended jobs per bucket' }),
    hbars(errorRows, { label: 'Errors by code (all time)', empty: 'No errors.' }),
    hbars(strategyRows, { label: 'Recoveries by strategy and outcome (all time)', empty: 'No recovery was needed.' }),
    hbars(serverRows, { label: `Load and failures per server (last ${w.hours} h)`, empty: 'No attempts in this window.' }),
    w.truncated ? h('p', { class: 'muted small' }, `Only the newest ${w.sampledJobs} jobs of the window were read.`) : null,
  );
}
