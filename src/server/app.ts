/**
 * The HTTP service as a Fastify app: the jobs API, SSE, stats, health, outputs, metrics, OpenAPI
 * docs, the ComfyUI-compatible endpoint and the dashboard, all over the public `Guard` API.
 * `buildApp` does no I/O of its own; `startService` (index.ts) listens.
 */
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyServerOptions } from 'fastify';
import { serializerCompiler } from 'fastify-type-provider-zod';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { Socket } from 'node:net';
import type { Guard } from '../jobs/guard-api.js';
import { systemClock, type Clock } from '../util/clock.js';
import type { OutboundPolicy } from '../util/outbound.js';
import { ApiError, errorBody, installErrorHandlers, toApiError } from './api-error.js';
import { installAuth } from './auth.js';
import { DEFAULT_MAX_BODY_DEPTH, DEFAULT_MAX_WORKFLOW_NODES, parseJsonBody } from './body-limits.js';
import { installBrowserSafety, type BrowserSafetyOptions } from './browser-safety.js';
import { registerComfyCompat } from './comfy/routes.js';
import type { MetaStore } from './comfy/registry.js';
import type { UploadStore } from './comfy/uploads.js';
import { withZod, type ServiceContext, type ServiceLimits } from './context.js';
import { registerConsoleRoutes } from './routes/console.js';
import { registerDashboard } from './routes/dashboard.js';
import { registerDocsUi, registerOpenApi } from './routes/docs.js';
import { registerHealthRoutes } from './routes/health.js';
import { registerJobEventRoutes } from './routes/job-events.js';
import { registerJobRoutes } from './routes/jobs.js';
import { registerMemoryModelRoute } from './routes/memory-model.js';
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
  /** Host names answered besides IP addresses and loopback names (DNS rebinding guard); `'*'` turns it off. @default [] */
  allowedHosts?: BrowserSafetyOptions['allowedHosts'];
  /** Origins whose pages may change state besides the service's own; `'*'` turns it off. @default [] */
  allowedOrigins?: BrowserSafetyOptions['allowedOrigins'];
  /** Deepest JSON nesting accepted in a body. @default 64 */
  maxBodyDepth?: number;
  /** Most nodes in one workflow (each fallback workflow counts alone). @default 2_000 */
  maxWorkflowNodes?: number;
  /** Time for a client to send the request headers; slower connections are closed. @default 10_000 */
  headersTimeoutMs?: number;
  /** Time for a client to send the whole request. @default 60_000 */
  requestTimeoutMs?: number;
  /** A connection with no traffic either way for this long is closed (SSE and sockets excepted). @default 60_000 */
  idleTimeoutMs?: number;
  /** Open connections at most; more are refused at once. @default 1_024 */
  maxConnections?: number;
  /**
   * Webhook targets a job may name beyond public addresses; give the webhook notifier the same.
   * @default {} (loopback and private targets refused)
   */
  webhookTargets?: OutboundPolicy;
  /** Keep error analytics from the event stream for /api/stats. @default true */
  errorAnalytics?: boolean;
}

export type { ServiceLimits } from './context.js';

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

/**
 * The HTTP server with its bounds: header and request timeouts checked often enough to matter
 * (Node checks every 30 s by default), an idle timeout, and a connection cap.
 */
function boundedServer(limits: ServiceLimits) {
  return (handler: Parameters<typeof createServer>[1]): Server => {
    const server = createServer(
      {
        headersTimeout: limits.headersTimeoutMs,
        requestTimeout: limits.requestTimeoutMs,
        connectionsCheckingInterval: Math.min(1_000, Math.max(50, Math.floor(limits.headersTimeoutMs / 4))),
        keepAliveTimeout: 5_000,
      },
      handler,
    );
    server.setTimeout(limits.idleTimeoutMs);
    server.maxConnections = limits.maxConnections;
    return server;
  };
}

/**
 * Fastify's answer to requests it cannot parse (oversized headers, timeouts, malformed request
 * lines), in the service's one error shape.
 */
function clientErrorHandler(err: Error & { code?: string }, socket: Socket): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  const [status, code, message] =
    err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
      ? [408, 'REQUEST_TIMEOUT', 'the request took too long to arrive']
      : err.code === 'HPE_HEADER_OVERFLOW'
        ? [431, 'HEADERS_TOO_LARGE', 'the request headers are too large']
        : [400, 'VALIDATION_ERROR', 'the request is not valid HTTP'];
  const body = JSON.stringify(new ApiError(status, code, message).toBody());
  if (socket.writable) {
    socket.write(`HTTP/1.1 ${status} ${status === 408 ? 'Request Timeout' : status === 431 ? 'Request Header Fields Too Large' : 'Bad Request'}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\nX-Content-Type-Options: nosniff\r\n\r\n${body}`);
  }
  socket.destroy();
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
    webhookTargets: { ...opts.webhookTargets },
    limits: {
      maxBodyDepth: positive('maxBodyDepth', opts.maxBodyDepth, DEFAULT_MAX_BODY_DEPTH),
      maxWorkflowNodes: positive('maxWorkflowNodes', opts.maxWorkflowNodes, DEFAULT_MAX_WORKFLOW_NODES),
      headersTimeoutMs: positive('headersTimeoutMs', opts.headersTimeoutMs, 10_000),
      requestTimeoutMs: positive('requestTimeoutMs', opts.requestTimeoutMs, 60_000),
      idleTimeoutMs: positive('idleTimeoutMs', opts.idleTimeoutMs, 60_000),
      maxConnections: positive('maxConnections', opts.maxConnections, 1_024),
    },
    errorAnalytics: opts.errorAnalytics ?? true,
  };
  if (ctx.limits.requestTimeoutMs < ctx.limits.headersTimeoutMs) throw new Error('`requestTimeoutMs` must not be shorter than `headersTimeoutMs`');

  const app = Fastify({
    ...loggerOption(opts.logger),
    bodyLimit,
    serverFactory: boundedServer(ctx.limits),
    clientErrorHandler,
    // Errors the router raises before any handler (bad percent-encoding), in the one shape too.
    frameworkErrors: (err, req, reply) => {
      const e = toApiError(err);
      void (reply as FastifyReply).code(e.status).type('application/json; charset=utf-8').send(errorBody(e, req.id));
    },
    // Ids and file names up to their schema limits reach validation (Fastify's default cuts at 100).
    routerOptions: { maxParamLength: 2_048 },
    // Our own ids: a client's X-Request-Id is not trusted into the logs.
    genReqId: () => randomBytes(6).toString('hex'),
    // Long-lived SSE streams and sockets are ended by our preClose hook; idle keep-alives by Fastify.
    forceCloseConnections: 'idle',
    return503OnClosing: true,
  });
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  installErrorHandlers(app);
  app.addHook('onRequest', async (req, reply) => {
    void reply.header('x-request-id', req.id);
  });
  installBrowserSafety(app, {
    ...(opts.allowedHosts !== undefined ? { allowedHosts: opts.allowedHosts } : {}),
    ...(opts.allowedOrigins !== undefined ? { allowedOrigins: opts.allowedOrigins } : {}),
  });

  // JSON only from application/json: a web page can send text/plain or a form without asking, so
  // those never change state here (the ComfyUI-compatible endpoint adds text/plain for its clients,
  // behind the Origin check). An empty body is "no body", so POSTs without payload work with any client.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_req, body, done) => {
    try {
      done(null, parseJsonBody(String(body), ctx.limits.maxBodyDepth));
    } catch (err) {
      done(err as Error, undefined);
    }
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
      registerMemoryModelRoute(z, ctx);
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
