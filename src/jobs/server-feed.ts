/**
 * The event feed of one server as the attempt runner sees it: messages for one prompt id, plus
 * connection changes and queue movement. One WebSocket per server is shared by every attempt there.
 */
import type { WsMessage } from '../comfy/types.js';

export type FeedEvent =
  | { kind: 'message'; message: WsMessage }
  /** The socket dropped (`connected: false`) or came back (`reconnected: true`): reconcile. */
  | { kind: 'connection'; connected: boolean; reconnected: boolean }
  /** A `status` broadcast: the queue moved. */
  | { kind: 'queue'; queueRemaining: number };

export interface ServerFeed {
  /** The clientId every prompt submitted through this feed must carry. */
  readonly clientId: string;
  readonly connected: boolean;
  /** Events for one prompt id (and every connection/queue event). Returns unsubscribe. */
  subscribe(promptId: string, listener: (e: FeedEvent) => void): () => void;
  close(): Promise<void>;
}

/** The prompt id a message belongs to, if it names one. */
export function promptIdOf(message: WsMessage): string | undefined {
  const data = message.data as { prompt_id?: unknown };
  return typeof data?.prompt_id === 'string' ? data.prompt_id : undefined;
}
