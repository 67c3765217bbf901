/**
 * Read-only pass-through of ComfyUI's informational routes (`/object_info`, `/models`, ...) to a
 * healthy server of the pool, for clients that inspect a server before they submit.
 */
import type { Guard, ServerHealthView } from '../../jobs/guard-api.js';
import { ApiError } from '../api-error.js';

export interface UpstreamAnswer {
  status: number;
  contentType: string;
  body: Buffer;
  server: string;
}

/** Servers in the order to ask them: healthy with a closed breaker first. */
export function upstreamOrder(servers: ServerHealthView[]): ServerHealthView[] {
  const rank = (s: ServerHealthView) => (s.healthy ? 0 : 2) + (s.breaker === 'closed' ? 0 : 1);
  return [...servers].sort((a, b) => rank(a) - rank(b));
}

/**
 * GETs `path` from the first server that answers (healthy ones first). A 4xx is the server's
 * answer and is passed on; 5xx and network failures move on to the next server.
 */
export async function getFromUpstream(guard: Guard, path: string, opts: { timeoutMs: number; signal?: AbortSignal }): Promise<UpstreamAnswer> {
  const servers = upstreamOrder(await guard.servers());
  let lastError: unknown = null;
  for (const s of servers) {
    const signal = opts.signal ? AbortSignal.any([opts.signal, AbortSignal.timeout(opts.timeoutMs)]) : AbortSignal.timeout(opts.timeoutMs);
    try {
      const res = await fetch(`${s.url}${path}`, { signal, headers: { accept: 'application/json' } });
      const body = Buffer.from(await res.arrayBuffer());
      if (res.status >= 500) {
        lastError = new Error(`${s.name} answered ${res.status}`);
        continue;
      }
      return { status: res.status, contentType: res.headers.get('content-type') ?? 'application/json', body, server: s.name };
    } catch (err) {
      lastError = err;
    }
  }
  throw new ApiError(502, 'UPSTREAM_ERROR', servers.length === 0 ? 'no ComfyUI server is configured' : 'no ComfyUI server answered', { cause: lastError });
}
