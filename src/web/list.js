// @ts-check
// The job list: search and filters through the whole store (GET /api/jobs/search), counts per
// status, sortable columns over the loaded rows, "load more", whole-row click, and live updates
// from the event stream (no polling).
import { api } from './api.js';
import { byId, h } from './dom.js';
import { between, changedBadge, duration, statusBadge, timeEl } from './format.js';
import { liveOf } from './live.js';

/** @typedef {import('../server/api-types.js').ListedJob} ListedJob */
/** @typedef {import('../server/api-types.js').Job} Job */
/** @typedef {import('../server/api-types.js').JobSummary} JobSummary */
/** @typedef {import('../server/api-types.js').SearchResult} SearchResult */
/** @typedef {{ status: string, q: string, server: string, code: string, hours: string }} Filters */
/** @typedef {'id' | 'status' | 'server' | 'attempts' | 'created' | 'duration'} SortKey */

export const STATUSES = ['queued', 'running', 'recovering', 'completed', 'failed', 'timed_out', 'cancelled'];
const TERMINAL = new Set(['completed', 'failed', 'timed_out', 'cancelled']);
const PAGE = 50;

export const list = {
  /** @type {Filters} */
  filters: { status: '', q: '', server: '', code: '', hours: '' },
  /** The filters the rows were loaded with, as a string, to know when to reload. @type {string | null} */
  loadedKey: null,
  /** @type {ListedJob[]} */
  rows: [],
  /** @type {string | null} */
  nextCursor: null,
  scanned: 0,
  /** @type {{ key: SortKey, dir: 1 | -1 }} */
  sort: { key: 'created', dir: -1 },
  /** @type {Record<string, number>} */
  counts: {},
  total: 0,
  /** Scroll position to restore when coming back from a job. */
  scrollY: 0,
  loading: false,
};

/**
 * Filters from a `#/jobs?…` query.
 * @param {URLSearchParams} p
 * @returns {Filters}
 */
export function filtersFrom(p) {
  return { status: p.get('status') ?? '', q: p.get('q') ?? '', server: p.get('server') ?? '', code: p.get('code') ?? '', hours: p.get('hours') ?? '' };
}

/**
 * The `#/jobs?…` hash of a set of filters.
 * @param {Filters} f
 */
export function hashOf(f) {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(f)) if (v) p.set(k, v);
  const q = p.toString();
  return q ? `#/jobs?${q}` : '#/jobs';
}

/** @param {Filters} f */
function keyOf(f) {
  return JSON.stringify(f);
}

/**
 * Shows the filters in the form.
 * @param {Filters} f
 */
function showFilters(f) {
  /** @type {HTMLInputElement} */ (byId('search')).value = f.q;
  /** @type {HTMLSelectElement} */ (byId('server-filter')).value = f.server;
  /** @type {HTMLInputElement} */ (byId('code-filter')).value = f.code;
  /** @type {HTMLSelectElement} */ (byId('range-filter')).value = f.hours;
}

/** Reads the filter form. @returns {Filters} */
export function readFilterForm() {
  return {
    status: list.filters.status,
    q: /** @type {HTMLInputElement} */ (byId('search')).value.trim(),
    server: /** @type {HTMLSelectElement} */ (byId('server-filter')).value,
    code: /** @type {HTMLInputElement} */ (byId('code-filter')).value.trim(),
    hours: /** @type {HTMLSelectElement} */ (byId('range-filter')).value,
  };
}

/** @param {Filters} f @param {string | null} cursor */
function searchPath(f, cursor) {
  const p = new URLSearchParams({ limit: String(PAGE) });
  if (f.status === 'active') p.set('status', 'queued,running,recovering');
  else if (f.status) p.set('status', f.status);
  if (f.q) p.set('q', f.q);
  if (f.server) p.set('server', f.server);
  if (f.code) p.set('code', f.code);
  if (f.hours) p.set('since', String(Date.now() - Number(f.hours) * 3_600_000));
  if (cursor) p.set('cursor', cursor);
  return `/api/jobs/search?${p}`;
}

/**
 * Shows the list for these filters: keeps the loaded rows (and the scroll position) when they are
 * the same filters, loads the first page otherwise.
 * @param {Filters} f
 * @param {{ force?: boolean }} [opts]
 */
export async function showList(f, opts = {}) {
  list.filters = f;
  showFilters(f);
  renderTabs();
  if (!opts.force && list.loadedKey === keyOf(f)) {
    renderRows();
    return;
  }
  list.loadedKey = keyOf(f);
  list.rows = [];
  list.nextCursor = null;
  list.scanned = 0;
  await loadPage(null);
}

/** Loads the next page. */
export async function loadMore() {
  if (list.nextCursor && !list.loading) await loadPage(list.nextCursor);
}

/** @param {string | null} cursor */
async function loadPage(cursor) {
  const key = list.loadedKey;
  const more = byId('load-more');
  list.loading = true;
  more.setAttribute('aria-busy', 'true');
  try {
    /** @type {SearchResult} */
    const page = await api(searchPath(list.filters, cursor));
    if (key !== list.loadedKey) return;
    const seen = new Set(list.rows.map((r) => r.id));
    list.rows.push(...page.jobs.filter((j) => !seen.has(j.id)));
    list.nextCursor = page.nextCursor;
    list.scanned += page.scanned;
    renderRows();
  } finally {
    list.loading = false;
    more.removeAttribute('aria-busy');
  }
}

/**
 * Counts per status (from /api/stats, then kept up to date from state events).
 * @param {Record<string, number>} byStatus
 * @param {number} total
 */
export function setCounts(byStatus, total) {
  list.counts = { ...byStatus };
  list.total = total;
  renderTabs();
}

function renderTabs() {
  const c = list.counts;
  const active = (c.queued ?? 0) + (c.running ?? 0) + (c.recovering ?? 0);
  /** @type {Array<[string, string, number]>} */
  const tabs = [['', 'All', list.total], ['active', 'Active', active], ...STATUSES.map((s) => /** @type {[string, string, number]} */ ([s, s.replace('_', ' '), c[s] ?? 0]))];
  byId('status-tabs').replaceChildren(
    ...tabs.map(([value, label, n]) =>
      h('a', { href: hashOf({ ...list.filters, status: value }), class: `tab s-${value || 'all'}`, 'aria-current': list.filters.status === value ? 'true' : undefined, 'data-status-tab': value || 'all' }, `${label} `, h('span', { class: 'count' }, String(n))),
    ),
  );
}

/** @param {ListedJob} j @returns {number} */
function durationOf(j) {
  return between(j.startedAt, j.endedAt) ?? -1;
}

/** @type {Record<SortKey, (a: ListedJob, b: ListedJob) => number>} */
const COMPARE = {
  id: (a, b) => a.id.localeCompare(b.id),
  status: (a, b) => a.status.localeCompare(b.status),
  server: (a, b) => (a.server ?? '').localeCompare(b.server ?? ''),
  attempts: (a, b) => a.attempts.length - b.attempts.length,
  created: (a, b) => Date.parse(a.createdAt) - Date.parse(b.createdAt),
  duration: (a, b) => durationOf(a) - durationOf(b),
};

/**
 * Sorts the loaded rows by a column (again: reverses).
 * @param {SortKey} key
 */
export function sortBy(key) {
  list.sort = list.sort.key === key ? { key, dir: list.sort.dir === 1 ? -1 : 1 } : { key, dir: key === 'created' || key === 'duration' ? -1 : 1 };
  for (const b of document.querySelectorAll('#job-list th button[data-sort]')) {
    if (b.getAttribute('data-sort') === key) b.setAttribute('aria-sort', list.sort.dir === 1 ? 'ascending' : 'descending');
    else b.removeAttribute('aria-sort');
  }
  renderRows();
}

/** @param {ListedJob} j */
function summaryLine(j) {
  const s = j.summary;
  const parts = [s.label, s.model, s.width && s.height ? `${s.width}×${s.height}` : null, s.batch && s.batch > 1 ? `×${s.batch}` : null].filter(Boolean);
  return parts.length ? h('div', { class: 'muted small' }, parts.join(' · ')) : null;
}

/**
 * The progress cell: percentage, or where the job waits, or the step and ETA while it runs.
 * @param {Job} j
 */
export function progressText(j) {
  if (TERMINAL.has(j.status)) return `${Math.round(j.progress)} %`;
  if (j.status === 'queued') return 'waiting for a server';
  if (j.status === 'recovering') return 'recovering';
  const l = liveOf(j.id);
  const progress = Math.round(l?.progress ?? j.progress);
  if (!(l?.executing ?? j.progress > 0)) return `waiting in ${j.server ?? 'the server'}'s queue`;
  const step = l?.step ? ` · step ${l.step.value}/${l.step.max}` : '';
  const eta = l?.jobEtaMs != null ? ` · ~${duration(l.jobEtaMs)} left` : l?.stepEtaMs != null ? ` · ~${duration(l.stepEtaMs)} left on this node` : '';
  return `${progress} %${step}${eta}`;
}

/** @param {ListedJob} j */
function row(j) {
  const open = () => (location.hash = `#/jobs/${j.id}`);
  const l = liveOf(j.id);
  return h(
    'tr',
    { 'data-job': j.id, 'data-status': j.status, class: 'clickable', onclick: open },
    h('th', { scope: 'row', 'data-label': 'Job' }, h('a', { href: `#/jobs/${j.id}`, class: 'job-link' }, j.id.slice(0, 8)), summaryLine(j)),
    h('td', { 'data-label': 'Status' }, statusBadge(j.status), j.error ? h('div', { class: 'muted small' }, j.error.code) : null, changedBadge(j)),
    h(
      'td',
      { 'data-label': 'Progress' },
      h('progress', { max: 100, value: Math.round(l?.progress ?? j.progress), 'aria-label': `Progress of job ${j.id.slice(0, 8)}` }),
      h('span', { class: 'progress-text' }, ` ${progressText(j)}`),
    ),
    h('td', { 'data-label': 'Server' }, j.server ?? '–'),
    h('td', { 'data-label': 'Attempts' }, String(j.attempts.length), j.retryCount > 0 ? ` (${j.retryCount} retries)` : ''),
    h('td', { 'data-label': 'Created' }, timeEl(j.createdAt)),
    h(
      'td',
      { 'data-label': 'Duration', title: j.startedAt ? `waited ${duration(between(j.createdAt, j.startedAt))} in the queue` : 'not started' },
      j.startedAt ? duration(between(j.startedAt, j.endedAt)) : '–',
    ),
  );
}

/** Renders the loaded rows in the chosen order. */
export function renderRows() {
  const tbody = /** @type {HTMLTableElement} */ (byId('job-list')).tBodies[0];
  if (!tbody) return;
  const cmp = COMPARE[list.sort.key];
  const rows = [...list.rows].sort((a, b) => cmp(a, b) * list.sort.dir);
  if (rows.length === 0) tbody.replaceChildren(h('tr', {}, h('td', { colspan: 7, class: 'muted' }, list.loading ? 'Loading…' : list.nextCursor ? 'No match yet.' : 'No jobs match.')));
  else tbody.replaceChildren(...rows.map(row));
  const more = byId('load-more');
  more.hidden = !list.nextCursor;
  more.textContent = rows.length === 0 && list.nextCursor ? 'Search further' : 'Load more';
  byId('list-count').textContent = `${rows.length} shown${list.nextCursor ? ` (${list.scanned} searched, more to load)` : ''}`;
}

/**
 * True when a job belongs in the list under the current filters (checked in the page, for live rows).
 * @param {ListedJob} j
 */
function fits(j) {
  const f = list.filters;
  if (f.status === 'active' ? TERMINAL.has(j.status) : f.status && f.status !== j.status) return false;
  if (f.server && j.server !== f.server && !j.attempts.some((a) => a.server === f.server)) return false;
  if (f.code && j.error?.code !== f.code && !j.attempts.some((a) => a.code === f.code)) return false;
  if (f.q) {
    const q = f.q.toLowerCase();
    const s = j.summary;
    if (![j.id, s.label, s.model, s.prompt, j.error?.code, j.error?.message].some((x) => typeof x === 'string' && x.toLowerCase().includes(q))) return false;
  }
  return true;
}

/**
 * Applies a state event: the row changes in place, a new job appears on top when it fits the
 * filters, and the per-status counts move.
 * @param {{ from: string | null, to: string, job: Job, summary: JobSummary }} e
 */
export function applyState(e) {
  if (e.from !== e.to) {
    if (e.from) list.counts[e.from] = Math.max(0, (list.counts[e.from] ?? 0) - 1);
    else list.total += 1;
    list.counts[e.to] = (list.counts[e.to] ?? 0) + 1;
    renderTabs();
  }
  /** @type {ListedJob} */
  const listed = { ...e.job, summary: e.summary };
  const i = list.rows.findIndex((r) => r.id === e.job.id);
  if (i >= 0) {
    if (fits(listed)) list.rows[i] = listed;
    else list.rows.splice(i, 1);
  } else if (e.from === null && fits(listed)) list.rows.unshift(listed);
  else return;
  if (!byId('view-jobs').hidden) renderRows();
}

/**
 * Updates one row's progress cell from the live state (no re-render of the table).
 * @param {string} id
 */
export function applyLive(id) {
  const j = list.rows.find((r) => r.id === id);
  const tr = document.querySelector(`#job-list tr[data-job="${CSS.escape(id)}"]`);
  if (!j || !tr) return;
  const l = liveOf(id);
  const bar = tr.querySelector('progress');
  if (bar && l) bar.value = Math.round(l.progress);
  const text = tr.querySelector('.progress-text');
  if (text) text.textContent = ` ${progressText(j)}`;
}
