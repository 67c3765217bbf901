/**
 * One Server-Sent Events stream on a hijacked reply: the headers, an id per event, a heartbeat
 * comment every `ctx.sseHeartbeatMs`, no idle timeout (a stream is quiet between heartbeats), a cap
 * on what a reader that stopped reading can make us buffer, and one `close()` that releases it all.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { TimerHandle } from '../util/clock.js';
import type { ServiceContext } from './context.js';

/** An open event stream. `signal` aborts when the client goes away or the service shuts down. */
export interface SseStream {
  readonly signal: AbortSignal;
  send(event: string, data: unknown): void;
  /** Ends the response and releases the heartbeat and the shutdown hook (idempotent). */
  close(): void;
}

/** Takes over `reply` and starts an event stream on it. */
export function openSse(req: FastifyRequest, reply: FastifyReply, ctx: ServiceContext, opts: { maxBufferedBytes?: number } = {}): SseStream {
  const ac = new AbortController();
  ctx.streams.add(ac);
  reply.hijack();
  req.raw.socket?.setTimeout(0);
  const res = reply.raw;
  res.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache, no-transform',
    connection: 'keep-alive',
    'x-accel-buffering': 'no',
  });
  const onClose = () => ac.abort();
  res.on('close', onClose);
  let heartbeat: TimerHandle | null = null;
  const beat = () => {
    if (res.writableEnded) return;
    res.write(': heartbeat\n\n');
    heartbeat = ctx.clock.setTimeout(beat, ctx.sseHeartbeatMs);
  };
  heartbeat = ctx.clock.setTimeout(beat, ctx.sseHeartbeatMs);
  let seq = 0;
  let closed = false;
  return {
    signal: ac.signal,
    send(event, data) {
      if (res.writableEnded || res.destroyed) return;
      // A reader that stopped reading is cut off rather than buffered without bound.
      if (opts.maxBufferedBytes !== undefined && res.writableLength > opts.maxBufferedBytes) {
        ac.abort();
        return;
      }
      res.write(`id: ${++seq}\nevent: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
    },
    close() {
      if (closed) return;
      closed = true;
      if (heartbeat !== null) ctx.clock.clearTimeout(heartbeat);
      res.off('close', onClose);
      ctx.streams.delete(ac);
      if (!res.writableEnded) res.end();
    },
  };
}
