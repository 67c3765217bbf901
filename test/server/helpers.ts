/**
 * Helpers for the service tests: a listening app on a loopback port 0, a bounded poll, an SSE
 * reader and a tiny workflow.
 */
import type { FastifyInstance } from 'fastify';
import { buildApp, type AppOptions } from '../../src/server/app.js';
import type { ApiWorkflow } from '../../src/comfy/types.js';

export interface TestServer {
  url: string;
  app: FastifyInstance;
  close(): Promise<void>;
}

/** Builds the app and listens on 127.0.0.1:0. */
export async function listen(opts: AppOptions): Promise<TestServer> {
  const app = buildApp(opts);
  await app.listen({ host: '127.0.0.1', port: 0 });
  const addr = app.server.address();
  if (!addr || typeof addr !== 'object') throw new Error('no address');
  return { url: `http://127.0.0.1:${addr.port}`, app, close: () => app.close() };
}

/** Polls `fn` until it returns a truthy value; fails after `timeoutMs` (a bound, not a timing assertion). */
export async function waitFor<T>(fn: () => T | Promise<T>, what: string, timeoutMs = 30_000, intervalMs = 20): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v as NonNullable<T>;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

export interface SseEvent {
  id?: string;
  event: string;
  data: unknown;
}

/** Reads an SSE response to its end (or until `until` says stop); returns the events and the comment lines. */
export async function readSse(res: Response, until?: (e: SseEvent) => boolean): Promise<{ events: SseEvent[]; comments: string[]; ended: boolean }> {
  if (!res.body) throw new Error('no body');
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  const events: SseEvent[] = [];
  const comments: string[] = [];
  let buf = '';
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return { events, comments, ended: true };
    buf += decoder.decode(value, { stream: true });
    let idx: number;
    while ((idx = buf.indexOf('\n\n')) >= 0) {
      const block = buf.slice(0, idx);
      buf = buf.slice(idx + 2);
      const e: SseEvent = { event: 'message', data: undefined };
      let isEvent = false;
      for (const line of block.split('\n')) {
        if (line.startsWith(':')) comments.push(line.slice(1).trim());
        else if (line.startsWith('event: ')) {
          e.event = line.slice(7);
          isEvent = true;
        } else if (line.startsWith('data: ')) {
          e.data = JSON.parse(line.slice(6));
          isEvent = true;
        }
        else if (line.startsWith('id: ')) e.id = line.slice(4);
      }
      if (isEvent) {
        events.push(e);
        if (until?.(e)) {
          await reader.cancel();
          return { events, comments, ended: false };
        }
      }
    }
  }
}

/** EmptyImage -> SaveImage: the smallest workflow that makes an output. */
export function tinyWorkflow(prefix = 'cg-test'): ApiWorkflow {
  return {
    '1': { class_type: 'EmptyImage', inputs: { width: 64, height: 64, batch_size: 1, color: 0 } },
    '2': { class_type: 'SaveImage', inputs: { images: ['1', 0], filename_prefix: prefix } },
  };
}

/** JSON POST helper. */
export function postJson(url: string, body: unknown, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: typeof body === 'string' ? body : JSON.stringify(body) });
}
