/**
 * Deleting a job's output files on the ComfyUI server that wrote them. ComfyUI has no API for it
 * (its routes can list and read outputs, never remove them; only `DELETE /userdata/{file}` removes
 * files, and only the user's own data), so a server can delete outputs only through a custom node
 * route configured as its `outputDelete`:
 *
 * - `'image-browsing'`: the route of the ComfyUI-Image-Browsing custom node (hayden-fr), `DELETE
 *   /image-browsing/delete` with `{"file_list": ["/output/<subfolder>/<filename>"]}`; output folder only.
 * - `"[METHOD ]/path?...{filename}..."`: any other route, called once per file with `{filename}`,
 *   `{subfolder}` and `{type}` replaced (URL-encoded); method DELETE unless given (DELETE, POST).
 * - `'none'` (the default): every file is reported as "cannot", with the reason.
 */
import type { ComfyApi, RouteRequest } from '../comfy/api.js';
import { ComfyRequestError } from '../comfy/errors.js';
import { messageOf } from '../comfy/transport.js';

/** How a server deletes output files: `'none'`, `'image-browsing'`, or a route template. */
export type OutputDeleteRoute = string;

/** One output file as ComfyUI names it. */
export interface OutputFile {
  filename: string;
  subfolder: string;
  type: string;
}

/**
 * What became of one file: `deleted`; `cannot` (the server offers no way to delete it — nothing
 * was tried); `failed` (a request was made or skipped because the server is unreachable).
 */
export type OutputFileResult = OutputFile & ({ result: 'deleted' } | { result: 'cannot' | 'failed'; reason: string });

/** Deletes output files on one server of the pool; never throws for a server problem. */
export interface OutputDeleter {
  /** One result per file, in the order given. */
  deleteOutputs(server: string, files: readonly OutputFile[], opts?: { signal?: AbortSignal }): Promise<OutputFileResult[]>;
}

/** A validated `outputDelete` value. */
export type ParsedDeleteRoute = { kind: 'none' } | { kind: 'image-browsing' } | { kind: 'template'; method: 'DELETE' | 'POST'; path: string };

const PLACEHOLDERS = ['filename', 'subfolder', 'type'];

/** Parses an `outputDelete` value; throws an Error whose message says what is wrong. */
export function parseOutputDeleteRoute(raw: string): ParsedDeleteRoute {
  const s = raw.trim();
  if (s === '' || s === 'none') return { kind: 'none' };
  if (s === 'image-browsing') return { kind: 'image-browsing' };
  const m = /^(?:(DELETE|POST)\s+)?(\/\S*)$/.exec(s);
  if (!m) throw new Error(`expected "none", "image-browsing" or a route such as "DELETE /my-node/delete?filename={filename}&subfolder={subfolder}&type={type}", got ${JSON.stringify(raw)}`);
  const path = m[2]!;
  if (!path.includes('{filename}')) throw new Error(`the route ${JSON.stringify(raw)} must contain {filename}`);
  const unknown = [...path.matchAll(/\{([^}]*)\}/g)].map((x) => x[1]!).find((n) => !PLACEHOLDERS.includes(n));
  if (unknown !== undefined) throw new Error(`the route ${JSON.stringify(raw)} has an unknown placeholder {${unknown}} (known: {filename}, {subfolder}, {type})`);
  return { kind: 'template', method: (m[1] as 'DELETE' | 'POST' | undefined) ?? 'DELETE', path };
}

export interface PoolOutputDeleterOptions {
  /** Each server's name and `outputDelete` value. */
  servers: ReadonlyArray<{ name: string; outputDelete: OutputDeleteRoute }>;
  /** The server's REST client. */
  client: (server: string) => ComfyApi;
  /** Why a server is known to be unreachable right now, or null: its files are then not tried. */
  unreachable?: (server: string) => string | null;
  /** Deadline of one delete request. @default 10_000 */
  timeoutMs?: number;
}

/** At most this many files in one image-browsing request. */
const BATCH = 100;

const NO_API = 'ComfyUI has no API to delete files; set outputDelete for this server to a custom node route (e.g. "image-browsing")';

/**
 * The default deleter: each server's `outputDelete` route over its REST client. After a server
 * fails to answer, its remaining files of the call are reported failed without trying, so an
 * unreachable server costs one timeout, not one per file.
 *
 * @example
 * const deleter = new PoolOutputDeleter({ servers: [{ name: 'gpu-1', outputDelete: 'image-browsing' }], client: (n) => pool.client(n) });
 * await deleter.deleteOutputs('gpu-1', [{ filename: 'cg_00001_.png', subfolder: '', type: 'output' }]);
 */
export class PoolOutputDeleter implements OutputDeleter {
  readonly #routes = new Map<string, ParsedDeleteRoute>();
  readonly #o: PoolOutputDeleterOptions;
  readonly #timeoutMs: number;

  constructor(o: PoolOutputDeleterOptions) {
    this.#o = o;
    this.#timeoutMs = o.timeoutMs ?? 10_000;
    for (const s of o.servers) this.#routes.set(s.name, parseOutputDeleteRoute(s.outputDelete));
  }

  async deleteOutputs(server: string, files: readonly OutputFile[], opts: { signal?: AbortSignal } = {}): Promise<OutputFileResult[]> {
    const route = this.#routes.get(server);
    if (!route) return files.map((f) => ({ ...f, result: 'cannot', reason: `no server named ${server} is configured any more` }));
    if (route.kind === 'none') return files.map((f) => ({ ...f, result: 'cannot', reason: f.type === 'temp' ? `${NO_API}; ComfyUI empties its temp folder when it restarts` : NO_API }));
    const down = this.#o.unreachable?.(server) ?? null;
    if (down !== null) return files.map((f) => ({ ...f, result: 'failed', reason: `${server} is unreachable: ${down}` }));
    const call = { signal: opts.signal, timeoutMs: this.#timeoutMs };
    return route.kind === 'image-browsing' ? this.#imageBrowsing(server, files, call) : this.#template(server, route, files, call);
  }

  async #imageBrowsing(server: string, files: readonly OutputFile[], call: { signal?: AbortSignal | undefined; timeoutMs: number }): Promise<OutputFileResult[]> {
    const results = new Map<OutputFile, OutputFileResult>();
    const outputs = files.filter((f) => f.type === 'output');
    for (const f of files) if (f.type !== 'output') results.set(f, { ...f, result: 'cannot', reason: `the image-browsing route deletes only from the output folder, not ${f.type}` });
    let gone: string | null = null;
    for (let i = 0; i < outputs.length; i += BATCH) {
      const batch = outputs.slice(i, i + BATCH);
      if (gone === null) {
        const file_list = batch.map((f) => `/output/${f.subfolder ? `${f.subfolder.replace(/\\/g, '/')}/` : ''}${f.filename}`);
        const outcome = await this.#send(server, { method: 'DELETE', path: '/image-browsing/delete', json: { file_list } }, call);
        if (outcome.ok) {
          for (const f of batch) results.set(f, { ...f, result: 'deleted' });
          continue;
        }
        if (outcome.unreachable) gone = outcome.reason;
        for (const f of batch) results.set(f, { ...f, result: 'failed', reason: outcome.reason });
        continue;
      }
      for (const f of batch) results.set(f, { ...f, result: 'failed', reason: gone });
    }
    return files.map((f) => results.get(f)!);
  }

  async #template(server: string, route: Extract<ParsedDeleteRoute, { kind: 'template' }>, files: readonly OutputFile[], call: { signal?: AbortSignal | undefined; timeoutMs: number }): Promise<OutputFileResult[]> {
    const out: OutputFileResult[] = [];
    let gone: string | null = null;
    for (const f of files) {
      if (gone !== null) {
        out.push({ ...f, result: 'failed', reason: gone });
        continue;
      }
      const path = route.path.replace(/\{(filename|subfolder|type)\}/g, (_m, k: keyof OutputFile) => encodeURIComponent(f[k]));
      const outcome = await this.#send(server, { method: route.method, path }, call);
      if (outcome.ok) out.push({ ...f, result: 'deleted' });
      else {
        if (outcome.unreachable) gone = outcome.reason;
        out.push({ ...f, result: 'failed', reason: outcome.reason });
      }
    }
    return out;
  }

  async #send(server: string, req: RouteRequest, call: { signal?: AbortSignal | undefined; timeoutMs: number }): Promise<{ ok: true } | { ok: false; unreachable: boolean; reason: string }> {
    try {
      await this.#o.client(server).send(req, { timeoutMs: call.timeoutMs, ...(call.signal ? { signal: call.signal } : {}) });
      return { ok: true };
    } catch (err) {
      if (err instanceof ComfyRequestError && err.kind === 'http') {
        const why = err.status === 404 ? 'no such file, or no such route on the server' : (err.bodyText ?? '').split('\n').find((l) => l.trim() !== '')?.slice(0, 120) || 'refused';
        return { ok: false, unreachable: false, reason: `${req.method} ${req.path.split('?')[0]} answered HTTP ${err.status}: ${why}` };
      }
      const kind = err instanceof ComfyRequestError ? err.kind : 'transport';
      if (kind === 'aborted') return { ok: false, unreachable: false, reason: 'cleanup was aborted' };
      return { ok: false, unreachable: true, reason: `${server} is unreachable: ${kind === 'timeout' ? `no answer within ${call.timeoutMs} ms` : (err instanceof ComfyRequestError ? (err.transportCode ?? messageOf(err)) : messageOf(err))}` };
    }
  }
}
