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

/** A small persistent key/value store: the job store's `getMeta`/`setMeta` fit it. */
export interface MetaStore {
  getMeta(key: string): Promise<unknown>;
  setMeta(key: string, value: unknown): Promise<void>;
}

/** A MetaStore in memory, for a service without a persistent one (lost on restart). */
export function memoryMetaStore(): MetaStore {
  const m = new Map<string, unknown>();
  return {
    getMeta: async (k) => (m.has(k) ? structuredClone(m.get(k)) : null),
    setMeta: async (k, v) => {
      m.set(k, structuredClone(v));
    },
  };
}

const KEY = {
  next: 'comfy:next-number',
  entry: (jobId: string) => `comfy:job:${jobId}`,
  alias: (promptId: string) => `comfy:alias:${promptId}`,
  terminal: (jobId: string) => `comfy:terminal:${jobId}`,
};

/**
 * Bounded maps of the compat endpoint; the oldest entries go first. Entries of jobs submitted
 * through `/comfy/prompt` (client prompt id, client id, number) and ComfyUI's terminal messages are
 * also written to a MetaStore, so a restarted comfyguard answers clients the same way.
 */
export class CompatRegistry {
  readonly #byJob = new Map<string, CompatEntry>();
  readonly #aliases = new Map<string, string>();
  readonly #files = new Map<string, string>();
  /** ComfyUI's own terminal message of each job's final attempt (for `/history`). */
  readonly #terminal = new Map<string, WsMessage>();
  readonly #max: number;
  readonly #meta: MetaStore;
  #next = 0;
  #loaded: Promise<void> | null = null;
  /** Writes to the MetaStore, in order. */
  #writes: Promise<void> = Promise.resolve();

  constructor(opts: { maxEntries?: number; meta?: MetaStore; onWriteError?: (err: unknown) => void } = {}) {
    this.#max = opts.maxEntries ?? 10_000;
    this.#meta = opts.meta ?? memoryMetaStore();
    this.#onWriteError = opts.onWriteError ?? (() => undefined);
  }

  readonly #onWriteError: (err: unknown) => void;

  /** Records a job submitted through `/comfy/prompt`, persisted before it resolves. */
  async add(jobId: string, opts: { clientId?: string | null; promptId?: string; number?: number; front?: boolean } = {}): Promise<CompatEntry> {
    // Queue numbers go on from where the last process left off.
    await (this.#loaded ??= this.#meta.getMeta(KEY.next).then((n) => {
      if (typeof n === 'number' && n > this.#next) this.#next = n;
    }));
    const entry = this.#remember(jobId, opts);
    await this.#write([
      [KEY.next, this.#next],
      [KEY.entry(jobId), { promptId: entry.promptId, clientId: entry.clientId, number: entry.number }],
      ...(entry.promptId !== jobId ? ([[KEY.alias(entry.promptId), jobId]] as Array<[string, unknown]>) : []),
    ]);
    return entry;
  }

  #remember(jobId: string, opts: { clientId?: string | null; promptId?: string; number?: number; front?: boolean }): CompatEntry {
    const number = opts.number ?? (opts.front ? -++this.#next : ++this.#next);
    const entry: CompatEntry = { jobId, promptId: opts.promptId ?? jobId, clientId: opts.clientId ?? null, number };
    this.#byJob.delete(jobId);
    this.#byJob.set(jobId, entry);
    if (entry.promptId !== jobId) this.#aliases.set(entry.promptId, jobId);
    this.#prune();
    return entry;
  }

  #write(pairs: Array<[string, unknown]>): Promise<void> {
    const next = this.#writes.then(async () => {
      for (const [k, v] of pairs) await this.#meta.setMeta(k, v);
    });
    this.#writes = next.catch((err: unknown) => this.#onWriteError(err));
    return next;
  }

  /** The entry of a job, created on first sight (not persisted) for jobs submitted through the main API. */
  entry(jobId: string): CompatEntry {
    return this.#byJob.get(jobId) ?? this.#remember(jobId, {});
  }

  /** The entry of a job from memory, else from the MetaStore (a job submitted before a restart). */
  async load(jobId: string): Promise<CompatEntry | undefined> {
    const known = this.#byJob.get(jobId);
    if (known) return known;
    const v = (await this.#meta.getMeta(KEY.entry(jobId))) as { promptId?: unknown; clientId?: unknown; number?: unknown } | null;
    if (!v || typeof v.promptId !== 'string' || typeof v.number !== 'number') return undefined;
    const terminal = await this.#meta.getMeta(KEY.terminal(jobId));
    if (terminal && typeof terminal === 'object' && !this.#terminal.has(jobId)) this.#terminal.set(jobId, terminal as WsMessage);
    return this.#byJob.get(jobId) ?? this.#remember(jobId, { promptId: v.promptId, clientId: typeof v.clientId === 'string' ? v.clientId : null, number: v.number });
  }

  /** The job id behind a prompt id, from memory, else from the MetaStore. */
  async resolvePersisted(promptId: string): Promise<string> {
    const known = this.#aliases.get(promptId);
    if (known) return known;
    const v = await this.#meta.getMeta(KEY.alias(promptId));
    return typeof v === 'string' ? v : promptId;
  }

  /** The entry of a job, only when one exists (no side effect). */
  peek(jobId: string): CompatEntry | undefined {
    return this.#byJob.get(jobId);
  }

  /** The job id behind a prompt id a client sends (its alias, or the job id itself). */
  resolve(promptId: string): string {
    return this.#aliases.get(promptId) ?? promptId;
  }

  /** True when a prompt id already names a job (as an alias or as a job id). */
  isTaken(promptId: string): boolean {
    return this.#aliases.has(promptId) || this.#byJob.has(promptId);
  }

  /** Whether a caller with this clientId may act on a job: the submitter, or a caller that does not say who it is (as in ComfyUI). */
  allows(jobId: string, clientId: string | undefined): boolean {
    const owner = this.#byJob.get(jobId)?.clientId ?? null;
    return !(clientId && owner !== null && owner !== clientId);
  }

  /**
   * The job id behind a prompt id, for a caller that says who it is: null when the job was
   * submitted by another client (a caller without a clientId is not told apart, as in ComfyUI).
   */
  resolveFor(promptId: string, clientId: string | undefined): string | null {
    const jobId = this.resolve(promptId);
    const owner = this.#byJob.get(jobId)?.clientId ?? null;
    if (clientId && owner !== null && owner !== clientId) return null;
    return jobId;
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
    if (this.#byJob.get(jobId)?.promptId !== undefined) void this.#write([[KEY.terminal(jobId), message]]).catch(() => undefined);
  }

  /** Resolves once every write so far reached the MetaStore. */
  flushed(): Promise<void> {
    return this.#writes;
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
