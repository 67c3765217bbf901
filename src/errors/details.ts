/**
 * Details a decision needs beyond the code: the failing node, the exception type, missing models
 * and node types, Retry-After. Extracted only after classification, and only what the code needs.
 */
import type { ErrorCode } from './codes.js';
import type { Facts, ValidationNodeError } from './evidence.js';

const HEAD = 8192;
const TAIL = 4096;
const EXC_HEAD = 2048;
const EXC_TAIL = 2048;

function headTail(text: string): string {
  return text.length <= HEAD + TAIL ? text : `${text.slice(0, HEAD)}\n${text.slice(-TAIL)}`;
}

/** The failing node as the evidence states it (structured fields first, then the frontend/log formats). */
export function nodeOf(f: Facts): { nodeId?: string; nodeType?: string } {
  if (f.nodeId || f.nodeType) return { ...(f.nodeId ? { nodeId: f.nodeId } : {}), ...(f.nodeType ? { nodeType: f.nodeType } : {}) };
  const t = f.text.length > HEAD ? f.text.slice(0, HEAD) : f.text;
  // includes() first: these formats are rare and the regexes are not free on long logs.
  const report = t.includes('**Node ');
  const id = (report ? /\*\*Node ID:\*\*\s*([^\s*]+)/.exec(t)?.[1] : undefined) ?? (t.includes("Node ID '#") ? /Node ID '#([^'\n]+)'/.exec(t)?.[1] : undefined);
  const type =
    (report ? /\*\*Node Type:\*\*\s*([^\n*]+?)\s*$/m.exec(t)?.[1] : undefined) ??
    (t.includes('Error occurred when executing') ? /Error occurred when executing ([^:\n]{1,120}):/.exec(t)?.[1] : undefined) ??
    (t.includes('Cannot execute because node') ? /Cannot execute because node (\S{1,120}) does not exist/.exec(t)?.[1] : undefined);
  const out: { nodeId?: string; nodeType?: string } = {};
  if (id && id !== 'N/A') out.nodeId = id;
  if (type && type !== 'N/A') out.nodeType = type.trim();
  return out;
}

const EXC_LINE = /^[ \t]*([A-Za-z_][\w.]*(?:Error|Exception|Exit|Interrupt|Fault|Warning))(?::|[ \t]*$)/gm;

/** The exception type: as given, else the last `SomethingError:` line of a traceback. */
export function exceptionTypeOf(f: Facts): string | undefined {
  if (f.exceptionType) return f.exceptionType;
  if (f.kind === 'validation' || f.kind === 'timeout' || f.kind === 'ws_close' || f.kind === 'interrupted') return undefined;
  let last: string | undefined;
  const x = f.text;
  // The final exception line is at the end of a traceback, or first in a short report.
  const t = x.length <= EXC_HEAD + EXC_TAIL ? x : `${x.slice(0, EXC_HEAD)}\n${x.slice(-EXC_TAIL)}`;
  if (!t.includes('Error') && !t.includes('Exception') && !t.includes('Exit') && !t.includes('Interrupt') && !t.includes('Fault') && !t.includes('Warning')) return undefined;
  EXC_LINE.lastIndex = 0;
  for (let m = EXC_LINE.exec(t); m !== null; m = EXC_LINE.exec(t)) last = m[1];
  return last;
}

/** Model folder for a loader input name (ComfyUI's folder_paths names). */
export function folderForInput(input: string | undefined, nodeType = ''): string | undefined {
  if (!input) return undefined;
  const i = input.toLowerCase();
  const t = nodeType.toLowerCase();
  if (/ckpt|checkpoint/.test(i)) return 'checkpoints';
  if (/lora/.test(i)) return 'loras';
  if (/^vae/.test(i)) return 'vae';
  if (/unet|diffusion/.test(i)) return 'diffusion_models';
  if (/clip_vision/.test(i) || (/clip/.test(i) && /vision/.test(t))) return 'clip_vision';
  if (/clip|text_encoder|t5/.test(i)) return 'text_encoders';
  if (/control_?net/.test(i)) return 'controlnet';
  if (/style_model/.test(i)) return 'style_models';
  if (/gligen/.test(i)) return 'gligen';
  if (/hypernetwork/.test(i)) return 'hypernetworks';
  if (/upscale/.test(i) || (i === 'model_name' && /upscale/.test(t))) return 'upscale_models';
  if (/ipadapter/.test(i)) return 'ipadapter';
  if (/embedding/.test(i)) return 'embeddings';
  return undefined;
}

/** The models folder named by a path such as `...\models\checkpoints\x.safetensors`. */
function folderFromPath(path: string): string | undefined {
  const m = /[\\/]models[\\/]([\w.-]+)[\\/]/.exec(path);
  return m?.[1];
}

export interface MissingModel {
  name: string;
  folder?: string;
  nodeId?: string;
  input?: string;
}

function pushModel(out: MissingModel[], m: MissingModel): void {
  if (m.name === '' && m.folder === undefined) return;
  if (out.some((x) => x.name === m.name && x.nodeId === m.nodeId)) return;
  out.push(m);
}

/** The missing or unusable model files a MODEL_MISSING classification is about. */
export function missingModelsOf(facts: Facts[], nodeErrors: ValidationNodeError[] | undefined, isModelError: (f: Facts) => boolean): MissingModel[] {
  const out: MissingModel[] = [];
  for (const f of facts) {
    if (f.kind === 'validation' && f.validationType === 'value_not_in_list' && isModelError(f)) {
      const folder = folderForInput(f.input, f.nodeType);
      pushModel(out, { name: f.value, ...(folder ? { folder } : {}), ...(f.nodeId ? { nodeId: f.nodeId } : {}), ...(f.input ? { input: f.input } : {}) });
    }
  }
  if (out.length > 0 || nodeErrors?.length) return out.slice(0, 50);
  for (const f of facts) {
    const t = headTail(f.text);
    if (t.includes('Value not in list')) {
      for (const m of t.matchAll(/Value not in list:?\s*([\w.-]+)\s*:\s*'([^'\n]*)'/g)) {
        const [, input = '', name = ''] = m;
        const folder = folderForInput(input);
        pushModel(out, { name, ...(folder ? { folder } : {}), input });
      }
    }
    const inFolder = t.includes('Model in folder') ? /Model in folder '([^'\n]*)' with filename '([^'\n]*)' not found/.exec(t) : null;
    if (inFolder) pushModel(out, { name: inFolder[2] ?? '', ...(inFolder[1] ? { folder: inFolder[1] } : {}) });
    const filePath =
      (t.includes('File path:') ? /File path:\s*([^\n]+)/.exec(t)?.[1] : undefined) ??
      (t.includes('No such file or directory') ? /No such file or directory:\s*'([^'\n]+)'/.exec(t)?.[1] : undefined);
    if (filePath && out.length === 0) {
      const folder = folderFromPath(filePath);
      pushModel(out, { name: filePath.trim(), ...(folder ? { folder } : {}) });
    }
    if (out.length > 0) break;
  }
  const node = facts[0] ? nodeOf(facts[0]) : {};
  return out.slice(0, 50).map((m) => (m.nodeId === undefined && node.nodeId ? { ...m, nodeId: node.nodeId } : m));
}

const NOT_A_NODE_LINE = /[.!?:]$|^(?:No |Nodes |Install|When |Warning|Please|Missing |\.\.\.|invalid prompt|Prompt )/i;

/** The node class types a MISSING_NODE classification is about. */
export function missingNodeTypesOf(facts: Facts[]): string[] {
  const out = new Set<string>();
  for (const f of facts) {
    if (f.kind === 'validation' && (f.validationType === 'missing_node_type' || f.validationType === 'invalid_prompt') && f.nodeType) out.add(f.nodeType);
    const t = headTail(f.text);
    if (t.includes('does not exist')) for (const m of t.matchAll(/Cannot execute because node (\S{1,120}) does not exist/g)) if (m[1]) out.add(m[1]);
    if (t.includes("'")) for (const m of t.matchAll(/Node (?:type |class )?'([^'\n]{1,120})' (?:is )?(?:not found|does not exist|not registered)/g)) if (m[1]) out.add(m[1]);
    if (t.includes('nknown node type')) for (const m of t.matchAll(/Unknown node type:?\s*'?([\w .+-]{1,120}?)'?\s*$/gm)) if (m[1]) out.add(m[1]);
    if (t.includes('ode type not found')) for (const m of t.matchAll(/node type not found:?\s*'?([\w .+-]{1,120}?)'?\s*$/gim)) if (m[1]) out.add(m[1]);
    const list = t.includes('were not found') ? /node types were not found:?[ \t]*\n?([\s\S]{0,4000})/.exec(t) : null;
    if (list?.[1] !== undefined) {
      let seen = 0;
      for (const raw of list[1].split('\n').slice(0, 60)) {
        const line = raw.trim();
        if (line === '') {
          if (seen > 0) break;
          continue;
        }
        if (NOT_A_NODE_LINE.test(line)) {
          if (seen > 0) break;
          continue;
        }
        // "A B C" on one line (a copied dialog) when every word looks like a class name.
        const words = line.split(/\s+/);
        if (words.length > 1 && words.every((w) => /^[\w.-]+$/.test(w) && /[A-Z_-]/.test(w.slice(1)))) words.forEach((w) => out.add(w));
        else out.add(line);
        seen++;
        if (out.size >= 50) break;
      }
    }
    const key = t.includes('NODE_CLASS_MAPPINGS') ? /NODE_CLASS_MAPPINGS\[[^\]]*\][\s\S]{0,400}?KeyError:\s*'([^'\n]+)'/.exec(t) : null;
    if (key?.[1]) out.add(key[1]);
  }
  return [...out].slice(0, 50);
}

/** Milliseconds to wait from a Retry-After header (seconds or HTTP-date) or a "retry after N" phrase. */
export function retryAfterOf(headers: Record<string, string> | undefined, text: string, now: () => number): number | undefined {
  const h = headers?.['retry-after'];
  if (h !== undefined) {
    const v = h.trim();
    if (/^\d{1,9}$/.test(v)) return clampDelay(Number(v) * 1000);
    if (/^[A-Za-z]{3},? |GMT$/.test(v)) {
      const at = Date.parse(v);
      if (!Number.isNaN(at)) return clampDelay(at - now());
    }
  }
  const t = text.length > HEAD ? text.slice(0, HEAD) : text;
  // Both phrases are rare: look for their letters before running the regexes.
  if (!t.includes('etry') && !t.includes('ETRY') && !t.includes('again')) return undefined;
  const m = /retry[- ]after["':\s=]+(\d{1,6})\b/i.exec(t);
  if (m) return clampDelay(Number(m[1]) * 1000);
  const again = /try again in (\d+(?:\.\d+)?)\s*(ms|milliseconds?|s|secs?|seconds?|m|mins?|minutes?)\b/i.exec(t);
  if (again) {
    const n = Number(again[1]);
    const unit = (again[2] ?? 's').toLowerCase();
    const ms = unit.startsWith('ms') || unit.startsWith('milli') ? n : unit.startsWith('m') ? n * 60_000 : n * 1000;
    return clampDelay(ms);
  }
  return undefined;
}

function clampDelay(ms: number): number | undefined {
  if (!Number.isFinite(ms)) return undefined;
  // A server asking for more than a day is not a hint we should obey blindly.
  return Math.round(Math.min(Math.max(0, ms), 24 * 3600 * 1000));
}

/** Codes whose classification carries the raw exception's first line as a (scrubbed) detail. */
export const CODES_WITH_EXCEPTION_DETAIL: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  'COMFYUI_GENERATION_ERROR',
  'COMFYUI_GPU_FAULT',
  'COMFYUI_DEPENDENCY_ERROR',
  'COMFYUI_OUTPUT_ERROR',
  'COMFYUI_WORKFLOW_ERROR',
  'COMFYUI_INVALID_PARAMETERS',
]);
