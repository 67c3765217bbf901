// @ts-check
// The dashboard: a hash router (#/jobs?…, #/jobs/<id>, #/servers, #/charts, #/submit) over views
// that follow the service's event stream (/api/events). Figures are fetched when a view opens, on
// a reconnect, and (debounced) after jobs end; nothing polls on a timer except the servers view,
// whose queue and VRAM figures come from health checks that have no event.
import { ApiFailure, api, getKey, readEvents, setKey } from './api.js';
import { byId, h } from './dom.js';
import { refreshFigures } from './figures.js';
import { refreshRelativeTimes } from './format.js';
import { applyJobEvent, closeJob, openJob, page } from './job.js';
import { applyLive, applyState, filtersFrom, hashOf, list, loadMore, readFilterForm, setCounts, showList, sortBy } from './list.js';
import { noteEvent } from './live.js';
import { refreshServers } from './servers.js';

/** @typedef {import('../server/api-types.js').Stats} Stats */
/** @typedef {import('../server/api-types.js').Control} Control */
/** @typedef {import('../server/api-types.js').StreamPayload} StreamPayload */

const VIEWS = ['jobs', 'job', 'servers', 'charts', 'submit'];
const TERMINAL = new Set(['completed', 'failed', 'timed_out', 'cancelled']);

const app = {
  view: 'jobs',
  paused: false,
  /** @type {ReturnType<typeof setTimeout> | null} */
  figuresTimer: null,
  /** @type {ReturnType<typeof setInterval> | null} */
  serversTimer: null,
};

/**
 * @param {string} text
 * @param {boolean} [isError]
 */
function notify(text, isError = false) {
  const n = byId('notice');
  n.textContent = text;
  n.classList.toggle('is-error', isError);
}

/** @param {unknown} err */
function failed(err) {
  if (err instanceof ApiFailure && err.status === 401) notify('The service needs an API key: enter it under "API key" above.', true);
  else notify(err instanceof Error ? err.message : String(err), true);
}

/** @param {boolean} paused */
function showPaused(paused) {
  app.paused = paused;
  const badge = byId('pool-state');
  badge.textContent = paused ? 'paused: queued jobs wait' : 'running';
  badge.className = `badge ${paused ? 'bad' : 'ok'}`;
  byId('pause-toggle').textContent = paused ? 'Resume pool' : 'Pause pool';
}

// ---- routing ------------------------------------------------------------------------------------

/** @param {string} name */
function showView(name) {
  const prev = app.view;
  if (prev === 'jobs' && name !== 'jobs') list.scrollY = window.scrollY;
  app.view = name;
  for (const v of VIEWS) byId(`view-${v}`).hidden = v !== name;
  for (const a of document.querySelectorAll('[data-nav]')) {
    const on = a.getAttribute('data-nav') === (name === 'job' ? 'jobs' : name);
    if (on) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  if (app.serversTimer !== null) clearInterval(app.serversTimer);
  app.serversTimer = null;
  if (name === 'servers') app.serversTimer = setInterval(() => void refreshServers().catch(() => undefined), 10_000);
  return prev;
}

async function route() {
  const hash = location.hash || '#/jobs';
  const job = /^#\/jobs\/([\w-]+)$/.exec(hash);
  try {
    if (job?.[1]) {
      const prev = showView('job');
      page.cameFromList = prev === 'jobs' || (prev === 'job' && page.cameFromList);
      await openJob(job[1]);
      return;
    }
    closeJob();
    if (hash.startsWith('#/servers')) {
      showView('servers');
      await refreshServers();
    } else if (hash.startsWith('#/charts')) {
      showView('charts');
      await refreshFigures();
    } else if (hash.startsWith('#/submit')) {
      showView('submit');
    } else {
      const q = hash.indexOf('?');
      showView('jobs');
      await showList(filtersFrom(new URLSearchParams(q >= 0 ? hash.slice(q + 1) : '')));
      window.scrollTo(0, list.scrollY);
    }
    if (byId('notice').classList.contains('is-error')) notify('');
  } catch (err) {
    failed(err);
  }
}

// ---- live ---------------------------------------------------------------------------------------

/** Loads what the stream does not replay: counts, control state, and the open view's figures. */
async function resync() {
  const [stats, control] = await Promise.all([/** @type {Promise<Stats>} */ (api('/api/stats')), /** @type {Promise<Control>} */ (api('/api/control'))]);
  setCounts(stats.byStatus, stats.totalJobs);
  showPaused(control.paused);
  // The servers also fill the list's server filter.
  await refreshServers();
  if (app.view === 'jobs') await showList(list.filters, { force: true });
  else if (app.view === 'charts') await refreshFigures();
  else if (app.view === 'job' && page.id) await openJob(page.id);
}

function figuresSoon() {
  if (app.view !== 'charts' || app.figuresTimer !== null) return;
  app.figuresTimer = setTimeout(() => {
    app.figuresTimer = null;
    void refreshFigures().catch(failed);
  }, 3000);
}

/** @param {StreamPayload} e */
function onEvent(e) {
  const id = noteEvent(e);
  switch (e.type) {
    case 'hello':
      showPaused(e.paused);
      byId('live').textContent = 'live';
      byId('live').className = 'live on';
      void resync().catch(failed);
      return;
    case 'control':
      showPaused(e.paused);
      if (app.view === 'servers') void refreshServers().catch(failed);
      return;
    case 'pool':
      if (app.view === 'servers') void refreshServers().catch(failed);
      return;
    case 'state':
      applyState(e);
      if (TERMINAL.has(e.to)) figuresSoon();
      break;
    default:
      break;
  }
  if (id) {
    applyLive(id);
    applyJobEvent(e);
  }
}

/** Follows /api/events for as long as the page is open, reconnecting with a growing pause. */
async function follow() {
  let wait = 1000;
  for (;;) {
    const ac = new AbortController();
    try {
      await readEvents('/api/events', (e) => {
        wait = 1000;
        onEvent(e);
      }, ac.signal);
    } catch (err) {
      if (err instanceof ApiFailure && err.status === 401) failed(err);
    }
    byId('live').textContent = 'reconnecting…';
    byId('live').className = 'live off';
    await new Promise((r) => setTimeout(r, wait));
    wait = Math.min(15_000, wait * 2);
  }
}

// ---- wiring -------------------------------------------------------------------------------------

/**
 * Runs an action with a busy button and its result next to it.
 * @param {HTMLButtonElement} button
 * @param {HTMLElement} out
 * @param {() => Promise<string>} run
 */
async function busy(button, out, run) {
  button.disabled = true;
  button.setAttribute('aria-busy', 'true');
  out.textContent = '…';
  out.className = 'result';
  try {
    out.textContent = await run();
    out.className = 'result ok';
  } catch (err) {
    out.textContent = err instanceof Error ? err.message : String(err);
    out.className = 'result bad';
  } finally {
    button.disabled = false;
    button.removeAttribute('aria-busy');
  }
}

function wire() {
  /** @type {HTMLInputElement} */ (byId('api-key')).value = getKey();
  byId('key-form').addEventListener('submit', (e) => {
    e.preventDefault();
    setKey(/** @type {HTMLInputElement} */ (byId('api-key')).value.trim());
    notify(getKey() ? 'API key saved for this tab.' : 'API key cleared.');
    void route();
  });

  byId('filters').addEventListener('submit', (e) => {
    e.preventDefault();
    location.hash = hashOf(readFilterForm());
  });
  for (const id of ['server-filter', 'range-filter']) byId(id).addEventListener('change', () => (location.hash = hashOf(readFilterForm())));
  byId('load-more').addEventListener('click', () => void loadMore().catch(failed));
  for (const b of document.querySelectorAll('#job-list th button[data-sort]')) {
    b.addEventListener('click', () => sortBy(/** @type {import('./list.js').SortKey} */ (b.getAttribute('data-sort'))));
  }

  const bulk = /** @type {HTMLButtonElement} */ (byId('bulk-retry'));
  bulk.addEventListener('click', () =>
    busy(bulk, byId('bulk-retry-result'), async () => {
      /** @type {import('../server/api-types.js').BulkRetry} */
      const count = await api('/api/jobs/retry-failed', { method: 'POST', body: { dryRun: true } });
      if (count.matched === 0) return 'No failed job has a retryable error.';
      if (!confirm(`Retry ${count.matched}${count.truncated ? '+' : ''} failed job${count.matched === 1 ? '' : 's'} whose error is retryable?`)) return 'Nothing retried.';
      /** @type {import('../server/api-types.js').BulkRetry} */
      const r = await api('/api/jobs/retry-failed', { method: 'POST', body: {} });
      return `Retried ${r.retried} of ${r.matched}${r.failed.length ? `; ${r.failed.length} refused (${r.failed[0]?.message ?? ''})` : ''}.`;
    }),
  );
  const cleanForm = byId('clean-form');
  cleanForm.addEventListener('submit', (e) => {
    e.preventDefault();
    const hours = Number(/** @type {HTMLInputElement} */ (byId('clean-hours')).value);
    const button = /** @type {HTMLButtonElement} */ (cleanForm.querySelector('button'));
    void busy(button, byId('clean-result'), async () => {
      if (!confirm(`Delete every completed, failed, timed-out or cancelled job that ended more than ${hours} h ago?`)) return 'Nothing deleted.';
      /** @type {import('../server/api-types.js').Cleanup} */
      const r = await api(`/api/jobs?olderThanHours=${encodeURIComponent(String(hours))}`, { method: 'DELETE' });
      await resync();
      const jobs = `Deleted ${r.deleted} job${r.deleted === 1 ? '' : 's'}.`;
      const o = r.outputs;
      if (!o) return jobs;
      // Output cleanup is on: say what stayed on the servers, not only what went.
      const kept = [o.cannot ? `${o.cannot} the server cannot delete` : '', o.failed ? `${o.failed} failed (the log says why)` : ''].filter(Boolean).join(', ');
      return `${jobs} Output files: ${o.deleted} deleted${kept ? `; ${kept}` : ''}.`;
    });
  });

  const pause = /** @type {HTMLButtonElement} */ (byId('pause-toggle'));
  pause.addEventListener('click', async () => {
    pause.disabled = true;
    pause.setAttribute('aria-busy', 'true');
    try {
      /** @type {Control} */
      const c = await api(app.paused ? '/api/control/resume' : '/api/control/pause', { method: 'POST' });
      showPaused(c.paused);
      notify(c.paused ? 'Pool paused: queued jobs wait; running jobs go on.' : 'Pool resumed.');
    } catch (err) {
      failed(err);
    } finally {
      pause.disabled = false;
      pause.removeAttribute('aria-busy');
    }
  });

  byId('emergency-stop').addEventListener('click', async () => {
    if (!confirm('Cancel every job, interrupt every server, and pause the pool?')) return;
    try {
      /** @type {import('../server/api-types.js').EmergencyStop} */
      const r = await api('/api/emergency-stop', { method: 'POST' });
      notify(`Emergency stop: ${r.cancelled} jobs cancelled, ${r.servers} servers interrupted. The pool stays paused until you resume it.`);
      /** @type {Control} */
      const c = await api('/api/control');
      showPaused(c.paused);
    } catch (err) {
      failed(err);
    }
  });

  byId('submit-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const out = byId('submit-result');
    /** @type {unknown} */
    let workflow;
    /** @type {unknown} */
    let params;
    try {
      workflow = JSON.parse(/** @type {HTMLTextAreaElement} */ (byId('workflow')).value);
      const p = /** @type {HTMLInputElement} */ (byId('params')).value.trim();
      params = p ? JSON.parse(p) : undefined;
    } catch (err) {
      out.textContent = `Not valid JSON: ${err instanceof Error ? err.message : String(err)}`;
      out.className = 'bad';
      return;
    }
    /** @type {Record<string, number>} */
    const options = {};
    const mr = /** @type {HTMLInputElement} */ (byId('max-retries')).value;
    const pr = /** @type {HTMLInputElement} */ (byId('priority')).value;
    if (mr !== '') options.maxRetries = Number(mr);
    if (pr !== '') options.priority = Number(pr);
    try {
      /** @type {import('../server/api-types.js').SubmitResponse} */
      const res = await api('/api/jobs', { method: 'POST', body: { workflow, ...(params ? { params } : {}), ...(Object.keys(options).length ? { options } : {}) } });
      out.className = 'ok';
      out.replaceChildren('Submitted job ', h('a', { href: `#/jobs/${res.id}` }, res.id.slice(0, 8)), '.');
    } catch (err) {
      out.className = 'bad';
      out.textContent = err instanceof ApiFailure && err.field ? err.message : `Refused: ${err instanceof Error ? err.message : String(err)}`;
    }
  });

  byId('chart-hours').addEventListener('change', () => void refreshFigures().catch(failed));
  window.addEventListener('hashchange', () => void route());
  setInterval(refreshRelativeTimes, 5000);
}

wire();
void route();
void follow();
