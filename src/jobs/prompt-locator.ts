/**
 * Finds a prompt on its server: history first, then the queue, then history again (a finish in
 * between the two reads). Used by the attempt runner after a reconnect, an ambiguous submit, a
 * missing end marker and on its polls.
 */
import type { ComfyApi } from '../comfy/api.js';
import { outcomeFromHistory } from '../comfy/outcome.js';
import type { HistoryEntry, PromptOutcome } from '../comfy/types.js';

export type PromptWhereabouts =
  | { where: 'done'; outcome: PromptOutcome; signature?: string }
  | { where: 'running' | 'pending' | 'lost'; signature: string };

/** How many pending items are before `promptId` (ComfyUI runs the lowest number first). */
function aheadOf(pending: ReadonlyArray<readonly unknown[]>, promptId: string): number {
  const mine = pending.find((i) => i[1] === promptId);
  if (!mine) return 0;
  return pending.filter((i) => typeof i[0] === 'number' && typeof mine[0] === 'number' && i[0] < mine[0]).length;
}

function finished(entry: HistoryEntry | undefined): PromptOutcome | null {
  return (entry ? outcomeFromHistory(entry) : undefined) ?? null;
}

/**
 * Where `promptId` is. `signature` names the running prompts and how many wait before ours: when it
 * changes, the queue moved ahead of us. Throws what the client throws when the server does not answer.
 */
export async function locatePrompt(client: ComfyApi, promptId: string, opts: { timeoutMs: number }): Promise<PromptWhereabouts> {
  const first = finished((await client.getHistory(promptId, opts))[promptId]);
  if (first) return { where: 'done', outcome: first };
  const q = await client.getQueue(opts);
  const running = q.queue_running.some((i) => i[1] === promptId);
  const pending = q.queue_pending.some((i) => i[1] === promptId);
  const signature = `${q.queue_running.map((i) => i[1]).join(',')}|${pending ? aheadOf(q.queue_pending, promptId) : 0}`;
  if (running) return { where: 'running', signature };
  if (pending) return { where: 'pending', signature };
  const second = finished((await client.getHistory(promptId, opts))[promptId]);
  return second ? { where: 'done', outcome: second, signature } : { where: 'lost', signature };
}
