/**
 * What an attempt is given and what it returns: the contract between the job driver and the
 * attempt runner.
 */
import type { ComfyApi } from '../comfy/api.js';
import type { ApiWorkflow, NodeOutput } from '../comfy/types.js';
import type { Clock } from '../util/clock.js';
import type { ComfyExecutionMessage } from './events.js';
import type { PreviewFrame, ServerFeed } from './server-feed.js';

export interface AttemptSpec {
  server: string;
  client: ComfyApi;
  feed: ServerFeed;
  promptId: string;
  workflow: ApiWorkflow;
  /** Run only these output nodes (resume with partial execution). */
  partialTargets?: string[];
  /** Follow a prompt that is already on the server (restart recovery) instead of submitting. */
  reattach?: boolean;
  clock: Clock;
  generationTimeoutMs: number;
  stallTimeoutMs: number;
  /** Poll interval while the socket is down; a slower safety poll runs even when it is up. @default 2000 */
  pollIntervalMs?: number;
  /** How long to wait for the server's socket to open before submitting anyway (polling then covers it). @default 5000 */
  socketReadyTimeoutMs?: number;
  /** How long the server may be unreachable before the attempt fails over. @default 15000 */
  unreachableGraceMs?: number;
  /** Abort with reason `{ kind: 'cancel' }` to cancel, `{ kind: 'shutdown' }` to detach. */
  signal: AbortSignal;
  extraData?: Record<string, unknown>;
  onSubmitted?: () => void;
  onStarted?: () => void;
  onProgress?: (percent: number, node: string | null) => void;
  /** Every ComfyUI execution message for this prompt, as received (before the runner acts on it). */
  onComfy?: (message: ComfyExecutionMessage) => void;
  onPreview?: (frame: PreviewFrame) => void;
}

export type AttemptResult =
  | { kind: 'completed'; outputs: Record<string, NodeOutput>; cachedNodes: string[] }
  | {
      kind: 'failed';
      /** What the classifier gets. */
      evidence: unknown;
      /** Whether the server ever had the prompt (false: safe to resubmit anywhere). */
      submitted: boolean;
      /** The prompt vanished from the server (restart): not in queue, not in history. */
      lost?: boolean;
      completedOutputs: Record<string, NodeOutput>;
    }
  | { kind: 'cancelled' }
  /** Shutdown: the prompt keeps running on the server; restart recovery reattaches. */
  | { kind: 'detached' };

export type AbortKind = 'cancel' | 'shutdown';

/** The reason to pass to `AbortController.abort()` for a cancel or a shutdown. */
export function abortReason(kind: AbortKind): { kind: AbortKind } {
  return { kind };
}

export function abortKindOf(signal: AbortSignal): AbortKind {
  const r = signal.reason as { kind?: unknown } | undefined;
  return r && r.kind === 'shutdown' ? 'shutdown' : 'cancel';
}
