/**
 * A Grafana dashboard (JSON model, schema 39) over comfyguard's Prometheus metrics: errors by
 * code, category and server, recovery, time to failure and to recovery, health-check latency,
 * breakers, degradation, queue wait and depth, and goodput (GPU-seconds failed, succeeded, saved). `comfyguard grafana > dashboard.json` prints it; a
 * test checks that every metric it queries is one `createMetrics` registers.
 */

interface Target {
  expr: string;
  legendFormat: string;
}

let nextId = 1;

function panel(title: string, type: 'timeseries' | 'stat' | 'state-timeline', targets: Target[], grid: { x: number; y: number; w: number; h: number }, unit = 'short') {
  return {
    id: nextId++,
    title,
    type,
    datasource: { type: 'prometheus', uid: '${datasource}' },
    gridPos: grid,
    fieldConfig: { defaults: { unit }, overrides: [] },
    options: {},
    targets: targets.map((t, i) => ({ ...t, refId: String.fromCharCode(65 + i), datasource: { type: 'prometheus', uid: '${datasource}' } })),
  };
}

const q = (expr: string, legendFormat = ''): Target => ({ expr, legendFormat });
const p95 = (metric: string, by = '') => `histogram_quantile(0.95, sum by (le${by ? `, ${by}` : ''}) (rate(${metric}_bucket[$__rate_interval])))`;

/** The dashboard's JSON model (a fresh object each call). */
export function grafanaDashboard(): Record<string, unknown> {
  nextId = 1;
  const w = 12;
  const h = 8;
  const panels = [
    panel('Jobs by status', 'stat', [q('sum by (status) (comfyguard_jobs)', '{{status}}')], { x: 0, y: 0, w: 24, h: 4 }),
    panel('Errors per minute by code', 'timeseries', [q('sum by (code) (rate(comfyguard_errors_total[$__rate_interval])) * 60', '{{code}}')], { x: 0, y: 4, w, h }),
    panel('Errors per minute by category and server', 'timeseries', [q('sum by (category, server) (rate(comfyguard_errors_total[$__rate_interval])) * 60', '{{category}} {{server}}')], { x: w, y: 4, w, h }),
    panel(
      'Recovery steps by strategy and outcome',
      'timeseries',
      [q('sum by (strategy, outcome) (rate(comfyguard_recoveries_total{outcome!="started"}[$__rate_interval])) * 60', '{{strategy}} {{outcome}}')],
      { x: 0, y: 12, w, h },
    ),
    panel(
      'Retry success rate',
      'timeseries',
      [q('sum(rate(comfyguard_retries_total{outcome="succeeded"}[$__rate_interval])) / clamp_min(sum(rate(comfyguard_retries_total{outcome=~"succeeded|exhausted"}[$__rate_interval])), 1e-9)', 'retried jobs completed')],
      { x: w, y: 12, w, h },
      'percentunit',
    ),
    panel('Time to failure (p95) by code', 'timeseries', [q(p95('comfyguard_time_to_failure_seconds', 'code'), '{{code}}')], { x: 0, y: 20, w, h }, 's'),
    panel('Time to recovery (p95)', 'timeseries', [q(p95('comfyguard_time_to_recovery_seconds'), 'p95')], { x: w, y: 20, w, h }, 's'),
    panel('Health-check latency (p95) by server', 'timeseries', [q(p95('comfyguard_health_check_latency_seconds', 'server'), '{{server}}')], { x: 0, y: 28, w, h }, 's'),
    panel('Server healthy', 'state-timeline', [q('comfyguard_server_healthy', '{{server}}')], { x: w, y: 28, w, h }),
    panel('Circuit breakers (open / half open / isolated)', 'state-timeline', [q('comfyguard_breaker_state{state!="closed"} == 1', '{{server}} {{state}}')], { x: 0, y: 36, w, h }),
    panel('Degradation level (0 full … 4 minimal)', 'timeseries', [q('comfyguard_degradation_level', 'level')], { x: w, y: 36, w, h }),
    panel('Queue wait (p95) and ComfyUI queue depth', 'timeseries', [q(p95('comfyguard_queue_wait_seconds'), 'queue wait p95 (s)'), q('comfyguard_server_queue_depth', 'queue depth {{server}}')], { x: 0, y: 44, w, h }),
    panel('Job duration (p95) by status', 'timeseries', [q(p95('comfyguard_job_duration_seconds', 'status'), '{{status}}')], { x: w, y: 44, w, h }, 's'),
    panel('Attempts per minute', 'timeseries', [q('rate(comfyguard_attempts_total[$__rate_interval]) * 60', 'attempts')], { x: 0, y: 52, w: 24, h }),
    panel(
      'Goodput: share of GPU time that produced results',
      'timeseries',
      [q('sum(rate(comfyguard_gpu_seconds_total{outcome="succeeded"}[$__rate_interval])) / clamp_min(sum(rate(comfyguard_gpu_seconds_total{outcome=~"succeeded|failed"}[$__rate_interval])), 1e-9)', 'goodput')],
      { x: 0, y: 60, w, h },
      'percentunit',
    ),
    panel(
      'GPU seconds per minute: failed by code, succeeded and saved by server',
      'timeseries',
      [q('sum by (code) (rate(comfyguard_gpu_seconds_total{outcome="failed"}[$__rate_interval])) * 60', 'failed {{code}}'), q('sum by (outcome, server) (rate(comfyguard_gpu_seconds_total{outcome!="failed"}[$__rate_interval])) * 60', '{{outcome}} {{server}}')],
      { x: w, y: 60, w, h },
      's',
    ),
  ];
  return {
    title: 'comfyguard',
    uid: 'comfyguard-ops',
    tags: ['comfyguard', 'comfyui'],
    schemaVersion: 39,
    version: 1,
    time: { from: 'now-6h', to: 'now' },
    refresh: '30s',
    templating: { list: [{ name: 'datasource', type: 'datasource', query: 'prometheus', label: 'Prometheus' }] },
    panels,
  };
}

/** Every `comfyguard_*` series name the dashboard queries (histogram suffixes kept). */
export function dashboardSeries(dashboard: Record<string, unknown>): string[] {
  const names = new Set<string>();
  for (const m of JSON.stringify(dashboard).matchAll(/comfyguard_[a-z_]+/g)) names.add(m[0]);
  return [...names].sort();
}
