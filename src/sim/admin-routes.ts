/**
 * The simulator's own routes under `/_sim/` (not part of ComfyUI's API, never subject to faults):
 * stats, fault SPEC get/set, reset, crash, and model/node availability. Bad input gets a 400 whose
 * `error` names the bad part.
 */
import { SimConfigError } from './errors.js';
import { adminJson, type SimRequest, type SimResponse } from './http-util.js';
import type { SimStats } from './stats.js';

/** What the admin routes can do to the simulator. */
export interface AdminTarget {
  stats(): SimStats;
  getFaults(): string;
  setFaults(spec: string): void;
  reset(): void;
  /** Starts a crash once the response is on its way. */
  crashSoon(): void;
  setModels(folder: string, files: string[]): void;
  removeNodeType(classType: string): void;
  restoreNodeType(classType: string): void;
  state(): Record<string, unknown>;
}

function bad(where: string, message: string): SimResponse {
  return adminJson({ error: `${where}: ${message}` }, 400);
}

function parseBody(req: SimRequest): { ok: true; value: Record<string, unknown> } | { ok: false; response: SimResponse } {
  const text = req.body.toString('utf8');
  if (text.trim() === '') return { ok: true, value: {} };
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    return { ok: false, response: bad('body', `not valid JSON (${(e as Error).message})`) };
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return { ok: false, response: bad('body', 'must be a JSON object') };
  return { ok: true, value: v as Record<string, unknown> };
}

/** Handles `/_sim/*`. */
export function handleAdmin(target: AdminTarget, req: SimRequest): SimResponse {
  const route = `${req.method === 'HEAD' ? 'GET' : req.method} ${req.rawPath.replace(/\/+$/, '')}`;
  const body = req.method === 'POST' ? parseBody(req) : { ok: true as const, value: {} as Record<string, unknown> };
  if (!body.ok) return body.response;
  const b: Record<string, unknown> = body.value;
  switch (route) {
    case 'GET /_sim/stats':
      return adminJson(target.stats());
    case 'GET /_sim/state':
      return adminJson(target.state());
    case 'GET /_sim/faults':
      return adminJson({ faults: target.getFaults() });
    case 'POST /_sim/faults': {
      if (typeof b.faults !== 'string') return bad('body.faults', 'expected a fault SPEC string, e.g. {"faults": "oom=0.1,http503@/prompt=0.5"}');
      try {
        target.setFaults(b.faults);
      } catch (e) {
        if (e instanceof SimConfigError) return adminJson({ error: e.message }, 400);
        throw e;
      }
      return adminJson({ faults: target.getFaults() });
    }
    case 'POST /_sim/reset':
      target.reset();
      return adminJson({ reset: true });
    case 'POST /_sim/crash':
      target.crashSoon();
      return adminJson({ crashing: true });
    case 'POST /_sim/models': {
      if (typeof b.folder !== 'string' || !/^[A-Za-z0-9_]+$/.test(b.folder)) return bad('body.folder', 'expected a model folder name such as "checkpoints"');
      if (!Array.isArray(b.files) || b.files.some((f: unknown) => typeof f !== 'string')) return bad('body.files', 'expected a list of file names');
      target.setModels(b.folder, b.files as string[]);
      return adminJson({ folder: b.folder, files: b.files });
    }
    case 'POST /_sim/nodes': {
      const remove = b.remove ?? [];
      const restore = b.restore ?? [];
      if (!Array.isArray(remove) || remove.some((c) => typeof c !== 'string')) return bad('body.remove', 'expected a list of class_type names');
      if (!Array.isArray(restore) || restore.some((c) => typeof c !== 'string')) return bad('body.restore', 'expected a list of class_type names');
      for (const c of remove as string[]) target.removeNodeType(c);
      for (const c of restore as string[]) target.restoreNodeType(c);
      return adminJson({ removed: remove, restored: restore });
    }
    default:
      return adminJson(
        { error: `${route}: unknown admin route (GET /_sim/stats, GET /_sim/state, GET|POST /_sim/faults, POST /_sim/reset, POST /_sim/crash, POST /_sim/models, POST /_sim/nodes)` },
        404,
      );
  }
}
