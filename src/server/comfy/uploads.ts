/**
 * Files ComfyUI clients upload (`/upload/image`, `/upload/mask`), kept by comfyguard because the
 * server that will run the job is not known yet, and delivered to whichever server an attempt goes
 * to (again after a failover) from the guard's `prepareAttempt` hook. In memory, bounded by bytes;
 * the oldest files go first.
 */
import { createHash } from 'node:crypto';
import type { ApiWorkflow } from '../../comfy/types.js';
import { plainUploadName } from '../../comfy/object-info-env.js';

export type UploadType = 'input' | 'temp' | 'output';

/** One kept file. A mask also names the image it is applied to (ComfyUI composes them). */
export interface UploadedFile {
  type: UploadType;
  subfolder: string;
  filename: string;
  data: Uint8Array;
  contentType: string;
  /** For `/upload/mask`: the `original_ref` the server composes the mask into. */
  originalRef?: { filename: string; subfolder: string; type: string };
}

/** What `prepareAttempt` hands over (the guard's PrepareAttemptContext, structurally). */
export interface DeliveryTarget {
  client: {
    readonly baseUrl: string;
    uploadImage(file: { name: string; data: Uint8Array; contentType?: string }, params?: { type?: string; subfolder?: string; overwrite?: boolean }, opts?: { signal?: AbortSignal }): Promise<unknown>;
  };
  workflow: ApiWorkflow;
  signal: AbortSignal;
}

function key(type: string, subfolder: string, filename: string): string {
  return `${type}\u0000${subfolder}\u0000${filename}`;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.byteLength === b.byteLength && createHash('sha256').update(a).digest('hex') === createHash('sha256').update(b).digest('hex');
}

/** `photo.png`, `photo (1).png`, ... as ComfyUI names a clashing upload. */
function numbered(filename: string, i: number): string {
  const dot = filename.lastIndexOf('.');
  return dot > 0 ? `${filename.slice(0, dot)} (${i})${filename.slice(dot)}` : `${filename} (${i})`;
}

/** The value a workflow uses to name a file: `subfolder/name`, or `name`, optionally annotated ` [type]`. */
export function parseFileValue(value: string): { type: UploadType; subfolder: string; filename: string } {
  const m = / \[(input|output|temp)\]$/.exec(value);
  const plain = plainUploadName(value);
  const slash = plain.lastIndexOf('/');
  return { type: (m?.[1] as UploadType | undefined) ?? 'input', subfolder: slash >= 0 ? plain.slice(0, slash) : '', filename: slash >= 0 ? plain.slice(slash + 1) : plain };
}

/** The uploads comfyguard keeps for ComfyUI clients. */
export class UploadStore {
  readonly #files = new Map<string, UploadedFile>();
  readonly #maxBytes: number;
  #bytes = 0;

  constructor(opts: { maxBytes?: number } = {}) {
    this.#maxBytes = opts.maxBytes ?? 512 * 1024 * 1024;
  }

  /**
   * Keeps a file like ComfyUI's upload handler: without `overwrite` a clashing name gets a number,
   * unless the bytes are the same (then the existing name is reused). Returns the name it got.
   */
  save(file: UploadedFile, overwrite: boolean): { name: string; subfolder: string; type: UploadType } {
    let filename = file.filename;
    if (!overwrite) {
      for (let i = 1; ; i++) {
        const existing = this.#files.get(key(file.type, file.subfolder, filename));
        if (!existing || sameBytes(existing.data, file.data)) break;
        filename = numbered(file.filename, i);
      }
    }
    const k = key(file.type, file.subfolder, filename);
    const old = this.#files.get(k);
    if (old) {
      this.#bytes -= old.data.byteLength;
      this.#files.delete(k);
    }
    this.#files.set(k, { ...file, filename });
    this.#bytes += file.data.byteLength;
    while (this.#bytes > this.#maxBytes && this.#files.size > 1) {
      const [oldest, f] = this.#files.entries().next().value as [string, UploadedFile];
      this.#files.delete(oldest);
      this.#bytes -= f.data.byteLength;
    }
    return { name: filename, subfolder: file.subfolder, type: file.type };
  }

  /** A kept file, by the value a workflow or `/view` names it with. */
  get(type: string, subfolder: string, filename: string): UploadedFile | undefined {
    return this.#files.get(key(type, subfolder, filename));
  }

  /** Whether a workflow value (`sub/name.png [input]`) names a kept file. */
  has(value: string): boolean {
    const f = parseFileValue(value);
    return this.#files.has(key(f.type, f.subfolder, f.filename));
  }

  get size(): number {
    return this.#files.size;
  }

  /** The kept files a workflow refers to, masks after the images they apply to. */
  referencedBy(workflow: ApiWorkflow): UploadedFile[] {
    const found = new Map<string, UploadedFile>();
    const add = (f: UploadedFile | undefined) => {
      if (!f) return;
      if (f.originalRef) add(this.get(f.originalRef.type, f.originalRef.subfolder, f.originalRef.filename));
      found.set(key(f.type, f.subfolder, f.filename), f);
    };
    for (const node of Object.values(workflow)) {
      for (const v of Object.values(node.inputs ?? {})) {
        if (typeof v !== 'string') continue;
        const f = parseFileValue(v);
        add(this.get(f.type, f.subfolder, f.filename));
      }
    }
    return [...found.values()];
  }

  /** Uploads the files an attempt's workflow refers to onto the server that will run it. */
  async deliver(target: DeliveryTarget): Promise<number> {
    const files = this.referencedBy(target.workflow);
    for (const f of files) {
      if (f.originalRef) await postMask(target.client.baseUrl, f, target.signal);
      else await target.client.uploadImage({ name: f.filename, data: f.data, contentType: f.contentType }, { type: f.type, subfolder: f.subfolder, overwrite: true }, { signal: target.signal });
    }
    return files.length;
  }
}

/** `/upload/mask` on the target server, which composes the mask into the original as ComfyUI does. */
async function postMask(baseUrl: string, f: UploadedFile, signal: AbortSignal): Promise<void> {
  const form = new FormData();
  form.set('image', new Blob([Uint8Array.from(f.data)], { type: f.contentType }), f.filename);
  form.set('type', f.type);
  form.set('subfolder', f.subfolder);
  form.set('overwrite', 'true');
  form.set('original_ref', JSON.stringify(f.originalRef));
  const res = await fetch(`${baseUrl}/upload/mask`, { method: 'POST', body: form, signal });
  await res.arrayBuffer();
  if (!res.ok) throw new Error(`delivering the mask ${f.filename} failed: the server answered ${res.status}`);
}
