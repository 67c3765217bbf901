/**
 * Queue-time validation, as ComfyUI answers `POST /prompt`: the prompt is checked against each
 * server's `/object_info` with ComfyUI 0.3.64's own rules (comfy/validate.ts). It is accepted when
 * some server could run it, and otherwise answered with ComfyUI's exact 400 body (or its text 500
 * where ComfyUI's handler itself would crash).
 */
import { objectInfoEnv } from '../../comfy/object-info-env.js';
import type { NodeErrorEntry, NodeValidationError } from '../../comfy/types.js';
import { HandlerCrash, validatePrompt } from '../../comfy/validate.js';
import type { Guard } from '../../jobs/guard-api.js';
import type { Clock } from '../../util/clock.js';
import { upstreamOrder } from './upstream.js';

/** What aiohttp answers when a handler raises. */
export const AIOHTTP_500_TEXT = '500 Internal Server Error\n\nServer got itself in trouble';

export type PromptCheck =
  /** `prompt` is the validated graph (widget values converted as ComfyUI converts them); `servers` could run it. */
  | { ok: true; prompt: Record<string, unknown>; servers: string[]; checked: boolean }
  | { ok: false; status: 400; body: { error: NodeValidationError & { extra_info: Record<string, unknown> }; node_errors: Record<string, NodeErrorEntry> } }
  | { ok: false; status: 500; text: string };

interface CachedInfo {
  at: number;
  value: Promise<Record<string, unknown> | null>;
}

/** `/object_info` of every server, fetched once per `ttlMs` and shared by concurrent callers. */
export class ObjectInfoCache {
  readonly #guard: Guard;
  readonly #clock: Clock;
  readonly #ttlMs: number;
  readonly #timeoutMs: number;
  readonly #byUrl = new Map<string, CachedInfo>();

  constructor(opts: { guard: Guard; clock: Clock; ttlMs?: number; timeoutMs?: number }) {
    this.#guard = opts.guard;
    this.#clock = opts.clock;
    this.#ttlMs = opts.ttlMs ?? 30_000;
    this.#timeoutMs = opts.timeoutMs ?? 10_000;
  }

  /** The object_info of each server that answered, healthy servers first. */
  async all(): Promise<Array<{ server: string; info: Record<string, unknown> }>> {
    const servers = upstreamOrder((await this.#guard.servers()).filter((s) => !s.drained));
    const infos = await Promise.all(servers.map((s) => this.#get(s.url)));
    const out: Array<{ server: string; info: Record<string, unknown> }> = [];
    servers.forEach((s, i) => {
      const info = infos[i];
      if (info) out.push({ server: s.name, info });
    });
    return out;
  }

  /** Forgets every cached answer (a server's nodes or models changed). */
  clear(): void {
    this.#byUrl.clear();
  }

  #get(url: string): Promise<Record<string, unknown> | null> {
    const now = this.#clock.now();
    const hit = this.#byUrl.get(url);
    if (hit && now - hit.at < this.#ttlMs) return hit.value;
    const value = fetch(`${url}/object_info`, { signal: AbortSignal.timeout(this.#timeoutMs), headers: { accept: 'application/json' } })
      .then(async (res) => {
        if (!res.ok) return null;
        const body = (await res.json()) as unknown;
        return body && typeof body === 'object' && !Array.isArray(body) ? (body as Record<string, unknown>) : null;
      })
      .catch(() => null);
    // A failed fetch is not kept: the next prompt asks again.
    void value.then((v) => {
      if (v === null && this.#byUrl.get(url)?.value === value) this.#byUrl.delete(url);
    });
    this.#byUrl.set(url, { at: now, value });
    return value;
  }
}

/**
 * Validates `prompt` for each server; the first server's answer is the one given when none accepts
 * it. When no server's object_info can be had, the prompt is accepted unchecked (`checked: false`):
 * the engine's own failure handling takes over.
 */
export function checkPrompt(
  prompt: unknown,
  partialTargets: unknown,
  infos: Array<{ server: string; info: Record<string, unknown> }>,
  hasUpload: (name: string) => boolean,
): PromptCheck {
  if (infos.length === 0) return { ok: true, prompt: prompt as Record<string, unknown>, servers: [], checked: false };
  let first: PromptCheck | null = null;
  let accepted: Record<string, unknown> | null = null;
  const servers: string[] = [];
  for (const { server, info } of infos) {
    // validatePrompt converts widget values in place, as ComfyUI does: each server gets its own copy.
    const copy = structuredClone(prompt);
    let r: PromptCheck;
    try {
      const v = validatePrompt(copy, partialTargets, objectInfoEnv(info, hasUpload));
      r = v.ok ? { ok: true, prompt: copy as Record<string, unknown>, servers: [server], checked: true } : { ok: false, status: 400, body: { error: v.error, node_errors: v.nodeErrors } };
    } catch (err) {
      if (!(err instanceof HandlerCrash)) throw err;
      r = { ok: false, status: 500, text: AIOHTTP_500_TEXT };
    }
    first ??= r;
    if (r.ok) {
      accepted ??= r.prompt;
      servers.push(server);
    }
  }
  if (accepted) return { ok: true, prompt: accepted, servers, checked: true };
  return first!;
}
