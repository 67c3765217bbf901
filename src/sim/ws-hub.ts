/**
 * The `/ws` side of the server: ComfyUI's `sockets` map (clientId -> socket), the connect
 * handshake (initial `status` with `sid`, the `executing` replay for the running client, the
 * `feature_flags` reply), targeted and broadcast sends, and the ways a socket can be dropped.
 * Like aiohttp, messages to an unknown clientId are dropped; nothing is buffered.
 */
import { randomUUID } from 'node:crypto';
import type { WebSocket } from 'ws';
import { pyJsonDumps } from '../comfy/pyfmt.js';

/** The session a send is addressed to: null/undefined broadcasts (ComfyUI's `sid=None`). */
export type Sid = unknown;

interface Session {
  ws: WebSocket;
  featureFlags: Record<string, unknown>;
}

export interface HubHooks {
  queueInfo(): { exec_info: { queue_remaining: number } };
  /** ComfyUI's `(server.client_id, server.last_node_id)` for the reconnect replay. */
  runningClient(): { clientId: unknown; lastNodeId: string | null };
  serverFeatures(): Record<string, unknown>;
  /** Emulate issue #16010: the old socket's cleanup unregisters a newer socket of the same clientId. */
  reconnectBug: boolean;
}

export class WsHub {
  private readonly sessions = new Map<string, Session>();
  private readonly open = new Set<WebSocket>();

  constructor(private readonly hooks: HubHooks) {}

  /** Registers a freshly upgraded socket for `clientId` (or a new uuid hex) and greets it. */
  attach(ws: WebSocket, clientIdParam: string | null): void {
    let sid = clientIdParam ?? '';
    if (sid) this.sessions.delete(sid);
    else sid = randomUUID().replaceAll('-', '');
    const session: Session = { ws, featureFlags: {} };
    this.sessions.set(sid, session);
    this.open.add(ws);

    this.sendTo(ws, 'status', { status: this.hooks.queueInfo(), sid });
    const running = this.hooks.runningClient();
    if (running.clientId === sid && running.lastNodeId !== null) this.sendTo(ws, 'executing', { node: running.lastNodeId });

    let firstMessage = true;
    ws.on('message', (raw, isBinary) => {
      if (isBinary) return;
      let data: unknown;
      try {
        data = JSON.parse(raw.toString());
      } catch {
        return; // invalid JSON is logged and ignored; the next message still counts as first
      }
      if (typeof data !== 'object' || data === null || Array.isArray(data)) return; // data.get() raises, caught
      const msg = data as Record<string, unknown>;
      if (firstMessage && msg.type === 'feature_flags') {
        const flags = msg.data;
        session.featureFlags = typeof flags === 'object' && flags !== null ? (flags as Record<string, unknown>) : {};
        this.sendTo(ws, 'feature_flags', this.hooks.serverFeatures());
      }
      firstMessage = false;
    });
    ws.on('error', () => undefined);
    ws.on('close', () => {
      this.open.delete(ws);
      const current = this.sessions.get(sid);
      if (this.hooks.reconnectBug || current?.ws === ws) this.sessions.delete(sid);
    });
  }

  private sendTo(ws: WebSocket, type: string, data: unknown): void {
    if (ws.readyState === ws.OPEN) ws.send(pyJsonDumps({ type, data }));
  }

  private targets(sid: Sid): WebSocket[] {
    if (sid === null || sid === undefined) return [...this.sessions.values()].map((s) => s.ws);
    if (typeof sid !== 'string') return [];
    const s = this.sessions.get(sid);
    return s ? [s.ws] : [];
  }

  /** A JSON message to one client, or to every registered client when `sid` is null. */
  send(type: string, data: unknown, sid: Sid): void {
    const targets = this.targets(sid);
    if (targets.length === 0) return;
    const text = pyJsonDumps({ type, data });
    for (const ws of targets) if (ws.readyState === ws.OPEN) ws.send(text);
  }

  /** A binary frame `[u32 BE event][payload]`. */
  sendBinary(event: number, payload: Buffer, sid: Sid): void {
    const targets = this.targets(sid);
    if (targets.length === 0) return;
    const header = Buffer.alloc(4);
    header.writeUInt32BE(event);
    const frame = Buffer.concat([header, payload]);
    for (const ws of targets) if (ws.readyState === ws.OPEN) ws.send(frame);
  }

  /** Whether the client announced `supports_preview_metadata`. */
  supportsPreviewMetadata(sid: Sid): boolean {
    if (typeof sid !== 'string') return false;
    return this.sessions.get(sid)?.featureFlags.supports_preview_metadata === true;
  }

  /**
   * Drops the sockets of `sid` (every socket when sid is null): with a close frame (1001) or by
   * cutting the TCP connection (the client sees 1006). Returns how many were dropped.
   */
  drop(sid: Sid, withCloseFrame: boolean): number {
    const targets = sid === null || sid === undefined ? [...this.open] : this.targets(sid);
    for (const ws of targets) {
      if (withCloseFrame) ws.close(1001, 'Going Away');
      else ws.terminate();
    }
    return targets.length;
  }

  /** Cuts every socket without a close frame (a crashed process). */
  destroyAll(): void {
    for (const ws of this.open) ws.terminate();
    this.open.clear();
    this.sessions.clear();
  }

  /** Closes every socket cleanly (server shutdown). */
  closeAll(): void {
    for (const ws of this.open) ws.close(1001, 'Server shutdown');
  }

  openCount(): number {
    return this.open.size;
  }
}
