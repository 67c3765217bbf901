/**
 * The ComfyUI REST API of the simulator (every route also answers under `/api`). Handlers follow
 * ComfyUI 0.3.64's `server.py` line by line where behaviour is observable: what raises (a text
 * 500), what answers an empty 200, what a bad query or body does, how `number` counts.
 */
import { randomUUID } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { extname, join } from 'node:path';
import type { QueueItem } from '../comfy/types.js';
import { MODEL_FOLDERS, NODE_SPECS, nodeInfo, validationEnv, type CatalogContext, type NodeSpec } from './catalog.js';
import type { Executor } from './executor.js';
import type { FaultInjector } from './faults.js';
import { emptyResponse, internalError, jsonResponse, parseJsonBody, type SimRequest, type SimResponse } from './http-util.js';
import type { MemoryModel } from './memory.js';
import type { ResolvedOptions } from './options.js';
import { PyError, pyContains, pyFloat, pyInt, pyStr, pyTruthy } from '../comfy/pyfmt.js';
import type { PromptQueue } from './queue.js';
import type { DirType, SimStorage } from './storage.js';
import { handleDeleteRoutes } from './delete-routes.js';
import { HandlerCrash, validatePrompt } from '../comfy/validate.js';

/** The state of one simulated server process (replaced by a crash or a reset). */
export interface Runtime {
  abort: AbortController;
  queue: PromptQueue;
  executor: Executor;
  memory: MemoryModel;
  /** ComfyUI's `self.number`, the next default queue number. */
  number: number;
}

/** What the routes need from the simulator. */
export interface RouteContext {
  readonly rt: Runtime;
  readonly opts: ResolvedOptions;
  readonly storage: SimStorage;
  readonly faults: FaultInjector;
  readonly catalog: CatalogContext;
  readonly port: number;
  spec(classType: string): NodeSpec | undefined;
  modelFolders(): string[];
  modelList(folder: string): string[] | undefined;
}

const MIME: Record<string, string> = {
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.webp': 'image/webp',
  '.gif': 'image/gif',
  '.json': 'application/json',
  '.txt': 'text/plain',
  '.mp4': 'video/mp4',
  '.wav': 'audio/x-wav',
};

function isDict(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** `json_data.get(key)` in Python: AttributeError (a 500) when the body is not an object. */
function pyGet(data: unknown, key: string): unknown {
  if (!isDict(data)) throw new PyError('AttributeError', `'${Array.isArray(data) ? 'list' : typeof data}' object has no attribute 'get'`);
  return data[key];
}

/** Iterates a Python value like `for x in v`. */
function pyIter(v: unknown): unknown[] {
  if (Array.isArray(v)) return v;
  if (typeof v === 'string') return [...v];
  if (isDict(v)) return Object.keys(v);
  throw new PyError('TypeError', 'object is not iterable');
}

/** The first literal model file a prompt references, with its folder. */
function firstModelReference(prompt: unknown): { folder: string; file: string } | undefined {
  if (!isDict(prompt)) return undefined;
  for (const node of Object.values(prompt)) {
    if (!isDict(node) || typeof node.class_type !== 'string' || !isDict(node.inputs)) continue;
    const spec = NODE_SPECS.get(node.class_type);
    for (const [input, folder] of Object.entries(spec?.modelInputs ?? {})) {
      const v = node.inputs[input];
      if (typeof v === 'string') return { folder, file: v };
    }
  }
  return undefined;
}

/** The first class_type of a prompt that this server has (the `missing_node` fault removes it). */
function firstNodeType(prompt: unknown, ctx: RouteContext): string | undefined {
  if (!isDict(prompt)) return undefined;
  for (const node of Object.values(prompt)) {
    if (isDict(node) && typeof node.class_type === 'string' && ctx.spec(node.class_type)) return node.class_type;
  }
  return undefined;
}

function postPrompt(ctx: RouteContext, req: SimRequest): SimResponse {
  const data = parseJsonBody(req.body);
  const rt = ctx.rt;
  let number: number;
  if (pyContains(data, 'number')) {
    if (!isDict(data)) throw new PyError('TypeError', 'indices must be integers');
    number = pyFloat(data.number);
  } else {
    number = rt.number;
    if (pyContains(data, 'front')) {
      if (!isDict(data)) throw new PyError('TypeError', 'indices must be integers');
      if (pyTruthy(data.front)) number = -number;
    }
    rt.number += 1;
  }
  if (!pyContains(data, 'prompt') || !isDict(data)) {
    if (pyContains(data, 'prompt')) throw new PyError('TypeError', 'indices must be integers');
    return jsonResponse(
      { error: { type: 'no_prompt', message: 'No prompt provided', details: 'No prompt provided', extra_info: {} }, node_errors: {} },
      400,
    );
  }
  const prompt = data.prompt;
  const promptId = 'prompt_id' in data ? pyStr(data.prompt_id) : randomUUID();
  const partial = 'partial_execution_targets' in data ? data.partial_execution_targets : null;

  // Fault kinds that act on validation: a node type or a model file "is not on this server".
  let spec = (c: string) => ctx.spec(c);
  let catalog = ctx.catalog;
  const victimNode = firstNodeType(prompt, ctx);
  if (victimNode && ctx.faults.roll('missing_node')) {
    ctx.faults.record('missing_node');
    spec = (c) => (c === victimNode ? undefined : ctx.spec(c));
  }
  const model = firstModelReference(prompt);
  if (model && ctx.faults.roll('missing_model')) {
    ctx.faults.record('missing_model');
    const base = catalog;
    catalog = { ...base, modelList: (folder) => base.modelList(folder).filter((f) => !(folder === model.folder && f === model.file)) };
  }

  const valid = validatePrompt(prompt, partial, validationEnv(spec, catalog));
  let extraData: unknown = 'extra_data' in data ? data.extra_data : {};
  if ('client_id' in data) {
    if (!isDict(extraData)) throw new PyError('TypeError', "'list' object does not support item assignment");
    extraData = { ...extraData, client_id: data.client_id };
  }
  if (!valid.ok) {
    return jsonResponse({ error: valid.error, node_errors: valid.nodeErrors }, 400);
  }
  const item: QueueItem = [number, promptId, prompt as QueueItem[2], (isDict(extraData) ? extraData : {}) as QueueItem[3], valid.outputs];
  try {
    rt.queue.put(item);
  } finally {
    rt.executor.kick();
  }
  return jsonResponse({ prompt_id: promptId, number, node_errors: valid.nodeErrors });
}

function postQueueOrHistory(ctx: RouteContext, req: SimRequest, which: 'queue' | 'history'): SimResponse {
  const data = parseJsonBody(req.body);
  const rt = ctx.rt;
  if (pyContains(data, 'clear') && isDict(data) && pyTruthy(data.clear)) {
    if (which === 'queue') rt.queue.wipeQueue();
    else rt.queue.wipeHistory();
  }
  if (pyContains(data, 'delete')) {
    if (!isDict(data)) throw new PyError('TypeError', 'indices must be integers');
    for (const id of pyIter(data.delete)) {
      if (which === 'queue') rt.queue.deleteQueueItem(id);
      else rt.queue.deleteHistoryItem(id);
    }
  }
  return emptyResponse();
}

function postInterrupt(ctx: RouteContext, req: SimRequest): SimResponse {
  let data: unknown;
  try {
    data = parseJsonBody(req.body);
  } catch {
    data = {};
  }
  const promptId = pyGet(data, 'prompt_id');
  if (pyTruthy(promptId)) {
    if (ctx.rt.queue.runningItems().some((item) => item[1] === promptId)) ctx.rt.executor.interrupt();
  } else {
    ctx.rt.executor.interrupt();
  }
  return emptyResponse();
}

function postFree(ctx: RouteContext, req: SimRequest): SimResponse {
  const data = parseJsonBody(req.body);
  const unload = pyGet(data, 'unload_models') ?? false;
  const free = pyGet(data, 'free_memory') ?? false;
  if (pyTruthy(unload)) ctx.rt.queue.setFlag('unload_models', unload);
  if (pyTruthy(free)) ctx.rt.queue.setFlag('free_memory', free);
  ctx.rt.executor.flagsChanged();
  return emptyResponse();
}

function getHistory(ctx: RouteContext, req: SimRequest): SimResponse {
  const maxRaw = req.query.get('max_items');
  const offsetRaw = req.query.get('offset');
  const maxItems = maxRaw === null ? undefined : pyInt(maxRaw);
  const offset = offsetRaw === null ? -1 : pyInt(offsetRaw);
  return jsonResponse(ctx.rt.queue.getHistory(maxItems, offset));
}

/** `/system_stats` for this server's device. */
export function systemStats(ctx: RouteContext): Record<string, unknown> {
  const mem = ctx.rt.memory;
  const cpu = ctx.opts.device === 'cpu';
  const argv = ['main.py', '--listen', ctx.opts.host, '--port', String(ctx.port)];
  if (cpu) argv.splice(1, 0, '--cpu');
  const loaded = mem.loadedBytes();
  const device = cpu
    ? { name: 'cpu', type: 'cpu', index: null, vram_total: mem.ramTotal, vram_free: mem.ramFree(), torch_vram_total: mem.ramTotal, torch_vram_free: mem.ramFree() }
    : {
        name: `cuda:0 ${gpuName(mem.vramTotal)} : cudaMallocAsync`,
        type: 'cuda',
        index: 0,
        vram_total: mem.vramTotal,
        vram_free: mem.vramFree(),
        torch_vram_total: loaded,
        torch_vram_free: Math.round(loaded * 0.02),
      };
  return {
    system: {
      os: 'posix',
      ram_total: mem.ramTotal,
      ram_free: mem.ramFree(),
      comfyui_version: ctx.opts.version,
      required_frontend_version: '1.27.10',
      installed_templates_version: null,
      required_templates_version: '0.1.95',
      python_version: '3.12.3 (main, Sep 11 2025, 14:09:16) [GCC 13.3.0]',
      pytorch_version: cpu ? '2.8.0+cpu' : '2.8.0+cu128',
      embedded_python: false,
      argv,
    },
    devices: [device],
  };
}

function gpuName(vram: number): string {
  const gib = vram / 2 ** 30;
  if (gib >= 70) return 'NVIDIA H100 80GB HBM3';
  if (gib >= 40) return 'NVIDIA A100-SXM4-40GB';
  if (gib >= 20) return 'NVIDIA GeForce RTX 4090';
  if (gib >= 14) return 'NVIDIA GeForce RTX 4080';
  if (gib >= 10) return 'NVIDIA GeForce RTX 3060';
  if (gib >= 7) return 'NVIDIA GeForce RTX 3070';
  return 'NVIDIA GeForce GTX 1650';
}

async function uploadImage(ctx: RouteContext, req: SimRequest): Promise<SimResponse> {
  const contentType = String(req.headers['content-type'] ?? '');
  let form: FormData;
  try {
    form = await new Response(new Uint8Array(req.body), { headers: { 'content-type': contentType } }).formData();
  } catch {
    return internalError();
  }
  const image = form.get('image');
  const typeField = form.get('type');
  const type = typeof typeField === 'string' ? typeField : 'input';
  if (type !== 'input' && type !== 'temp' && type !== 'output') return internalError(); // UnboundLocalError in ComfyUI
  if (!image || typeof image === 'string') return emptyResponse(400);
  if (!image.name) return emptyResponse(400);
  const subfolder = typeof form.get('subfolder') === 'string' ? (form.get('subfolder') as string) : '';
  const overwrite = form.get('overwrite');
  const data = Buffer.from(await image.arrayBuffer());
  const saved = await ctx.storage.upload(type as DirType, subfolder, image.name, data, overwrite === 'true' || overwrite === '1');
  if (!saved) return emptyResponse(400);
  return jsonResponse({ name: saved.filename, subfolder: saved.subfolder, type: saved.type });
}

function view(ctx: RouteContext, req: SimRequest): SimResponse {
  const r = ctx.storage.resolveView(req.query);
  if ('status' in r) return emptyResponse(r.status);
  const type = MIME[extname(r.filename).toLowerCase()] ?? 'application/octet-stream';
  return { status: 200, headers: { 'Content-Type': type, 'Content-Disposition': `filename="${r.filename}"` }, body: readFileSync(r.path) };
}

function internalFiles(ctx: RouteContext, type: string): SimResponse {
  if (type !== 'output' && type !== 'input' && type !== 'temp') return jsonResponse({ error: 'Invalid directory type' }, 400);
  const dir = ctx.storage.dir(type);
  const files = readdirSync(dir)
    .map((f) => ({ f, st: statSync(join(dir, f)) }))
    .filter((x) => x.st.isFile())
    .sort((a, b) => b.st.mtimeMs - a.st.mtimeMs)
    .map((x) => x.f);
  return jsonResponse(files);
}

const ROOT_HTML = '<!doctype html><html><head><title>ComfyUI</title></head><body><p>comfyguard ComfyUI simulator</p></body></html>';

/** Paths ComfyUI serves, with their methods, so a wrong method answers 405 like aiohttp. */
const KNOWN_METHODS: Record<string, string[]> = {
  '/prompt': ['GET', 'HEAD', 'POST'],
  '/queue': ['GET', 'HEAD', 'POST'],
  '/history': ['GET', 'HEAD', 'POST'],
  '/interrupt': ['POST'],
  '/free': ['POST'],
  '/upload/image': ['POST'],
  '/upload/mask': ['POST'],
  '/system_stats': ['GET', 'HEAD'],
  '/object_info': ['GET', 'HEAD'],
  '/features': ['GET', 'HEAD'],
  '/models': ['GET', 'HEAD'],
  '/view': ['GET', 'HEAD'],
};

/** The methods ComfyUI allows on `path`, when the path exists but the method does not. */
export function allowedMethods(path: string): string[] | undefined {
  return KNOWN_METHODS[path];
}

/** Routes one ComfyUI request; returns undefined for an unknown path (404). */
export async function handleComfy(ctx: RouteContext, req: SimRequest): Promise<SimResponse | undefined> {
  const { method, path } = req;
  const get = method === 'GET' || method === 'HEAD';
  const segments = path.split('/').slice(1).map((s) => decodeURIComponent(s));
  const [first, second] = segments;
  if (ctx.opts.deleteRoutes) {
    const deleted = handleDeleteRoutes(ctx.storage, req);
    if (deleted) return deleted;
  }
  try {
    if (segments.length === 1) {
      switch (`${get ? 'GET' : method} /${first}`) {
        case 'GET /':
          return { status: 200, headers: { 'Content-Type': 'text/html', 'Cache-Control': 'no-cache' }, body: ROOT_HTML };
        case 'GET /prompt':
          return jsonResponse({ exec_info: { queue_remaining: ctx.rt.queue.tasksRemaining() } });
        case 'POST /prompt':
          return postPrompt(ctx, req);
        case 'GET /queue':
          return jsonResponse({ queue_running: ctx.rt.queue.runningItems(), queue_pending: ctx.rt.queue.pendingItems() });
        case 'POST /queue':
          return postQueueOrHistory(ctx, req, 'queue');
        case 'GET /history':
          return getHistory(ctx, req);
        case 'POST /history':
          return postQueueOrHistory(ctx, req, 'history');
        case 'POST /interrupt':
          return postInterrupt(ctx, req);
        case 'POST /free':
          return postFree(ctx, req);
        case 'GET /system_stats':
          return jsonResponse(systemStats(ctx));
        case 'GET /features':
          return jsonResponse({ supports_preview_metadata: true, max_upload_size: ctx.opts.maxUploadSize });
        case 'GET /object_info': {
          const out: Record<string, unknown> = {};
          for (const spec of NODE_SPECS.values()) if (ctx.spec(spec.classType)) out[spec.classType] = nodeInfo(spec, ctx.catalog);
          return jsonResponse(out);
        }
        case 'GET /models':
          return jsonResponse(ctx.modelFolders());
        case 'GET /embeddings':
          return jsonResponse((ctx.modelList('embeddings') ?? []).map((f) => f.replace(/\.[^.]+$/, '')));
        case 'GET /extensions':
          return jsonResponse([]);
        case 'GET /view':
          return view(ctx, req);
        case 'GET /settings':
        case 'GET /i18n':
          return jsonResponse({});
        case 'GET /users':
          return jsonResponse({ storage: 'server', migrated: true });
        default:
          break;
      }
    }
    if (segments.length === 2) {
      const key = `${get ? 'GET' : method} /${first}`;
      if (key === 'GET /history' && second !== undefined) {
        const entry = ctx.rt.queue.historyEntry(second);
        return jsonResponse(entry ? { [second]: entry } : {});
      }
      if (key === 'GET /object_info' && second !== undefined) {
        const spec = ctx.spec(second);
        return jsonResponse(spec ? { [second]: nodeInfo(spec, ctx.catalog) } : {});
      }
      if (key === 'GET /models' && second !== undefined) {
        const list = ctx.modelList(second);
        return list === undefined ? emptyResponse(404) : jsonResponse(list);
      }
      if ((key === 'POST /upload' && (second === 'image' || second === 'mask'))) return await uploadImage(ctx, req);
      if (key === 'GET /view_metadata') return emptyResponse(404);
    }
    if (first === 'internal' && !req.rawPath.startsWith('/api/')) {
      const rest = segments.slice(1).join('/');
      if (method === 'PATCH' && rest === 'logs/subscribe') return emptyResponse();
      if (get && rest === 'logs') return jsonResponse('');
      if (get && rest === 'logs/raw') return jsonResponse({ entries: [], size: { cols: 80, rows: 24 } });
      if (get && segments[1] === 'files' && segments.length === 3) return internalFiles(ctx, segments[2] ?? '');
    }
  } catch (e) {
    if (e instanceof PyError || e instanceof HandlerCrash || e instanceof SyntaxError) return internalError();
    throw e;
  }
  return undefined;
}

/** The model folders `GET /models` lists: ComfyUI's, then any extra configured folder. */
export function modelFolderList(configured: Record<string, string[]>): string[] {
  const out = [...MODEL_FOLDERS];
  for (const f of Object.keys(configured)) if (!out.includes(f)) out.push(f);
  return out;
}
