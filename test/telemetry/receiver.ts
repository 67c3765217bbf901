/**
 * A real webhook receiver on a loopback port: records every request and answers from a script of
 * statuses (the last one repeats).
 */
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ReceivedRequest {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
}

export interface Receiver {
  url: string;
  requests: ReceivedRequest[];
  /** Statuses to answer with, in order; the last repeats. */
  statuses: number[];
  /** Extra headers per answer index. */
  headers: Array<Record<string, string>>;
  /** When set, requests are held open and never answered (to test timeouts). */
  hang: boolean;
  close(): Promise<void>;
}

/** Starts a receiver on 127.0.0.1:0. */
export async function startReceiver(statuses: number[] = [200]): Promise<Receiver> {
  const requests: ReceivedRequest[] = [];
  const state = { statuses, headers: [] as Array<Record<string, string>>, hang: false };
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const i = requests.length;
      requests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      if (state.hang) return;
      const status = state.statuses[Math.min(i, state.statuses.length - 1)] ?? 200;
      res.writeHead(status, { 'content-type': 'text/plain', ...(state.headers[i] ?? {}) });
      res.end(status < 300 ? 'ok' : 'nope');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/hook`,
    requests,
    get statuses() {
      return state.statuses;
    },
    set statuses(v) {
      state.statuses = v;
    },
    get headers() {
      return state.headers;
    },
    set headers(v) {
      state.headers = v;
    },
    get hang() {
      return state.hang;
    },
    set hang(v) {
      state.hang = v;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
