// The dashboard: polls servers, stats and the job list; follows the open job over SSE.
import { api, followJob, getKey, imageUrl, setKey } from './api.js';
import { h, renderDetail, renderJobs, renderServers, renderStats } from './views.js';

const $ = (id) => document.getElementById(id);
const TERMINAL = new Set(['completed', 'failed', 'timed_out', 'cancelled']);
const POLL_MS = 2000;

const state = { openJob: null, follow: null, outputsShown: '', pollTimer: null };

function notify(text, isError = false) {
  const n = $('notice');
  n.textContent = text;
  n.classList.toggle('is-error', isError);
}

function failed(err) {
  if (err && err.status === 401) notify('The service needs an API key: enter it above.', true);
  else notify(err && err.message ? err.message : String(err), true);
}

async function refreshServers() {
  renderServers($('servers').tBodies[0], $('degradation'), await api('/api/health/comfyui'));
}

async function refreshStats() {
  const s = await api('/api/stats');
  renderStats($('stats'), $('error-distribution'), s);
}

async function refreshJobs() {
  const status = $('status-filter').value;
  const page = await api(`/api/jobs?limit=50${status ? `&status=${encodeURIComponent(status)}` : ''}`);
  renderJobs($('job-list').tBodies[0], page.jobs);
}

async function refreshAll() {
  const results = await Promise.allSettled([refreshServers(), refreshStats(), refreshJobs()]);
  const bad = results.find((r) => r.status === 'rejected');
  if (bad) failed(bad.reason);
  else if ($('notice').classList.contains('is-error')) notify('');
}

function schedulePoll() {
  clearTimeout(state.pollTimer);
  state.pollTimer = setTimeout(async () => {
    await refreshAll();
    schedulePoll();
  }, POLL_MS);
}

// ---- job detail -------------------------------------------------------------------------------

const detailEls = () => ({
  id: $('detail-id'),
  status: $('detail-status'),
  progress: $('detail-progress'),
  server: $('detail-server'),
  cancel: $('cancel-job'),
  retry: $('retry-job'),
  forceRetry: $('force-retry-job'),
  error: $('detail-error'),
  recovery: $('recovery').tBodies[0],
  attempts: $('attempts').tBodies[0],
});

async function showOutputs(job) {
  const key = job.outputs.map((o) => o.url).join('|');
  if (key === state.outputsShown) return;
  state.outputsShown = key;
  const box = $('outputs');
  if (job.outputs.length === 0) {
    box.replaceChildren(h('p', { class: 'muted' }, job.status === 'completed' ? 'The job produced no files.' : 'No outputs yet.'));
    return;
  }
  box.replaceChildren(
    ...job.outputs.map((o) => {
      const img = h('img', { alt: `Output ${o.filename} of node ${o.node}`, loading: 'lazy' });
      imageUrl(o.url)
        .then((u) => (img.src = u))
        .catch(() => img.replaceWith(h('span', { class: 'bad' }, `could not load ${o.filename}`)));
      return h('figure', {}, img, h('figcaption', {}, `${o.filename} (node ${o.node}, ${o.server})`));
    }),
  );
}

function showJob(job) {
  if (state.openJob !== job.id) return;
  renderDetail(detailEls(), job);
  void showOutputs(job);
}

async function openJob(id) {
  closeJob();
  state.openJob = id;
  state.outputsShown = '';
  $('detail').hidden = false;
  $('outputs').replaceChildren();
  try {
    showJob(await api(`/api/jobs/${encodeURIComponent(id)}`));
  } catch (err) {
    failed(err);
    return;
  }
  $('detail-h').focus();
  follow(id);
}

/** Follows the open job's events; if the stream drops before the job ends, follows it again. */
function follow(id) {
  const ac = new AbortController();
  state.follow = ac;
  let last = null;
  let refused = false;
  followJob(
    id,
    ({ event, data }) => {
      if (state.openJob !== id) return;
      if (event === 'state') {
        last = data.to;
        showJob(data.job);
      } else if (event === 'progress') $('detail-progress').value = data.progress;
    },
    ac.signal,
  )
    .catch((err) => {
      if (ac.signal.aborted) return;
      refused = err && err.status >= 400 && err.status < 500;
      failed(err);
    })
    .finally(() => {
      if (!ac.signal.aborted && !refused && state.openJob === id && !TERMINAL.has(last)) setTimeout(() => state.openJob === id && state.follow === ac && follow(id), 2000);
    });
}

function closeJob() {
  state.follow?.abort();
  state.follow = null;
  state.openJob = null;
  $('detail').hidden = true;
}

function route() {
  const m = /^#\/jobs\/([\w-]+)$/.exec(location.hash);
  if (m) void openJob(m[1]);
  else closeJob();
}

async function act(path, body, done) {
  try {
    const job = await api(path, { method: 'POST', body });
    notify(done);
    if (job && job.id) showJob(job);
    if (job && job.id && !TERMINAL.has(job.status)) void openJob(job.id);
    await refreshAll();
  } catch (err) {
    failed(err);
  }
}

// ---- wiring -----------------------------------------------------------------------------------

function wire() {
  $('api-key').value = getKey();
  $('key-form').addEventListener('submit', (e) => {
    e.preventDefault();
    setKey($('api-key').value.trim());
    notify(getKey() ? 'API key saved for this tab.' : 'API key cleared.');
    void refreshAll();
  });

  $('submit-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const out = $('submit-result');
    let workflow;
    let params;
    try {
      workflow = JSON.parse($('workflow').value);
      params = $('params').value.trim() ? JSON.parse($('params').value) : undefined;
    } catch (err) {
      out.textContent = `Not valid JSON: ${err.message}`;
      out.className = 'bad';
      return;
    }
    const options = {};
    if ($('max-retries').value !== '') options.maxRetries = Number($('max-retries').value);
    if ($('priority').value !== '') options.priority = Number($('priority').value);
    try {
      const res = await api('/api/jobs', { method: 'POST', body: { workflow, ...(params ? { params } : {}), ...(Object.keys(options).length ? { options } : {}) } });
      out.className = 'ok';
      out.replaceChildren('Submitted job ', h('a', { href: `#/jobs/${res.id}` }, res.id.slice(0, 8)), '.');
      await refreshJobs();
    } catch (err) {
      out.className = 'bad';
      out.textContent = err.field ? `${err.message}` : `Refused: ${err.message}`;
    }
  });

  $('status-filter').addEventListener('change', () => void refreshJobs().catch(failed));
  $('emergency-stop').addEventListener('click', async () => {
    if (!confirm('Cancel every job and interrupt every server?')) return;
    try {
      const r = await api('/api/emergency-stop', { method: 'POST' });
      notify(`Emergency stop: ${r.cancelled} jobs cancelled, ${r.servers} servers interrupted.`);
      await refreshAll();
    } catch (err) {
      failed(err);
    }
  });
  $('cancel-job').addEventListener('click', () => void act(`/api/jobs/${state.openJob}/cancel`, undefined, 'Job cancelled.'));
  $('retry-job').addEventListener('click', () => void act(`/api/jobs/${state.openJob}/retry`, {}, 'Job queued again.'));
  $('force-retry-job').addEventListener('click', () => void act(`/api/jobs/${state.openJob}/retry`, { force: true }, 'Job queued again (forced).'));
  $('close-detail').addEventListener('click', (e) => {
    e.preventDefault();
    location.hash = '';
  });
  window.addEventListener('hashchange', route);
}

wire();
route();
void refreshAll().then(schedulePoll);
