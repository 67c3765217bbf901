/**
 * What keeps a web page from using the service through a visitor's browser: an allowed-hosts
 * check against DNS rebinding, an Origin check on every state-changing request and WebSocket
 * upgrade against cross-site request forgery, and the security headers of every answer (a strict
 * CSP on the dashboard, none of our pages in a frame, no MIME sniffing, no referrer).
 */
import { isIP } from 'node:net';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ApiError } from './api-error.js';

export interface BrowserSafetyOptions {
  /**
   * Host names the service answers to, besides IP addresses and loopback names (`localhost`,
   * `*.localhost`), which are always accepted because they cannot be rebound. A leading dot allows
   * subdomains (`.example.com`); `'*'` turns the check off.
   * @default [] (IP addresses and loopback names only)
   */
  allowedHosts?: readonly string[];
  /**
   * Origins (`https://app.example.com`) whose pages may POST, DELETE and open WebSockets, besides
   * the service's own origin. `'*'` turns the check off.
   * @default []
   */
  allowedOrigins?: readonly string[];
}

const STATE_CHANGING = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/** The host name of a Host header, lower case, without port or IPv6 brackets; null when malformed. */
export function hostName(header: string | undefined): string | null {
  if (!header) return null;
  const h = header.trim().toLowerCase();
  if (h.startsWith('[')) {
    const end = h.indexOf(']');
    if (end < 0) return null;
    const rest = h.slice(end + 1);
    if (rest !== '' && !/^:\d{1,5}$/.test(rest)) return null;
    return h.slice(1, end);
  }
  const m = /^([a-z0-9.-]+)(?::\d{1,5})?$/.exec(h);
  return m ? m[1]!.replace(/\.$/, '') : null;
}

/** True for a host name the allowed-hosts check accepts. */
export function isAllowedHost(name: string, allowed: readonly string[]): boolean {
  if (allowed.includes('*')) return true;
  if (isIP(name) !== 0) return true;
  if (name === 'localhost' || name.endsWith('.localhost')) return true;
  for (const a of allowed) {
    const rule = a.trim().toLowerCase();
    if (rule === name) return true;
    if (rule.startsWith('.') && (name.endsWith(rule) || name === rule.slice(1))) return true;
  }
  return false;
}

/** `scheme://host[:port]` of an Origin header, normalised; null for `null` or garbage. */
function normaliseOrigin(origin: string): string | null {
  try {
    const u = new URL(origin);
    if (u.protocol !== 'http:' && u.protocol !== 'https:') return null;
    return u.origin.toLowerCase();
  } catch {
    return null;
  }
}

/** Whether a request's Origin may change state: its own origin, or a configured one. */
export function isAllowedOrigin(origin: string, host: string | undefined, allowed: readonly string[]): boolean {
  if (allowed.includes('*')) return true;
  const o = normaliseOrigin(origin);
  if (o === null) return false;
  if (host !== undefined) {
    const own = new URL(o).host.toLowerCase();
    if (own === host.trim().toLowerCase()) return true;
  }
  return allowed.some((a) => normaliseOrigin(a) === o);
}

/** Content-Security-Policy of the dashboard: our own scripts and styles only, no frames, no plugins. */
export const DASHBOARD_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data: blob:",
  "connect-src 'self'",
  "font-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

/** Swagger UI styles elements inline; its scripts are still files of its own. */
const DOCS_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

/** Everything else (JSON, SSE, metrics) is data: nothing in it may run or be framed. */
const DATA_CSP = "default-src 'none'; frame-ancestors 'none'";

function cspFor(url: string): string {
  const path = url.split('?')[0] ?? '/';
  if (path === '/docs' || path.startsWith('/docs/')) return DOCS_CSP;
  if (path.startsWith('/api/') || path.startsWith('/comfy/') || path === '/metrics') return DATA_CSP;
  return DASHBOARD_CSP;
}

/** Adds the host and origin checks (first of all hooks) and the security headers of every answer. */
export function installBrowserSafety(app: FastifyInstance, opts: BrowserSafetyOptions = {}): void {
  const allowedHosts = [...(opts.allowedHosts ?? [])];
  const allowedOrigins = [...(opts.allowedOrigins ?? [])];

  app.addHook('onRequest', async (req: FastifyRequest) => {
    const name = hostName(req.headers.host);
    if (name === null || !isAllowedHost(name, allowedHosts)) {
      // A rebinding page reaches us under its own name: answer nothing it could read.
      throw new ApiError(403, 'HOST_NOT_ALLOWED', 'this service does not answer to that host name; start it with --allowed-hosts <name> to allow it');
    }
    const upgrade = typeof req.headers.upgrade === 'string';
    if (!STATE_CHANGING.has(req.method) && !upgrade) return;
    const origin = req.headers.origin;
    if (typeof origin === 'string') {
      if (!isAllowedOrigin(origin, req.headers.host, allowedOrigins)) {
        throw new ApiError(403, 'ORIGIN_NOT_ALLOWED', 'requests from other web pages are not allowed; start the service with --allowed-origins <origin> to allow one');
      }
      return;
    }
    // No Origin: a non-browser client, or an old browser; Fetch Metadata still tells a cross-site request.
    const site = req.headers['sec-fetch-site'];
    if (site === 'cross-site' || site === 'same-site') {
      throw new ApiError(403, 'ORIGIN_NOT_ALLOWED', 'requests from other web pages are not allowed');
    }
  });

  app.addHook('onSend', async (req: FastifyRequest, reply: FastifyReply, payload) => {
    if (!reply.hasHeader('content-security-policy')) void reply.header('content-security-policy', cspFor(req.url));
    void reply.header('x-content-type-options', 'nosniff');
    void reply.header('referrer-policy', 'no-referrer');
    void reply.header('x-frame-options', 'DENY');
    void reply.header('cross-origin-opener-policy', 'same-origin');
    return payload;
  });
}
