/**
 * Replays recorded ComfyUI traffic against the simulator over raw `fetch` and `ws`, and reports
 * every difference in HTTP status, content type, JSON body shape (and the values that are
 * deterministic), and in the order and fields of WebSocket messages. Ids the server generated are
 * mapped from the recording to the simulator; timestamps, file names, tracebacks, tensor texts and
 * machine facts (RAM, versions, argv) are compared by type only.
 *
 * Timing: the simulator holds every node at its start (node gate). The replayer sends each
 * recorded request in order and, when it needs a WebSocket message that has not arrived, first
 * drains the socket (ping/pong) and only then releases the held nodes. So requests recorded
 * "while node X ran" always see node X running, whatever the machine's speed.
 */
import WebSocket from 'ws';
import type { Simulator } from '../../src/sim/index.js';
import type { Capture, CaptureEvent, HttpEvent, WsBinaryEvent, WsEvent } from '../support/captures.js';

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/** A message or binary frame as compared: binaries become `{binary, image_format|metadata}`. */
type Received = { kind: 'status'; data: Json } | { kind: 'other'; data: Json };

const WAIT_MS = 15_000;

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function typeOf(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  return typeof v;
}

/** Paths whose values vary legitimately: compared by type only. */
const TYPE_ONLY: RegExp[] = [
  /(^|\.)timestamp$/,
  /(^|\.)filename$/,
  /^system\.(ram_total|ram_free|python_version|pytorch_version|argv|required_frontend_version|required_templates_version)$/,
  /^devices\.\d+\.(name|vram_total|vram_free|torch_vram_total|torch_vram_free)$/,
  /(^|\.)traceback$/,
  /(^|\.)current_inputs\.[^.]+\.\d+$/,
];
/** Arrays whose order is a Python set's: compared as sets. */
const AS_SET: RegExp[] = [/(^|\.)current_outputs$/, /(^|\.)executed$/];

/** Structural + value diff; pushes human-readable differences into `out`. */
export function diffJson(expected: unknown, actual: unknown, path: string, out: string[]): void {
  const te = typeOf(expected);
  const ta = typeOf(actual);
  if (te !== ta) {
    out.push(`${path || '<root>'}: expected ${te} ${JSON.stringify(expected)?.slice(0, 120)}, got ${ta} ${JSON.stringify(actual)?.slice(0, 120)}`);
    return;
  }
  if (TYPE_ONLY.some((r) => r.test(path))) return;
  if (te === 'array') {
    const e = expected as unknown[];
    const a = actual as unknown[];
    if (AS_SET.some((r) => r.test(path))) {
      const se = JSON.stringify([...e].map((x) => JSON.stringify(x)).sort());
      const sa = JSON.stringify([...a].map((x) => JSON.stringify(x)).sort());
      if (se !== sa) out.push(`${path}: expected set ${JSON.stringify(e)}, got ${JSON.stringify(a)}`);
      return;
    }
    if (e.length !== a.length) {
      out.push(`${path}: expected ${e.length} items ${JSON.stringify(e).slice(0, 160)}, got ${a.length} ${JSON.stringify(a).slice(0, 160)}`);
      return;
    }
    e.forEach((x, i) => diffJson(x, a[i], path ? `${path}.${i}` : String(i), out));
    return;
  }
  if (te === 'object') {
    const e = expected as Record<string, unknown>;
    const a = actual as Record<string, unknown>;
    const ke = Object.keys(e).sort();
    const ka = Object.keys(a).sort();
    const missing = ke.filter((k) => !(k in a));
    const extra = ka.filter((k) => !(k in e));
    if (missing.length > 0 || extra.length > 0) out.push(`${path || '<root>'}: keys differ (missing ${JSON.stringify(missing)}, extra ${JSON.stringify(extra)})`);
    for (const k of ke) if (k in a) diffJson(e[k], a[k], path ? `${path}.${k}` : k, out);
    return;
  }
  if (expected !== actual) out.push(`${path || '<root>'}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`);
}

class ReplaySocket {
  readonly received: Received[] = [];
  readonly expected: Received[] = [];
  closedWith: { code: number; reason: string } | undefined;
  errorCode: string | undefined;
  private waiters: Array<() => void> = [];
  readonly opened: Promise<void>;

  constructor(
    readonly name: string,
    readonly ws: WebSocket,
  ) {
    this.opened = new Promise((resolve) => {
      ws.once('open', () => resolve());
      ws.once('error', () => resolve());
    });
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      if (isBinary) this.received.push({ kind: 'other', data: decodeBinary(data) });
      else {
        const msg = JSON.parse(data.toString()) as { type: string; data: Json };
        this.received.push({ kind: msg.type === 'status' ? 'status' : 'other', data: msg as unknown as Json });
      }
      this.wake();
    });
    ws.on('error', (e: NodeJS.ErrnoException) => {
      this.errorCode = e.code ?? e.message;
      this.wake();
    });
    ws.on('close', (code: number, reason: Buffer) => {
      this.closedWith = { code, reason: reason.toString() };
      this.wake();
    });
    ws.on('pong', () => this.wake());
  }

  wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  /** Resolves on the next socket event (or after `ms`). */
  next(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(resolve, ms);
      this.waiters.push(() => {
        clearTimeout(t);
        resolve();
      });
    });
  }

  others(list: Received[]): Json[] {
    return list.filter((r) => r.kind === 'other').map((r) => r.data);
  }

  /** Everything sent before this call has arrived once this resolves. */
  async drain(): Promise<void> {
    if (this.ws.readyState !== WebSocket.OPEN) return;
    const pong = new Promise<void>((resolve) => this.ws.once('pong', () => resolve()));
    this.ws.ping();
    await Promise.race([pong, new Promise((r) => setTimeout(r, WAIT_MS))]);
  }
}

function decodeBinary(buf: Buffer): Json {
  const type = buf.readUInt32BE(0);
  if (type === 1) return { binary: 1, image_format: buf.readUInt32BE(4), image_head_hex: buf.subarray(8, 16).toString('hex') };
  if (type === 4) {
    const len = buf.readUInt32BE(4);
    const metadata = JSON.parse(buf.subarray(8, 8 + len).toString('utf8')) as Json;
    return { binary: 4, metadata, image_head_hex: buf.subarray(8 + len, 16 + len).toString('hex') };
  }
  return { binary: type };
}

function expectedBinary(e: WsBinaryEvent): Json {
  if (e.event_type === 1) return { binary: 1, image_format: e.image_format ?? null, image_head_hex: e.image_head_hex ?? null };
  if (e.event_type === 4) return { binary: 4, metadata: (e.metadata ?? {}) as Json, image_head_hex: e.image_head_hex ?? null };
  return { binary: e.event_type };
}

/** Replays captures against one simulator; keeps prompt-id and socket state across files. */
export class Replayer {
  private readonly ids = new Map<string, string>();
  private held: Array<() => void> = [];
  private sockets = new Map<string, ReplaySocket>();
  private readonly baseUrl: string;

  constructor(private readonly sim: Simulator) {
    this.baseUrl = sim.url;
    sim.setNodeGate(
      () =>
        new Promise<void>((resolve) => {
          this.held.push(resolve);
          for (const s of this.sockets.values()) s.wake();
        }),
    );
  }

  private releaseAll(): void {
    const h = this.held;
    this.held = [];
    for (const r of h) r();
  }

  /** Maps recorded prompt ids (keys and values) to the simulator's. */
  private map<T>(v: T): T {
    if (typeof v === 'string') return (this.ids.get(v) ?? v) as T;
    if (Array.isArray(v)) return v.map((x) => this.map(x)) as T;
    if (isRecord(v)) return Object.fromEntries(Object.entries(v).map(([k, x]) => [this.ids.get(k) ?? k, this.map(x)])) as T;
    return v;
  }

  private socket(name: string): ReplaySocket {
    const s = this.sockets.get(name);
    if (!s) throw new Error(`capture uses socket "${name}" before opening it`);
    return s;
  }

  /** Waits until `socket` has `count` non-status messages, releasing held nodes when nothing else can arrive. */
  private async waitFor(socket: ReplaySocket, count: number, what: string): Promise<void> {
    const deadline = Date.now() + WAIT_MS;
    for (;;) {
      if (socket.others(socket.received).length >= count) return;
      if (socket.closedWith) throw new Error(`socket ${socket.name} closed while waiting for ${what}`);
      if (Date.now() > deadline) {
        throw new Error(`timed out waiting for ${what} on ${socket.name}; got ${JSON.stringify(socket.others(socket.received)).slice(-600)}`);
      }
      if (this.held.length > 0) {
        await socket.drain();
        if (socket.others(socket.received).length >= count) return;
        this.releaseAll();
      }
      await socket.next(50);
    }
  }

  private async http(e: HttpEvent, out: string[]): Promise<void> {
    const path = e.path.replace(/^\/history\/([^?]+)/, (_m, id: string) => `/history/${this.ids.get(decodeURIComponent(id)) ?? id}`);
    const init: RequestInit = { method: e.method };
    if (e.request_body !== undefined) {
      const b = e.request_body;
      init.body = isRecord(b) && typeof b.raw === 'string' && Object.keys(b).length === 1 ? b.raw : JSON.stringify(this.map(b));
      init.headers = { 'content-type': 'application/json' };
    }
    const where = `${e.method} ${e.path}${e.label ? ` (${e.label})` : ''}`;
    let res: Response;
    try {
      res = await fetch(`${this.baseUrl}${path}`, init);
    } catch (err) {
      const code = (err as { cause?: { code?: string } }).cause?.code;
      if (!e.error) out.push(`${where}: request failed (${code ?? String(err)}) but the recording got ${e.status}`);
      else if (e.error.cause_code !== code) out.push(`${where}: expected ${e.error.cause_code}, got ${code}`);
      return;
    }
    const body = Buffer.from(await res.arrayBuffer());
    if (e.error) {
      out.push(`${where}: expected ${e.error.cause_code}, got HTTP ${res.status}`);
      return;
    }
    if (res.status !== e.status) out.push(`${where}: status ${res.status}, expected ${e.status} (${body.toString().slice(0, 200)})`);
    const ct = res.headers.get('content-type');
    if (ct !== (e.response_content_type ?? null)) out.push(`${where}: content-type ${ct}, expected ${e.response_content_type}`);
    if (e.response_body !== undefined) {
      let parsed: unknown;
      try {
        parsed = JSON.parse(body.toString('utf8'));
      } catch {
        out.push(`${where}: body is not JSON: ${body.toString().slice(0, 200)}`);
        return;
      }
      if (e.method === 'POST' && e.path === '/prompt' && isRecord(e.response_body) && isRecord(parsed)) {
        const recorded = e.response_body.prompt_id;
        if (typeof recorded === 'string' && typeof parsed.prompt_id === 'string') this.ids.set(recorded, parsed.prompt_id);
      }
      const diffs: string[] = [];
      diffJson(this.map(e.response_body), parsed, '', diffs);
      for (const d of diffs) out.push(`${where}: ${d}`);
    } else if (e.response_body_text !== undefined) {
      if (body.toString('utf8') !== e.response_body_text) out.push(`${where}: body ${JSON.stringify(body.toString())}, expected ${JSON.stringify(e.response_body_text)}`);
    } else if (e.response_body_length !== undefined) {
      if (e.response_body_length === 0 && body.length !== 0) out.push(`${where}: expected an empty body, got ${body.length} bytes`);
      const head = e.response_body_head_hex ?? '';
      if (head && body.subarray(0, head.length / 2).toString('hex') !== head) out.push(`${where}: body starts ${body.subarray(0, 8).toString('hex')}, expected ${head}`);
    }
  }

  /** Replays one capture file; returns the differences found (empty when it conforms). */
  async replay(capture: Capture): Promise<string[]> {
    const out: string[] = [];
    const events = capture.events;
    for (const e of events) await this.step(e, out);
    for (const s of this.sockets.values()) this.compareSocket(s, out);
    for (const s of this.sockets.values()) if (s.ws.readyState === WebSocket.OPEN || s.ws.readyState === WebSocket.CONNECTING) s.ws.terminate();
    this.sockets = new Map();
    this.releaseAll();
    await this.sim.whenIdle();
    return out;
  }

  private compareSocket(s: ReplaySocket, out: string[]): void {
    const exp = s.others(s.expected);
    const got = s.others(s.received);
    if (exp.length !== got.length) {
      out.push(
        `ws ${s.name}: ${got.length} non-status messages, expected ${exp.length}\n  expected: ${exp.map((m) => (m as { type?: string; binary?: number }).type ?? `binary${(m as { binary?: number }).binary}`).join(',')}\n  got:      ${got.map((m) => (m as { type?: string; binary?: number }).type ?? `binary${(m as { binary?: number }).binary}`).join(',')}`,
      );
    }
    exp.slice(0, got.length).forEach((m, i) => {
      const d: string[] = [];
      diffJson(this.map(m), got[i], '', d);
      for (const x of d) out.push(`ws ${s.name} message ${i} (${(m as { type?: string }).type ?? 'binary'}): ${x}`);
    });
    const statuses = (list: Received[]) => list.filter((r) => r.kind === 'status').map((r) => r.data as { data: { status: { exec_info: { queue_remaining: number } }; sid?: string } });
    const es = statuses(s.expected);
    const gs = statuses(s.received);
    const first = (l: typeof es) => (l[0] ? { sid: l[0].data.sid, q: l[0].data.status.exec_info.queue_remaining } : undefined);
    if (JSON.stringify(first(es)) !== JSON.stringify(first(gs))) out.push(`ws ${s.name}: first status ${JSON.stringify(first(gs))}, expected ${JSON.stringify(first(es))}`);
    const counts = (l: typeof es) => JSON.stringify(l.slice(1).map((m) => m.data.status.exec_info.queue_remaining).sort());
    if (counts(es) !== counts(gs)) out.push(`ws ${s.name}: status queue_remaining values ${counts(gs)}, expected ${counts(es)}`);
  }

  private async step(e: CaptureEvent, out: string[]): Promise<void> {
    switch (e.kind) {
      case 'note':
        return;
      case 'process': {
        const action = e.action ?? '';
        if (action.startsWith('SIGKILL')) {
          this.sim.kill();
          this.releaseAll();
        } else if (action.startsWith('server restarted')) {
          await this.sim.restart();
        }
        return;
      }
      case 'ws_open': {
        const name = e.socket ?? 'default';
        const ws = new WebSocket(`${this.baseUrl.replace(/^http/, 'ws')}${e.path ?? '/ws'}`);
        const s = new ReplaySocket(name, ws);
        this.sockets.set(name, s);
        await s.opened;
        return;
      }
      case 'ws_error': {
        const name = e.socket ?? 'default';
        const ws = new WebSocket(`${this.baseUrl.replace(/^http/, 'ws')}/ws?clientId=replay-while-down`);
        const s = new ReplaySocket(name, ws);
        this.sockets.set(name, s);
        await s.opened;
        while (!s.closedWith) await s.next(50);
        if (s.errorCode !== 'ECONNREFUSED') out.push(`ws ${name}: expected ECONNREFUSED, got ${s.errorCode ?? 'a connection'}`);
        return;
      }
      case 'ws_send': {
        this.socket(e.socket ?? 'default').ws.send(JSON.stringify(e.data));
        return;
      }
      case 'ws': {
        const s = this.socket(e.socket ?? 'default');
        const msg = e.data;
        s.expected.push({ kind: msg.type === 'status' ? 'status' : 'other', data: msg as unknown as Json });
        if (msg.type !== 'status') await this.waitFor(s, s.others(s.expected).length, `${msg.type} ${JSON.stringify(msg.data).slice(0, 100)}`);
        return;
      }
      case 'ws_binary': {
        const s = this.socket(e.socket ?? 'default');
        s.expected.push({ kind: 'other', data: expectedBinary(e) });
        await this.waitFor(s, s.others(s.expected).length, `binary frame type ${e.event_type}`);
        return;
      }
      case 'ws_client_close': {
        this.socket(e.socket ?? 'default').ws.close(e.code ?? 1000);
        return;
      }
      case 'ws_close': {
        const s = this.socket(e.socket ?? 'default');
        const deadline = Date.now() + WAIT_MS;
        while (!s.closedWith && Date.now() < deadline) await s.next(50);
        if (!s.closedWith) out.push(`ws ${s.name}: never closed (expected ${e.code})`);
        else if (s.closedWith.code !== e.code) out.push(`ws ${s.name}: closed with ${s.closedWith.code}, expected ${e.code}`);
        // The server must also have seen it go before the next step (a same-clientId reconnect follows).
        const open = [...this.sockets.values()].filter((x) => x.ws.readyState === WebSocket.OPEN).length;
        while ((this.sim.state().open_websockets as number) > open && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
        return;
      }
      case 'http': {
        if (e.label?.startsWith('readiness poll') && e.error) return; // the simulator restarts faster than CPython imports
        await this.http(e, out);
        return;
      }
      default:
        return;
    }
  }
}

export type { WsEvent };
