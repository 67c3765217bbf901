import { afterEach, describe, expect, it } from 'vitest';
import { dashboardSeries, grafanaDashboard } from '../../src/telemetry/grafana.js';
import { createMetrics, type GuardMetrics } from '../../src/telemetry/metrics.js';
import { FakeGuardEvents, serverView } from './fake-guard.js';

describe('the Grafana dashboard', () => {
  let metrics: GuardMetrics | null = null;
  afterEach(() => {
    metrics?.close();
    metrics = null;
  });

  it('queries only metrics that createMetrics registers (histograms by their series)', async () => {
    const guard = new FakeGuardEvents();
    guard.views = [serverView('gpu')];
    metrics = createMetrics(guard);
    const registered = (await metrics.registry.getMetricsAsJSON()).map((m) => ({ name: m.name, type: String(m.type) }));
    const known = new Set<string>();
    for (const m of registered) {
      known.add(m.name);
      if (m.type === 'histogram') for (const suffix of ['_bucket', '_sum', '_count']) known.add(`${m.name}${suffix}`);
    }
    const used = dashboardSeries(grafanaDashboard());
    expect(used.length).toBeGreaterThan(10);
    expect(used.filter((n) => !known.has(n))).toEqual([]);
    // And every comfyguard metric has a panel.
    const bases = new Set(used.map((n) => n.replace(/_(bucket|sum|count)$/, '')));
    expect(registered.map((m) => m.name).filter((n) => !bases.has(n))).toEqual([]);
  });

  it('is a dashboard Grafana can import: unique panel ids, a Prometheus datasource variable, one query per target', () => {
    const d = grafanaDashboard() as { panels: Array<{ id: number; targets: Array<{ expr: string; refId: string }> }>; templating: { list: Array<{ name: string; query: string }> } };
    const ids = d.panels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    expect(d.templating.list).toContainEqual(expect.objectContaining({ name: 'datasource', query: 'prometheus' }));
    for (const p of d.panels) for (const t of p.targets) expect(t.expr).toMatch(/comfyguard_/);
    expect(JSON.parse(JSON.stringify(d))).toEqual(d);
  });
});
