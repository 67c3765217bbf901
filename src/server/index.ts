/**
 * `startService`: builds the app and listens. Refuses to listen beyond loopback without an API key,
 * because the API can cancel every job and reach every ComfyUI server.
 */
import type { FastifyInstance } from 'fastify';
import type { Guard } from '../jobs/guard-api.js';
import type { Clock } from '../util/clock.js';
import { buildApp, type AppOptions } from './app.js';
import { isLoopbackHost } from './auth.js';
import { listenComfyRoot, type RootMount } from './comfy/root-mount.js';
import type { MetaStore } from './comfy/registry.js';
import type { UploadStore } from './comfy/uploads.js';
import type { MetricsSource } from './routes/metrics.js';

export { buildApp, DEFAULT_BODY_LIMIT, type AppOptions } from './app.js';
export { isLoopbackHost } from './auth.js';
export { UploadStore } from './comfy/uploads.js';
export { memoryMetaStore, type MetaStore } from './comfy/registry.js';
export type { MetricsSource } from './routes/metrics.js';

export interface ServiceOptions {
  guard: Guard;
  /** @default '127.0.0.1' */
  host?: string;
  /** 0 picks a free port. @default 0 */
  port?: number;
  /** Required when `host` is not a loopback address. */
  apiKey?: string;
  metrics?: MetricsSource;
  logger?: boolean | object;
  bodyLimit?: number;
  clock?: Clock;
  dashboard?: boolean;
  /** Where ComfyUI clients' uploads are kept (see AppOptions). */
  comfyUploads?: UploadStore;
  /** Where client prompt ids and numbers are kept across restarts (see AppOptions). */
  comfyMeta?: MetaStore;
  /** Also serve the ComfyUI-compatible endpoint at the root of this port (0 picks a free one). */
  comfyPort?: number;
}

export interface RunningService {
  /** Base URL, e.g. `http://127.0.0.1:8188` (loopback shown for wildcard hosts). */
  url: string;
  /** Base URL of the root ComfyUI mount, when `comfyPort` was given. */
  comfyUrl?: string;
  app: FastifyInstance;
  /** Ends SSE streams and sockets, stops listening. Idempotent; does not close the guard. */
  close(): Promise<void>;
}

/** Thrown when the service is asked to listen on a public address without an API key. */
export class ServiceConfigError extends Error {
  readonly code = 'SERVICE_CONFIG_ERROR';
  constructor(message: string) {
    super(message);
    this.name = 'ServiceConfigError';
  }
}

/** Throws unless `host` is loopback or an API key is set (callers check before creating anything). */
export function assertExposureAllowed(host: string, apiKey: string | undefined): void {
  if (isLoopbackHost(host) || apiKey) return;
  throw new ServiceConfigError(
    `refusing to listen on ${host} without an API key: anyone who can reach it could submit and cancel jobs. ` +
      'Pass an API key (--api-key or COMFYGUARD_API_KEY), or listen on 127.0.0.1.',
  );
}

/** Starts the HTTP service over a guard and resolves once it listens. */
export async function startService(opts: ServiceOptions): Promise<RunningService> {
  const host = opts.host ?? '127.0.0.1';
  const port = opts.port ?? 0;
  if (!Number.isInteger(port) || port < 0 || port > 65_535) throw new ServiceConfigError(`port must be an integer from 0 to 65535, got ${JSON.stringify(opts.port)}`);
  assertExposureAllowed(host, opts.apiKey);
  const appOpts: AppOptions = {
    guard: opts.guard,
    ...(opts.apiKey !== undefined ? { apiKey: opts.apiKey } : {}),
    ...(opts.metrics !== undefined ? { metrics: opts.metrics } : {}),
    ...(opts.logger !== undefined ? { logger: opts.logger } : {}),
    ...(opts.bodyLimit !== undefined ? { bodyLimit: opts.bodyLimit } : {}),
    ...(opts.clock !== undefined ? { clock: opts.clock } : {}),
    ...(opts.dashboard !== undefined ? { dashboard: opts.dashboard } : {}),
    ...(opts.comfyUploads !== undefined ? { comfyUploads: opts.comfyUploads } : {}),
    ...(opts.comfyMeta !== undefined ? { comfyMeta: opts.comfyMeta } : {}),
  };
  if (opts.comfyPort !== undefined && (!Number.isInteger(opts.comfyPort) || opts.comfyPort < 0 || opts.comfyPort > 65_535)) {
    throw new ServiceConfigError(`comfyPort must be an integer from 0 to 65535, got ${JSON.stringify(opts.comfyPort)}`);
  }
  const app = buildApp(appOpts);
  try {
    await app.listen({ host, port });
  } catch (err) {
    await app.close().catch(() => undefined);
    throw err;
  }
  let root: RootMount | null = null;
  if (opts.comfyPort !== undefined) {
    try {
      root = await listenComfyRoot(app, { host, port: opts.comfyPort });
    } catch (err) {
      await app.close().catch(() => undefined);
      throw err;
    }
  }
  const address = app.server.address();
  const actualPort = typeof address === 'object' && address ? address.port : port;
  const shownHost = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host;
  let closing: Promise<void> | null = null;
  return {
    url: `http://${shownHost}:${actualPort}`,
    ...(root ? { comfyUrl: root.url } : {}),
    app,
    close: () =>
      (closing ??= (async () => {
        // The app first: it ends the sockets that came in through the root mount too.
        await app.close();
        await root?.close();
      })()),
  };
}
