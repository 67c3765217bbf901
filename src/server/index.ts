/**
 * `startService`: builds the app and listens. Refuses to listen beyond loopback without an API key,
 * because the API can cancel every job and reach every ComfyUI server.
 */
import type { FastifyInstance } from 'fastify';
import { buildApp, type AppOptions } from './app.js';
import { isLoopbackHost, MIN_API_KEY_LENGTH } from './auth.js';
import { listenComfyRoot, type RootMount } from './comfy/root-mount.js';

export { buildApp, DEFAULT_BODY_LIMIT, type AppOptions } from './app.js';
export { isLoopbackHost, MIN_API_KEY_LENGTH } from './auth.js';
export type { BrowserSafetyOptions } from './browser-safety.js';
export { UploadStore } from './comfy/uploads.js';
export { memoryMetaStore, type MetaStore } from './comfy/registry.js';
export type { MetricsSource } from './routes/metrics.js';

export interface ServiceOptions extends AppOptions {
  /** @default '127.0.0.1' */
  host?: string;
  /** 0 picks a free port. @default 0 */
  port?: number;
  /** Required when `host` is not a loopback address; at least 16 characters. */
  apiKey?: string;
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

/**
 * Throws unless `host` is loopback or an API key is set, and when a key is shorter than
 * MIN_API_KEY_LENGTH (callers check before creating anything).
 */
export function assertExposureAllowed(host: string, apiKey: string | undefined): void {
  if (apiKey !== undefined && apiKey.length < MIN_API_KEY_LENGTH) {
    throw new ServiceConfigError(`the API key must have at least ${MIN_API_KEY_LENGTH} characters; a short key can be guessed (try: openssl rand -hex 24)`);
  }
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
  if (opts.comfyPort !== undefined && (!Number.isInteger(opts.comfyPort) || opts.comfyPort < 0 || opts.comfyPort > 65_535)) {
    throw new ServiceConfigError(`comfyPort must be an integer from 0 to 65535, got ${JSON.stringify(opts.comfyPort)}`);
  }
  const { host: _host, port: _port, comfyPort: _comfyPort, ...appOpts } = opts;
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
