/**
 * What the ComfyUI-compatible endpoint remembers about the jobs it has seen: the submitting
 * `client_id` (to route WebSocket events), the queue `number`, a client-chosen `prompt_id` (an alias
 * of the job id), and which server holds each output file (for `/view`). In memory and bounded,
 * like ComfyUI's own queue; the jobs themselves live in the guard's store.
 */

import type { WsMessage } from '../../comfy/types.js';

export interface CompatEntry {
  jobId: string;
  /** The id the ComfyUI client knows the job by: its own `prompt_id`, else the job id. */
  promptId: string;
  clientId: string | null;
  number: number;
}

function fileKey(f: { filename: string; subfolder: string; type: string }): string {
  return `${f.type}\u0000${f.subfolder}\u0000${f.filename}`;
}

/** Bounded maps of the compat endpoint; the oldest entries go first. */
export class CompatRegistry {
  readonly #byJob = new Map<string, CompatEntry>();
  readonly #aliases = new Map<string, string>();
  readonly #files = new Map<string, string>();
  /** ComfyUI's own terminal message of each job's final attempt (for `/history`). */
  readonly #terminal = new Map<string, WsMessage>();
  readonly #max: number;
  #next = 0;

  constructor(opts: { maxEntries?: number } = {}) {
    this.#max = opts.maxEntries ?? 10_000;
  }

  /** Records a job submitted through `/comfy/prompt`. */
  add(jobId: string, opts: { clientId?: string | null; promptId?: string; number?: number; front?: boolean } = {}): CompatEntry {
    const number = opts.number ?? (opts.front ? -++this.#next : ++this.#next);
    const entry: CompatEntry = { jobId, promptId: opts.promptId ?? jobId, clientId: opts.clientId ?? null, number };
    this.#byJob.delete(jobId);
    this.#byJob.set(jobId, entry);
    if (entry.promptId !== jobId) this.#aliases.set(entry.promptId, jobId);
    this.#prune();
    return entry;
  }

  /** The entry of a job, created on first sight for jobs submitted through the main API. */
  entry(jobId: string): CompatEntry {
    return this.#byJob.get(jobId) ?? this.add(jobId);
  }

  /** The entry of a job, only when one exists (no side effect). */
  peek(jobId: string): CompatEntry | undefined {
    return this.#byJob.get(jobId);
  }

  /** The job id behind a prompt id a client sends (its alias, or the job id itself). */
  resolve(promptId: string): string {
    return this.#aliases.get(promptId) ?? promptId;
  }

  /** Remembers which server holds an output file. */
  rememberFile(file: { filename: string; subfolder: string; type: string }, server: string): void {
    const key = fileKey(file);
    this.#files.delete(key);
    this.#files.set(key, server);
    if (this.#files.size > this.#max * 4) this.#files.delete(this.#files.keys().next().value as string);
  }

  /** The server known to hold an output file, if any. */
  serverOf(file: { filename: string; subfolder: string; type: string }): string | undefined {
    return this.#files.get(fileKey(file));
  }

  /** Keeps ComfyUI's terminal message of a job's final attempt. */
  rememberTerminal(jobId: string, message: WsMessage): void {
    this.#terminal.delete(jobId);
    this.#terminal.set(jobId, message);
    if (this.#terminal.size > this.#max) this.#terminal.delete(this.#terminal.keys().next().value as string);
  }

  /** ComfyUI's terminal message of a job's final attempt, if it was seen. */
  terminalOf(jobId: string): WsMessage | undefined {
    return this.#terminal.get(jobId);
  }

  #prune(): void {
    while (this.#byJob.size > this.#max) {
      const [oldest, e] = this.#byJob.entries().next().value as [string, CompatEntry];
      this.#byJob.delete(oldest);
      if (e.promptId !== oldest && this.#aliases.get(e.promptId) === oldest) this.#aliases.delete(e.promptId);
    }
  }
}
