// @ts-check
// Charts in plain SVG (no library): stacked bars over time and stacked horizontal bars. Colours
// come from CSS classes, so dark mode and the CSP (no inline style) both hold. Each bar has a
// <title> for hover, and each chart an aria-label that says what it shows.
import { h, s } from './dom.js';

/**
 * @typedef {{ key: string, name: string, cls: string }} Series
 * @typedef {{ label: string, parts: Array<{ value: number, cls: string, name: string }> }} HBarRow
 */

const W = 640;
const H = 180;
const PAD = { l: 34, r: 8, t: 8, b: 22 };

/**
 * Stacked bars, one per time bucket.
 * @param {Array<Record<string, number | string>>} buckets each with `start` (ISO) and one number per series key
 * @param {Series[]} series
 * @param {{ label: string, bucketMinutes: number }} opts
 */
export function timeBars(buckets, series, opts) {
  const totals = buckets.map((b) => series.reduce((a, sr) => a + Number(b[sr.key] ?? 0), 0));
  const max = Math.max(1, ...totals);
  const iw = W - PAD.l - PAD.r;
  const ih = H - PAD.t - PAD.b;
  const bw = iw / Math.max(1, buckets.length);
  const svg = s('svg', { viewBox: `0 0 ${W} ${H}`, class: 'chart', role: 'img', 'aria-label': `${opts.label}: ${totals.reduce((a, b) => a + b, 0)} in ${buckets.length} buckets, at most ${max} in one` });
  for (const f of [0, 0.5, 1]) {
    const y = PAD.t + ih * (1 - f);
    svg.append(s('line', { x1: PAD.l, x2: W - PAD.r, y1: y, y2: y, class: 'grid' }), s('text', { x: PAD.l - 4, y: y + 4, class: 'tick', 'text-anchor': 'end' }, String(Math.round(max * f))));
  }
  buckets.forEach((b, i) => {
    let y = PAD.t + ih;
    const when = new Date(String(b.start));
    const label = opts.bucketMinutes >= 1440 ? when.toLocaleDateString() : when.toLocaleString(undefined, { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' });
    for (const sr of series) {
      const v = Number(b[sr.key] ?? 0);
      if (v <= 0) continue;
      const hgt = (v / max) * ih;
      y -= hgt;
      svg.append(s('rect', { x: PAD.l + i * bw + 1, y, width: Math.max(1, bw - 2), height: hgt, class: sr.cls }, s('title', {}, `${label}: ${v} ${sr.name}`)));
    }
  });
  const first = buckets[0];
  const last = buckets[buckets.length - 1];
  /** @param {Record<string, number | string> | undefined} b */
  const tick = (b) => (b ? new Date(String(b.start)).toLocaleString(undefined, opts.bucketMinutes >= 1440 ? { month: 'short', day: 'numeric' } : { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' }) : '');
  svg.append(s('text', { x: PAD.l, y: H - 6, class: 'tick' }, tick(first)), s('text', { x: W - PAD.r, y: H - 6, class: 'tick', 'text-anchor': 'end' }, tick(last)));
  return h('figure', { class: 'chart-box' }, svg, legend(series), h('figcaption', {}, opts.label));
}

/**
 * A line of failure rate over time (failed / ended per bucket), 0..100 %.
 * @param {Array<{ start: string, completed: number, failed: number }>} buckets
 * @param {{ label: string }} opts
 */
export function rateLine(buckets, opts) {
  const iw = W - PAD.l - PAD.r;
  const ih = H - PAD.t - PAD.b;
  const bw = iw / Math.max(1, buckets.length);
  const svg = s('svg', { viewBox: `0 0 ${W} ${H}`, class: 'chart', role: 'img', 'aria-label': opts.label });
  for (const f of [0, 0.5, 1]) {
    const y = PAD.t + ih * (1 - f);
    svg.append(s('line', { x1: PAD.l, x2: W - PAD.r, y1: y, y2: y, class: 'grid' }), s('text', { x: PAD.l - 4, y: y + 4, class: 'tick', 'text-anchor': 'end' }, `${f * 100}%`));
  }
  /** @type {string[]} */
  const pts = [];
  buckets.forEach((b, i) => {
    const ended = b.completed + b.failed;
    if (ended === 0) return;
    const r = b.failed / ended;
    const x = PAD.l + i * bw + bw / 2;
    const y = PAD.t + ih * (1 - r);
    pts.push(`${x.toFixed(1)},${y.toFixed(1)}`);
    svg.append(s('circle', { cx: x, cy: y, r: 3, class: 'c-failed' }, s('title', {}, `${new Date(b.start).toLocaleString()}: ${Math.round(r * 100)} % of ${ended} ended jobs failed`)));
  });
  if (pts.length > 1) svg.insertBefore(s('polyline', { points: pts.join(' '), class: 'rate-line' }), svg.firstChild);
  return h('figure', { class: 'chart-box' }, svg, h('figcaption', {}, opts.label));
}

/**
 * Stacked horizontal bars, one row per label.
 * @param {HBarRow[]} rows
 * @param {{ label: string, empty: string, id?: string }} opts
 */
export function hbars(rows, opts) {
  const box = { class: 'chart-box', id: opts.id };
  if (rows.length === 0) return h('figure', box, h('p', { class: 'muted' }, opts.empty), h('figcaption', {}, opts.label));
  const max = Math.max(1, ...rows.map((r) => r.parts.reduce((a, p) => a + p.value, 0)));
  const rowH = 22;
  const labelW = 200;
  const height = rows.length * rowH + 4;
  const svg = s('svg', { viewBox: `0 0 ${W} ${height}`, class: 'chart', role: 'img', 'aria-label': `${opts.label}: ${rows.map((r) => `${r.label} ${r.parts.map((p) => `${p.value} ${p.name}`).join(', ')}`).join('; ')}` });
  rows.forEach((r, i) => {
    const y = i * rowH + 2;
    svg.append(s('text', { x: 0, y: y + 15, class: 'row-label' }, r.label.length > 28 ? `${r.label.slice(0, 27)}…` : r.label));
    let x = labelW;
    for (const p of r.parts) {
      if (p.value <= 0) continue;
      const w = (p.value / max) * (W - labelW - 40);
      svg.append(s('rect', { x, y, width: Math.max(1, w), height: rowH - 6, class: p.cls }, s('title', {}, `${r.label}: ${p.value} ${p.name}`)));
      x += w;
    }
    // Parts may be fractional (seconds): the sum of rounded parts is rounded again.
    const total = r.parts.reduce((a, p) => a + p.value, 0);
    svg.append(s('text', { x: x + 4, y: y + 15, class: 'tick' }, String(Number.isInteger(total) ? total : Math.round(total * 100) / 100)));
  });
  /** @type {Map<string, Series>} */
  const seen = new Map();
  for (const r of rows) for (const p of r.parts) if (!seen.has(p.cls)) seen.set(p.cls, { key: p.cls, name: p.name, cls: p.cls });
  return h('figure', box, svg, legend([...seen.values()]), h('figcaption', {}, opts.label));
}

/** @param {Series[]} series */
function legend(series) {
  return h(
    'ul',
    { class: 'legend' },
    series.map((sr) => h('li', {}, s('svg', { viewBox: '0 0 10 10', width: 10, height: 10, 'aria-hidden': 'true' }, s('rect', { width: 10, height: 10, class: sr.cls })), ` ${sr.name}`)),
  );
}
