/**
 * Custom-node routes that delete output files, served when the simulator starts with
 * `deleteRoutes` (ComfyUI itself has no such route), so comfyguard's output cleanup is tested over
 * real HTTP: the ComfyUI-Image-Browsing node's `DELETE /image-browsing/delete` (body
 * `{"file_list": ["/output/<subfolder>/<name>"]}`, answers `{"success": true}` even for a file that
 * is not there, as the node does) and a per-file `DELETE /sim-ext/delete_output?filename=&subfolder=&type=`
 * (404 when there is no such file).
 */
import { jsonResponse, parseJsonBody, type SimRequest, type SimResponse } from './http-util.js';
import type { DirType, SimStorage } from './storage.js';

/** Handles the delete routes; undefined for any other request. */
export function handleDeleteRoutes(storage: SimStorage, req: SimRequest): SimResponse | undefined {
  if (req.method !== 'DELETE') return undefined;
  if (req.path === '/image-browsing/delete') return imageBrowsingDelete(storage, req);
  if (req.path === '/sim-ext/delete_output') return deleteOne(storage, req);
  return undefined;
}

function imageBrowsingDelete(storage: SimStorage, req: SimRequest): SimResponse {
  let list: unknown;
  try {
    list = (parseJsonBody(req.body) as { file_list?: unknown } | null)?.file_list ?? [];
  } catch {
    return jsonResponse({ success: false, error: 'body is not JSON' }, 400);
  }
  if (!Array.isArray(list) || list.some((f) => typeof f !== 'string')) return jsonResponse({ success: false, error: 'file_list must be a list of paths' }, 400);
  for (const entry of list as string[]) {
    const m = /^\/output\/(.+)$/.exec(entry);
    if (!m) return jsonResponse({ success: false, error: `not under /output/: ${entry}` }, 400);
    const parts = m[1]!.split('/');
    const filename = parts.pop()!;
    if (storage.deleteFile('output', parts.join('/'), filename) === 'refused') return jsonResponse({ success: false, error: `outside the output folder: ${entry}` }, 400);
  }
  return jsonResponse({ success: true });
}

function deleteOne(storage: SimStorage, req: SimRequest): SimResponse {
  const filename = req.query.get('filename') ?? '';
  const type = req.query.get('type') ?? 'output';
  if (type !== 'output' && type !== 'temp' && type !== 'input') return jsonResponse({ error: `unknown type ${type}` }, 400);
  const r = storage.deleteFile(type as DirType, req.query.get('subfolder') ?? '', filename);
  if (r === 'refused') return jsonResponse({ error: 'not a file of that folder' }, 400);
  if (r === 'missing') return jsonResponse({ error: 'no such file' }, 404);
  return jsonResponse({ deleted: true });
}
