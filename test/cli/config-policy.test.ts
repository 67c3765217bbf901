/**
 * Every policy configurable without code: the config file's structured sections, the seeds'
 * environment names, and `serve`'s stack taking a recovery policy and a classifier rule from a file.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import pino from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { alertOptionsOf, guardOptionsOf } from '../../src/cli/commands/serve.js';
import { addConfigOptions, ConfigError, resolveConfig, SETTINGS, type SettingKey } from '../../src/cli/config.js';
import { startStack, type RunningStack } from '../../src/cli/stack.js';
import { ERROR_CODES } from '../../src/errors/codes.js';
import type { JobView } from '../../src/server/job-view.js';
import { startSimulator, type Simulator } from '../../src/sim/index.js';
import { postJson, tinyWorkflow, waitFor } from '../server/helpers.js';

const ALL: readonly SettingKey[] = SETTINGS.map((s) => s.key);

function flags(argv: string[]): Record<string, unknown> {
  const cmd = addConfigOptions(new Command('x').exitOverride(), ALL);
  cmd.parse(argv, { from: 'user' });
  return cmd.opts();
}

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'cg-policy-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function file(body: unknown): string {
  const p = join(dir, `${Math.random().toString(36).slice(2)}.json`);
  writeFileSync(p, JSON.stringify(body));
  return p;
}

const FULL = {
  servers: [
    { url: 'http://gpu-a:8188', name: 'a', weight: 2, tags: ['sdxl'] },
    { url: 'http://gpu-b:8188', name: 'b', tags: ['cheap'], maxInFlight: 2 },
  ],
  recovery: { COMFYUI_OOM: ['free_memory', 'reduce_batch'], COMFYUI_TIMEOUT: ['retry'] },
  classifierRules: { rules: [{ id: 'acme.quota', code: 'COMFYUI_OVERLOADED', when: { message: ['quota exceeded for acme'] } }] },
  retry: { baseMs: 500, factor: 3, capMs: 20_000, jitter: 0.1 },
  breaker: { failureThreshold: 4, halfOpenAfterMs: 15_000 },
  healthTtlMs: 10_000,
  healthTimeoutMs: 1_500,
  maxRecoveryAgeMs: 120_000,
  oomRetries: 1,
  cleanupAfterHours: 12,
  cleanupIntervalMs: 600_000,
  alerts: { sinks: [{ type: 'slack', url: 'https://hooks.slack.example/T/B/X' }], spikeFactor: 4, maxPerMinute: 5 },
};

describe('the config file covers every policy', () => {
  it('servers with tags and weights, classifier rules, recovery, backoff, breaker, health, recovery age, cleanup and alert sinks reach the guard options', () => {
    const cfg = resolveConfig({ flags: flags(['--config', file(FULL)]), env: {}, keys: ALL });
    const g = guardOptionsOf(cfg);
    expect(g.servers).toEqual(FULL.servers);
    expect(g.recovery).toEqual(FULL.recovery);
    expect(g.classifierRules).toEqual(FULL.classifierRules);
    expect(g.retry).toEqual(FULL.retry);
    expect(g.breaker).toEqual(FULL.breaker);
    expect(g).toMatchObject({ healthTtlMs: 10_000, healthTimeoutMs: 1_500, maxRecoveryAgeMs: 120_000, oomRetries: 1, cleanupAfterHours: 12, cleanupIntervalMs: 600_000 });
    expect(alertOptionsOf(cfg)).toEqual({ sinks: [{ type: 'slack', url: 'https://hooks.slack.example/T/B/X' }], spikeFactor: 4, maxPerMinute: 5 });
  });

  it('the OOM budget comes from COMFYGUARD_OOM_RETRIES or --oom-retries over the file, and a bad value names its source', () => {
    expect(resolveConfig({ flags: flags(['--config', file({ oomRetries: 1 })]), env: { COMFYGUARD_OOM_RETRIES: '0' }, keys: ALL }).oomRetries).toBe(0);
    expect(guardOptionsOf(resolveConfig({ flags: flags(['--server', 'http://a:8188', '--oom-retries', '4']), env: { COMFYGUARD_OOM_RETRIES: '0' }, keys: ALL })).oomRetries).toBe(4);
    expect(() => resolveConfig({ flags: {}, env: { COMFYGUARD_OOM_RETRIES: 'lots' }, keys: ALL })).toThrow(/^environment variable COMFYGUARD_OOM_RETRIES: expected an integer from 0 to 100/);
  });

  it('output cleanup: --cleanup-outputs turns it on, and --output-delete is the route of every server that names none', () => {
    const cfg = resolveConfig({
      flags: flags(['--config', file({ servers: [{ url: 'http://a:8188', outputDelete: 'image-browsing' }, { url: 'http://b:8188' }] }), '--cleanup-outputs', 'true']),
      env: { COMFYGUARD_OUTPUT_DELETE: 'DELETE /my-node/delete?filename={filename}' },
      keys: ALL,
    });
    const g = guardOptionsOf(cfg);
    expect(g.cleanupOutputs).toBe(true);
    expect(g.servers).toEqual([
      { url: 'http://a:8188', outputDelete: 'image-browsing' },
      { url: 'http://b:8188', outputDelete: 'DELETE /my-node/delete?filename={filename}' },
    ]);
    expect(guardOptionsOf(resolveConfig({ flags: flags(['--server', 'http://c:8188', '--output-delete', 'image-browsing']), env: {}, keys: ALL })).servers).toEqual([{ url: 'http://c:8188', outputDelete: 'image-browsing' }]);
  });

  it('servers from the environment replace the file servers and their tags', () => {
    const cfg = resolveConfig({ flags: flags(['--config', file(FULL)]), env: { COMFYUI_URL: 'http://other:8188' }, keys: ALL });
    expect(guardOptionsOf(cfg).servers).toEqual(['http://other:8188']);
  });

  it.each([
    [{ breaker: { failureTreshold: 3 } }, 'config file key "breaker.failureTreshold": unknown key'],
    [{ recovery: { COMFYUI_OOM: ['nap'] } }, /^config file key "recovery\.COMFYUI_OOM\.0": /],
    [{ recovery: { COMFYUI_OOPS: ['retry'] } }, /^config file key "recovery\.COMFYUI_OOPS": unknown error code/],
    [{ retry: { jitter: 2 } }, /^config file key "retry\.jitter": /],
    [{ servers: [{ url: 'ftp://x' }] }, /^config file key "servers\.0\.url": must be an http/],
    [{ alerts: { sinks: [{ type: 'pager', url: 'https://x.example' }] } }, /^config file key "alerts\.sinks\.0\.type": /],
    [{ classifierRules: { rules: [{ id: 'x', code: 'NOPE', when: { message: ['a'] } }] } }, /^config file key "classifierRules": rules\[0\] \("x"\): code/],
    [{ cleanupAfterHours: -1 }, /^config file key "cleanupAfterHours": expected a positive number/],
    [{ oomRetries: 1.5 }, /^config file key "oomRetries": expected an integer from 0 to 100/],
    [{ servers: [{ url: 'http://a:8188', outputDelete: 'PATCH /x?f={filename}' }] }, /^config file key "servers\.0\.outputDelete": expected "none", "image-browsing" or a route/],
    [{ outputDelete: '/delete?f={filename}&n={name}' }, /^config file key "outputDelete": the route .* has an unknown placeholder \{name\}/],
    [{ retries: 3 }, /^config file key "retries": unknown setting/],
  ])('refuses %j at start naming the bad key', (body, message) => {
    const run = () => resolveConfig({ flags: flags(['--config', file(body)]), env: {}, keys: ALL });
    expect(run).toThrow(ConfigError);
    expect(run).toThrow(message);
  });
});

describe("the seeds' environment names", () => {
  it('ERROR_RECOVERY_ENABLED=false makes every code abort: classify and report, never change or retry', () => {
    const cfg = resolveConfig({ flags: flags(['--server', 'http://a:8188', '--config', file({ recovery: { COMFYUI_OOM: ['free_memory'] } })]), env: { ERROR_RECOVERY_ENABLED: 'false' }, keys: ALL });
    const recovery = guardOptionsOf(cfg).recovery!;
    expect(Object.keys(recovery).sort()).toEqual([...ERROR_CODES].sort());
    expect(new Set(Object.values(recovery).map((v) => JSON.stringify(v)))).toEqual(new Set(['["abort"]']));
  });

  it('RECOVERY_STATISTICS_ENABLED, CHECKPOINT_RETENTION_HOURS and COMFYUI_POD_URL are read', () => {
    const cfg = resolveConfig({ flags: {}, env: { RECOVERY_STATISTICS_ENABLED: 'false', CHECKPOINT_RETENTION_HOURS: '48', COMFYUI_POD_URL: 'https://pod-123.proxy.example:8188' }, keys: ALL });
    expect(cfg.recoveryStatistics).toBe(false);
    expect(cfg.cleanupAfterHours).toBe(48);
    expect(cfg.servers).toEqual(['https://pod-123.proxy.example:8188']);
    // The comfyguard names win over the seeds'.
    expect(resolveConfig({ flags: {}, env: { COMFYGUARD_CLEANUP_AFTER_HOURS: '6', CHECKPOINT_RETENTION_HOURS: '48' }, keys: ALL }).cleanupAfterHours).toBe(6);
  });

  it('REDIS_URL, or REDIS_HOST / REDIS_PORT / REDIS_PASSWORD, select Redis for the store and the queue', () => {
    const a = resolveConfig({ flags: {}, env: { REDIS_URL: 'redis://cache:6379/2' }, keys: ALL });
    expect([a.store, a.queue]).toEqual(['redis://cache:6379/2', 'redis://cache:6379/2']);
    const b = resolveConfig({ flags: {}, env: { REDIS_HOST: 'cache', REDIS_PORT: '6380', REDIS_PASSWORD: 'p@ss' }, keys: ALL });
    expect([b.store, b.queue]).toEqual(['redis://:p%40ss@cache:6380', 'redis://:p%40ss@cache:6380']);
    const c = resolveConfig({ flags: {}, env: { REDIS_HOST: 'cache', COMFYGUARD_STORE: 'memory:' }, keys: ALL });
    expect([c.store, c.queue]).toEqual(['memory:', 'redis://cache:6379']);
  });
});

describe('serve with --config: a recovery policy and a classifier rule take effect', () => {
  let sim: Simulator;
  let stack: RunningStack | null = null;
  beforeAll(async () => {
    // Every prompt runs out of memory on this simulator.
    sim = await startSimulator({ name: 'oom', stepMs: 1, faults: 'oom=1' });
  });
  afterEach(async () => {
    await stack?.close();
    stack = null;
  });
  afterAll(async () => sim?.close());

  async function runOne(config: unknown, env: NodeJS.ProcessEnv = {}): Promise<JobView> {
    const cfg = resolveConfig({ flags: flags(['--config', file({ servers: [sim.url], store: 'memory:', port: 0, ...(config as object) })]), env, keys: ALL });
    stack = await startStack({ guard: guardOptionsOf(cfg), host: '127.0.0.1', port: 0, metrics: false, errorSpike: { threshold: 100, windowMs: 60_000 }, alerts: alertOptionsOf(cfg), errorAnalytics: cfg.recoveryStatistics, logger: pino({ level: 'silent' }) });
    const res = await postJson(`${stack.url}/api/jobs`, { workflow: tinyWorkflow('policy') });
    const { id } = (await res.json()) as { id: string };
    return waitFor(async () => {
      const job = (await (await fetch(`${stack!.url}/api/jobs/${id}`)).json()) as JobView;
      return ['completed', 'failed', 'timed_out', 'cancelled'].includes(job.status) ? job : null;
    }, `job ${id} to end`);
  }

  it.each([
    ['by default', {}, true],
    ['not with RECOVERY_STATISTICS_ENABLED=false', { RECOVERY_STATISTICS_ENABLED: 'false' }, false],
  ])('an OOM shows in the error analytics of /api/stats and guard.stats() %s', async (_when, env, shown) => {
    await runOne({ recovery: { COMFYUI_OOM: ['abort'] } }, env);
    const http = (await (await fetch(`${stack!.url}/api/stats`)).json()) as { totalJobs: number; analytics?: { byCode: Record<string, number> } };
    const lib = await stack!.guard.stats();
    expect(http.totalJobs).toBe(1);
    if (shown) {
      expect(http.analytics?.byCode).toEqual({ COMFYUI_OOM: 1 });
      expect(lib.analytics?.byCode).toEqual({ COMFYUI_OOM: 1 });
    } else {
      expect(http).not.toHaveProperty('analytics');
      expect(lib).not.toHaveProperty('analytics');
    }
  });

  it('without a policy the OOM is retried with changes before the job fails (the baseline the next tests differ from)', async () => {
    const job = await runOne({});
    expect(job.status).toBe('failed');
    expect(job.attempts.length).toBeGreaterThan(1);
  });

  it('a recovery policy of ["abort"] for OOM fails at the first attempt', async () => {
    const job = await runOne({ recovery: { COMFYUI_OOM: ['abort'] } });
    expect(job.status).toBe('failed');
    expect(job.error?.code).toBe('COMFYUI_OOM');
    expect(job.attempts).toHaveLength(1);
  });

  it('a classifier rule renames the error, and its code decides the recovery', async () => {
    const rules = { rules: [{ id: 'ops.oom-is-a-workflow-bug', code: 'COMFYUI_WORKFLOW_ERROR', when: { where: ['execution_error'], message: ['CUDA out of memory'] } }] };
    const job = await runOne({ classifierRules: rules });
    expect(job.error?.code).toBe('COMFYUI_WORKFLOW_ERROR');
    expect(job.attempts).toHaveLength(1);
  });

  it('ERROR_RECOVERY_ENABLED=false: the error is classified and reported, and nothing is retried', async () => {
    const job = await runOne({}, { ERROR_RECOVERY_ENABLED: 'false' });
    expect(job.error?.code).toBe('COMFYUI_OOM');
    expect(job.attempts).toHaveLength(1);
    const stats = (await (await fetch(`${stack!.url}/api/stats`)).json()) as { analytics?: { byCode: Record<string, number> } };
    expect(stats.analytics?.byCode).toEqual({ COMFYUI_OOM: 1 });
  });

  it('RECOVERY_STATISTICS_ENABLED=false leaves the error analytics out of /api/stats', async () => {
    await runOne({ recovery: { COMFYUI_OOM: ['abort'] } }, { RECOVERY_STATISTICS_ENABLED: 'false' });
    const stats = (await (await fetch(`${stack!.url}/api/stats`)).json()) as Record<string, unknown>;
    expect(stats['totalJobs']).toBe(1);
    expect(stats).not.toHaveProperty('analytics');
  });
});
