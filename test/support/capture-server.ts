/**
 * A fake ComfyUI that replays recorded traffic (test/comfy/captures, a copy of
 * shared/comfyui-captures). HTTP: each request is answered with a recorded `http` event of the same
 * method, path and query, preferring one whose recorded request body equals the one sent; status,
 * content type and body (JSON, text, or binary head + length) are as recorded. WebSocket: every
 * connection to `/ws` gets the recorded `ws` text frames and synthesised `ws_binary` frames (same
 * length, type, format and metadata) in order, waiting for the client's frame where the recording
 * has a `ws_send`. Real loopback on port 0. Reusable by any test (the simulator's included).
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { isDeepStrictEqual } from 'node:util';
import { WebSocketServer, type WebSocket } from 'ws';
import type { Capture, CaptureEvent, HttpEvent, OtherEvent, WsBinaryEvent, WsControlEvent, WsEvent, WsSendEvent } from './captures.js';

// ---------------------------------------------------------------------------
// Capture files
// ---------------------------------------------------------------------------

export type { Capture, CaptureEvent } from './captures.js';
export { capturesDir, listCaptures, loadCapture } from './captures.js';

/** The capture event types under the names the protocol tests use (defined in `captures.ts`). */
export type HttpCaptureEvent = HttpEvent;
export type WsCaptureEvent = WsEvent;
export type WsBinaryCaptureEvent = WsBinaryEvent;
export type WsSendCaptureEvent = WsSendEvent;
export type OtherCaptureEvent = WsControlEvent | OtherEvent;

/** The recorded HTTP exchanges that got a response, optionally filtered. */
export function httpExchanges(capture: Pick<Capture, 'events'>, filter: Partial<Pick<HttpCaptureEvent, 'method' | 'label'>> & { path?: string | RegExp; status?: number } = {}): HttpCaptureEvent[] {
  return capture.events.filter((e): e is HttpCaptureEvent => {
    if (e.kind !== 'http' || e.status === undefined) return false;
    if (filter.method && e.method !== filter.method) return false;
    if (filter.label && e.label !== filter.label) return false;
    if (filter.status !== undefined && e.status !== filter.status) return false;
    if (typeof filter.path === 'string' && e.path.split('?')[0] !== filter.path) return false;
    if (filter.path instanceof RegExp && !filter.path.test(e.path)) return false;
    return true;
  });
}

/** The server -> client frames of one recorded socket (all sockets when `socket` is omitted). */
export function wsScript(capture: Pick<Capture, 'events'>, socket?: string): Array<WsCaptureEvent | WsBinaryCaptureEvent | WsSendCaptureEvent> {
  return capture.events.filter(
    (e): e is WsCaptureEvent | WsBinaryCaptureEvent | WsSendCaptureEvent =>
      (e.kind === 'ws' || e.kind === 'ws_binary' || e.kind === 'ws_send') && (socket === undefined || e.socket === socket),
  );
}

/**
 * Rebuilds a binary frame from its recorded description: the recorded head, metadata JSON
 * (Python `json.dumps` spacing, padded to the recorded length), then the image head and zero
 * padding up to the recorded frame length.
 */
export function synthesiseBinaryFrame(e: WsBinaryCaptureEvent): Buffer {
  const u32 = (n: number) => {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(n, 0);
    return b;
  };
  const imageHead = Buffer.from(e.image_head_hex ?? '', 'hex');
  let head: Buffer;
  if (e.event_type === 1) {
    head = Buffer.concat([u32(1), u32(e.image_format ?? 0)]);
  } else if (e.event_type === 4 && e.metadata) {
    let json = pythonJson(e.metadata);
    const want = e.metadata_length ?? Buffer.byteLength(json);
    if (Buffer.byteLength(json) < want) json = json.padEnd(want + json.length - Buffer.byteLength(json), ' ');
    const jsonBytes = Buffer.from(json, 'utf8');
    head = Buffer.concat([u32(4), u32(jsonBytes.byteLength), jsonBytes]);
  } else {
    head = Buffer.from(e.head_hex, 'hex');
  }
  const frame = Buffer.alloc(Math.max(e.length, head.byteLength + imageHead.byteLength));
  head.copy(frame, 0);
  imageHead.copy(frame, head.byteLength);
  return frame;
}

/** `json.dumps` default separators (", " and ": "), which is what the recorded lengths count. */
function pythonJson(value: Record<string, unknown>): string {
  return `{${Object.entries(value)
    .map(([k, v]) => `${JSON.stringify(k)}: ${JSON.stringify(v)}`)
    .join(', ')}}`;
}

// ---------------------------------------------------------------------------
// The server
// ---------------------------------------------------------------------------

/** A request the fake received. */
export interface ReceivedRequest {
  method: string;
  path: string;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
  /** The body parsed as JSON, when it was JSON. */
  json: unknown;
  /** The recorded exchange it was answered with; undefined for a 404. */
  answeredWith: HttpCaptureEvent | undefined;
}

/** A WebSocket connection the fake accepted. */
export interface ReceivedConnection {
  clientId: string | null;
  headers: Record<string, string | string[] | undefined>;
  /** Text frames the client sent. */
  received: string[];
  socket: WebSocket;
}

export interface CaptureServerOptions {
  /** Frames sent on every WebSocket connection. @default the capture's frames of `socket` (or all) */
  ws?: Array<WsCaptureEvent | WsBinaryCaptureEvent | WsSendCaptureEvent>;
  /** Which recorded socket to replay when the capture has several. */
  socket?: string;
  /** Extra or overriding exchanges (synthetic routes the captures lack), matched before the recorded ones. */
  extraHttp?: HttpCaptureEvent[];
  /** Answer client pings (as aiohttp does). `false` plays a peer that went silent. @default true */
  autoPong?: boolean;
}

export interface CaptureServer {
  /** `http://127.0.0.1:<port>` */
  readonly url: string;
  readonly port: number;
  readonly requests: ReceivedRequest[];
  readonly connections: ReceivedConnection[];
  /** WebSocket upgrade requests received, refused ones included. */
  readonly upgrades: number;
  /** Sends a raw frame to every open WebSocket (malformed JSON, custom types...). */
  broadcast(data: string | Buffer): void;
  /** Drops every open WebSocket: with a close frame (`code`, default 1001) or by destroying the TCP socket (1006). */
  dropWebSockets(opts: { closeFrame: boolean; code?: number }): void;
  /** Answer WebSocket upgrades with this HTTP status instead (null restores normal upgrades). */
  refuseUpgrades(status: number | null): void;
  /** Resolves once `n` WebSocket connections have been accepted in total. */
  waitForConnections(n: number): Promise<void>;
  close(): Promise<void>;
}

/**
 * Starts a fake ComfyUI replaying `capture` (or a bare list of events) on 127.0.0.1, port 0.
 *
 * @example
 * const server = await startCaptureServer(loadCapture('ok_simple'));
 * const client = new ComfyClient({ baseUrl: server.url });
 * // ...
 * await client.close(); await server.close();
 */
export async function startCaptureServer(source: Capture | CaptureEvent[], options: CaptureServerOptions = {}): Promise<CaptureServer> {
  const events = Array.isArray(source) ? source : source.events;
  const exchanges = [...(options.extraHttp ?? []), ...httpExchanges({ events })];
  const consumed = new Set<HttpCaptureEvent>();
  const script = options.ws ?? wsScript({ events }, options.socket ?? firstSocketName(events));
  const requests: ReceivedRequest[] = [];
  const connections: ReceivedConnection[] = [];
  const sockets = new Set<Socket>();
  const connectionWaiters: Array<{ n: number; resolve: () => void }> = [];
  let upgradeStatus: number | null = null;

  const answer = (req: IncomingMessage, res: ServerResponse, body: Buffer) => {
    const url = new URL(req.url ?? '/', 'http://fake');
    let json: unknown;
    try {
      json = body.byteLength > 0 ? JSON.parse(body.toString('utf8')) : undefined;
    } catch {
      json = undefined;
    }
    const candidates = exchanges.filter((e) => e.method === req.method && samePathAndQuery(e.path, url));
    const open = candidates.filter((e) => !consumed.has(e));
    const match =
      open.find((e) => e.request_body !== undefined && bodyMatches(e.request_body, body, json)) ??
      open[0] ??
      candidates[candidates.length - 1];
    requests.push({ method: req.method ?? '', path: `${url.pathname}${url.search}`, headers: req.headers, body, json, answeredWith: match });
    if (!match || match.status === undefined) {
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('404: Not Found');
      return;
    }
    consumed.add(match);
    const headers: Record<string, string> = {};
    if (match.response_content_type) headers['content-type'] = match.response_content_type;
    // aiohttp closes the connection after its generic 500.
    if (match.status >= 500) headers['connection'] = 'close';
    res.writeHead(match.status, headers).end(responseBody(match));
  };

  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => answer(req, res, Buffer.concat(chunks)));
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });

  const wss = new WebSocketServer({ noServer: true, autoPong: options.autoPong ?? true });
  let upgrades = 0;
  server.on('upgrade', (req, socket, head) => {
    upgrades++;
    const url = new URL(req.url ?? '/', 'http://fake');
    if (url.pathname !== '/ws' || upgradeStatus !== null) {
      const status = upgradeStatus ?? 404;
      socket.end(`HTTP/1.1 ${status} Refused\r\ncontent-length: 0\r\nconnection: close\r\n\r\n`);
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      const conn: ReceivedConnection = { clientId: url.searchParams.get('clientId'), headers: req.headers, received: [], socket: ws };
      connections.push(conn);
      for (const w of [...connectionWaiters]) {
        if (connections.length >= w.n) {
          connectionWaiters.splice(connectionWaiters.indexOf(w), 1);
          w.resolve();
        }
      }
      void replay(ws, conn, script);
    });
  });

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  let closing: Promise<void> | undefined;

  return {
    url: `http://127.0.0.1:${port}`,
    port,
    requests,
    connections,
    get upgrades() {
      return upgrades;
    },
    broadcast(data) {
      for (const c of connections) if (c.socket.readyState === c.socket.OPEN) c.socket.send(data, { binary: typeof data !== 'string' });
    },
    dropWebSockets({ closeFrame, code = 1001 }) {
      for (const c of connections) {
        if (c.socket.readyState !== c.socket.OPEN) continue;
        if (closeFrame) c.socket.close(code, 'going away');
        else c.socket.terminate();
      }
    },
    refuseUpgrades(status) {
      upgradeStatus = status;
    },
    waitForConnections(n) {
      if (connections.length >= n) return Promise.resolve();
      return new Promise((resolve) => connectionWaiters.push({ n, resolve }));
    },
    close() {
      closing ??= (async () => {
        for (const c of connections) c.socket.terminate();
        wss.close();
        for (const s of sockets) s.destroy();
        await new Promise<void>((resolve) => server.close(() => resolve()));
      })();
      return closing;
    },
  };
}

async function replay(ws: WebSocket, conn: ReceivedConnection, script: Array<WsCaptureEvent | WsBinaryCaptureEvent | WsSendCaptureEvent>): Promise<void> {
  let seen = 0;
  let wake: (() => void) | undefined;
  ws.on('message', (data, isBinary) => {
    if (!isBinary) conn.received.push(Buffer.isBuffer(data) ? data.toString('utf8') : String(data));
    wake?.();
  });
  ws.on('close', () => wake?.());
  for (const e of script) {
    if (ws.readyState !== ws.OPEN) return;
    if (e.kind === 'ws_send') {
      // The recording shows the client speaking first here (feature_flags): wait for its frame.
      while (conn.received.length <= seen && ws.readyState === ws.OPEN) await new Promise<void>((r) => (wake = r));
      seen++;
      continue;
    }
    if (e.kind === 'ws') ws.send(JSON.stringify(e.data));
    else ws.send(synthesiseBinaryFrame(e), { binary: true });
  }
}

function firstSocketName(events: CaptureEvent[]): string | undefined {
  for (const e of events) if ((e.kind === 'ws' || e.kind === 'ws_open') && typeof e.socket === 'string') return e.socket;
  return undefined;
}

function samePathAndQuery(recordedPath: string, url: URL): boolean {
  const recorded = new URL(recordedPath, 'http://fake');
  if (recorded.pathname !== url.pathname) return false;
  const a = [...recorded.searchParams.entries()].sort();
  const b = [...url.searchParams.entries()].sort();
  return isDeepStrictEqual(a, b);
}

function bodyMatches(recorded: unknown, body: Buffer, json: unknown): boolean {
  if (typeof recorded === 'object' && recorded !== null && 'raw' in recorded && Object.keys(recorded).length === 1) {
    return body.toString('utf8') === String((recorded as { raw: unknown }).raw);
  }
  return json !== undefined && isDeepStrictEqual(recorded, json);
}

function responseBody(e: HttpCaptureEvent): Buffer {
  if (e.response_body !== undefined) return Buffer.from(JSON.stringify(e.response_body), 'utf8');
  if (e.response_body_text !== undefined) return Buffer.from(e.response_body_text, 'utf8');
  const head = Buffer.from(e.response_body_head_hex ?? '', 'hex');
  const out = Buffer.alloc(Math.max(e.response_body_length ?? 0, head.byteLength));
  head.copy(out, 0);
  return out;
}
