// @ts-check
// A job's own page (#/jobs/<id>): what it is, its times, live progress with node, step and ETA, the
// failure card, a timeline of attempts and recovery steps with the exact changes, the changed-result
// badge, outputs with a full-size view and download, the workflow as it ran, and the actions.
import { ApiFailure, api, objectUrl } from './api.js';
import { byId, fill, h } from './dom.js';
import { between, changedBadge, duration, longChange, resultChanges, statusBadge, timeEl, val } from './format.js';
import { progressText } from './list.js';
import { liveOf } from './live.js';

/** @typedef {import('../server/api-types.js').Job} Job */
/** @typedef {import('../server/api-types.js').JobSummary} JobSummary */
/** @typedef {Record<string, { class_type?: string, inputs?: Record<string, unknown>, _meta?: { title?: string } }>} Workflow */

const TERMINAL = new Set(['completed', 'failed', 'timed_out', 'cancelled']);

export const page = {
  /** @type {string | null} */
  id: null,
  /** @type {Job | null} */
  job: null,
  /** @type {JobSummary | null} */
  summary: null,
  /** Object URLs of the outputs shown, freed when the page changes. @type {string[]} */
  urls: [],
  outputsKey: '',
  /** The last action's result, kept across re-renders so a live update does not wipe it. @type {{ text: string, ok: boolean } | null} */
  result: null,
  /** True when the list opened this page, so "back" is a history step that restores it as it was. */
  cameFromList: false,
};

/**
 * Opens a job's page.
 * @param {string} id
 */
export async function openJob(id) {
  const view = byId('view-job');
  if (page.id !== id) {
    for (const u of page.urls) URL.revokeObjectURL(u);
    Object.assign(page, { id, job: null, summary: null, urls: [], outputsKey: '', result: null });
    view.replaceChildren(h('p', { class: 'muted' }, 'Loading…'));
  }
  try {
    /** @type {[Job, JobSummary]} */
    const [job, summary] = await Promise.all([api(`/api/jobs/${encodeURIComponent(id)}?include=workflow`), api(`/api/jobs/${encodeURIComponent(id)}/summary`)]);
    if (page.id !== id) return;
    page.job = job;
    page.summary = summary;
    render();
    byId('job-h').focus();
  } catch (err) {
    if (page.id !== id) return;
    const msg = err instanceof ApiFailure && err.status === 404 ? `There is no job ${id} (it may have been cleaned up).` : String(err instanceof Error ? err.message : err);
    view.replaceChildren(backLink(), h('h2', { id: 'job-h', tabindex: '-1' }, 'Job not found'), h('p', { class: 'bad' }, msg));
  }
}

/** Leaves the job page. */
export function closeJob() {
  page.id = null;
}

function backLink() {
  return h('a', { href: '#/jobs', class: 'back', id: 'back-to-list', onclick: (/** @type {Event} */ e) => {
    // Back in history keeps the list exactly where it was (filters, loaded pages, scroll).
    if (page.cameFromList) {
      e.preventDefault();
      history.back();
    }
  } }, '← Jobs');
}

/**
 * Applies a stream event about the open job.
 * @param {import('../server/api-types.js').StreamPayload} e
 */
export function applyJobEvent(e) {
  if (!page.job || !('jobId' in e) || e.jobId !== page.id) return;
  if (e.type === 'state') {
    // The stream's job has no workflows; keep the ones already loaded.
    const withWf = /** @type {Job & { workflow?: unknown }} */ ({ ...e.job, workflow: page.job.workflow });
    const byNumber = new Map(page.job.attempts.map((a) => [a.number, a.workflow]));
    withWf.attempts = e.job.attempts.map((a) => ({ ...a, workflow: byNumber.get(a.number) }));
    const needsWorkflows = withWf.attempts.some((a) => !a.workflow);
    page.job = withWf;
    render();
    if (needsWorkflows) void openJob(e.jobId);
  } else if (e.type === 'progress' || e.type === 'comfy' || e.type === 'attempt_started') renderLive();
}

/** @param {Job} job */
function workflowOf(job) {
  const last = job.attempts[job.attempts.length - 1];
  return /** @type {Workflow | undefined} */ (last?.workflow ?? job.workflow);
}

/**
 * "KSampler (#3)".
 * @param {string | null} node
 */
function nodeName(node) {
  if (!node || !page.job) return node ?? '';
  const n = workflowOf(page.job)?.[node];
  return n ? `${n._meta?.title ?? n.class_type ?? ''} (#${node})` : `#${node}`;
}

function renderLive() {
  const job = page.job;
  const box = document.getElementById('job-live');
  if (!job || !box) return;
  const l = liveOf(job.id);
  const p = Math.round(l?.progress ?? job.progress);
  const bar = /** @type {HTMLProgressElement | null} */ (box.querySelector('progress'));
  if (bar) bar.value = p;
  const text = box.querySelector('#job-progress-text');
  if (text) text.textContent = progressText(job);
  const node = box.querySelector('#job-node');
  if (node) node.textContent = l?.node ? `Running ${nodeName(l.node)}${l.step ? `, step ${l.step.value} of ${l.step.max}` : ''}` : '';
  const eta = box.querySelector('#job-eta');
  if (eta) {
    const ms = l?.jobEtaMs ?? l?.stepEtaMs ?? null;
    eta.textContent = ms === null || TERMINAL.has(job.status) ? '' : `about ${duration(ms)} left (from the measured step rate)`;
  }
}

/**
 * @param {string} label
 * @param {import('./dom.js').Child} value
 */
function item(label, value) {
  return h('div', {}, h('dt', {}, label), h('dd', {}, value));
}

/** What the job is. @param {JobSummary} s */
function what(s) {
  return h(
    'dl',
    { class: 'facts', id: 'job-what' },
    item('Label', s.label ?? '–'),
    item('Model', s.model ?? '–'),
    item('Size', s.width && s.height ? `${s.width} × ${s.height}` : '–'),
    item('Batch', s.batch ?? '–'),
    item('Steps', s.steps ?? '–'),
    item('Seed', s.seed ?? '–'),
    s.prompt ? h('div', { class: 'wide' }, h('dt', {}, 'Prompt'), h('dd', {}, h('blockquote', {}, s.prompt))) : null,
  );
}

/** @param {Job} job */
function times(job) {
  const wait = between(job.createdAt, job.startedAt ?? (TERMINAL.has(job.status) ? job.endedAt : null));
  return h(
    'dl',
    { class: 'facts', id: 'job-times' },
    item('Created', timeEl(job.createdAt)),
    item('Started', timeEl(job.startedAt)),
    item('Ended', timeEl(job.endedAt)),
    item('Queue wait', duration(wait)),
    item('Duration', job.startedAt ? `${duration(between(job.startedAt, job.endedAt))}${job.endedAt ? '' : ' so far'}` : '–'),
    item('GPU time', gpuTime(job.goodput)),
  );
}

/**
 * Server time of the ended attempts: what produced the result and what failed attempts cost.
 * @param {Job['goodput']} g
 */
function gpuTime(g) {
  if (g.attempts === 0) return '–';
  const ok = g.succeededSeconds > 0 ? `${duration(g.succeededSeconds * 1000)} for the result` : 'no result yet';
  return g.failedAttempts > 0 ? `${ok}, ${duration(g.failedSeconds * 1000)} lost in ${g.failedAttempts} failed attempt${g.failedAttempts === 1 ? '' : 's'}` : ok;
}

/**
 * The wrong value and the allowed ones when ComfyUI said so; the node and input from the error.
 * @param {Job} job
 */
function failureCard(job) {
  const err = job.error;
  if (!err) return null;
  const wf = /** @type {Workflow | undefined} */ (job.attempts[job.attempts.length - 1]?.workflow ?? job.workflow);
  // The service names the input in its message ("… input ckpt_name: value not in the allowed list").
  const input = /input ([\w.]+):/.exec(err.message)?.[1];
  const node = err.nodeId ? wf?.[err.nodeId] : undefined;
  const wrong = node && input ? node.inputs?.[input] : undefined;
  const more = /** @type {{ allowed?: unknown[], value?: unknown }} */ (/** @type {unknown} */ (err));
  const lines = [`${err.code} (${err.category}${err.retryable ? ', retryable' : ', not retryable'})`, err.message];
  if (err.nodeId) lines.push(`node: ${err.nodeType ?? ''} #${err.nodeId}${input ? `, input ${input}` : ''}`);
  if (wrong !== undefined || more.value !== undefined) lines.push(`value sent: ${val(more.value ?? wrong)}`);
  // The service's message names the allowed values (or the closest ones) when ComfyUI listed them.
  const allowed = /((?:closest )?allowed): ([^;]+?)(?:\.?$|;)/.exec(err.message);
  if (Array.isArray(more.allowed)) lines.push(`allowed: ${more.allowed.map(val).join(', ')}`);
  else if (allowed) lines.push(`${allowed[1]}: ${allowed[2]}`);
  if (err.code === 'COMFYUI_MODEL_MISSING' && wf) {
    // The message keeps file names out of the text; the workflow says which models it asked for.
    const asked = Object.entries(wf).flatMap(([id, n]) => Object.entries(n.inputs ?? {}).filter(([k, v]) => /_name$/.test(k) && typeof v === 'string' && /\.(safetensors|ckpt|pt|pth|bin|gguf)$/i.test(v)).map(([k, v]) => `${n.class_type ?? ''} #${id} ${k}: ${val(v)}`));
    for (const a of asked) lines.push(`model asked for: ${a}`);
  }
  if (err.server) lines.push(`server: ${err.server}`);
  return h('div', { class: 'error-card', id: 'job-error', role: 'group', 'aria-label': 'Failure' }, h('h3', {}, 'Why it failed'), h('pre', { class: 'code' }, lines.join('\n')), h('p', { class: 'hint' }, err.hint));
}

/** @param {Job} job */
function timeline(job) {
  /** @type {HTMLElement[]} */
  const items = [h('li', { class: 't-created' }, h('strong', {}, 'Submitted'), ' ', timeEl(job.createdAt))];
  for (const a of job.attempts) {
    const outcome = a.status === 'completed' ? h('span', { class: 'ok' }, 'completed') : ['failed', 'lost', 'interrupted', 'cancelled'].includes(a.status) ? h('span', { class: 'bad' }, a.status) : h('span', {}, a.status);
    items.push(
      h(
        'li',
        { class: `t-attempt a-${a.status}`, 'data-attempt': a.number },
        h('strong', {}, `Attempt ${a.number}`),
        ` on ${a.server}${a.strategy ? ` (${a.strategy.replace('_', ' ')})` : ''} · `,
        outcome,
        a.code ? h('code', {}, ` ${a.code}`) : null,
        h('div', { class: 'muted small' }, 'started ', timeEl(a.startedAt), a.endedAt ? ` · ran ${duration(between(a.startedAt, a.endedAt))}` : ' · running', ' · prompt ', h('code', {}, a.promptId.slice(0, 8))),
        a.message ? h('div', { class: 'small' }, a.message) : null,
      ),
    );
    for (const step of job.recoveryHistory.filter((st) => st.attempt === a.number)) {
      items.push(
        h(
          'li',
          { class: 't-recovery', 'data-strategy': step.strategy },
          h('strong', {}, 'Recovery'),
          ` ${step.code} → `,
          h('span', { class: 'strategy' }, step.strategy.replace('_', ' ')),
          ' · ',
          step.success === null ? h('span', {}, 'running') : step.success ? h('span', { class: 'ok' }, 'succeeded') : h('span', { class: 'bad' }, 'did not help'),
          step.changes.length ? h('ul', { class: 'changes' }, step.changes.map((c) => h('li', {}, h('code', {}, longChange(c))))) : h('div', { class: 'muted small' }, step.strategy === 'failover' ? `moved to ${step.server ?? 'another server'}` : 'same workflow'),
        ),
      );
    }
  }
  if (TERMINAL.has(job.status)) items.push(h('li', { class: `t-end s-${job.status}` }, h('strong', {}, job.status.replace('_', ' ')), ' ', timeEl(job.endedAt)));
  return h('ol', { class: 'timeline', id: 'timeline' }, items);
}

/** @param {Job} job */
function outputs(job) {
  const box = h('div', { class: 'outputs', id: 'outputs' });
  if (job.outputs.length === 0) {
    box.append(h('p', { class: 'muted' }, job.status === 'completed' ? 'The job produced no files.' : TERMINAL.has(job.status) ? 'No outputs.' : 'No outputs yet.'));
    return box;
  }
  for (const o of job.outputs) {
    const img = h('img', { alt: `Output ${o.filename} of node ${o.node}`, loading: 'lazy' });
    const full = h('button', { type: 'button', class: 'link', disabled: true }, 'Full size');
    const dl = h('a', { download: o.filename, class: 'download' }, 'Download');
    objectUrl(o.url)
      .then((u) => {
        page.urls.push(u);
        img.src = u;
        dl.href = u;
        full.disabled = false;
        full.addEventListener('click', () => openViewer(u, img.alt));
        img.addEventListener('click', () => openViewer(u, img.alt));
      })
      .catch(() => img.replaceWith(h('span', { class: 'bad' }, `could not load ${o.filename}`)));
    box.append(h('figure', {}, img, h('figcaption', {}, `${o.filename} (node ${o.node}, ${o.server}) `, full, ' ', dl)));
  }
  return box;
}

/**
 * @param {string} url
 * @param {string} alt
 */
function openViewer(url, alt) {
  const dialog = /** @type {HTMLDialogElement} */ (byId('viewer'));
  const img = /** @type {HTMLImageElement} */ (byId('viewer-img'));
  img.src = url;
  img.alt = alt;
  dialog.showModal();
}

/** @param {Job} job */
function workflowBox(job) {
  const last = job.attempts[job.attempts.length - 1];
  const wf = last?.workflow ?? job.workflow;
  if (!wf) return null;
  const text = JSON.stringify(wf, null, 2);
  const status = h('span', { class: 'result', role: 'status' });
  const copy = h('button', { type: 'button', id: 'copy-workflow' }, 'Copy');
  copy.addEventListener('click', async () => {
    try {
      await navigator.clipboard.writeText(text);
      status.textContent = 'Copied.';
    } catch {
      // Clipboard access needs a secure context; selecting the text lets the user copy it.
      const pre = document.getElementById('workflow-json');
      if (pre) getSelection()?.selectAllChildren(pre);
      status.textContent = 'Selected: press Ctrl+C to copy.';
    }
  });
  return h(
    'details',
    { class: 'workflow' },
    h('summary', {}, last ? `Workflow as attempt ${last.number} ran it` : 'Workflow as submitted'),
    h('div', { class: 'row' }, copy, status),
    h('pre', { class: 'code', id: 'workflow-json', tabindex: '0' }, text),
  );
}

/** @param {Job} job */
function actions(job) {
  const terminal = TERMINAL.has(job.status);
  const retryable = terminal && job.status !== 'completed' && (job.status !== 'failed' || job.error?.retryable !== false);
  const result = h('span', { class: `result ${page.result ? (page.result.ok ? 'ok' : 'bad') : ''}`, id: 'action-result', role: 'status', 'aria-live': 'polite' }, page.result?.text ?? '');
  /**
   * @param {string} id
   * @param {string} label
   * @param {string} busy
   * @param {() => Promise<string>} run
   * @param {boolean} enabled
   */
  const button = (id, label, busy, run, enabled) => {
    const b = h('button', { type: 'button', id, disabled: !enabled }, label);
    b.addEventListener('click', async () => {
      b.disabled = true;
      b.setAttribute('aria-busy', 'true');
      b.textContent = busy;
      result.textContent = '';
      try {
        page.result = { text: await run(), ok: true };
      } catch (err) {
        page.result = { text: err instanceof Error ? err.message : String(err), ok: false };
      }
      b.textContent = label;
      b.removeAttribute('aria-busy');
      // A live update may have re-rendered the page meanwhile: write to the result on the page now.
      const shown = document.getElementById('action-result') ?? result;
      shown.textContent = page.result.text;
      shown.className = `result ${page.result.ok ? 'ok' : 'bad'}`;
      b.disabled = false;
      if (page.id) void openJob(page.id);
    });
    return b;
  };
  const id = encodeURIComponent(job.id);
  const explain =
    terminal && job.status !== 'completed' && !retryable
      ? h(
          'p',
          { class: 'explain', id: 'force-explain' },
          `Retry is off: ${job.error?.code ?? 'this error'} is not something trying again fixes (${job.error?.category ?? 'permanent'}); the same workflow would fail the same way. `,
          'Force retry runs it again anyway — use it after you fixed the cause (installed the model, changed the server).',
        )
      : null;
  return h(
    'div',
    { class: 'actions', role: 'group', 'aria-label': 'Actions' },
    h(
      'div',
      { class: 'row' },
      button('cancel-job', 'Cancel', 'Cancelling…', async () => (await api(`/api/jobs/${id}/cancel`, { method: 'POST' }), 'Cancelled.'), !terminal),
      button('retry-job', 'Retry', 'Retrying…', async () => (await api(`/api/jobs/${id}/retry`, { method: 'POST', body: {} }), 'Queued again.'), retryable),
      button('force-retry-job', 'Force retry', 'Retrying…', async () => (await api(`/api/jobs/${id}/retry`, { method: 'POST', body: { force: true } }), 'Queued again (forced).'), terminal && job.status !== 'completed'),
      result,
    ),
    explain,
  );
}

function render() {
  const job = page.job;
  const summary = page.summary;
  if (!job || !summary) return;
  const view = byId('view-job');
  const open = view.querySelector('details.workflow')?.hasAttribute('open') ?? false;
  const changes = resultChanges(job);
  const key = job.outputs.map((o) => o.url).join('|') + job.status;
  const keepOutputs = key === page.outputsKey ? view.querySelector('#outputs') : null;
  page.outputsKey = key;
  const live = h(
    'div',
    { class: 'live-box', id: 'job-live' },
    h('progress', { max: 100, value: Math.round(job.progress), id: 'job-progress', 'aria-label': 'Job progress' }),
    h('span', { id: 'job-progress-text' }),
    h('div', { id: 'job-node', class: 'small' }),
    h('div', { id: 'job-eta', class: 'small muted' }),
  );
  // Keep the action buttons (and the focus on them) across live updates that do not change them.
  const actionsKey = `${job.id}|${job.status}|${job.error?.retryable ?? ''}`;
  const oldActions = view.querySelector('.actions');
  const keptActions = oldActions && oldActions.getAttribute('data-key') === actionsKey ? oldActions : null;
  const newActions = keptActions ?? actions(job);
  newActions.setAttribute('data-key', actionsKey);
  const wf = workflowBox(job);
  if (wf && open) wf.setAttribute('open', '');
  fill(
    view,
    backLink(),
    h('h2', { id: 'job-h', tabindex: '-1' }, 'Job ', h('code', { id: 'job-id' }, job.id), statusBadge(job.status), changedBadge(job)),
    h('div', { class: 'job-grid' }, h('section', { 'aria-label': 'What it is' }, h('h3', {}, 'What it is'), what(summary)), h('section', { 'aria-label': 'Times' }, h('h3', {}, 'Times'), times(job), TERMINAL.has(job.status) ? null : live)),
    newActions,
    failureCard(job),
    changes.length
      ? h(
          'section',
          { class: 'changed-box', id: 'job-changes' },
          h('h3', {}, 'The result differs from what was asked'),
          job.degraded?.reason ? h('p', {}, job.degraded.reason) : null,
          h('ul', {}, changes.map((c) => h('li', {}, h('code', {}, longChange(c))))),
        )
      : null,
    h('h3', {}, 'Timeline'),
    timeline(job),
    h('h3', {}, 'Outputs'),
    keepOutputs ?? outputs(job),
    wf,
  );
  renderLive();
}
