// Rendering: plain DOM building with textContent only, so nothing a job or a server reports can
// inject markup into the page.

/** Creates an element with attributes and children (strings become text nodes). */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    // Through the CSSOM: the page's CSP refuses style attributes.
    else if (k === 'style') el.style.cssText = String(v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

/** Bytes -> "12.3 GB". */
export function bytes(n) {
  if (n === null || n === undefined) return '–';
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let i = 0;
  while (n >= 1000 && i < units.length - 1) {
    n /= 1000;
    i++;
  }
  return `${n.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
}

/** ISO time -> local time of day (or date and time when not today). */
export function when(iso) {
  if (!iso) return '–';
  const d = new Date(iso);
  return d.toDateString() === new Date().toDateString() ? d.toLocaleTimeString() : d.toLocaleString();
}

function pct(x) {
  return `${Math.round(x * 100)}%`;
}

function statusBadge(status) {
  return h('span', { class: `status s-${status}` }, status.replace('_', ' '));
}

/** Fills the servers table. */
export function renderServers(tbody, badge, data) {
  badge.textContent = `degradation: ${data.degradation}`;
  badge.className = `badge d-${data.degradation}`;
  tbody.replaceChildren(
    ...data.servers.map((s) =>
      h(
        'tr',
        {},
        h('th', { scope: 'row' }, s.name, h('div', { class: 'muted' }, s.url)),
        h('td', {}, h('span', { class: s.healthy ? 'ok' : 'bad' }, s.healthy ? 'healthy' : 'unhealthy')),
        h('td', {}, s.latencyMs === null ? '–' : `${s.latencyMs} ms`),
        h('td', {}, `${bytes(s.vram.free)} / ${bytes(s.vram.total)}`),
        h('td', {}, s.queueRemaining ?? '–'),
        h('td', {}, h('span', { class: `breaker b-${s.breaker}` }, s.breaker.replace('_', ' '))),
        h('td', { class: 'muted' }, s.lastError ?? ''),
      ),
    ),
  );
  if (data.servers.length === 0) tbody.replaceChildren(h('tr', {}, h('td', { colspan: 7 }, 'No servers configured.')));
}

/** Fills the statistics list and the error distribution. */
export function renderStats(dl, ul, s) {
  const items = [
    ['Jobs', s.totalJobs],
    ['Completed', s.byStatus.completed ?? 0],
    ['Failed', (s.byStatus.failed ?? 0) + (s.byStatus.timed_out ?? 0)],
    ['Active', (s.byStatus.queued ?? 0) + (s.byStatus.running ?? 0) + (s.byStatus.recovering ?? 0)],
    ['Errors', s.totalErrors],
    ['Recoveries', `${s.successfulRecoveries} ok / ${s.failedRecoveries} failed`],
    ['Recovery rate', pct(s.recoveryRate)],
    ['Retry success', pct(s.retrySuccessRate)],
  ];
  dl.replaceChildren(...items.flatMap(([k, v]) => [h('div', { class: 'stat' }, h('dt', {}, k), h('dd', {}, String(v)))]));
  const dist = Object.entries(s.errorDistribution).sort((a, b) => b[1] - a[1]);
  const max = Math.max(1, ...dist.map(([, n]) => n));
  ul.replaceChildren(
    ...(dist.length === 0
      ? [h('li', { class: 'muted' }, 'No errors.')]
      : dist.map(([code, n]) =>
          h('li', {}, h('span', { class: 'code' }, code), h('span', { class: 'bar', style: `width:${Math.max(4, (n / max) * 100)}%`, 'aria-hidden': 'true' }), h('span', {}, String(n))),
        )),
  );
}

/** Fills the job list; `onOpen(id)` opens a job. */
export function renderJobs(tbody, jobs) {
  if (jobs.length === 0) {
    tbody.replaceChildren(h('tr', {}, h('td', { colspan: 6, class: 'muted' }, 'No jobs yet.')));
    return;
  }
  tbody.replaceChildren(
    ...jobs.map((j) =>
      h(
        'tr',
        { 'data-job': j.id, 'data-status': j.status },
        h('th', { scope: 'row' }, h('a', { href: `#/jobs/${j.id}`, class: 'job-link' }, j.id.slice(0, 8))),
        h('td', {}, statusBadge(j.status), j.error ? h('div', { class: 'muted' }, j.error.code) : null),
        h('td', {}, h('progress', { max: 100, value: j.progress, 'aria-label': `Progress of job ${j.id.slice(0, 8)}` }), ` ${Math.round(j.progress)}%`),
        h('td', {}, j.server ?? '–'),
        h('td', {}, String(j.attempts.length), j.retryCount > 0 ? ` (${j.retryCount} retries)` : ''),
        h('td', {}, when(j.createdAt)),
      ),
    ),
  );
}

function changesText(changes) {
  if (!changes || changes.length === 0) return '–';
  return changes.map((c) => `${c.classType}#${c.nodeId}.${c.input}: ${JSON.stringify(c.from)} → ${JSON.stringify(c.to)}`).join('; ');
}

/** Fills the job detail view (not the outputs, which load asynchronously). */
export function renderDetail(els, job) {
  els.id.textContent = job.id;
  els.status.replaceChildren(statusBadge(job.status));
  els.progress.value = job.progress;
  els.server.textContent = job.server ? `on ${job.server}` : '';
  const terminal = ['completed', 'failed', 'timed_out', 'cancelled'].includes(job.status);
  els.cancel.disabled = terminal;
  els.retry.disabled = !terminal || job.status === 'completed';
  els.forceRetry.disabled = !terminal || job.status === 'completed';
  if (job.error) {
    els.error.hidden = false;
    els.error.replaceChildren(
      h('strong', {}, job.error.code),
      ` (${job.error.category}${job.error.retryable ? ', retryable' : ''}): ${job.error.message}`,
      h('div', { class: 'hint' }, job.error.hint),
    );
  } else {
    els.error.hidden = true;
    els.error.replaceChildren();
  }
  els.recovery.replaceChildren(
    ...(job.recoveryHistory.length === 0
      ? [h('tr', {}, h('td', { colspan: 6, class: 'muted' }, 'No recovery was needed.'))]
      : job.recoveryHistory.map((s) =>
          h(
            'tr',
            {},
            h('td', {}, String(s.attempt)),
            h('td', {}, s.code),
            h('td', {}, s.strategy),
            h('td', {}, changesText(s.changes)),
            h('td', {}, s.success === null ? 'running' : s.success ? h('span', { class: 'ok' }, 'succeeded') : h('span', { class: 'bad' }, 'failed')),
            h('td', {}, s.message),
          ),
        )),
  );
  els.attempts.replaceChildren(
    ...(job.attempts.length === 0
      ? [h('tr', {}, h('td', { colspan: 6, class: 'muted' }, 'Not started yet.'))]
      : job.attempts.map((a) =>
          h('tr', {}, h('td', {}, String(a.number)), h('td', {}, a.server), h('td', {}, h('code', {}, a.promptId)), h('td', {}, a.status), h('td', {}, a.strategy ?? '–'), h('td', {}, a.code ?? '–')),
        )),
  );
}
