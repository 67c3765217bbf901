/**
 * The ComfyUI-compatible endpoint at the root of its own listener (`--comfy-port`), for clients that
 * hard-code `/ws`, `/prompt` or `/api/...` (as ComfyUI serves every route at both). Requests are
 * handed to the service's own app with `/comfy` put in front of the path, so the same routes, hooks
 * (API key, origin checks), sockets and job registry serve both mounts.
 */
import type { FastifyInstance } from 'fastify';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { Duplex } from 'node:stream';

/** `/prompt` and `/api/prompt` become `/comfy/prompt`; the query string stays. */
export function rootToComfyPath(url: string): string {
  const q = url.indexOf('?');
  const path = q >= 0 ? url.slice(0, q) : url;
  const query = q >= 0 ? url.slice(q) : '';
  const rest = path === '/api' ? '/' : path.startsWith('/api/') ? path.slice(4) : path;
  return `/comfy${rest === '/' ? '' : rest}${query}`;
}

export interface RootMount {
  url: string;
  close(): Promise<void>;
}

/** Listens on `host:port` and serves the app's `/comfy` routes at the root. Call after `app.ready()`. */
export async function listenComfyRoot(app: FastifyInstance, opts: { host: string; port: number }): Promise<RootMount> {
  const rewrite = (req: IncomingMessage) => {
    req.url = rootToComfyPath(req.url ?? '/');
  };
  // The same bounds as the app's own listener: header and request timeouts, idle timeout, connection cap.
  const server: Server = createServer({ headersTimeout: app.server.headersTimeout, requestTimeout: app.server.requestTimeout, connectionsCheckingInterval: 1_000 }, (req, res) => {
    rewrite(req);
    app.routing(req, res);
  });
  server.setTimeout(app.server.timeout);
  server.maxConnections = app.server.maxConnections;
  // Timeouts and malformed requests are answered by the app's handler, in the one error shape.
  server.on('clientError', (err, socket) => app.server.emit('clientError', err, socket));
  // WebSocket upgrades go to the app's own server, where @fastify/websocket takes them.
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    rewrite(req);
    app.server.emit('upgrade', req, socket, head);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : opts.port;
  const shownHost = opts.host === '0.0.0.0' || opts.host === '::' ? '127.0.0.1' : opts.host.includes(':') ? `[${opts.host}]` : opts.host;
  let closing: Promise<void> | null = null;
  return {
    url: `http://${shownHost}:${port}`,
    close: () =>
      (closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      })),
  };
}
