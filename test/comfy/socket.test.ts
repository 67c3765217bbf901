import { afterEach, describe, expect, it } from 'vitest';
import type { ComfySocketEvent } from '../../src/comfy/api.js';
import { encodeBinaryFrame } from '../../src/comfy/binary.js';
import { ComfyRequestError } from '../../src/comfy/errors.js';
import { ComfySocket, type ComfySocketOptions } from '../../src/comfy/socket.js';
import type { BinaryFrame, WsMessage } from '../../src/comfy/types.js';
import {
  listCaptures,
  loadCapture,
  startCaptureServer,
  wsScript,
  type CaptureServer,
  type WsBinaryCaptureEvent,
  type WsCaptureEvent,
} from '../support/capture-server.js';
import { EventLog, ManualClock, closedPort, rawServer, waitFor } from './helpers.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
});

async function serve(...args: Parameters<typeof startCaptureServer>): Promise<CaptureServer> {
  const server = await startCaptureServer(...args);
  cleanups.push(() => server.close());
  return server;
}

function socketFor(baseUrl: string, extra: Partial<ComfySocketOptions> = {}): ComfySocket {
  const socket = new ComfySocket({ baseUrl, clientId: 'client-1', name: 'test-server', ...extra });
  cleanups.push(() => socket.close());
  return socket;
}

async function connectFailure(socket: ComfySocket, signal?: AbortSignal): Promise<ComfyRequestError> {
  try {
    await socket.connect(signal ? { signal } : {});
  } catch (err) {
    expect(err).toBeInstanceOf(ComfyRequestError);
    return err as ComfyRequestError;
  }
  throw new Error('expected connect() to fail');
}

const isMessage = (e: ComfySocketEvent): e is Extract<ComfySocketEvent, { kind: 'message' }> => e.kind === 'message';
const isUnknown = (e: ComfySocketEvent): e is Extract<ComfySocketEvent, { kind: 'unknown' }> => e.kind === 'unknown';
const isBinary = (e: ComfySocketEvent): e is Extract<ComfySocketEvent, { kind: 'binary' }> => e.kind === 'binary';
const isClose = (e: ComfySocketEvent): e is Extract<ComfySocketEvent, { kind: 'close' }> => e.kind === 'close';
const isFrame = (e: ComfySocketEvent): e is Extract<ComfySocketEvent, { kind: 'message' | 'unknown' | 'binary' }> =>
  e.kind === 'message' || e.kind === 'unknown' || e.kind === 'binary';

/** Every (capture, socket) pair with server frames. */
function recordedSockets(): Array<{ name: string; socket: string | undefined }> {
  const out: Array<{ name: string; socket: string | undefined }> = [];
  for (const name of listCaptures()) {
    const cap = loadCapture(name);
    const sockets = new Set(wsScript(cap).map((e) => e.socket));
    for (const socket of sockets) if (wsScript(cap, socket).some((e) => e.kind !== 'ws_send')) out.push({ name, socket });
  }
  return out;
}

describe('ComfySocket replaying recorded WebSocket traffic', () => {
  for (const { name, socket: socketName } of recordedSockets()) {
    it(`delivers every frame of ${name}${socketName ? ` (socket ${socketName})` : ''} as a validated message, in order`, async () => {
      const cap = loadCapture(name);
      const script = wsScript(cap, socketName);
      const server = await serve(cap, socketName ? { socket: socketName } : {});
      const sendsFlags = script.find((e) => e.kind === 'ws_send');
      const flags = sendsFlags ? ((sendsFlags.data as { data: Record<string, unknown> }).data) : undefined;
      const socket = socketFor(server.url, flags ? { featureFlags: flags } : {});
      const log = new EventLog<ComfySocketEvent>((l) => socket.on(l));
      await socket.connect();
      const expected = script.filter((e): e is WsCaptureEvent | WsBinaryCaptureEvent => e.kind !== 'ws_send');
      await log.waitFor(isFrame, `${expected.length} frames`, expected.length);
      const frames = log.filter(isFrame);
      expect(frames).toHaveLength(expected.length);
      expect(log.filter(isUnknown)).toEqual([]);
      expected.forEach((rec, i) => {
        const got = frames[i];
        if (rec.kind === 'ws') {
          expect(got?.kind).toBe('message');
          expect((got as { message: WsMessage }).message).toEqual(rec.data);
        } else {
          expect(got?.kind).toBe('binary');
          const frame = (got as { frame: BinaryFrame }).frame;
          expect(frame.eventType).toBe(rec.event_type);
        }
      });
    });
  }

  it('opens /ws with the clientId, sends the feature flags as the first frame, and no Origin header', async () => {
    const server = await serve(loadCapture('server_info'));
    const socket = socketFor(server.url, {
      clientId: 'abc-123',
      featureFlags: { supports_preview_metadata: true },
      headers: { Authorization: 'Bearer t0k', Origin: 'http://evil.example' },
    });
    const log = new EventLog<ComfySocketEvent>((l) => socket.on(l));
    await socket.connect();
    expect(log.events[0]).toEqual({ kind: 'open', clientId: 'abc-123' });
    const flags = await log.waitFor(
      (e): e is Extract<ComfySocketEvent, { kind: 'message' }> => isMessage(e) && e.message.type === 'feature_flags',
      'the server feature_flags reply',
    );
    expect(flags.message.data).toEqual({ supports_preview_metadata: true, max_upload_size: 104857600 });
    const conn = server.connections[0];
    expect(conn?.clientId).toBe('abc-123');
    expect(conn?.received[0]).toBe(JSON.stringify({ type: 'feature_flags', data: { supports_preview_metadata: true } }));
    expect(conn?.headers['authorization']).toBe('Bearer t0k');
    expect(conn?.headers['origin']).toBeUndefined();
  });

  it('decodes type-1 previews (PNG, image from byte 8) for a plain client', async () => {
    const cap = loadCapture('progress_steps');
    const recorded = wsScript(cap, 'A').filter((e): e is WsBinaryCaptureEvent => e.kind === 'ws_binary');
    expect(recorded).toHaveLength(4);
    const server = await serve(cap, { socket: 'A' });
    const socket = socketFor(server.url);
    const log = new EventLog<ComfySocketEvent>((l) => socket.on(l));
    await socket.connect();
    await log.waitFor(isBinary, '4 previews', 4);
    for (const [i, e] of log.filter(isBinary).entries()) {
      const rec = recorded[i] as WsBinaryCaptureEvent;
      expect(e.frame.kind).toBe('preview');
      if (e.frame.kind !== 'preview') continue;
      expect(e.frame.format).toBe('png');
      expect(e.frame.formatCode).toBe(rec.image_format);
      expect(e.frame.image.byteLength).toBe(rec.length - 8);
      expect(Buffer.from(e.frame.image.subarray(0, 8)).toString('hex')).toBe(rec.image_head_hex);
    }
    const progress = log.filter(isMessage).filter((e) => e.message.type === 'progress');
    expect(progress.map((e) => (e.message.data as { value: number }).value)).toEqual([0, 1, 2, 3]);
  });

  it('decodes type-4 previews with their metadata for a client that announced supports_preview_metadata', async () => {
    const cap = loadCapture('progress_steps');
    const recorded = wsScript(cap, 'B').filter((e): e is WsBinaryCaptureEvent => e.kind === 'ws_binary');
    const server = await serve(cap, { socket: 'B' });
    const socket = socketFor(server.url, { featureFlags: { supports_preview_metadata: true } });
    const log = new EventLog<ComfySocketEvent>((l) => socket.on(l));
    await socket.connect();
    await log.waitFor(isBinary, '4 previews', 4);
    for (const [i, e] of log.filter(isBinary).entries()) {
      const rec = recorded[i] as WsBinaryCaptureEvent;
      expect(e.frame.kind).toBe('preview_with_metadata');
      if (e.frame.kind !== 'preview_with_metadata') continue;
      expect(e.frame.metadata).toEqual(rec.metadata);
      expect(e.frame.image.byteLength).toBe(rec.length - 8 - (rec.metadata_length ?? 0));
      expect(Buffer.from(e.frame.image.subarray(0, 8)).toString('hex')).toBe(rec.image_head_hex);
    }
  });

  it('passes malformed JSON, invalid payloads and custom types through as unknown events and keeps going', async () => {
    const server = await serve([]);
    const socket = socketFor(server.url);
    const log = new EventLog<ComfySocketEvent>((l) => socket.on(l));
    await socket.connect();
    await server.waitForConnections(1);
    server.broadcast('{"type": "status", "data": ');
    server.broadcast(JSON.stringify({ type: 'progress', data: { value: 'three', max: 4 } }));
    server.broadcast(JSON.stringify({ type: 'crystools.monitor', data: { cpu: 12 } }));
    server.broadcast(JSON.stringify([1, 2]));
    server.broadcast(JSON.stringify({ data: {} }));
    server.broadcast(JSON.stringify({ type: 'execution_error', data: { prompt_id: 'p' } }));
    server.broadcast(encodeBinaryFrame({ kind: 'text', nodeId: '7', text: 'working' }));
    server.broadcast(Buffer.from([0, 0, 0, 2, 1, 2, 3]));
    server.broadcast(Buffer.from([0, 0, 0, 4, 0, 0, 1, 0, 123]));
    server.broadcast(JSON.stringify({ type: 'status', data: { status: { exec_info: { queue_remaining: 2 } } } }));
    await log.waitFor(isMessage, 'the valid status after the bad frames');
    const unknown = log.filter(isUnknown).map((e) => e.message);
    expect(unknown.map((m) => [m.reason, m.rawType])).toEqual([
      ['not_json', null],
      ['invalid_payload', 'progress'],
      ['unmodelled_type', 'crystools.monitor'],
      ['invalid_payload', null],
      ['invalid_payload', null],
      ['invalid_payload', 'execution_error'],
    ]);
    expect(unknown[0]?.data).toBe('{"type": "status", "data": ');
    expect(unknown[1]?.issue).toContain('value');
    expect(unknown[2]?.data).toEqual({ cpu: 12 });
    expect(unknown[5]?.issue).toContain('node_id');
    const binaries = log.filter(isBinary).map((e) => e.frame);
    expect(binaries[0]).toEqual({ kind: 'text', eventType: 3, nodeId: '7', text: 'working' });
    expect(binaries[1]).toMatchObject({ kind: 'unknown_binary', eventType: 2 });
    expect(binaries[2]).toMatchObject({ kind: 'unknown_binary', eventType: 4 });
    expect(socket.state).toBe('open');
  });

  it('isolates a throwing listener: the others still get every event and an error event reports it', async () => {
    const server = await serve(loadCapture('invalid_body'));
    const socket = socketFor(server.url);
    socket.on((e) => {
      if (e.kind === 'message') throw new Error('listener bug');
    });
    const log = new EventLog<ComfySocketEvent>((l) => socket.on(l));
    await socket.connect();
    await log.waitFor(isMessage, 'the status message');
    const errors = log.events.filter((e) => e.kind === 'error');
    expect(errors).toHaveLength(1);
    expect((errors[0] as { error: Error }).error.message).toBe('listener bug');
  });

  it('iterates events asynchronously and ends after the close event', async () => {
    const server = await serve(loadCapture('ok_simple'));
    const socket = socketFor(server.url);
    const events = socket.events();
    await socket.connect();
    const seen: string[] = [];
    for await (const e of events) {
      seen.push(e.kind === 'message' ? e.message.type : e.kind);
      if (e.kind === 'message' && e.message.type === 'executing' && e.message.data.node === null) void socket.close();
    }
    expect(seen[0]).toBe('open');
    expect(seen.at(-1)).toBe('close');
    expect(seen).toContain('execution_success');
    expect(socket.state).toBe('closed');
  });

  it('reports the close code and who closed: us (1000) or the server without a close frame (1006)', async () => {
    const server = await serve([]);
    const a = socketFor(server.url);
    const logA = new EventLog<ComfySocketEvent>((l) => a.on(l));
    await a.connect();
    await a.close();
    expect(logA.filter(isClose)).toEqual([{ kind: 'close', code: 1000, reason: '', byUs: true }]);
    expect(await a.closed).toEqual({ code: 1000, reason: '', byUs: true });

    const b = socketFor(server.url);
    const logB = new EventLog<ComfySocketEvent>((l) => b.on(l));
    await b.connect();
    server.dropWebSockets({ closeFrame: false });
    const closed = await logB.waitFor(isClose, 'the close event');
    expect(closed).toMatchObject({ code: 1006, byUs: false });
  });
});

describe('ComfySocket URL', () => {
  it('maps http(s) to ws(s), keeps a path prefix and encodes the clientId', () => {
    expect(new ComfySocket({ baseUrl: 'https://pod.example/comfy/', clientId: 'a b&c' }).url).toBe('wss://pod.example/comfy/ws?clientId=a+b%26c');
    expect(new ComfySocket({ baseUrl: 'http://127.0.0.1:8188', clientId: 'x' }).url).toBe('ws://127.0.0.1:8188/ws?clientId=x');
    expect(() => new ComfySocket({ baseUrl: 'ftp://x', clientId: 'x' })).toThrow(/http/);
  });
});

describe('ComfySocket connection failures', () => {
  it('fails a refused connection with transport ECONNREFUSED', async () => {
    const socket = socketFor(`http://127.0.0.1:${await closedPort()}`);
    const err = await connectFailure(socket);
    expect(err).toMatchObject({ kind: 'transport', transportCode: 'ECONNREFUSED', path: '/ws', server: 'test-server' });
    expect(socket.state).toBe('closed');
  });

  it('fails a refused upgrade with the HTTP status', async () => {
    const server = await serve([]);
    server.refuseUpgrades(403);
    const err = await connectFailure(socketFor(server.url));
    expect(err).toMatchObject({ kind: 'http', status: 403 });
  });

  it('times out a handshake the server never answers', async () => {
    const server = await rawServer(() => undefined);
    cleanups.push(server.close);
    const err = await connectFailure(socketFor(server.url, { connectTimeoutMs: 20 }));
    expect(err).toMatchObject({ kind: 'timeout', timeoutMs: 20 });
  });

  it('aborts a pending handshake on the signal, and refuses to connect twice', async () => {
    const server = await rawServer(() => undefined);
    cleanups.push(server.close);
    const socket = socketFor(server.url);
    const ac = new AbortController();
    const p = connectFailure(socket, ac.signal);
    await waitFor(() => server.accepted() === 1, 'the TCP connection');
    ac.abort(new Error('stop'));
    expect((await p).kind).toBe('aborted');
    expect((await connectFailure(socket)).message).toContain('connects once');
  });
});

describe('ComfySocket keepalive ping', () => {
  it('pings on the clock and stays open while the server answers', async () => {
    const clock = new ManualClock();
    const server = await serve([]);
    const socket = socketFor(server.url, { clock, pingIntervalMs: 1_000, maxMissedPongs: 1 });
    const log = new EventLog<ComfySocketEvent>((l) => socket.on(l));
    await socket.connect();
    await server.waitForConnections(1);
    const peer = server.connections[0]?.socket;
    // ws queues the pong before emitting 'ping', so this frame reaches the client after the pong.
    peer?.on('ping', () => peer.send(JSON.stringify({ type: 'status', data: { status: { exec_info: { queue_remaining: 0 } } } })));
    for (let i = 1; i <= 4; i++) {
      clock.advance(1_000);
      await log.waitFor(isMessage, `the frame after pong ${i}`, i);
    }
    clock.advance(1_000);
    expect(socket.state).toBe('open');
  });

  it('terminates a socket whose peer stops answering pings, reporting it as not closed by us', async () => {
    const clock = new ManualClock();
    const server = await serve([], { autoPong: false });
    const socket = socketFor(server.url, { clock, pingIntervalMs: 1_000, maxMissedPongs: 2 });
    const log = new EventLog<ComfySocketEvent>((l) => socket.on(l));
    await socket.connect();
    clock.advance(1_000); // ping 1
    clock.advance(1_000); // no pong: missed 1, ping 2
    expect(socket.state).toBe('open');
    clock.advance(1_000); // missed 2: dead
    const closed = await log.waitFor(isClose, 'the close event');
    expect(closed).toEqual({ kind: 'close', code: 1006, reason: 'no pong after 2 pings', byUs: false });
  });
});
