/**
 * The HTTP service as a Fastify app: the jobs API, SSE, stats, health, outputs, metrics, OpenAPI
 * docs, the ComfyUI-compatible endpoint and the dashboard, all over the public `Guard` API.
 * `buildApp` does no I/O of its own; `startService` (index.ts) listens.
 */
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify';
import { serializerCompiler } from 'fastify-type-provider-zod';
import { readFileSync } from 'node:fs';
import type { Guard } from '../jobs/guard-api.js';
import { systemClock, type Clock } from '../util/clock.js';
import { installErrorHandlers } from './api-error.js';
import { installAuth } from './auth.js';
import { registerComfyCompat } from './comfy/routes.js';
import type { MetaStore } from './comfy/registry.js';
import type { UploadStore } from './comfy/uploads.js';
import { withZod, type ServiceContext } from './context.js';
import { registerConsoleRoutes } from './routes/console.js';
import { registerDashboard } from './routes/dashboard.js';
import { registerDocsUi, registerOpenApi } from './routes/docs.js';
import { registerHealthRoutes } from './routes/health.js';
import { registerJobEventRoutes } from './routes/job-events.js';
import { registerJobRoutes } from './routes/jobs.js';
import { registerMetricsRoute, type MetricsSource } from './routes/metrics.js';
import { registerOutputRoutes } from './routes/outputs.js';
import { registerStatsRoutes } from './routes/stats.js';
import { validatorCompiler } from './validation.js';

export interface AppOptions {
  guard: Guard;
  /** When set, the API, `/comfy` and `/metrics` need `Authorization: Bearer <apiKey>`. */
  apiKey?: string;
  /** The telemetry registry behind `/metrics` (see telemetry/metrics.ts). Without it `/metrics` is 404. */
  metrics?: MetricsSource;
  /** Largest accepted request body in bytes. @default 10 MiB */
  bodyLimit?: number;
  /** Fastify logger: false, true, pino options, or a pino logger instance. @default false */
  logger?: boolean | object;
  /** @default systemClock */
  clock?: Clock;
  /** SSE heartbeat comment interval. @default 15_000 */
  sseHeartbeatMs?: number;
  /** `status` heartbeat on ComfyUI-compatible sockets. @default 5_000 */
  comfyHeartbeatMs?: number;
  /** Serve the dashboard at `/`. @default true */
  dashboard?: boolean;
  /** Where ComfyUI clients' uploads are kept; give the same store's `deliver` to the guard's `prepareAttempt`. */
  comfyUploads?: UploadStore;
  /** Where client prompt ids and queue numbers are kept across restarts (the job store's getMeta/setMeta). @default in memory */
  comfyMeta?: MetaStore;
}

export const DEFAULT_BODY_LIMIT = 10 * 1024 * 1024;

function packageVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: unknown };
    return typeof pkg.version === 'string' ? pkg.version : '0.0.0';
  } catch {
    return '0.0.0';
  }
}

/** Fastify 5 takes a ready logger as `loggerInstance` and only options as `logger`. */
function loggerOption(logger: AppOptions['logger']): Pick<FastifyServerOptions, 'logger' | 'loggerInstance'> {
  const l = logger as { info?: unknown; child?: unknown } | undefined;
  if (l && typeof l === 'object' && typeof l.info === 'function' && typeof l.child === 'function') {
    return { loggerInstance: logger as FastifyServerOptions['loggerInstance'] };
  }
  return { logger: (logger ?? false) as FastifyServerOptions['logger'] };
}

function positive(name: string, v: number | undefined, dflt: number): number {
  if (v === undefined) return dflt;
  if (!Number.isFinite(v) || v <= 0) throw new Error(`\`${name}\` must be a positive number, got ${JSON.stringify(v)}`);
  return v;
}

/** Builds the service's Fastify app over a guard. Call `app.ready()` or `listen()` next; `close()` ends streams and sockets. */
export function buildApp(opts: AppOptions): FastifyInstance {
  if (!opts?.guard) throw new Error('buildApp needs a guard');
  const bodyLimit = positive('bodyLimit', opts.bodyLimit, DEFAULT_BODY_LIMIT);
  const version = packageVersion();
  const clock = opts.clock ?? systemClock;
  const ctx: ServiceContext = {
    guard: opts.guard,
    clock,
    version,
    startedAt: clock.now(),
    sseHeartbeatMs: positive('sseHeartbeatMs', opts.sseHeartbeatMs, 15_000),
    comfyHeartbeatMs: positive('comfyHeartbeatMs', opts.comfyHeartbeatMs, 5_000),
    streams: new Set(),
  };

  const app = Fastify({
    ...loggerOption(opts.logger),
    bodyLimit,
    // Long-lived SSE streams and sockets are ended by our preClose hook; idle keep-alives by Fastify.
    forceCloseConnections: 'idle',
    return503OnClosing: true,
  });
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  installErrorHandlers(app);

  // JSON whatever the Content-Type says: @saintno/comfyui-sdk posts JSON as text/plain.
  // An empty body is "no body" rather than an error, so POSTs without payload work with any client.
  const defaultJson = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser(['application/json', 'text/plain']);
  app.addContentTypeParser(['application/json', 'text/plain'], { parseAs: 'string' }, (req, body, done) => {
    if (typeof body !== 'string' || body.trim() === '') {
      done(null, undefined);
      return;
    }
    defaultJson(req, body, done);
  });

  if (opts.apiKey !== undefined) installAuth(app, opts.apiKey);

  app.register(async (root) => {
    await registerOpenApi(root, version);
    // Routes go in a child plugin so @fastify/swagger's onRoute hook sees every one of them.
    await root.register(async (api) => {
      const z = withZod(api);
      registerJobRoutes(z, ctx);
      registerJobEventRoutes(z, ctx);
      registerStatsRoutes(z, ctx);
      registerHealthRoutes(z, ctx);
      registerOutputRoutes(z, ctx);
      registerMetricsRoute(z, opts.metrics);
      registerConsoleRoutes(z, ctx);
      const compat = registerComfyCompat(api, ctx, {
        ...(opts.comfyUploads ? { uploads: opts.comfyUploads } : {}),
        ...(opts.comfyMeta ? { meta: opts.comfyMeta } : {}),
      });
      api.addHook('onClose', async () => compat.hub.close());
    });
    await registerDocsUi(root);
    if (opts.dashboard !== false) await registerDashboard(root);
  });

  app.addHook('onResponse', async (req) => {
    // An upgrade request answered over HTTP (401, 404...) never became a socket that
    // @fastify/websocket owns; its raw socket would stay open and hold up close().
    if (req.headers.upgrade && (req as { ws?: boolean }).ws !== true) req.raw.socket?.destroy();
  });

  app.addHook('preClose', async () => {
    for (const ac of ctx.streams) ac.abort();
  });
  return app;
}
