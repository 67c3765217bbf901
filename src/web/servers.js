// @ts-check
// The servers: health with its recent history (not a flapping badge), breaker state, VRAM in GiB,
// queue, a readable last error, drain; the degradation level explained; pause/resume of the pool.
import { api } from './api.js';
import { byId, h } from './dom.js';
import { exact, gib, readableError, relative, timeEl } from './format.js';

/** @typedef {import('../server/api-types.js').ConsoleServers} ConsoleServers */
/** @typedef {import('../server/api-types.js').ConsoleServer} ConsoleServer */

/** What each degradation level means and does to jobs (pool/degradation.ts: the worse of the unhealthy share of capacity and the recent error rate). */
const DEGRADATION = /** @type {Record<string, string>} */ ({
  full: 'Full: the pool is healthy; every job runs as submitted.',
  high: 'High: some capacity is unhealthy or failing. Jobs that allow degradation keep 80 % of their resolution and steps; others run as submitted.',
  medium: 'Medium: a large share of capacity is unhealthy or failing. Jobs that allow degradation keep 60 % of their resolution and steps; others run as submitted on what is left.',
  low: 'Low: most capacity is unhealthy or failing. Jobs that allow degradation keep 40 %; others queue for what is left.',
  minimal: 'Minimal: almost nothing works. Jobs that allow degradation keep 20 %; others queue.',
});

/** @type {ConsoleServers | null} */
let last = null;
/** The last drain result per server, kept across re-renders. @type {Map<string, string>} */
const drainResults = new Map();

/** Loads and shows the servers. */
export async function refreshServers() {
  /** @type {ConsoleServers} */
  const data = await api('/api/servers');
  last = data;
  render(data);
  return data;
}

/** The names of the servers last seen (for the list's server filter). */
export function serverNames() {
  return last?.servers.map((sv) => sv.name) ?? [];
}

/** @param {ConsoleServer} sv */
function historyStrip(sv) {
  const health = sv.history.filter((c) => c.kind !== 'drain');
  if (health.length === 0) return h('p', { class: 'muted small' }, 'No changes since the service started.');
  return h(
    'ol',
    { class: 'history', 'aria-label': `Recent changes of ${sv.name}` },
    health.slice(-12).map((c) => {
      const text = c.kind === 'health' ? (c.healthy ? 'healthy' : `unhealthy: ${readableError(c.error)}`) : c.kind === 'breaker' ? `breaker ${c.from.replace('_', ' ')} → ${c.to.replace('_', ' ')}${c.failures ? ` after ${c.failures} failures` : ''}` : '';
      const good = c.kind === 'health' ? c.healthy : c.kind === 'breaker' ? c.to === 'closed' : true;
      return h('li', { class: good ? 'ok' : 'bad', title: exact(c.at) }, h('span', { class: 'dot', 'aria-hidden': 'true' }), `${relative(c.at)}: ${text}`);
    }),
  );
}

/** @param {ConsoleServer} sv */
function breakerText(sv) {
  const opened = [...sv.history].reverse().find((c) => c.kind === 'breaker' && c.to === sv.breaker);
  const since = opened ? ` since ${relative(opened.at)}` : '';
  switch (sv.breaker) {
    case 'closed':
      return 'closed: jobs are sent';
    case 'open':
      return `open${since}: nothing is sent; it half-opens after its cool-down to try one job`;
    case 'half_open':
      return `half open${since}: one trial job decides whether it closes again`;
    case 'isolated':
      return `isolated${since}: taken out until an operator acts`;
    default:
      return sv.breaker;
  }
}

/** @param {ConsoleServer} sv */
function card(sv) {
  const result = h('span', { class: 'result', role: 'status' }, drainResults.get(sv.name) ?? '');
  const drain = h('button', { type: 'button', 'data-drain': sv.name }, sv.drained ? 'Undrain' : 'Drain');
  drain.addEventListener('click', async () => {
    drain.disabled = true;
    drain.setAttribute('aria-busy', 'true');
    try {
      const r = /** @type {{ drained: boolean }} */ (await api(`/api/servers/${encodeURIComponent(sv.name)}/drain`, { method: 'POST', body: { on: !sv.drained } }));
      drainResults.set(sv.name, r.drained ? 'Drained: running prompts finish, nothing new is sent.' : 'Back in rotation.');
    } catch (err) {
      drainResults.set(sv.name, err instanceof Error ? err.message : String(err));
    }
    await refreshServers().catch(() => undefined);
  });
  const used = sv.vram.total !== null && sv.vram.free !== null ? sv.vram.total - sv.vram.free : null;
  return h(
    'article',
    { class: `server ${sv.healthy ? 'is-ok' : 'is-bad'}`, 'data-server': sv.name, 'aria-label': `Server ${sv.name}` },
    h('h3', {}, sv.name, ' ', h('span', { class: sv.healthy ? 'ok' : 'bad' }, sv.healthy ? 'healthy' : 'unhealthy'), sv.drained ? h('span', { class: 'badge' }, 'drained') : null),
    h('p', { class: 'muted small' }, sv.url, sv.tags.length ? ` · tags: ${sv.tags.join(', ')}` : ''),
    h(
      'dl',
      { class: 'facts' },
      h('div', {}, h('dt', {}, 'VRAM used / total'), h('dd', {}, `${gib(used)} / ${gib(sv.vram.total)}`, sv.vram.total ? h('progress', { max: sv.vram.total, value: used ?? 0, 'aria-label': `VRAM used on ${sv.name}` }) : null)),
      h('div', {}, h('dt', {}, 'Queue'), h('dd', {}, sv.queueRemaining === null ? '–' : `${sv.queueRemaining} prompt${sv.queueRemaining === 1 ? '' : 's'}`)),
      h('div', {}, h('dt', {}, 'Latency'), h('dd', {}, sv.latencyMs === null ? '–' : `${sv.latencyMs} ms`)),
      h('div', {}, h('dt', {}, 'Checked'), h('dd', {}, timeEl(sv.checkedAt))),
      h('div', { class: 'wide' }, h('dt', {}, 'Breaker'), h('dd', { class: `breaker b-${sv.breaker}` }, breakerText(sv))),
      sv.lastError ? h('div', { class: 'wide' }, h('dt', {}, 'Last error'), h('dd', { title: sv.lastError }, readableError(sv.lastError))) : null,
    ),
    h('h4', {}, 'Recent changes'),
    historyStrip(sv),
    h('div', { class: 'row' }, drain, result),
  );
}

/** @param {ConsoleServers} data */
function render(data) {
  byId('degradation').replaceChildren(h('strong', {}, `Degradation: ${data.degradation}. `), DEGRADATION[data.degradation] ?? '');
  byId('servers').replaceChildren(...(data.servers.length ? data.servers.map(card) : [h('p', { class: 'muted' }, 'No servers configured.')]));
  const sel = /** @type {HTMLSelectElement} */ (byId('server-filter'));
  const chosen = sel.value;
  sel.replaceChildren(h('option', { value: '' }, 'any'), ...data.servers.map((sv) => h('option', { value: sv.name }, sv.name)));
  sel.value = chosen;
}
