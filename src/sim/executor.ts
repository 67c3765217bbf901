/**
 * The prompt worker: one queue, one executor, like ComfyUI's `prompt_worker` + `PromptExecutor`.
 * It runs nodes in ComfyUI's order, reuses the classic cache, reports progress, writes history and
 * sends every WebSocket message in the order the real server sends them:
 *
 *   status (taken), execution_start, execution_cached,
 *   per node: progress_state(running), executing, [progress_state, progress, preview]*, executed?, progress_state(finished)
 *   execution_success | execution_error | execution_interrupted, status, executing{node:null}
 *
 * Execution faults (stall, crash, ws_drop, oom, disk_full) are injected here.
 */
import type { HistoryMessage, QueueItem } from '../comfy/types.js';
import { sleep, type Clock } from '../util/clock.js';
import { NODE_SPECS, type CatalogContext, type NodeSpec } from './catalog.js';
import type { FaultInjector } from './faults.js';
import { ExecutionList, isLink, nodeSignature, type PromptGraph } from './graph.js';
import { AllocationError, OOM_TIPS, cudaOomMessage, type MemoryModel } from './memory.js';
import { BEHAVIORS, NodeException, type NodeRun, type SimValue } from './node-behaviors.js';
import type { NodeGateInfo } from './options.js';
import { pyJsonDumps } from '../comfy/pyfmt.js';
import type { PromptQueue } from './queue.js';
import type { ExecutionCounters } from './stats.js';
import { SaveError, type SimStorage } from './storage.js';
import { EXECUTION_FRAMES } from './tracebacks.js';
import type { WsHub } from './ws-hub.js';

/** What the worker needs from the simulator around it. */
export interface ExecutorEnv {
  clock: Clock;
  stepMs(): number;
  previews: boolean;
  faults: FaultInjector;
  counters: ExecutionCounters;
  storage: SimStorage;
  catalog: CatalogContext;
  modelExists(folder: string, name: string): boolean;
  /** The current node gate (tests hold nodes with it), if any. */
  gate(): ((info: NodeGateInfo) => Promise<void> | void) | undefined;
  /** The crash fault fired: the simulator must crash the whole process. */
  requestCrash(): void;
}

/** ComfyUI's InterruptProcessingException. */
class InterruptError extends Error {}
/** The process died under us: stop without a trace. */
class ProcessGone extends Error {}

type NodeOutcome = { ok: true } | { ok: false; details: ErrorDetails; interrupted: boolean; cudaOom: boolean };

interface ErrorDetails {
  node_id: string;
  exception_message?: string;
  exception_type?: string;
  traceback?: string[];
  current_inputs?: Record<string, unknown[]> | unknown[];
}

/** Where the `oom` fault strikes: samplers and VAE decodes first, text encoders next, else any node. */
const OOM_TARGETS: ReadonlyArray<ReadonlySet<string>> = [new Set(['KSampler', 'KSamplerAdvanced', 'VAEDecode', 'VAEDecodeTiled']), new Set(['CLIPTextEncode'])];
const BINARY_PREVIEW = 1;
const BINARY_PREVIEW_WITH_METADATA = 4;

/** A cache keyed by input signatures that keeps only the entries of the most recent prompt. */
class SignatureCache<T> {
  private readonly entries = new Map<string, T>();
  private keys = new Map<string, string>();

  setPrompt(keys: Map<string, string>): void {
    this.keys = keys;
    const used = new Set(keys.values());
    for (const k of [...this.entries.keys()]) if (!used.has(k)) this.entries.delete(k);
  }

  get(nodeId: string): T | undefined {
    const k = this.keys.get(nodeId);
    return k === undefined ? undefined : this.entries.get(k);
  }

  set(nodeId: string, v: T): void {
    const k = this.keys.get(nodeId);
    if (k !== undefined) this.entries.set(k, v);
  }

  clear(): void {
    this.entries.clear();
  }
}

interface UiEntry {
  meta: { node_id: string; display_node: string; parent_node: null; real_node_id: string };
  output: Record<string, unknown>;
}

/** torch-like `str()` of a symbolic value, for `current_inputs`. */
function formatValue(v: unknown): unknown {
  if (v === null || v === undefined) return null;
  if (typeof v !== 'object') return v;
  const s = v as SimValue;
  const addr = `0x7f${(Math.floor(Math.random() * 0xffffffff) >>> 0).toString(16).padStart(8, '0')}`;
  switch (s.t) {
    case 'IMAGE': {
      const px = `[${s.rgb.map((c) => (c === 0 ? '0.' : c === 255 ? '1.' : (c / 255).toFixed(4))).join(', ')}]`;
      return `tensor([[[[${px.slice(1, -1)}],\n          ...,\n          ${px}]]])`;
    }
    case 'MASK':
      return 'tensor([[[0., 0., 0.,  ..., 0., 0., 0.],\n         ...,\n         [0., 0., 0.,  ..., 0., 0., 0.]]])';
    case 'LATENT':
      return "{'samples': tensor([[[[0., 0., 0.,  ..., 0., 0., 0.],\n          ...,\n          [0., 0., 0.,  ..., 0., 0., 0.]]]])}";
    case 'MODEL':
      return `<comfy.model_patcher.ModelPatcher object at ${addr}>`;
    case 'CLIP':
      return `<comfy.sd.CLIP object at ${addr}>`;
    case 'VAE':
      return `<comfy.sd.VAE object at ${addr}>`;
    default:
      return "[[tensor([[[ 0.0000,  0.0000,  0.0000,  ...,  0.0000,  0.0000,  0.0000]]]), {'pooled_output': tensor([[0., 0., 0.,  ..., 0., 0., 0.]])}]]";
  }
}

/** One simulated ComfyUI worker thread, bound to one process lifetime (`signal`). */
export class Executor {
  /** ComfyUI's `server.client_id`: the client of the running prompt (null when it has none). */
  clientId: unknown = null;
  /** ComfyUI's `server.last_node_id`, replayed to a reconnecting client. */
  lastNodeId: string | null = null;
  private busy = false;
  private kicked = false;
  private interruptFlag = false;
  private interruptWaiters: Array<() => void> = [];
  private success = true;
  private readonly outputs = new SignatureCache<SimValue[]>();
  private readonly ui = new SignatureCache<UiEntry>();
  private alwaysCounter = 0;
  private idleWaiters: Array<() => void> = [];

  constructor(
    private readonly env: ExecutorEnv,
    private readonly queue: PromptQueue,
    private readonly hub: WsHub,
    private readonly memory: MemoryModel,
    private readonly signal: AbortSignal,
  ) {
    signal.addEventListener('abort', () => this.flushIdleWaiters(), { once: true });
  }

  private flushIdleWaiters(): void {
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }

  /** Wakes the worker if it is idle. The worker runs on its own turn, as ComfyUI's thread does. */
  kick(): void {
    if (this.busy || this.kicked || this.signal.aborted) return;
    this.kicked = true;
    setImmediate(() => {
      this.kicked = false;
      if (!this.busy && !this.signal.aborted) void this.loop();
    });
  }

  /** Resolves when the queue is empty and nothing runs (or the process died). */
  whenIdle(): Promise<void> {
    if ((!this.busy && !this.kicked) || this.signal.aborted) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  isBusy(): boolean {
    return this.busy;
  }

  /** `nodes.interrupt_processing()`: the global, cooperative interrupt flag. */
  interrupt(): void {
    this.interruptFlag = true;
    const waiters = this.interruptWaiters;
    this.interruptWaiters = [];
    for (const w of waiters) w();
  }

  /** Applies `/free` flags now if the worker is idle (ComfyUI's set_flag wakes the worker). */
  flagsChanged(): void {
    if (!this.busy) this.applyFlags();
  }

  private applyFlags(): void {
    const flags = this.queue.takeFlags();
    const freeMemory = flags.free_memory ?? false;
    if (flags.unload_models ?? freeMemory) this.memory.unloadAll();
    if (freeMemory) {
      this.outputs.clear();
      this.ui.clear();
      this.success = true;
    }
  }

  private async loop(): Promise<void> {
    this.busy = true;
    try {
      for (;;) {
        if (this.signal.aborted) return;
        const next = this.queue.get();
        if (!next) break;
        try {
          await this.execute(next.item, next.id);
        } catch (e) {
          if (e instanceof ProcessGone) return;
          throw e;
        }
        this.applyFlags();
      }
      this.applyFlags();
    } finally {
      this.busy = false;
      this.flushIdleWaiters();
    }
  }

  private alive(): void {
    if (this.signal.aborted) throw new ProcessGone('process gone');
  }

  /** Simulated work; yields to the event loop even at 0 ms so HTTP keeps flowing. */
  private async work(steps: number): Promise<void> {
    const ms = steps * this.env.stepMs();
    if (ms > 0) {
      try {
        await sleep(this.env.clock, ms, this.signal);
      } catch {
        throw new ProcessGone('process gone');
      }
    } else {
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
    this.alive();
  }

  private waitFor<T>(p: Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      if (this.signal.aborted) {
        reject(new ProcessGone('process gone'));
        return;
      }
      const onAbort = () => reject(new ProcessGone('process gone'));
      this.signal.addEventListener('abort', onAbort, { once: true });
      p.then(
        (v) => {
          this.signal.removeEventListener('abort', onAbort);
          resolve(v);
        },
        (e: unknown) => {
          this.signal.removeEventListener('abort', onAbort);
          reject(e instanceof Error ? e : new Error(String(e)));
        },
      );
    });
  }

  /** `throw_exception_if_processing_interrupted`: consumes the flag. */
  private checkInterrupt(): void {
    if (this.interruptFlag) {
      this.interruptFlag = false;
      throw new InterruptError('interrupted');
    }
  }

  private async execute(item: QueueItem, itemId: number): Promise<void> {
    const [, promptId, promptRaw, extra, executeOutputs] = item;
    const prompt = promptRaw as unknown as PromptGraph;
    this.interruptFlag = false;
    this.clientId = Object.prototype.hasOwnProperty.call(extra, 'client_id') ? (extra.client_id ?? null) : null;
    const clientId = this.clientId;
    const messages: HistoryMessage[] = [];
    const addMessage = (event: string, data: Record<string, unknown>, broadcast: boolean) => {
      const full = { ...data, timestamp: Math.floor(this.env.clock.now()) };
      messages.push([event, full]);
      if (clientId !== null || broadcast) this.hub.send(event, full, clientId);
    };

    this.env.counters.record(promptId, prompt);
    addMessage('execution_start', { prompt_id: promptId }, false);

    // Progress registry: node states in first-touch order, sent as cumulative snapshots.
    const progress = new Map<string, { state: 'running' | 'finished'; value: number; max: number }>();
    const sendProgressState = () => {
      const nodes: Record<string, unknown> = {};
      for (const [id, st] of progress) {
        nodes[id] = { value: st.value, max: st.max, state: st.state, node_id: id, prompt_id: promptId, display_node_id: id, parent_node_id: null, real_node_id: id };
      }
      this.hub.send('progress_state', { prompt_id: promptId, nodes }, clientId);
    };

    const ids = Object.keys(prompt);
    const keys = new Map<string, string>();
    const isChanged = (id: string): string => {
      const node = prompt[id];
      const spec = node ? NODE_SPECS.get(node.class_type) : undefined;
      if (!spec?.isChanged) return 'False';
      if (spec.isChanged === 'always') return `always:${this.alwaysCounter++}`;
      return spec.isChanged(node?.inputs ?? {}, this.env.catalog);
    };
    const changed = new Map<string, string>();
    const isChangedOnce = (id: string) => {
      let v = changed.get(id);
      if (v === undefined) {
        v = isChanged(id);
        changed.set(id, v);
      }
      return v;
    };
    for (const id of ids) keys.set(id, nodeSignature(prompt, id, isChangedOnce, () => false));
    this.outputs.setPrompt(keys);
    this.ui.setPrompt(keys);
    const cachedNodes = ids.filter((id) => this.outputs.get(id) !== undefined);
    addMessage('execution_cached', { nodes: cachedNodes, prompt_id: promptId }, false);

    // Faults decided once per prompt, in a fixed order so a seed replays the same run.
    const f = this.env.faults;
    const plan = { stall: f.roll('stall'), crash: f.roll('crash'), wsDrop: f.roll('ws_drop'), wsDropSilent: f.roll('ws_drop_silent'), oom: f.roll('oom') };
    const oomTarget = OOM_TARGETS.find((set) => ids.some((id) => set.has(prompt[id]?.class_type ?? '') && !cachedNodes.includes(id)));
    let startFaultsDone = false;
    const startFaults = async () => {
      if (startFaultsDone) return;
      startFaultsDone = true;
      if (plan.wsDrop && this.hub.drop(clientId, true) > 0) f.record('ws_drop');
      if (plan.wsDropSilent && this.hub.drop(clientId, false) > 0) f.record('ws_drop_silent');
      if (plan.crash) {
        f.record('crash');
        this.env.requestCrash();
        throw new ProcessGone('crash');
      }
      if (plan.stall) {
        f.record('stall');
        await this.waitFor(new Promise<void>((resolve) => this.interruptWaiters.push(resolve)));
        this.checkInterrupt();
      }
    };

    const executed = new Set<string>();
    const isOutput = (id: string) => NODE_SPECS.get(prompt[id]?.class_type ?? '')?.outputNode === true;
    const list = new ExecutionList(prompt, (id) => this.outputs.get(id) !== undefined, isOutput);
    for (const o of executeOutputs) list.addNode(o);

    let failed: { details: ErrorDetails; interrupted: boolean } | undefined;
    while (!list.isEmpty()) {
      const nodeId = list.next();
      if (nodeId === undefined) {
        failed = {
          details: { node_id: list.cycleNodes()[0] ?? '', exception_message: 'Dependency cycle detected', exception_type: 'graph.DependencyCycleError', traceback: [], current_inputs: [] },
          interrupted: false,
        };
        break;
      }
      const outcome = await this.executeNode(prompt, nodeId, promptId, clientId, progress, sendProgressState, executed, startFaults, () => {
        if (!plan.oom) return false;
        const target = oomTarget ? oomTarget.has(prompt[nodeId]?.class_type ?? '') : true;
        if (target) plan.oom = false;
        return target;
      });
      this.success = outcome.ok;
      if (!outcome.ok) {
        if (outcome.cudaOom) this.memory.unloadAll();
        failed = outcome;
        break;
      }
      list.complete(nodeId);
    }
    this.alive();

    if (failed) {
      const d = failed.details;
      const classType = prompt[d.node_id]?.class_type ?? '';
      if (failed.interrupted) {
        addMessage('execution_interrupted', { prompt_id: promptId, node_id: d.node_id, node_type: classType, executed: [...executed] }, true);
      } else {
        addMessage(
          'execution_error',
          {
            prompt_id: promptId,
            node_id: d.node_id,
            node_type: classType,
            executed: [...executed],
            exception_message: d.exception_message,
            exception_type: d.exception_type,
            traceback: d.traceback,
            current_inputs: d.current_inputs,
            current_outputs: ids,
          },
          false,
        );
      }
    } else {
      addMessage('execution_success', { prompt_id: promptId }, false);
    }

    const uiOutputs: Record<string, unknown> = {};
    const meta: Record<string, unknown> = {};
    for (const id of ids) {
      const entry = this.ui.get(id);
      if (entry) {
        uiOutputs[id] = entry.output;
        meta[id] = entry.meta;
      }
    }
    this.lastNodeId = null;
    this.queue.taskDone(itemId, { outputs: uiOutputs, meta }, { status_str: this.success ? 'success' : 'error', completed: this.success, messages });
    if (clientId !== null) this.hub.send('executing', { node: null, prompt_id: promptId }, clientId);
  }

  private async executeNode(
    prompt: PromptGraph,
    nodeId: string,
    promptId: string,
    clientId: unknown,
    progress: Map<string, { state: 'running' | 'finished'; value: number; max: number }>,
    sendProgressState: () => void,
    executed: Set<string>,
    startFaults: () => Promise<void>,
    oomHere: () => boolean,
  ): Promise<NodeOutcome> {
    const node = prompt[nodeId] as PromptGraph[string];
    const spec = NODE_SPECS.get(node.class_type) as NodeSpec;
    const finish = () => {
      const st = progress.get(nodeId) ?? { state: 'finished' as const, value: 1, max: 1 };
      st.state = 'finished';
      st.value = st.max;
      progress.set(nodeId, st);
      sendProgressState();
    };
    if (this.outputs.get(nodeId) !== undefined) {
      try {
        await startFaults();
      } catch (e) {
        if (e instanceof InterruptError) return { ok: false, interrupted: true, cudaOom: false, details: { node_id: nodeId } };
        throw e;
      }
      if (clientId !== null) {
        this.hub.send('executed', { node: nodeId, display_node: nodeId, output: this.ui.get(nodeId)?.output ?? null, prompt_id: promptId }, clientId);
      }
      finish();
      return { ok: true };
    }

    progress.set(nodeId, { state: 'running', value: 0, max: 1 });
    sendProgressState();
    const types = spec.inputTypes(this.env.catalog);
    const inputs: Record<string, unknown> = {};
    const current: Record<string, unknown[]> = {};
    for (const [name, value] of Object.entries(node.inputs)) {
      if (isLink(value)) {
        const out = this.outputs.get(value[0]);
        inputs[name] = out?.[value[1]];
        current[name] = [formatValue(inputs[name])];
      } else if (types.required?.[name] || types.optional?.[name] || types.hidden?.[name] !== undefined) {
        inputs[name] = value;
        current[name] = [formatValue(value)];
      }
    }
    if (clientId !== null) {
      this.lastNodeId = nodeId;
      this.hub.send('executing', { node: nodeId, display_node: nodeId, prompt_id: promptId }, clientId);
    }

    const fail = (pyType: string, message: string, frames: string[], cudaOom = false): NodeOutcome => ({
      ok: false,
      interrupted: false,
      cudaOom,
      details: {
        node_id: nodeId,
        exception_message: `${message}\n${cudaOom ? OOM_TIPS : ''}`,
        exception_type: pyType,
        traceback: [...EXECUTION_FRAMES, `  File "ComfyUI/${spec.source.file}", line ${spec.source.line}, in ${spec.source.fn}\n    ${spec.source.code}\n`, ...frames],
        current_inputs: current,
      },
    });

    let ui: Record<string, unknown> | undefined;
    try {
      this.checkInterrupt();
      await startFaults();
      const gate = this.env.gate();
      if (gate) await this.waitFor(Promise.resolve(gate({ promptId, nodeId, classType: node.class_type })));
      this.alive();
      if (oomHere()) {
        this.env.faults.record('oom');
        const tried = 2 * 2 ** 30;
        throw new AllocationError('torch.OutOfMemoryError', cudaOomMessage(tried, this.memory.vramTotal, this.memory.vramTotal - 0.5 * 2 ** 30), true);
      }
      const behavior = BEHAVIORS[node.class_type];
      if (!behavior) throw new NodeException('NotImplementedError', `the simulator has no behaviour for ${node.class_type}`);
      const result = await behavior(this.nodeRun(prompt, nodeId, promptId, clientId, progress, sendProgressState), inputs);
      this.alive();
      this.outputs.set(nodeId, result.outputs);
      if (result.ui && Object.keys(result.ui).length > 0) ui = result.ui;
    } catch (e) {
      if (e instanceof ProcessGone) throw e;
      this.alive();
      if (e instanceof InterruptError) return { ok: false, interrupted: true, cudaOom: false, details: { node_id: nodeId } };
      if (e instanceof AllocationError) {
        const frame = e.cudaOom
          ? '  File "ComfyUI/comfy/model_management.py", line 1239, in cast_to\n    r = torch.empty_like(weight, dtype=dtype, device=device)\n'
          : '  File "ComfyUI/comfy/utils.py", line 1030, in tiled_scale_multidim\n    out = torch.zeros([s.shape[0], out_channels] + mult_list_upscale(s.shape[2:]), device=output_device)\n';
        return fail(e.pyType, e.message, [frame], e.cudaOom);
      }
      if (e instanceof NodeException) return fail(e.pyType, e.message, e.frames);
      if (e instanceof SaveError) return fail(e.pyType, e.message, []);
      return fail('RuntimeError', e instanceof Error ? e.message : String(e), []);
    }
    if (ui) {
      this.ui.set(nodeId, { meta: { node_id: nodeId, display_node: nodeId, parent_node: null, real_node_id: nodeId }, output: ui });
      if (clientId !== null) this.hub.send('executed', { node: nodeId, display_node: nodeId, output: ui, prompt_id: promptId }, clientId);
    }
    finish();
    executed.add(nodeId);
    return { ok: true };
  }

  private nodeRun(
    prompt: PromptGraph,
    nodeId: string,
    promptId: string,
    clientId: unknown,
    progress: Map<string, { state: 'running' | 'finished'; value: number; max: number }>,
    sendProgressState: () => void,
  ): NodeRun {
    const env = this.env;
    const classType = prompt[nodeId]?.class_type ?? '';
    return {
      nodeId,
      classType,
      previews: env.previews,
      work: (steps) => this.work(steps),
      progress: async (value, max, preview) => {
        this.checkInterrupt();
        progress.set(nodeId, { state: 'running', value: Math.min(value, max), max });
        sendProgressState();
        const withMeta = preview !== undefined && this.hub.supportsPreviewMetadata(clientId);
        if (preview && withMeta) {
          const meta = Buffer.from(
            pyJsonDumps({ node_id: nodeId, prompt_id: promptId, display_node_id: nodeId, parent_node_id: null, real_node_id: nodeId, image_type: 'image/png' }),
            'utf8',
          );
          const len = Buffer.alloc(4);
          len.writeUInt32BE(meta.length);
          this.hub.sendBinary(BINARY_PREVIEW_WITH_METADATA, Buffer.concat([len, meta, preview]), clientId);
        }
        this.hub.send('progress', { value: Math.min(value, max), max, prompt_id: promptId, node: nodeId }, clientId);
        if (preview && !withMeta) {
          const fmt = Buffer.alloc(4);
          fmt.writeUInt32BE(2); // PNG
          this.hub.sendBinary(BINARY_PREVIEW, Buffer.concat([fmt, preview]), clientId);
        }
      },
      gpu: (parts, activation) => this.memory.useDevice(parts, activation),
      cpu: (bytes) => this.memory.allocCpu(bytes),
      modelExists: (folder, name) => env.modelExists(folder, name),
      readInput: (name) => env.storage.readInput(name),
      saveImages: async (type, prefix, image) => {
        if (env.faults.roll('disk_full')) {
          env.faults.record('disk_full');
          throw new NodeException('OSError', '[Errno 28] No space left on device', [
            '  File "PIL/Image.py", line 2591, in save\n    fp = builtins.open(filename, "w+b")\n',
          ]);
        }
        const metadata: Record<string, string> = { prompt: pyJsonDumps(prompt) };
        return env.storage.saveImages(type, prefix, { batch: image.batch, width: image.width, height: image.height, rgb: image.rgb }, metadata);
      },
    };
  }
}
