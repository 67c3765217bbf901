import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { addConfigOptions, ConfigError, parseDuration, requireServers, resolveConfig, SETTINGS, type SettingKey } from '../../src/cli/config.js';

const ALL = SETTINGS.map((s) => s.key) as SettingKey[];

/** Parses argv the way a command would and returns commander's options. */
function flags(argv: string[], keys: readonly SettingKey[] = ALL): Record<string, unknown> {
  const cmd = addConfigOptions(new Command('x').exitOverride(), keys);
  cmd.parse(argv, { from: 'user' });
  return cmd.opts();
}

describe('resolveConfig', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cg-config-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('uses the documented defaults when nothing is given', () => {
    const cfg = resolveConfig({ flags: flags([]), env: {}, keys: ALL });
    expect(cfg).toMatchObject({ servers: [], store: 'sqlite:./data/comfyguard.db', port: 8080, host: '127.0.0.1', maxRetries: 3, queue: 'memory', logLevel: 'info', metrics: true });
    expect(Object.isFrozen(cfg)).toBe(true);
  });

  it('layers config file < environment < flags', async () => {
    const file = join(dir, 'cg.json');
    await writeFile(file, JSON.stringify({ port: 9000, maxRetries: 1, store: 'memory:', servers: ['http://file:8188'], logLevel: 'debug' }));
    const env = { COMFYGUARD_CONFIG: file, COMFYGUARD_PORT: '9100', MAX_RETRY_ATTEMPTS: '5', COMFYUI_URL: 'http://a:8188, http://b:8188/' };
    const cfg = resolveConfig({ flags: flags(['--port', '9200', '--server', 'http://c:8188', '--server', 'http://d:8188']), env, keys: ALL });
    expect(cfg.port).toBe(9200);
    expect(cfg.maxRetries).toBe(5);
    expect(cfg.store).toBe('memory:');
    expect(cfg.logLevel).toBe('debug');
    expect(cfg.servers).toEqual(['http://c:8188', 'http://d:8188']);
    const envOnly = resolveConfig({ flags: flags([]), env, keys: ALL });
    expect(envOnly.servers).toEqual(['http://a:8188', 'http://b:8188']);
    expect(envOnly.port).toBe(9100);
  });

  it('accepts durations with units', () => {
    const cfg = resolveConfig({ flags: flags(['--request-timeout', '5s', '--job-timeout', '2m']), env: { STALL_TIMEOUT_MS: '1500' }, keys: ALL });
    expect(cfg.requestTimeoutMs).toBe(5_000);
    expect(cfg.jobTimeoutMs).toBe(120_000);
    expect(cfg.stallTimeoutMs).toBe(1_500);
    expect(() => parseDuration('soon', '--x')).toThrow(/--x: expected a positive duration/);
  });

  it('names the flag, variable or file key of a bad value', async () => {
    expect(() => resolveConfig({ flags: flags(['--port', 'eighty']), env: {}, keys: ALL })).toThrow(new ConfigError('--port', 'expected an integer from 0 to 65535, got "eighty"'));
    expect(() => resolveConfig({ flags: {}, env: { MAX_RETRY_ATTEMPTS: '-1' }, keys: ALL })).toThrow(/^environment variable MAX_RETRY_ATTEMPTS: expected an integer from 0 to 100/);
    expect(() => resolveConfig({ flags: {}, env: { COMFYUI_URL: 'ftp://x' }, keys: ALL })).toThrow(/^environment variable COMFYUI_URL: "ftp:\/\/x" must be an http/);
    expect(() => resolveConfig({ flags: {}, env: { COMFYGUARD_QUEUE: 'rabbit' }, keys: ALL })).toThrow(/COMFYGUARD_QUEUE: "rabbit" must be "memory"/);
    expect(() => resolveConfig({ flags: {}, env: { LOG_LEVEL: 'loud' }, keys: ALL })).toThrow(/LOG_LEVEL: expected one of fatal/);
    const file = join(dir, 'bad.json');
    await writeFile(file, JSON.stringify({ prot: 1 }));
    expect(() => resolveConfig({ flags: { config: file }, env: {}, keys: ALL })).toThrow(/^config file key "prot": unknown setting/);
    await writeFile(file, JSON.stringify({ metrics: 'maybe' }));
    expect(() => resolveConfig({ flags: { config: file }, env: {}, keys: ALL })).toThrow(/^config file key "metrics": expected true or false/);
    await writeFile(file, '{ nope');
    expect(() => resolveConfig({ flags: { config: file }, env: {}, keys: ALL })).toThrow(/^--config: config file ".*bad.json" is not valid JSON/);
    expect(() => resolveConfig({ flags: {}, env: { COMFYGUARD_CONFIG: join(dir, 'missing.json') }, keys: ALL })).toThrow(/^COMFYGUARD_CONFIG: cannot read config file .*\(ENOENT\)/);
  });

  it('ignores environment variables of settings the command does not take', () => {
    const cfg = resolveConfig({ flags: {}, env: { COMFYGUARD_PORT: 'not-a-port' }, keys: ['servers'] });
    expect(cfg.port).toBe(8080);
  });

  it('requireServers explains how to give a server', () => {
    const cfg = resolveConfig({ flags: {}, env: {}, keys: ALL });
    expect(() => requireServers(cfg)).toThrow(/--server: no ComfyUI server given: pass --server .* COMFYUI_URL/);
  });

  it('--help lists every setting with its environment variable', () => {
    const cmd = addConfigOptions(new Command('serve'), ALL);
    let help = '';
    cmd.configureOutput({ writeOut: (s) => (help += s) });
    cmd.outputHelp();
    for (const s of SETTINGS) {
      expect(help).toContain(s.flag.split(' ')[0]);
      expect(help).toContain(s.env);
    }
  });
});
