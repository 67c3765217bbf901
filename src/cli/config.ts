/**
 * The CLI's one configuration resolver: defaults < config file (JSON) < environment < flags. Every
 * setting is declared once in `SETTINGS` (flag, environment variable, file key, default, help), so
 * `--help` lists them all and every error names exactly where the bad value came from.
 */
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { parseOutputDeleteRoute } from '../pool/output-deleter.js';
import { parsePolicySections, PolicySectionError, POLICY_SECTION_KEYS, type PolicySections } from './config-file.js';

/** A value that could not be used; `source` is the flag, environment variable or file key at fault. */
export class ConfigError extends Error {
  readonly code = 'CONFIG_ERROR';
  readonly source: string;
  constructor(source: string, message: string) {
    super(`${source}: ${message}`);
    this.name = 'ConfigError';
    this.source = source;
  }
}

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
export const LOG_FORMATS = ['human', 'json'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

/** Everything `serve` (and, in part, `run` / `doctor` / `demo`) can be configured with. */
export interface CliConfig {
  servers: string[];
  store: string;
  host: string;
  port: number;
  /** Also serve the ComfyUI API at the root of this port. */
  comfyPort: number | undefined;
  apiKey: string | undefined;
  maxRetries: number;
  oomRetries: number;
  queue: string;
  concurrency: number | undefined;
  queueLockMs: number;
  queueStalledCheckMs: number;
  requestTimeoutMs: number;
  generationTimeoutMs: number;
  jobTimeoutMs: number;
  stallTimeoutMs: number;
  healthTtlMs: number;
  logLevel: LogLevel;
  logFormat: LogFormat;
  webhookSecret: string | undefined;
  analyticsFile: string | undefined;
  metrics: boolean;
  errorSpikeThreshold: number;
  errorSpikeWindowMs: number;
  allowedHosts: string[];
  allowedOrigins: string[];
  webhookAllow: Array<'loopback' | 'private'>;
  healthTimeoutMs: number;
  maxRecoveryAgeMs: number;
  cleanupAfterHours: number;
  cleanupIntervalMs: number;
  cleanupOutputs: boolean;
  outputDelete: string | undefined;
  errorRecovery: boolean;
  recoveryStatistics: boolean;
  alertSlackUrl: string | undefined;
  alertWebhookUrl: string | undefined;
  /** The config file's structured sections (servers with tags, recovery, classifier rules, backoff, breaker, alerts). */
  policy: PolicySections;
}

export type SettingKey = keyof CliConfig;

type Parser<K extends SettingKey> = (raw: unknown, source: string) => CliConfig[K];

interface Setting<K extends SettingKey = SettingKey> {
  key: K;
  /** Commander flag, e.g. `--port <n>`. */
  flag: string;
  env: string;
  help: string;
  default: CliConfig[K];
  /** Shown in help instead of the default value. */
  defaultText?: string;
  parse: Parser<K>;
  /** The flag may be repeated (values are collected). */
  repeatable?: boolean;
  /** Never printed (secrets). */
  secret?: boolean;
  /** Other environment names read when `env` is unset (the seeds' names), in order. */
  aliases?: string[];
}

// ---- value parsers: each gets the raw value (string from flag/env, any JSON from a file) ----------

function text(raw: unknown, source: string): string {
  if (typeof raw !== 'string' || raw.trim() === '') throw new ConfigError(source, `expected a non-empty string, got ${show(raw)}`);
  return raw.trim();
}

function optionalText(raw: unknown, source: string): string | undefined {
  return text(raw, source);
}

function integer(min: number, max: number) {
  return (raw: unknown, source: string): number => {
    const n = typeof raw === 'number' ? raw : typeof raw === 'string' && /^\s*-?\d+\s*$/.test(raw) ? Number(raw) : Number.NaN;
    if (!Number.isInteger(n) || n < min || n > max) throw new ConfigError(source, `expected an integer from ${min} to ${max}, got ${show(raw)}`);
    return n;
  };
}

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 };

/** Milliseconds: a number, or `<n>ms|s|m|h` ("30s", "5m"). */
export function parseDuration(raw: unknown, source: string): number {
  if (typeof raw === 'number' && Number.isInteger(raw) && raw > 0) return raw;
  const m = typeof raw === 'string' ? /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$/.exec(raw) : null;
  const ms = m ? Math.round(Number(m[1]) * DURATION_UNITS[m[2] ?? 'ms']!) : Number.NaN;
  if (!Number.isInteger(ms) || ms <= 0) throw new ConfigError(source, `expected a positive duration in ms (or with a unit: 30s, 5m, 1h), got ${show(raw)}`);
  return ms;
}

/** Milliseconds, or 0 (= off). */
function durationOrOff(raw: unknown, source: string): number {
  if (raw === 0 || (typeof raw === 'string' && raw.trim() === '0')) return 0;
  return parseDuration(raw, source);
}

function positiveNumber(raw: unknown, source: string): number {
  const n = typeof raw === 'number' ? raw : typeof raw === 'string' && raw.trim() !== '' ? Number(raw) : Number.NaN;
  if (!Number.isFinite(n) || n <= 0) throw new ConfigError(source, `expected a positive number, got ${show(raw)}`);
  return n;
}

function optionalHttpUrl(raw: unknown, source: string): string | undefined {
  return checkHttpUrl(text(raw, source), source);
}

function bool(raw: unknown, source: string): boolean {
  if (typeof raw === 'boolean') return raw;
  const s = typeof raw === 'string' ? raw.trim().toLowerCase() : '';
  if (['1', 'true', 'yes', 'on'].includes(s)) return true;
  if (['0', 'false', 'no', 'off'].includes(s)) return false;
  throw new ConfigError(source, `expected true or false, got ${show(raw)}`);
}

/** One or more http(s) URLs: an array, or a comma-separated string. */
function urlList(raw: unknown, source: string): string[] {
  const items = Array.isArray(raw) ? raw : typeof raw === 'string' ? raw.split(',') : null;
  if (!items) throw new ConfigError(source, `expected a URL or a list of URLs, got ${show(raw)}`);
  const urls: string[] = [];
  for (const item of items) {
    if (typeof item !== 'string') throw new ConfigError(source, `expected URLs as strings, got ${show(item)}`);
    for (const part of item.split(',')) {
      const u = part.trim();
      if (u === '') continue;
      urls.push(checkHttpUrl(u, source));
    }
  }
  if (urls.length === 0) throw new ConfigError(source, 'expected at least one ComfyUI server URL');
  return urls;
}

function checkHttpUrl(u: string, source: string): string {
  let url: URL;
  try {
    url = new URL(u);
  } catch {
    throw new ConfigError(source, `${show(u)} is not a URL (expected e.g. http://127.0.0.1:8188)`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new ConfigError(source, `${show(u)} must be an http:// or https:// URL`);
  return u.replace(/\/+$/, '');
}

const STORE_SCHEMES = ['memory:', 'sqlite:', 'postgres://', 'postgresql://', 'redis://', 'rediss://'];

function storeUrl(raw: unknown, source: string): string {
  const s = text(raw, source);
  if (!STORE_SCHEMES.some((p) => s.startsWith(p))) {
    throw new ConfigError(source, `${show(s)} is not a store URL (use memory:, sqlite:./data/comfyguard.db, postgres://…, or redis://…)`);
  }
  return s;
}

function queueUrl(raw: unknown, source: string): string {
  const s = text(raw, source);
  if (s !== 'memory' && !s.startsWith('redis://') && !s.startsWith('rediss://')) {
    throw new ConfigError(source, `${show(s)} must be "memory" (in-process) or a redis:// URL (BullMQ, shared by several processes)`);
  }
  return s;
}

/** A comma-separated list (or a JSON array in the config file) of non-empty strings. */
function textList(raw: unknown, source: string): string[] {
  const items = Array.isArray(raw) ? raw : typeof raw === 'string' ? raw.split(',') : null;
  if (!items || items.some((i) => typeof i !== 'string')) throw new ConfigError(source, `expected a comma-separated list, got ${show(raw)}`);
  return (items as string[]).map((i) => i.trim()).filter((i) => i !== '');
}

function webhookAllow(raw: unknown, source: string): Array<'loopback' | 'private'> {
  const list = textList(raw, source);
  for (const k of list) if (k !== 'loopback' && k !== 'private') throw new ConfigError(source, `expected loopback and/or private, got ${show(k)}`);
  return list as Array<'loopback' | 'private'>;
}

function outputDeleteRoute(raw: unknown, source: string): string {
  const s = text(raw, source);
  try {
    parseOutputDeleteRoute(s);
  } catch (err) {
    throw new ConfigError(source, err instanceof Error ? err.message : String(err));
  }
  return s;
}

function logLevel(raw: unknown, source: string): LogLevel {
  const s = text(raw, source).toLowerCase();
  if (!(LOG_LEVELS as readonly string[]).includes(s)) throw new ConfigError(source, `expected one of ${LOG_LEVELS.join(', ')}, got ${show(raw)}`);
  return s as LogLevel;
}

function logFormat(raw: unknown, source: string): LogFormat {
  const s = text(raw, source).toLowerCase();
  if (!(LOG_FORMATS as readonly string[]).includes(s)) throw new ConfigError(source, `expected one of ${LOG_FORMATS.join(', ')}, got ${show(raw)}`);
  return s as LogFormat;
}

function show(v: unknown): string {
  return typeof v === 'string' ? JSON.stringify(v) : v === undefined ? 'nothing' : JSON.stringify(v) ?? String(v);
}

// ---- the settings ----------------------------------------------------------------------------

function setting<K extends SettingKey>(s: Setting<K>): Setting<K> {
  return s;
}

/** Every setting, in the order `--help` lists them. */
export const SETTINGS = [
  setting({ key: 'servers', flag: '--server <url>', env: 'COMFYUI_URL', aliases: ['COMFYUI_POD_URL'], help: 'ComfyUI server URL; repeat the flag (or comma-separate the variable) for several', default: [], defaultText: '(required)', parse: urlList, repeatable: true }),
  setting({ key: 'store', flag: '--store <url>', env: 'COMFYGUARD_STORE', aliases: ['REDIS_URL'], help: 'job store: memory:, sqlite:<file>, postgres://…, redis://…', default: 'sqlite:./data/comfyguard.db', parse: storeUrl }),
  setting({ key: 'queue', flag: '--queue <memory|redis-url>', env: 'COMFYGUARD_QUEUE', aliases: ['REDIS_URL'], help: 'dispatch: in-process, or BullMQ on Redis to share work between processes (?queue=NAME&prefix=P)', default: 'memory', parse: queueUrl }),
  setting({ key: 'host', flag: '--host <addr>', env: 'COMFYGUARD_HOST', help: 'address to listen on (anything but loopback needs an API key)', default: '127.0.0.1', parse: text }),
  setting({ key: 'port', flag: '--port <n>', env: 'COMFYGUARD_PORT', help: 'port to listen on (0 = any free port)', default: 8080, parse: integer(0, 65_535) }),
  setting({ key: 'comfyPort', flag: '--comfy-port <n>', env: 'COMFYGUARD_COMFY_PORT', help: 'also serve the ComfyUI API at the root of this port (/ws, /prompt, /api/...), for clients that cannot use the /comfy prefix', default: undefined, defaultText: '(off)', parse: integer(0, 65_535) }),
  setting({ key: 'apiKey', flag: '--api-key <key>', env: 'COMFYGUARD_API_KEY', help: 'require "Authorization: Bearer <key>" on the API', default: undefined, defaultText: '(none)', parse: optionalText, secret: true }),
  setting({ key: 'maxRetries', flag: '--max-retries <n>', env: 'MAX_RETRY_ATTEMPTS', help: 'retries after the first attempt of a job', default: 3, parse: integer(0, 100) }),
  setting({ key: 'oomRetries', flag: '--oom-retries <n>', env: 'COMFYGUARD_OOM_RETRIES', help: 'recovery decisions for out-of-memory failures (planned with the memory model), apart from --max-retries', default: 2, parse: integer(0, 100) }),
  setting({ key: 'concurrency', flag: '--concurrency <n>', env: 'COMFYGUARD_CONCURRENCY', help: 'jobs run at once by this process (with a shared queue too)', default: undefined, defaultText: '4 per server', parse: integer(1, 10_000) }),
  setting({ key: 'queueLockMs', flag: '--queue-lock <ms>', env: 'COMFYGUARD_QUEUE_LOCK_MS', help: "BullMQ: a worker's lock on a running job; a dead instance's jobs run elsewhere after it", default: 30_000, parse: parseDuration }),
  setting({ key: 'queueStalledCheckMs', flag: '--queue-stalled-check <ms>', env: 'COMFYGUARD_QUEUE_STALLED_CHECK_MS', help: 'BullMQ: how often workers look for jobs of dead instances', default: 15_000, parse: parseDuration }),
  setting({ key: 'requestTimeoutMs', flag: '--request-timeout <ms>', env: 'REQUEST_TIMEOUT_MS', help: 'timeout of one HTTP request to ComfyUI', default: 30_000, parse: parseDuration }),
  setting({ key: 'generationTimeoutMs', flag: '--generation-timeout <ms>', env: 'GENERATION_TIMEOUT_MS', help: 'timeout of one attempt, submit to result', default: 300_000, parse: parseDuration }),
  setting({ key: 'jobTimeoutMs', flag: '--job-timeout <ms>', env: 'JOB_TIMEOUT_MS', help: 'timeout of a whole job, all attempts included', default: 1_800_000, parse: parseDuration }),
  setting({ key: 'stallTimeoutMs', flag: '--stall-timeout <ms>', env: 'STALL_TIMEOUT_MS', help: 'no event and no queue movement for this long = stalled', default: 60_000, parse: parseDuration }),
  setting({ key: 'healthTtlMs', flag: '--health-ttl <ms>', env: 'HEALTH_TTL_MS', help: 'how long a server health check is trusted', default: 30_000, parse: parseDuration }),
  setting({ key: 'logLevel', flag: '--log-level <level>', env: 'LOG_LEVEL', help: LOG_LEVELS.join(' | '), default: 'info', parse: logLevel }),
  setting({ key: 'logFormat', flag: '--log-format <format>', env: 'LOG_FORMAT', help: 'human: one readable line per event; json: pino JSON lines for log collectors', default: 'human', parse: logFormat }),
  setting({ key: 'webhookSecret', flag: '--webhook-secret <secret>', env: 'WEBHOOK_SECRET', help: 'HMAC key for the X-Comfyguard-Signature header of webhooks', default: undefined, defaultText: '(generated, shown once)', parse: optionalText, secret: true }),
  setting({ key: 'webhookAllow', flag: '--webhook-allow <kinds>', env: 'COMFYGUARD_WEBHOOK_ALLOW', help: 'webhook targets allowed besides public addresses: loopback (local development) and/or private', default: [], defaultText: '(public only)', parse: webhookAllow }),
  setting({ key: 'allowedHosts', flag: '--allowed-hosts <names>', env: 'COMFYGUARD_ALLOWED_HOSTS', help: 'host names the service answers to besides IP addresses and localhost (.example.com allows subdomains, * any)', default: [], defaultText: '(IPs and localhost)', parse: textList }),
  setting({ key: 'allowedOrigins', flag: '--allowed-origins <origins>', env: 'COMFYGUARD_ALLOWED_ORIGINS', help: 'web origins that may POST and open sockets besides the service\'s own (https://app.example.com)', default: [], defaultText: '(own origin only)', parse: textList }),
  setting({ key: 'analyticsFile', flag: '--analytics-file <path>', env: 'COMFYGUARD_ANALYTICS_FILE', help: 'append analytics events to this JSON-lines file', default: undefined, defaultText: '(off)', parse: optionalText }),
  setting({ key: 'metrics', flag: '--metrics <bool>', env: 'COMFYGUARD_METRICS', help: 'serve Prometheus metrics at /metrics', default: true, parse: bool }),
  setting({ key: 'errorSpikeThreshold', flag: '--error-spike-threshold <n>', env: 'ERROR_SPIKE_THRESHOLD', help: 'log an alert when more errors than this fall in the window', default: 20, parse: integer(0, 1_000_000) }),
  setting({ key: 'errorSpikeWindowMs', flag: '--error-spike-window <ms>', env: 'ERROR_SPIKE_WINDOW_MS', help: 'sliding window of the error-spike alert', default: 60_000, parse: parseDuration }),
  setting({ key: 'healthTimeoutMs', flag: '--health-timeout <ms>', env: 'HEALTH_TIMEOUT_MS', help: 'timeout of one health check', default: 2_000, parse: parseDuration }),
  setting({ key: 'maxRecoveryAgeMs', flag: '--max-recovery-age <ms>', env: 'MAX_RECOVERY_AGE_MS', help: 'after a restart, jobs older than this whose prompt is unknown fail instead of resubmitting', default: 600_000, parse: parseDuration }),
  setting({ key: 'cleanupAfterHours', flag: '--cleanup-after-hours <h>', env: 'COMFYGUARD_CLEANUP_AFTER_HOURS', aliases: ['CHECKPOINT_RETENTION_HOURS'], help: 'terminal jobs older than this are deleted', default: 24, parse: positiveNumber }),
  setting({ key: 'cleanupIntervalMs', flag: '--cleanup-interval <ms>', env: 'COMFYGUARD_CLEANUP_INTERVAL_MS', help: 'how often old jobs are deleted (0 = never)', default: 3_600_000, parse: durationOrOff }),
  setting({ key: 'cleanupOutputs', flag: '--cleanup-outputs <bool>', env: 'COMFYGUARD_CLEANUP_OUTPUTS', help: "cleanup also deletes the deleted jobs' output files where the server allows it (see --output-delete) and reports what it could not delete", default: false, parse: bool }),
  setting({ key: 'outputDelete', flag: '--output-delete <route>', env: 'COMFYGUARD_OUTPUT_DELETE', help: 'how servers delete output files (ComfyUI has no API for it): image-browsing (the ComfyUI-Image-Browsing custom node) or "DELETE /route?filename={filename}&subfolder={subfolder}&type={type}"; a server in the config file may set its own', default: undefined, defaultText: '(none: reported as cannot)', parse: outputDeleteRoute }),
  setting({ key: 'errorRecovery', flag: '--error-recovery <bool>', env: 'ERROR_RECOVERY_ENABLED', help: 'false: classify and report errors, never change or retry a job', default: true, parse: bool }),
  setting({ key: 'recoveryStatistics', flag: '--recovery-statistics <bool>', env: 'RECOVERY_STATISTICS_ENABLED', help: 'false: no error analytics in /api/stats', default: true, parse: bool }),
  setting({ key: 'alertSlackUrl', flag: '--alert-slack-url <url>', env: 'COMFYGUARD_ALERT_SLACK_URL', help: 'Slack-compatible incoming webhook for alerts', default: undefined, defaultText: '(log only)', parse: optionalHttpUrl, secret: true }),
  setting({ key: 'alertWebhookUrl', flag: '--alert-webhook-url <url>', env: 'COMFYGUARD_ALERT_WEBHOOK_URL', help: 'generic JSON webhook for alerts (signed with --webhook-secret)', default: undefined, defaultText: '(log only)', parse: optionalHttpUrl, secret: true }),
] as const satisfies readonly Setting[];

/** The flag name without its argument, e.g. `--port`. */
function flagName(s: Setting): string {
  return s.flag.split(' ')[0]!;
}

/** Commander's attribute name for a flag (`--api-key` -> `apiKey`). */
function attrName(s: Setting): string {
  return flagName(s)
    .replace(/^--/, '')
    .replace(/-([a-z])/g, (_m, c: string) => c.toUpperCase());
}

function settingsFor(keys: readonly SettingKey[]): Setting[] {
  return SETTINGS.filter((s) => keys.includes(s.key)) as Setting[];
}

/** Environment variable naming the config file. */
export const CONFIG_FILE_ENV = 'COMFYGUARD_CONFIG';

/**
 * Adds the flags of `keys` to `cmd` (no commander defaults, so "not given" stays distinguishable),
 * plus `--config <file>`, and a help section listing flag, variable and default of each.
 */
export function addConfigOptions(cmd: Command, keys: readonly SettingKey[], defaults: Partial<Record<SettingKey, string>> = {}): Command {
  for (const s of settingsFor(keys)) {
    if (s.repeatable) cmd.option(s.flag, s.help, (v: string, prev: string[] | undefined) => [...(prev ?? []), v]);
    else cmd.option(s.flag, s.help);
  }
  cmd.option('--config <file>', `JSON file with any of the settings below (keys as in the table) [env: ${CONFIG_FILE_ENV}]`);
  cmd.addHelpText('after', `\n${configHelp(keys, defaults)}`);
  return cmd;
}

/** The settings table printed by `--help`: precedence, then one row per setting (`defaults`: this command's own, as shown). */
export function configHelp(keys: readonly SettingKey[], defaults: Partial<Record<SettingKey, string>> = {}): string {
  const rows = settingsFor(keys).map((s) => [flagName(s), s.env, s.key, defaults[s.key] ?? s.defaultText ?? (s.secret ? '(none)' : JSON.stringify(s.default))]);
  const head = ['flag', 'environment', 'config key', 'default'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (r: string[]) => `  ${r.map((c, i) => c.padEnd(widths[i]!)).join('  ')}`.trimEnd();
  const aliases = settingsFor(keys).flatMap((s) => (s.aliases ?? []).map((a) => `${a} (for ${s.env})`));
  const tail = aliases.length ? [`Also read, when the variable above is unset (the seeds' names): ${aliases.join(', ')}.`] : [];
  return ['Settings (defaults < config file < environment < flags):', line(head), ...rows.map(line), ...tail].join('\n');
}

export interface ResolveInput {
  /** Commander's parsed options (only flags actually given are defined). */
  flags: Record<string, unknown>;
  env?: NodeJS.ProcessEnv;
  /** Keys this command accepts; others in a config file are an error only if unknown to all commands. */
  keys: readonly SettingKey[];
  /** Per-command defaults that differ from the table (e.g. the demo's memory store). */
  defaults?: Partial<CliConfig>;
}

/** Resolves, validates and freezes the configuration of one command. */
export function resolveConfig(input: ResolveInput): Readonly<CliConfig> {
  const env = input.env ?? process.env;
  const out: Record<string, unknown> = {};
  for (const s of SETTINGS as readonly Setting[]) out[s.key] = s.default;
  out['policy'] = {};
  Object.assign(out, input.defaults ?? {});

  const configPath = input.flags['config'] ?? env[CONFIG_FILE_ENV];
  if (configPath !== undefined) {
    const source = input.flags['config'] !== undefined ? '--config' : CONFIG_FILE_ENV;
    const file = readConfigFile(text(configPath, source), source);
    try {
      out['policy'] = parsePolicySections(file);
    } catch (err) {
      if (err instanceof PolicySectionError) throw new ConfigError(`config file key "${err.key}"`, err.message);
      throw err;
    }
    const policy = out['policy'] as PolicySections;
    for (const [k, v] of Object.entries(file)) {
      if ((POLICY_SECTION_KEYS as readonly string[]).includes(k)) continue;
      // Servers given as objects: their URLs are the servers setting, the objects the policy's.
      if (k === 'servers' && policy.servers) {
        out[k] = policy.servers.map((x) => x.url);
        continue;
      }
      const s = (SETTINGS as readonly Setting[]).find((x) => x.key === k);
      if (!s) throw new ConfigError(`config file key "${k}"`, `unknown setting (known: ${[...SETTINGS.map((x) => x.key), ...POLICY_SECTION_KEYS].join(', ')})`);
      if (v === null) continue;
      out[k] = s.parse(v, `config file key "${k}"`);
    }
  }
  const seedEnv = withSeedRedisUrl(env);
  for (const s of settingsFor(input.keys)) {
    const name = [s.env, ...(s.aliases ?? [])].find((n) => seedEnv[n] !== undefined && seedEnv[n] !== '');
    if (name === undefined) continue;
    out[s.key] = s.parse(seedEnv[name], `environment variable ${name === 'REDIS_URL' && env['REDIS_URL'] === undefined ? 'REDIS_HOST' : name}`);
    // Servers from the environment replace the file's, with their tags.
    if (s.key === 'servers') out['policy'] = { ...(out['policy'] as PolicySections), servers: undefined };
  }
  for (const s of settingsFor(input.keys)) {
    const raw = input.flags[attrName(s)];
    if (raw === undefined) continue;
    out[s.key] = s.parse(raw, flagName(s));
    if (s.key === 'servers') out['policy'] = { ...(out['policy'] as PolicySections), servers: undefined };
  }
  return Object.freeze(out as unknown as CliConfig);
}

/** Seed 003's REDIS_HOST / REDIS_PORT / REDIS_PASSWORD, as the REDIS_URL they stand for (REDIS_URL itself wins). */
export function withSeedRedisUrl(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const host = env['REDIS_HOST'];
  if ((env['REDIS_URL'] ?? '') !== '' || !host) return env;
  const password = env['REDIS_PASSWORD'] ? `:${encodeURIComponent(env['REDIS_PASSWORD'])}@` : '';
  return { ...env, REDIS_URL: `redis://${password}${host}:${env['REDIS_PORT'] || '6379'}` };
}

function readConfigFile(path: string, source: string): Record<string, unknown> {
  let body: string;
  try {
    body = readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    throw new ConfigError(source, `cannot read config file ${show(path)}${typeof code === 'string' ? ` (${code})` : ''}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch (err) {
    throw new ConfigError(source, `config file ${show(path)} is not valid JSON: ${err instanceof Error ? err.message : String(err)}`);
  }
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw new ConfigError(source, `config file ${show(path)} must hold a JSON object`);
  return parsed as Record<string, unknown>;
}

/** Throws unless at least one server is configured, saying how to give one. */
export function requireServers(cfg: Readonly<CliConfig>): string[] {
  if (cfg.servers.length === 0) {
    throw new ConfigError('--server', 'no ComfyUI server given: pass --server http://host:8188 (repeatable), set COMFYUI_URL, or add "servers" to the config file');
  }
  return cfg.servers;
}
