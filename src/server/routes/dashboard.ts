/**
 * The web dashboard: static files from `src/web/` (plain ES modules and CSS, no build step),
 * served at `/`.
 */
import fastifyStatic from '@fastify/static';
import type { FastifyInstance } from 'fastify';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/**
 * Where the dashboard files are: next to this module's layer folder when running from `src/`,
 * and back in `src/web` when running the compiled `dist/` (tsc does not copy non-TS files).
 */
export function findWebRoot(): string | null {
  for (const rel of ['../../web/', '../../../src/web/']) {
    const dir = fileURLToPath(new URL(rel, import.meta.url));
    if (existsSync(`${dir}index.html`)) return dir;
  }
  return null;
}

/** Serves the dashboard at `/`; returns false when its files are missing. */
export async function registerDashboard(app: FastifyInstance, root: string | null = findWebRoot()): Promise<boolean> {
  if (!root) {
    app.log.warn('dashboard files not found; the dashboard is disabled');
    return false;
  }
  await app.register(fastifyStatic, {
    root,
    prefix: '/',
    // Only the files that exist get routes, so unknown paths reach the JSON 404 handler.
    wildcard: false,
    index: ['index.html'],
    cacheControl: true,
    maxAge: 0,
  });
  return true;
}
