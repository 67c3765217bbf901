/**
 * The simulator: an HTTP + WebSocket server (node:http + ws) that a ComfyUI client cannot tell from
 * ComfyUI 0.3.64, with fault injection. It owns the listening socket (closed by `refuse` and
 * `crash`), the simulated process (queue, history, cache, models in memory: lost by a crash), and
 * what outlives a crash (output files, fault config, execution counters).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocketServer } from 'ws';
import { sleep, systemClock, type Clock } from '../util/clock.js';
import { handleAdmin, type AdminTarget } from './admin-routes.js';
import { NODE_SPECS, type CatalogContext, type NodeSpec } from './catalog.js';
import { allowedMethods, handleComfy, modelFolderList, type RouteContext, type Runtime } from './comfy-routes.js';
import { Executor } from './executor.js';
import { PortInUseError } from './errors.js';
import { FaultInjector, parseFaultSpec, type FaultKind } from './faults.js';
import {
  emptyResponse,
  internalError,
  methodNotAllowed,
  notFound,
  originRejected,
  proxyError,
  readBody,
  textResponse,
  writeResponse,
  type SimRequest,
  type SimResponse,
} from './http-util.js';
import { MemoryModel } from './memory.js';
import { resolveOptions, type NodeGateInfo, type ResolvedOptions, type SimulatorOptions } from './options.js';
import { PromptQueue } from './queue.js';
import { ExecutionCounters, workflowHash, type SimStats } from './stats.js';
import { SimStorage } from './storage.js';
import { WsHub } from './ws-hub.js';

/** A running simulator. */
export interface Simulator {
  readonly url: string;
  readonly port: number;
  readonly name: string;
  /** Stops listening, closes every socket, removes its temporary data directory. Idempotent. */
  close(): Promise<void>;
  /** Replaces the fault SPEC; throws SimConfigError naming the bad part. */
  setFaults(spec: string): void;
  getFaults(): string;
  /** Same JSON as `GET /_sim/stats`. */
  stats(): SimStats;
  /** Clears queue, history, cache, loaded models and counters (the running prompt is dropped). */
  reset(): void;
  /** Crashes like a killed process and resolves when the server listens again. */
  crash(): Promise<void>;
  setModels(folder: string, files: string[]): void;
  removeNodeType(classType: string): void;
  /** Undoes `removeNodeType`. */
  restoreNodeType(classType: string): void;
  /** sha256 hex of a canonical JSON of the prompt graph (also used for stats.workflows keys). */
  workflowHash(prompt: unknown): string;
  /** Kills the process and keeps the port closed until `restart()` (a crash you control). */
  kill(): void;
  /** Starts the process again after `kill()`. */
  restart(): Promise<void>;
  /** Resolves when nothing is queued or running. */
  whenIdle(): Promise<void>;
  /** Replaces the node gate (see SimulatorOptions.nodeGate); undefined removes it. */
  setNodeGate(gate: ((info: NodeGateInfo) => Promise<void> | void) | undefined): void;
  /** Loaded models, memory and availability, as `GET /_sim/state` shows them. */
  state(): Record<string, unknown>;
}

type Lifecycle = 'up' | 'down' | 'closed';

/** The `Simulator` implementation. Use `startSimulator`. */
export class SimulatorServer implements Simulator, AdminTarget {
  private readonly opts: ResolvedOptions;
  private readonly clock: Clock;
  private readonly faults: FaultInjector;
  private readonly counters = new ExecutionCounters();
  private readonly models: Record<string, string[]>;
  private readonly removed: Set<string>;
  private readonly wss = new WebSocketServer({ noServer: true, perMessageDeflate: false });
  private readonly sockets = new Set<Socket>();
  private readonly busySockets = new WeakSet<Socket>();
  private nodeGate: ((info: NodeGateInfo) => Promise<void> | void) | undefined;
  private server: Server | undefined;
  private hub!: WsHub;
  private rt!: Runtime;
  private lifecycle: Lifecycle = 'down';
  private refusing = false;
  private refuseTimer: ReturnType<typeof setTimeout> | undefined;
  private crashing: Promise<void> | undefined;
  /** Whether the first listen succeeded (later listens are restarts after a fault). */
  private listenedOnce = false;
  private closing: Promise<void> | undefined;
  private actualPort: number;
  private readonly catalog: CatalogContext;

  private constructor(
    options: SimulatorOptions,
    private readonly storage: SimStorage,
  ) {
    this.opts = resolveOptions(options);
    this.clock = options.clock ?? systemClock;
    this.nodeGate = options.nodeGate;
    this.faults = new FaultInjector(this.opts.seed);
    this.faults.set(parseFaultSpec(this.opts.faults));
    this.models = this.opts.models;
    this.removed = new Set(this.opts.removeNodeTypes);
    this.actualPort = this.opts.port;
    this.catalog = {
      modelList: (folder) => this.models[folder] ?? [],
      inputFiles: () => this.storage.inputFiles(),
      inputFileHash: (name) => this.storage.inputFileHash(name),
    };
  }

  /** Starts a simulator (see SimulatorOptions). */
  static async start(options: SimulatorOptions = {}): Promise<SimulatorServer> {
    resolveOptions(options);
    parseFaultSpec(options.faults ?? '');
    const storage = await SimStorage.create(options.dataDir);
    const sim = new SimulatorServer(options, storage);
    try {
      await sim.boot();
    } catch (e) {
      await storage.close();
      throw e;
    }
    return sim;
  }

  get port(): number {
    return this.actualPort;
  }

  get url(): string {
    const host = this.opts.host.includes(':') ? `[${this.opts.host}]` : this.opts.host;
    return `http://${host}:${this.actualPort}`;
  }

  get name(): string {
    return this.opts.name ?? `sim-${this.actualPort}`;
  }

  // ---------------------------------------------------------------------------------------------
  // Process lifecycle
  // ---------------------------------------------------------------------------------------------

  private queueInfo(): { exec_info: { queue_remaining: number } } {
    return { exec_info: { queue_remaining: this.rt.queue.tasksRemaining() } };
  }

  private newHub(): WsHub {
    return new WsHub({
      queueInfo: () => this.queueInfo(),
      runningClient: () => ({ clientId: this.rt.executor.clientId, lastNodeId: this.rt.executor.lastNodeId }),
      serverFeatures: () => ({ supports_preview_metadata: true, max_upload_size: this.opts.maxUploadSize }),
      reconnectBug: this.opts.reconnectBug,
    });
  }

  private newRuntime(): Runtime {
    const abort = new AbortController();
    const memory = new MemoryModel(this.opts.device, this.opts.vram, this.opts.ram);
    const hub = this.hub;
    const queue = new PromptQueue(() => hub.send('status', { status: this.queueInfo() }, null));
    const executor = new Executor(
      {
        clock: this.clock,
        stepMs: () => this.opts.stepMs,
        previews: this.opts.previews,
        faults: this.faults,
        counters: this.counters,
        storage: this.storage,
        catalog: this.catalog,
        modelExists: (folder, name) => (this.models[folder] ?? []).includes(name),
        gate: () => this.nodeGate,
        requestCrash: () => {
          void this.crash().catch(() => undefined);
        },
      },
      queue,
      hub,
      memory,
      abort.signal,
    );
    return { abort, queue, executor, memory, number: 0 };
  }

  private async boot(): Promise<void> {
    this.storage.wipeTemp();
    this.storage.ensureExampleInput();
    this.hub = this.newHub();
    this.rt = this.newRuntime();
    this.lifecycle = 'up';
    await this.listen();
    this.applyRefuseRule();
  }

  private async listen(): Promise<void> {
    if (this.server || this.lifecycle !== 'up') return;
    const server = createServer({ keepAliveTimeout: 75_000 }, (req, res) => {
      this.onRequest(req, res).catch(() => {
        if (!res.headersSent) writeResponse(res, internalError());
        else res.destroy();
      });
    });
    server.on('connection', (socket: Socket) => this.onConnection(socket));
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => this.onUpgrade(req, socket, head));
    server.on('clientError', (_err, socket: Duplex) => socket.destroy());
    // The first listen is on the port the user asked for: a taken port is their error, told at
    // once. After a crash or refuse fault our own old socket can linger a moment: retry then.
    const retries = this.listenedOnce ? 20 : 0;
    for (let attempt = 0; ; attempt++) {
      try {
        await new Promise<void>((resolve, reject) => {
          const onError = (e: Error) => {
            server.off('listening', onListening);
            reject(e);
          };
          const onListening = () => {
            server.off('error', onError);
            resolve();
          };
          server.once('error', onError);
          server.once('listening', onListening);
          server.listen(this.actualPort, this.opts.host);
        });
        break;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EADDRINUSE' || attempt >= retries || this.actualPort === 0) {
          if (!this.listenedOnce && (e as NodeJS.ErrnoException).code === 'EADDRINUSE') throw new PortInUseError(this.opts.host, this.actualPort, e);
          throw e;
        }
        await new Promise((r) => setTimeout(r, 25));
      }
    }
    this.listenedOnce = true;
    this.actualPort = (server.address() as AddressInfo).port;
    if (this.lifecycle !== 'up') {
      server.close();
      return;
    }
    this.server = server;
  }

  private stopListening(): void {
    const s = this.server;
    this.server = undefined;
    s?.close();
  }

  private destroyHttpSockets(onlyIdle: boolean): void {
    for (const s of this.sockets) {
      if (onlyIdle && this.busySockets.has(s)) continue;
      s.destroy();
      this.sockets.delete(s);
    }
  }

  /** A crash without the restart: WS closes 1006, everything in memory is lost, the port closes. */
  kill(): void {
    if (this.lifecycle !== 'up') return;
    this.lifecycle = 'down';
    this.rt.abort.abort();
    this.hub.destroyAll();
    this.stopListening();
    this.destroyHttpSockets(false);
  }

  /** Starts a fresh process after `kill()`: empty queue and history, number 0, temp/ wiped. */
  async restart(): Promise<void> {
    if (this.lifecycle !== 'down') return;
    this.storage.wipeTemp();
    this.hub = this.newHub();
    this.rt = this.newRuntime();
    this.lifecycle = 'up';
    this.refusing = false;
    await this.listen();
    this.applyRefuseRule();
  }

  crash(): Promise<void> {
    if (this.crashing) return this.crashing;
    if (this.lifecycle === 'closed') return Promise.resolve();
    this.crashing = (async () => {
      this.kill();
      await sleep(this.clock, this.opts.crashDowntimeMs);
      await this.restart();
    })().finally(() => {
      this.crashing = undefined;
    });
    return this.crashing;
  }

  crashSoon(): void {
    setImmediate(() => void this.crash().catch(() => undefined));
  }

  close(): Promise<void> {
    if (this.closing) return this.closing;
    this.closing = (async () => {
      const wasUp = this.lifecycle === 'up';
      this.lifecycle = 'closed';
      if (this.refuseTimer) clearTimeout(this.refuseTimer);
      this.rt.abort.abort();
      if (wasUp) await this.closeWebSockets();
      this.hub.destroyAll();
      this.stopListening();
      this.destroyHttpSockets(false);
      this.wss.close();
      await this.storage.close();
    })();
    return this.closing;
  }

  private async closeWebSockets(): Promise<void> {
    if (this.hub.openCount() === 0) return;
    const done = new Promise<void>((resolve) => {
      const check = setInterval(() => {
        if (this.hub.openCount() === 0) {
          clearInterval(check);
          resolve();
        }
      }, 5);
      setTimeout(() => {
        clearInterval(check);
        resolve();
      }, 250).unref();
    });
    this.hub.closeAll();
    await done;
  }

  // ---------------------------------------------------------------------------------------------
  // Faults at the connection level
  // ---------------------------------------------------------------------------------------------

  /** `refuse=1` keeps the port closed for as long as the rule stays; lower rates refuse per connection. */
  private applyRefuseRule(): void {
    const rule = this.faults.rule('refuse');
    const always = rule !== undefined && rule.rate >= 1;
    if (always && !this.refusing && this.lifecycle === 'up') {
      this.refusing = true;
      this.faults.record('refuse');
      this.stopListening();
      this.destroyHttpSockets(true);
    } else if (!always && this.refusing && !this.refuseTimer && this.lifecycle === 'up') {
      this.refusing = false;
      void this.listen().catch(() => undefined);
    }
  }

  private onConnection(socket: Socket): void {
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
    const rule = this.faults.rule('refuse');
    if (rule && rule.rate > 0 && rule.rate < 1 && !this.refusing && this.faults.roll('refuse')) {
      this.faults.record('refuse');
      socket.destroy();
      this.refusing = true;
      this.stopListening();
      this.refuseTimer = setTimeout(() => {
        this.refuseTimer = undefined;
        if (this.faults.rule('refuse')?.rate !== 1) {
          this.refusing = false;
          void this.listen().catch(() => undefined);
        }
      }, this.opts.refuseMs);
    }
  }

  // ---------------------------------------------------------------------------------------------
  // HTTP and WebSocket
  // ---------------------------------------------------------------------------------------------

  private routeContext(): RouteContext {
    return {
      rt: this.rt,
      opts: this.opts,
      storage: this.storage,
      faults: this.faults,
      catalog: this.catalog,
      port: this.actualPort,
      spec: (c) => this.spec(c),
      modelFolders: () => modelFolderList(this.models),
      modelList: (folder) => (modelFolderList(this.models).includes(folder) ? (this.models[folder] ?? []) : undefined),
    };
  }

  private spec(classType: string): NodeSpec | undefined {
    return this.removed.has(classType) ? undefined : NODE_SPECS.get(classType);
  }

  private rollHttpFault(method: string, path: string, scopedOnly: boolean): SimResponse | undefined {
    for (const kind of ['http500', 'http502', 'http503', 'http429'] as const satisfies readonly FaultKind[]) {
      const rule = this.faults.rule(kind, method, path);
      if (!rule || (scopedOnly && rule.path === undefined)) continue;
      if (this.faults.roll(kind, method, path)) {
        this.faults.record(kind);
        if (kind === 'http500') return internalError();
        return proxyError(Number(kind.slice(4)) as 429 | 502 | 503);
      }
    }
    return undefined;
  }

  private async onRequest(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://sim.invalid');
    const rawPath = url.pathname;
    const method = (req.method ?? 'GET').toUpperCase();
    const socket = req.socket;
    this.busySockets.add(socket);
    res.on('finish', () => this.busySockets.delete(socket));

    if (rawPath === '/_sim' || rawPath.startsWith('/_sim/')) {
      const body = await readBody(req, 16 * 2 ** 20).catch(() => undefined);
      if (body === undefined) return;
      if (!Buffer.isBuffer(body)) return writeResponse(res, textResponse(413, 'admin body too large'));
      const r = handleAdmin(this, { method, path: rawPath, rawPath, query: url.searchParams, headers: req.headers, body });
      writeResponse(res, r, method === 'HEAD');
      return;
    }
    if (this.refusing || this.lifecycle !== 'up') {
      socket.destroy();
      return;
    }
    const path = rawPath === '/api' ? '/' : rawPath.startsWith('/api/') ? rawPath.slice(4) : rawPath;
    const signal = this.rt.abort.signal;

    if (this.faults.roll('slow', method, path)) {
      this.faults.record('slow');
      try {
        await sleep(this.clock, this.opts.slowMs, signal);
      } catch {
        socket.destroy();
        return;
      }
    }
    const faulty = this.rollHttpFault(method, path, false);
    if (faulty) {
      req.resume();
      writeResponse(res, faulty, method === 'HEAD');
      return;
    }
    const reset = this.faults.roll('reset', method, path);

    const body = await readBody(req, this.opts.maxUploadSize).catch(() => undefined);
    if (body === undefined || signal.aborted) return;
    let response: SimResponse;
    if (!Buffer.isBuffer(body)) {
      response = { ...textResponse(413, `Maximum request body size ${this.opts.maxUploadSize} exceeded, actual body size ${body.tooLarge}`), close: true };
    } else if (originRejected(req.headers)) {
      response = emptyResponse(403);
    } else {
      const simReq: SimRequest = { method, path, rawPath, query: url.searchParams, headers: req.headers, body };
      const handled = await handleComfy(this.routeContext(), simReq);
      if (handled) response = handled;
      else {
        const allowed = allowedMethods(path);
        response = allowed && !allowed.includes(method) ? methodNotAllowed(allowed) : notFound();
      }
    }
    if (signal.aborted) return;
    if (reset) {
      // The server did the work; the client never sees the answer.
      this.faults.record('reset');
      socket.destroy();
      return;
    }
    writeResponse(res, response, method === 'HEAD');
  }

  private onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const url = new URL(req.url ?? '/', 'http://sim.invalid');
    const path = url.pathname.startsWith('/api/') ? url.pathname.slice(4) : url.pathname;
    const reject = (r: SimResponse) => {
      const body = typeof r.body === 'string' ? r.body : r.body.toString('utf8');
      const headers = Object.entries({ ...r.headers, 'Content-Length': Buffer.byteLength(body), Connection: 'close' })
        .map(([k, v]) => `${k}: ${v}`)
        .join('\r\n');
      socket.end(`HTTP/1.1 ${r.status} ${r.status === 404 ? 'Not Found' : 'Error'}\r\n${headers}\r\n\r\n${body}`);
    };
    if (this.refusing || this.lifecycle !== 'up') {
      socket.destroy();
      return;
    }
    if (path !== '/ws') return reject(notFound());
    if (originRejected(req.headers)) return reject(emptyResponse(403));
    const faulty = this.rollHttpFault('GET', path, true);
    if (faulty) return reject(faulty);
    const hub = this.hub;
    this.wss.handleUpgrade(req, socket, head, (ws) => {
      if (this.lifecycle !== 'up' || hub !== this.hub) {
        ws.terminate();
        return;
      }
      hub.attach(ws, url.searchParams.get('clientId'));
    });
  }

  // ---------------------------------------------------------------------------------------------
  // Control API
  // ---------------------------------------------------------------------------------------------

  setFaults(spec: string): void {
    this.faults.set(parseFaultSpec(spec));
    this.applyRefuseRule();
  }

  getFaults(): string {
    return this.faults.text;
  }

  stats(): SimStats {
    return { ...this.counters.snapshot(), faults: this.faults.snapshot(), queue: this.lifecycle === 'up' ? this.rt.queue.tasksRemaining() : 0 };
  }

  reset(): void {
    if (this.lifecycle === 'closed') return;
    this.rt.abort.abort();
    this.rt = this.newRuntime();
    this.counters.reset();
    this.faults.resetCounts();
    if (this.lifecycle === 'up') this.hub.send('status', { status: this.queueInfo() }, null);
  }

  setModels(folder: string, files: string[]): void {
    this.models[folder] = [...files];
  }

  removeNodeType(classType: string): void {
    this.removed.add(classType);
  }

  restoreNodeType(classType: string): void {
    this.removed.delete(classType);
  }

  workflowHash(prompt: unknown): string {
    return workflowHash(prompt);
  }

  whenIdle(): Promise<void> {
    return this.rt.executor.whenIdle();
  }

  setNodeGate(gate: ((info: NodeGateInfo) => Promise<void> | void) | undefined): void {
    this.nodeGate = gate;
  }

  state(): Record<string, unknown> {
    const mem = this.rt.memory;
    return {
      name: this.name,
      lifecycle: this.lifecycle,
      refusing: this.refusing,
      device: this.opts.device,
      vram_total: mem.vramTotal,
      vram_free: mem.vramFree(),
      loaded_models: mem.loadedKeys(),
      models: this.models,
      removed_node_types: [...this.removed],
      faults: this.faults.text,
      open_websockets: this.hub.openCount(),
      open_http_sockets: this.sockets.size,
    };
  }
}
