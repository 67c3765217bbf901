/**
 * HTTP plumbing shaped like aiohttp's answers, so a client sees the same status codes, headers and
 * bodies as from ComfyUI: JSON via Python's `json.dumps`, empty 200s as `application/octet-stream`,
 * the plain-text 500 page, `404: Not Found`, and the 413 text for oversized bodies.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { pyJsonDumps } from '../comfy/pyfmt.js';

/** A response to write. `close` ends the connection afterwards (aiohttp does after a 500). */
export interface SimResponse {
  status: number;
  headers: Record<string, string>;
  body: Buffer | string;
  close?: boolean;
}

/** A request after routing normalisation. */
export interface SimRequest {
  method: string;
  /** Path without the `/api` prefix and without the query. */
  path: string;
  rawPath: string;
  query: URLSearchParams;
  headers: IncomingMessage['headers'];
  body: Buffer;
}

export const SERVER_HEADER = 'Python/3.12 aiohttp/3.12.15';
const JSON_TYPE = 'application/json; charset=utf-8';

/** `web.json_response(value, status)`. */
export function jsonResponse(value: unknown, status = 200): SimResponse {
  return { status, headers: { 'Content-Type': JSON_TYPE }, body: pyJsonDumps(value) };
}

/** A plain `JSON.stringify` body, for the simulator's own admin routes. */
export function adminJson(value: unknown, status = 200): SimResponse {
  return { status, headers: { 'Content-Type': 'application/json; charset=utf-8' }, body: JSON.stringify(value) };
}

/** `web.Response(status=...)`: no body, aiohttp's default content type. */
export function emptyResponse(status = 200): SimResponse {
  return { status, headers: { 'Content-Type': 'application/octet-stream' }, body: '' };
}

/** What aiohttp answers when a handler raises. */
export function internalError(): SimResponse {
  return {
    status: 500,
    headers: { 'Content-Type': 'text/plain; charset=utf-8' },
    body: '500 Internal Server Error\n\nServer got itself in trouble',
    close: true,
  };
}

export function textResponse(status: number, text: string): SimResponse {
  return { status, headers: { 'Content-Type': 'text/plain; charset=utf-8' }, body: text };
}

export function notFound(): SimResponse {
  return textResponse(404, '404: Not Found');
}

export function methodNotAllowed(allowed: string[]): SimResponse {
  return { ...textResponse(405, '405: Method Not Allowed'), headers: { 'Content-Type': 'text/plain; charset=utf-8', Allow: allowed.join(',') } };
}

/** Proxy error pages for the http5xx/429 faults (nginx's wording). */
export function proxyError(status: 429 | 502 | 503): SimResponse {
  const reason = status === 502 ? 'Bad Gateway' : status === 503 ? 'Service Temporarily Unavailable' : 'Too Many Requests';
  const body = `<html>\r\n<head><title>${status} ${reason}</title></head>\r\n<body>\r\n<center><h1>${status} ${reason}</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n`;
  const headers: Record<string, string> = { 'Content-Type': 'text/html', Server: 'nginx' };
  if (status !== 502) headers['Retry-After'] = '1';
  return { status, headers, body };
}

/** Writes a SimResponse (Content-Length, Server, and the aiohttp headers). */
export function writeResponse(res: ServerResponse, r: SimResponse, head = false): void {
  const body = typeof r.body === 'string' ? Buffer.from(r.body, 'utf8') : r.body;
  const headers: Record<string, string | number> = { Server: SERVER_HEADER, ...r.headers, 'Content-Length': body.length };
  if (r.close) headers.Connection = 'close';
  res.writeHead(r.status, headers);
  res.end(head ? undefined : body);
}

/** The body, or 'too_large' with its size once it exceeds `limit` bytes. */
export function readBody(req: IncomingMessage, limit: number): Promise<Buffer | { tooLarge: number }> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let over = false;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > limit) over = true;
      if (!over) chunks.push(c);
    });
    req.on('end', () => resolve(over ? { tooLarge: size } : Buffer.concat(chunks)));
    req.on('error', reject);
    // A socket destroyed mid-body (crash, reset) never emits 'end'.
    req.on('close', () => {
      if (!req.complete) reject(new Error('request closed before its body was read'));
    });
  });
}

/** Python `json.loads` of a request body; throws on anything it would reject. */
export function parseJsonBody(body: Buffer): unknown {
  const text = body.toString('utf8');
  if (text.trim() === '') throw new SyntaxError('Expecting value: line 1 column 1 (char 0)');
  return JSON.parse(text) as unknown;
}

function hostnameOf(hostPort: string): { host: string; port: string | undefined } {
  const m = /^\[([^\]]+)\](?::(\d+))?$/.exec(hostPort) ?? /^([^:]+)(?::(\d+))?$/.exec(hostPort);
  return { host: (m?.[1] ?? hostPort).toLowerCase(), port: m?.[2] };
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\./.test(host);
}

/** ComfyUI's origin-only middleware: a loopback Host with a different Origin gets a bare 403. */
export function originRejected(headers: IncomingMessage['headers']): boolean {
  const host = headers.host;
  const origin = headers.origin;
  if (!host || !origin) return false;
  let o: URL;
  try {
    o = new URL(origin);
  } catch {
    return false;
  }
  const h = hostnameOf(host);
  if (!isLoopback(h.host)) return false;
  const originHost = o.hostname.replace(/^\[|\]$/g, '').toLowerCase();
  const hostDomain = o.port === '' ? h.host : host.toLowerCase();
  const originDomain = h.port === undefined ? originHost : o.host.toLowerCase();
  return hostDomain !== originDomain;
}
