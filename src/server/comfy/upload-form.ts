/**
 * The multipart body of ComfyUI's `/upload/image` and `/upload/mask`, read with Node's own
 * FormData parser and checked the way ComfyUI's handlers check it: a missing file or a path that
 * leaves the upload folder is a bodyless 400, an unknown `type` or a broken `original_ref` a 500.
 */
import type { UploadedFile, UploadType } from './uploads.js';

export type UploadParse = { ok: true; file: UploadedFile; overwrite: boolean } | { ok: false; status: 400 | 500 };

function safeSegment(s: string, allowSlash: boolean): boolean {
  if (s.includes('\0') || s.startsWith('/') || s.includes('\\')) return false;
  if (!allowSlash && s.includes('/')) return false;
  return !s.split('/').some((part) => part === '..');
}

/** Parses an upload request body; `mask` also requires `original_ref`. */
export async function parseUpload(contentType: string | undefined, body: unknown, mask: boolean): Promise<UploadParse> {
  if (!contentType?.toLowerCase().startsWith('multipart/form-data') || !Buffer.isBuffer(body)) return { ok: false, status: 500 };
  let form: FormData;
  try {
    form = await new Response(new Uint8Array(body), { headers: { 'content-type': contentType } }).formData();
  } catch {
    return { ok: false, status: 500 };
  }
  const typeField = form.get('type');
  const type = typeof typeField === 'string' ? typeField : 'input';
  // ComfyUI raises (UnboundLocalError) on any other directory type.
  if (type !== 'input' && type !== 'temp' && type !== 'output') return { ok: false, status: 500 };
  const image = form.get('image');
  if (!image || typeof image === 'string' || !image.name) return { ok: false, status: 400 };
  const subfolderField = form.get('subfolder');
  const subfolder = typeof subfolderField === 'string' ? subfolderField.replace(/\/+$/, '') : '';
  if (!safeSegment(subfolder, true) || !safeSegment(image.name, false)) return { ok: false, status: 400 };
  const overwrite = form.get('overwrite');
  const file: UploadedFile = {
    type: type as UploadType,
    subfolder,
    filename: image.name,
    data: new Uint8Array(await image.arrayBuffer()),
    contentType: image.type || 'application/octet-stream',
  };
  if (mask) {
    const raw = form.get('original_ref');
    let ref: unknown;
    try {
      ref = typeof raw === 'string' ? JSON.parse(raw) : undefined;
    } catch {
      return { ok: false, status: 500 };
    }
    const r = ref as { filename?: unknown; subfolder?: unknown; type?: unknown } | undefined;
    if (!r || typeof r.filename !== 'string') return { ok: false, status: 500 };
    file.originalRef = { filename: r.filename, subfolder: typeof r.subfolder === 'string' ? r.subfolder : '', type: typeof r.type === 'string' ? r.type : 'input' };
  }
  return { ok: true, file, overwrite: overwrite === 'true' || overwrite === '1' };
}
