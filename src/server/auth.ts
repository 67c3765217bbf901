/**
 * Optional bearer-token auth. The API, the ComfyUI-compatible endpoint and `/metrics` need the key
 * when one is configured; the dashboard's static files and the API docs stay public so a browser
 * can load the page and then ask for the key.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { isIP } from 'node:net';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ApiError } from './api-error.js';

/** True for hosts that only this machine can reach. */
export function isLoopbackHost(host: string): boolean {
  const h = host.trim().toLowerCase().replace(/^\[|\]$/g, '');
  if (h === 'localhost' || h === '::1' || h === '0:0:0:0:0:0:0:1') return true;
  const v4 = h.startsWith('::ffff:') ? h.slice(7) : h;
  return isIP(v4) === 4 && v4.startsWith('127.');
}

const PUBLIC_API_PATHS = new Set(['/api/openapi.json']);

/** Whether a request path needs the API key. */
export function isProtectedPath(path: string): boolean {
  if (PUBLIC_API_PATHS.has(path)) return false;
  return path.startsWith('/api/') || path === '/api' || path.startsWith('/comfy/') || path === '/comfy' || path === '/metrics';
}

function digest(s: string): Buffer {
  return createHash('sha256').update(s, 'utf8').digest();
}

/** The token a request carries: `Authorization: Bearer`, or `?token=` on the ComfyUI endpoint (WebSocket clients cannot set headers). */
function presentedToken(req: FastifyRequest, path: string): string | null {
  const header = req.headers.authorization;
  if (typeof header === 'string') {
    const m = /^Bearer\s+(.+)$/i.exec(header.trim());
    if (m?.[1]) return m[1].trim();
  }
  if (path.startsWith('/comfy')) {
    const token = (req.query as Record<string, unknown> | undefined)?.token;
    if (typeof token === 'string' && token !== '') return token;
  }
  return null;
}

/** Shortest API key accepted: 16 characters, so a key cannot be guessed online. */
export const MIN_API_KEY_LENGTH = 16;

/** Adds the onRequest hook that answers 401 UNAUTHORIZED without the right key. */
export function installAuth(app: FastifyInstance, apiKey: string): void {
  if (apiKey.length < MIN_API_KEY_LENGTH) throw new Error(`apiKey must have at least ${MIN_API_KEY_LENGTH} characters`);
  const expected = digest(apiKey);
  app.addHook('onRequest', async (req, reply) => {
    // The matched route pattern, not the raw URL, so percent-encoded paths cannot dodge the check.
    const path = req.routeOptions.url;
    if (path === undefined || !isProtectedPath(path)) return;
    const token = presentedToken(req, path);
    // Compare digests so the comparison time does not depend on the key.
    if (token !== null && timingSafeEqual(digest(token), expected)) return;
    void reply.header('www-authenticate', 'Bearer realm="comfyguard"');
    throw new ApiError(401, 'UNAUTHORIZED', token === null ? 'this endpoint needs an API key: send "Authorization: Bearer <key>"' : 'the API key is wrong');
  });
}
