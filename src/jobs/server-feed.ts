/**
 * The event feed of one server as the attempt runner sees it: messages for one prompt id, plus
 * connection changes and queue movement. One WebSocket per server is shared by every attempt there.
 */
import type { BinaryFrame, WsMessage } from '../comfy/types.js';

/** A preview frame (binary type 1 or 4). */
export type PreviewFrame = Extract<BinaryFrame, { kind: 'preview' | 'preview_with_metadata' }>;

export type FeedEvent =
  | { kind: 'message'; message: WsMessage }
  /** A preview of the prompt executing on this socket (type 4 names it; type 1 is attributed to the executing prompt). */
  | { kind: 'preview'; frame: PreviewFrame }
  /** The socket dropped (`connected: false`) or opened (`true`; every open, the first too): reconcile. */
  | { kind: 'connection'; connected: boolean }
  /** A `status` broadcast: the queue moved; `shrank` when fewer prompts remain than before (one ended). */
  | { kind: 'queue'; queueRemaining: number; shrank: boolean };

export interface ServerFeed {
  /** The clientId every prompt submitted through this feed must carry. */
  readonly clientId: string;
  readonly connected: boolean;
  /** When this socket last carried an execution message of any of its prompts (0: never). */
  readonly lastActivityAt: number;
  /**
   * Resolves true once the socket is open, false as soon as a connect attempt failed (the server is
   * down: polling takes over) or after `timeoutMs`. Submitting only after this means no event of the
   * prompt can be missed because the socket was still opening.
   */
  ready(timeoutMs: number): Promise<boolean>;
  /** Events for one prompt id (and every connection/queue event). Returns unsubscribe. */
  subscribe(promptId: string, listener: (e: FeedEvent) => void): () => void;
  close(): Promise<void>;
}

/** The prompt id a message belongs to, if it names one. */
export function promptIdOf(message: WsMessage): string | undefined {
  const data = message.data as { prompt_id?: unknown };
  return typeof data?.prompt_id === 'string' ? data.prompt_id : undefined;
}
