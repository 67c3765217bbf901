/**
 * The server pool: N ComfyUI servers, each with a client, a cached health check, a circuit
 * breaker and discovered capabilities; routing and failover over them; and the degradation level.
 */
import { setMaxListeners } from 'node:events';
import type { ComfyApi } from '../comfy/api.js';
import { ComfyClient } from '../comfy/client.js';
import { serverCapabilities } from '../comfy/features.js';
import type { ApiWorkflow } from '../comfy/types.js';
import { ServerBreaker, resolveBreakerOptions, type BreakerOptions, type BreakerState } from '../resilience/breaker.js';
import { HealthChecker, type HealthResult } from '../resilience/health.js';
import { DEFAULT_TIMEOUTS } from '../resilience/timeouts.js';
import { systemClock, type Clock, type TimerHandle } from '../util/clock.js';
import { discoverCapabilities, hasModel, missingFrom, workflowNeeds, type Capabilities, type Missing, type WorkflowNeeds } from './capabilities.js';
import { resolveServers, type ResolvedServerConfig, type ServerConfig } from './config.js';
import { DEGRADATION_FACTORS, ErrorRateWindow, degradationScore, nextLevel, type Degradation, type DegradationLevel } from './degradation.js';
import { Readiness, type ReadinessOptions, type ReadinessView } from './health.js';
import { chooseRoute, type RouteCandidate } from './routing.js';

export interface PoolOptions {
  servers: ServerConfig[];
  clock?: Clock;
  /** Health cache TTL; also the background health interval. @default 30000 */
  healthTtlMs?: number;
  /** One health probe. @default 2000 */
  healthTimeoutMs?: number;
  /** Requests of the default clients and of capability discovery. @default 30000 */
  requestTimeoutMs?: number;
  /** Capability refresh interval. @default 60000 */
  capabilityRefreshMs?: number;
  breaker?: BreakerOptions;
  /** How long `markUnhealthy` keeps a server out before a good health check may bring it back. @default 60000 */
  unhealthyHoldMs?: number;
  /** Window of the error rate behind the degradation level. @default 300000 */
  errorWindowMs?: number;
  /** Builds the client of one server. @default a ComfyClient */
  clientFactory?: (cfg: ResolvedServerConfig, ctx: { clock: Clock; requestTimeoutMs: number }) => ComfyApi;
  /** Tie-breaker among equally loaded servers. @default least recently picked */
  random?: () => number;
  /** Re-probe backoff of a server that is down or booting (instead of the health TTL). @default 250 ms doubling to 2 s */
  readiness?: ReadinessOptions;
}

/** What the pool reports to listeners. */
export type PoolEvent =
  | { type: 'breaker'; server: string; from: BreakerState; to: BreakerState; failures: number; at: number }
  | { type: 'health'; server: string; healthy: boolean; error: string | null; at: number }
  /** Every health probe (not only changes), with its latency (null when it failed): cheap, for metrics. */
  | { type: 'health_check'; server: string; healthy: boolean; latencyMs: number | null; at: number }
  | { type: 'capabilities'; server: string; nodeTypes: number; models: Record<string, number>; error: string | null; at: number }
  | { type: 'degradation'; from: DegradationLevel; to: DegradationLevel; factor: number; at: number };

/** One server as `state()` shows it. */
export interface ServerStateView {
  name: string;
  url: string;
  healthy: boolean;
  breaker: BreakerState;
  health: HealthResult | null;
  capabilities: { nodeTypes: number; models: Record<string, number> } | null;
  inFlight: number;
  weight: number;
  tags: string[];
  /** Why it is held out by `markUnhealthy`, while it is. */
  heldUnhealthy: string | null;
  /** Ready, booting or unreachable, and since when. */
  readiness: ReadinessView;
}

/** A routing request. */
export interface SelectRequest {
  workflow: ApiWorkflow;
  /** Never these (servers that already failed this job, blocked pairs). */
  exclude?: string[];
  /** Take this one if it is eligible (it ran an earlier attempt: its cache makes a resume cheap). */
  prefer?: string;
  /** Only servers with all of these tags. */
  tags?: string[];
  minVramFree?: number;
  /** Only servers with more total VRAM than this server (OOM failover). */
  preferMoreVramThan?: string;
  /**
   * The memory model's prediction for this workflow on a server (from its last health check):
   * servers predicted to fit unchanged are preferred, least loaded among them; if none fits, the largest.
   */
  predict?: (server: { name: string; vramTotal: number | null; vramFree: number | null; device?: string | null; ramTotal?: number | null }) => { fits: boolean | null } | null;
  signal?: AbortSignal;
}

/** The server picked for the next attempt. */
export interface Selection {
  name: string;
  client: ComfyApi;
  reason: string;
}

/** Version-gated features `supports()` answers for. */
export type ServerFeature = 'clientPromptId' | 'partialTargets' | 'scopedInterrupt' | 'historyOffset';

/** Failure codes that say the server itself is in trouble (they count towards its breaker). */
const SERVER_TROUBLE = new Set([
  'COMFYUI_CONNECTION_ERROR',
  'COMFYUI_TIMEOUT',
  'COMFYUI_SERVER_ERROR',
  'COMFYUI_OVERLOADED',
  'COMFYUI_STALLED',
  'COMFYUI_GPU_FAULT',
  'COMFYUI_DISK_FULL',
]);
/** Failure codes that say the server's capabilities changed under us. */
const CAPABILITY_DRIFT = new Set(['COMFYUI_MODEL_MISSING', 'COMFYUI_MISSING_NODE', 'COMFYUI_DEPENDENCY_ERROR']);

interface Entry {
  cfg: ResolvedServerConfig;
  client: ComfyApi;
  health: HealthChecker;
  breaker: ServerBreaker;
  caps: Capabilities | null;
  capsError: string | null;
  capsRefresh: Promise<void> | null;
  inFlight: number;
  /** Times of selections not yet turned into `acquire` (so a burst of selects spreads). */
  reserved: number[];
  lastPicked: number;
  heldUntil: number | null;
  heldReason: string | null;
  reportedHealthy: boolean | null;
  readiness: Readiness;
}

/**
 * A pool of ComfyUI servers with health, breakers, capabilities, routing and degradation.
 *
 * @example
 * const pool = new ServerPool({ servers: [{ url: 'http://gpu-a:8188' }, { url: 'http://gpu-b:8188', weight: 2 }] });
 * await pool.start();
 * const pick = await pool.select({ workflow });
 * if (pick) { const release = pool.acquire(pick.name); try { ... } finally { release(); } }
 * await pool.close();
 */
export class ServerPool {
  readonly #clock: Clock;
  readonly #entries = new Map<string, Entry>();
  readonly #order: string[] = [];
  readonly #listeners = new Set<(e: PoolEvent) => void>();
  readonly #errors: ErrorRateWindow;
  readonly #random: (() => number) | undefined;
  readonly #requestTimeoutMs: number;
  readonly #healthTtlMs: number;
  readonly #capabilityRefreshMs: number;
  readonly #unhealthyHoldMs: number;
  /** Aborts background work (probes, discovery) on close; one listener per server is expected. */
  readonly #background = fanOutController();
  #level: DegradationLevel = 'full';
  #pickSeq = 0;
  #healthTimer: TimerHandle | null = null;
  #healthTimerAt = 0;
  #capsTimer: TimerHandle | null = null;
  #started = false;
  #closing: Promise<void> | null = null;

  constructor(opts: PoolOptions) {
    const servers = resolveServers(opts.servers);
    this.#clock = opts.clock ?? systemClock;
    this.#random = opts.random;
    this.#requestTimeoutMs = opts.requestTimeoutMs ?? DEFAULT_TIMEOUTS.requestMs;
    this.#healthTtlMs = opts.healthTtlMs ?? 30_000;
    this.#capabilityRefreshMs = opts.capabilityRefreshMs ?? 60_000;
    this.#unhealthyHoldMs = opts.unhealthyHoldMs ?? 60_000;
    this.#errors = new ErrorRateWindow({ clock: this.#clock, ...(opts.errorWindowMs ? { windowMs: opts.errorWindowMs } : {}) });
    const breakerOptions = resolveBreakerOptions(opts.breaker);
    const factory = opts.clientFactory ?? defaultClientFactory;
    for (const cfg of servers) {
      const client = factory(cfg, { clock: this.#clock, requestTimeoutMs: this.#requestTimeoutMs });
      const breaker = new ServerBreaker({ ...breakerOptions, clock: this.#clock });
      breaker.onStateChange((c) => {
        this.#emit({ type: 'breaker', server: cfg.name, from: c.from, to: c.to, failures: c.failures, at: c.at });
        this.#updateDegradation();
      });
      this.#entries.set(cfg.name, {
        cfg,
        client,
        health: new HealthChecker({
          client,
          clock: this.#clock,
          ttlMs: this.#healthTtlMs,
          timeoutMs: opts.healthTimeoutMs ?? DEFAULT_TIMEOUTS.healthMs,
          onProbe: (r) => this.#emit({ type: 'health_check', server: cfg.name, healthy: r.healthy, latencyMs: r.latencyMs, at: r.checkedAt }),
        }),
        breaker,
        caps: null,
        capsError: null,
        capsRefresh: null,
        inFlight: 0,
        reserved: [],
        lastPicked: 0,
        heldUntil: null,
        heldReason: null,
        reportedHealthy: null,
        readiness: new Readiness({ ...opts.readiness, healthTtlMs: this.#healthTtlMs }),
      });
      this.#order.push(cfg.name);
    }
  }

  /** First health check and capability discovery of every server; failures are recorded, not thrown. */
  async start(): Promise<void> {
    if (this.#closing) throw new Error('ServerPool: start() after close()');
    if (this.#started) return;
    this.#started = true;
    await Promise.all(
      this.#order.map(async (name) => {
        const e = this.#entry(name);
        await this.#checkHealth(e, true);
        await this.#refreshCaps(e);
      }),
    );
    this.#updateDegradation();
    this.#armHealthTimer();
    this.#armCapsTimer();
  }

  /** Server names in configuration order. */
  names(): string[] {
    return [...this.#order];
  }

  /** The client of a server; throws for a name that is not configured. */
  client(name: string): ComfyApi {
    return this.#entry(name).client;
  }

  /**
   * Picks the server for the next attempt: eligible = not excluded, has the tags, breaker admits,
   * can run the workflow, healthy by a (cached) health check, VRAM constraints met, below its
   * in-flight cap. Then the preferred server if eligible, else the least loaded. Null if none.
   */
  async select(req: SelectRequest): Promise<Selection | null> {
    const needs = workflowNeeds(req.workflow);
    const exclude = new Set(req.exclude ?? []);
    const tags = req.tags ?? [];
    const pre = this.#order
      .map((n) => this.#entry(n))
      .filter((e) => !exclude.has(e.cfg.name) && tags.every((t) => e.cfg.tags.includes(t)) && e.breaker.canPass() && !this.#holding(e));
    if (pre.length === 0) return null;
    // Health before capabilities: a dead server's capabilities are not worth a request. Fresh
    // cached results need no probe, so the common case stays synchronous.
    // A server that is down or booting is probed again on its short backoff, not after a TTL.
    const probeNow = this.#clock.now();
    const stale = pre.filter((e) => !e.health.isFresh() || e.readiness.probeDue(probeNow));
    if (stale.length > 0) await this.#withFanOutSignal(req.signal, (signal) => Promise.all(stale.map((e) => this.#checkHealth(e, e.readiness.probeDue(probeNow), signal))));
    const healthy = pre.filter((e) => e.health.last?.healthy === true && !this.#held(e));
    await Promise.all(healthy.filter((e) => e.caps === null).map((e) => this.#refreshCaps(e)));
    const reference = req.preferMoreVramThan === undefined ? undefined : this.#entries.get(req.preferMoreVramThan)?.health.last?.vramTotal;
    const now = this.#clock.now();
    const candidates: Array<RouteCandidate & { entry: Entry }> = [];
    for (const e of healthy) {
      if (e.caps === null || !canRun(e.caps, needs)) continue;
      const h = e.health.last!;
      if (req.minVramFree !== undefined && (h.vramFree === null || h.vramFree < req.minVramFree)) continue;
      if (reference !== undefined && reference !== null && (h.vramTotal === null || h.vramTotal <= reference)) continue;
      const reserved = this.#liveReservations(e, now);
      if (e.inFlight + reserved >= e.cfg.maxInFlight) continue;
      const fits = req.predict ? (req.predict({ name: e.cfg.name, vramTotal: h.vramTotal, vramFree: h.vramFree, device: h.device ?? null, ramTotal: h.ramTotal ?? null })?.fits ?? null) : null;
      candidates.push({ name: e.cfg.name, weight: e.cfg.weight, queueRemaining: h.queueRemaining, inFlight: e.inFlight + reserved, lastPicked: e.lastPicked, fits, capacity: h.vramTotal, entry: e });
    }
    // A half-open breaker admits a limited number of trials: take a slot, or try the next best.
    while (candidates.length > 0) {
      const decision = chooseRoute(candidates, { ...(req.prefer !== undefined ? { prefer: req.prefer } : {}), ...(this.#random ? { random: this.#random } : {}) });
      if (!decision) return null;
      const idx = candidates.findIndex((c) => c.name === decision.name);
      const { entry } = candidates[idx]!;
      if (!entry.breaker.tryPass()) {
        candidates.splice(idx, 1);
        continue;
      }
      entry.lastPicked = ++this.#pickSeq;
      entry.reserved.push(now);
      const trial = entry.breaker.state === 'half_open' ? ' [breaker trial]' : '';
      return { name: entry.cfg.name, client: entry.client, reason: decision.reason + trial };
    }
    return null;
  }

  /** Which servers can run the workflow (from discovered capabilities), and what the others lack. */
  capable(workflow: ApiWorkflow): { servers: string[]; missing: Record<string, Missing> } {
    const needs = workflowNeeds(workflow);
    const servers: string[] = [];
    const missing: Record<string, Missing> = {};
    for (const name of this.#order) {
      const caps = this.#entry(name).caps;
      // Unknown capabilities: nothing is known to be missing, but nothing is proven either.
      if (caps === null) {
        missing[name] = { nodeTypes: [], models: [] };
        continue;
      }
      const m = missingFrom(caps, needs);
      if (m.nodeTypes.length === 0 && m.models.length === 0) servers.push(name);
      else missing[name] = m;
    }
    return { servers, missing };
  }

  /** Servers whose discovered model list has `name` in `folder`. */
  serversWithModel(folder: string, name: string): string[] {
    return this.#order.filter((n) => {
      const caps = this.#entry(n).caps;
      return caps !== null && hasModel(caps, folder, name);
    });
  }

  /** The model files of `folder` on server `name` (empty when unknown). */
  modelsOn(name: string, folder: string): string[] {
    return [...(this.#entry(name).caps?.models.get(folder) ?? [])];
  }

  /** folder -> file names on server `name`; null when its capabilities are unknown. */
  modelMap(name: string): Record<string, string[]> | null {
    const caps = this.#entry(name).caps;
    if (caps === null) return null;
    return Object.fromEntries([...caps.models].map(([f, names]) => [f, [...names]]));
  }

  /** Installed class types on server `name`, sorted; null when unknown. */
  nodeTypes(name: string): string[] | null {
    const caps = this.#entry(name).caps;
    return caps === null ? null : [...caps.nodeTypes].sort();
  }

  /** Whether server `name` supports a version-gated feature (false while its version is unknown). */
  supports(name: string, feature: ServerFeature): boolean {
    const caps = serverCapabilities(this.#entry(name).health.last?.version ?? undefined);
    switch (feature) {
      case 'clientPromptId':
        return caps.supportsClientPromptId;
      case 'partialTargets':
        return caps.supportsPartialTargets;
      case 'scopedInterrupt':
        return caps.supportsScopedInterrupt;
      case 'historyOffset':
        return caps.supportsHistoryOffset;
    }
  }

  /**
   * An attempt on `name` failed. Its health is probed again before the next use; failures that
   * say the server is in trouble (connection, timeout, 5xx, overload, stall, GPU fault, disk full)
   * count towards its breaker and towards the error rate behind the degradation level;
   * capability errors refresh its lists. Failures of the workload itself (out of memory, a
   * missing model, a bad input) say nothing about the pool's health, so they count as answers.
   */
  recordFailure(name: string, c: { code: string; category: string }): void {
    const e = this.#entry(name);
    e.health.invalidate();
    this.#errors.record(SERVER_TROUBLE.has(c.code));
    // Any other failure means the server answered and works: for its breaker that is a success
    // (as cockatiel treats errors it does not handle), which also frees a half-open trial slot.
    if (SERVER_TROUBLE.has(c.code)) void e.breaker.recordFailure();
    else void e.breaker.recordSuccess();
    if (CAPABILITY_DRIFT.has(c.code)) void this.#refreshCaps(e);
    this.#updateDegradation();
  }

  /** An attempt on `name` succeeded. */
  recordSuccess(name: string): void {
    const e = this.#entry(name);
    this.#errors.record(false);
    void e.breaker.recordSuccess();
    this.#updateDegradation();
  }

  /** Takes a server out (GPU fault, disk full) until a health check succeeds after `unhealthyHoldMs`. */
  markUnhealthy(name: string, reason: string): void {
    const e = this.#entry(name);
    e.heldUntil = this.#clock.now() + this.#unhealthyHoldMs;
    e.heldReason = reason;
    e.health.recordUnhealthy(reason);
    this.#noteHealth(e);
    this.#updateDegradation();
  }

  /** Re-reads node types and model lists of one server, or of all. */
  async refreshCapabilities(name?: string): Promise<void> {
    const targets = name === undefined ? this.#order.map((n) => this.#entry(n)) : [this.#entry(name)];
    await Promise.all(targets.map((e) => this.#refreshCaps(e)));
  }

  /** A snapshot of every server. */
  state(): ServerStateView[] {
    return this.#order.map((name) => {
      const e = this.#entry(name);
      const last = e.health.last;
      // A down server's error says since when: "unreachable since …: connect ECONNREFUSED".
      const h = last === null ? null : { ...last, error: e.readiness.describe(last.error) };
      return {
        name,
        url: e.cfg.url,
        healthy: h?.healthy === true && !this.#held(e),
        breaker: e.breaker.state,
        health: h,
        capabilities: e.caps === null ? null : { nodeTypes: e.caps.nodeTypes.size, models: Object.fromEntries([...e.caps.models].map(([f, l]) => [f, l.length])) },
        inFlight: e.inFlight,
        weight: e.cfg.weight,
        tags: [...e.cfg.tags],
        heldUnhealthy: this.#held(e) ? e.heldReason : null,
        readiness: e.readiness.view(),
      };
    });
  }

  /** The current degradation level and its quality factor. */
  degradation(): Degradation {
    this.#updateDegradation();
    return { level: this.#level, factor: DEGRADATION_FACTORS[this.#level] };
  }

  /** Subscribes to breaker, health, capability and degradation events; returns the unsubscribe function. */
  onEvent(listener: (e: PoolEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Counts a job running on `name` (routing load); returns its idempotent release. */
  acquire(name: string): () => void {
    const e = this.#entry(name);
    e.reserved.shift();
    e.inFlight += 1;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      e.inFlight -= 1;
    };
  }

  /**
   * Resolves as soon as one of `names` (default: every server) is healthy, probing down servers
   * on their readiness backoff; resolves at once when one already is. Rejects when `signal`
   * aborts or the pool closes. A job waiting for a booting server awaits this instead of a blind
   * sleep, so it starts the moment the server answers.
   */
  whenReady(opts: { names?: string[]; signal?: AbortSignal } = {}): Promise<string> {
    const names = opts.names ?? this.#order;
    const ready = () =>
      names.find((n) => {
        const e = this.#entries.get(n);
        return e !== undefined && e.health.last?.healthy === true && !this.#held(e);
      });
    const now = ready();
    if (now !== undefined) return Promise.resolve(now);
    return new Promise<string>((resolve, reject) => {
      const stop = (why: unknown) => {
        off();
        opts.signal?.removeEventListener('abort', onAbort);
        this.#background.signal.removeEventListener('abort', onClose);
        reject(why);
      };
      const onAbort = () => stop(opts.signal?.reason);
      const onClose = () => stop(this.#background.signal.reason);
      const off = this.onEvent((ev) => {
        if (ev.type !== 'health' || !ev.healthy || !names.includes(ev.server)) return;
        off();
        opts.signal?.removeEventListener('abort', onAbort);
        this.#background.signal.removeEventListener('abort', onClose);
        resolve(ev.server);
      });
      if (opts.signal?.aborted) return onAbort();
      opts.signal?.addEventListener('abort', onAbort, { once: true });
      this.#background.signal.addEventListener('abort', onClose, { once: true });
      // Make sure someone is probing: the background timer follows the readiness backoff.
      this.#armHealthTimer();
    });
  }

  /** Stops timers and background work and closes every client. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#background.abort(new Error('ServerPool closed'));
      if (this.#healthTimer) this.#clock.clearTimeout(this.#healthTimer);
      if (this.#capsTimer) this.#clock.clearTimeout(this.#capsTimer);
      this.#healthTimer = null;
      this.#capsTimer = null;
      for (const e of this.#entries.values()) e.breaker.close();
      await Promise.all([...this.#entries.values()].map((e) => e.capsRefresh?.catch(() => undefined)));
      await Promise.all([...this.#entries.values()].map((e) => e.client.close().catch(() => undefined)));
      this.#listeners.clear();
    })();
    return this.#closing;
  }

  // ---- internals -----------------------------------------------------------------------------

  #entry(name: string): Entry {
    const e = this.#entries.get(name);
    if (!e) throw new RangeError(`ServerPool: unknown server "${name}" (configured: ${this.#order.join(', ')})`);
    return e;
  }

  /**
   * Runs `fn` with a signal that follows the caller's (or the pool's background signal) and may
   * carry one listener per server without Node's max-listeners warning.
   */
  async #withFanOutSignal<T>(outer: AbortSignal | undefined, fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
    if (!outer) return fn(this.#background.signal);
    const ac = new AbortController();
    setMaxListeners(0, ac.signal);
    const forward = () => ac.abort(outer.reason);
    if (outer.aborted) forward();
    else outer.addEventListener('abort', forward, { once: true });
    try {
      return await fn(ac.signal);
    } finally {
      outer.removeEventListener('abort', forward);
    }
  }

  /** Inside the hold period of markUnhealthy (nothing is probed then). */
  #holding(e: Entry): boolean {
    return e.heldUntil !== null && this.#clock.now() < e.heldUntil;
  }

  /** Held out by markUnhealthy: until the hold ends and a health check then succeeds. */
  #held(e: Entry): boolean {
    if (e.heldUntil === null) return false;
    if (this.#holding(e)) return true;
    // The hold is over; it ends for good at the next successful check (see #checkHealth).
    return !(e.health.isFresh() && e.health.last?.healthy === true && e.health.last.checkedAt >= e.heldUntil);
  }

  async #checkHealth(e: Entry, force: boolean, signal?: AbortSignal): Promise<void> {
    // During a hold nothing is probed: the server said it is broken (GPU fault), HTTP may still answer.
    if (this.#holding(e)) return;
    const r = await e.health.check(force, signal ?? this.#background.signal).catch(() => null);
    e.readiness.note(r);
    // A server just seen down is probed again on its backoff even when no job asks.
    if (e.readiness.nextProbeAt !== null) this.#armHealthTimer();
    if (r?.healthy && e.heldUntil !== null && r.checkedAt >= e.heldUntil) {
      e.heldUntil = null;
      e.heldReason = null;
    }
    this.#noteHealth(e);
  }

  #noteHealth(e: Entry): void {
    const h = e.health.last;
    const healthy = h?.healthy === true && !this.#held(e);
    if (healthy === e.reportedHealthy) return;
    e.reportedHealthy = healthy;
    this.#emit({ type: 'health', server: e.cfg.name, healthy, error: healthy ? null : (e.heldReason ?? h?.error ?? 'unknown'), at: this.#clock.now() });
    this.#updateDegradation();
  }

  /** One refresh per server at a time; failures keep the previous capabilities. */
  #refreshCaps(e: Entry): Promise<void> {
    e.capsRefresh ??= (async () => {
      try {
        e.caps = await discoverCapabilities(e.client, { signal: this.#background.signal, timeoutMs: this.#requestTimeoutMs, now: () => this.#clock.now() });
        e.capsError = null;
      } catch (err) {
        e.capsError = err instanceof Error ? err.message : String(err);
      } finally {
        e.capsRefresh = null;
      }
      if (this.#background.signal.aborted) return;
      this.#emit({
        type: 'capabilities',
        server: e.cfg.name,
        nodeTypes: e.caps?.nodeTypes.size ?? 0,
        models: e.caps ? Object.fromEntries([...e.caps.models].map(([f, l]) => [f, l.length])) : {},
        error: e.capsError,
        at: this.#clock.now(),
      });
    })();
    return e.capsRefresh;
  }

  #liveReservations(e: Entry, now: number): number {
    // A selection that never became an attempt (the caller gave up) stops counting after a request timeout.
    while (e.reserved.length > 0 && now - e.reserved[0]! > this.#requestTimeoutMs) e.reserved.shift();
    return e.reserved.length;
  }

  #updateDegradation(): void {
    let capacity = 0;
    let unhealthy = 0;
    for (const e of this.#entries.values()) {
      capacity += e.cfg.weight;
      const h = e.health.last;
      const down = (h !== null && !h.healthy) || this.#held(e) || e.breaker.state !== 'closed';
      if (down) unhealthy += e.cfg.weight;
    }
    const score = degradationScore({ capacity, unhealthyCapacity: unhealthy, errorRate: this.#errors.rate() });
    const next = nextLevel(this.#level, score);
    if (next === this.#level) return;
    const from = this.#level;
    this.#level = next;
    this.#emit({ type: 'degradation', from, to: next, factor: DEGRADATION_FACTORS[next], at: this.#clock.now() });
  }

  #armHealthTimer(): void {
    if (this.#closing || !this.#started) return;
    const now = this.#clock.now();
    // Healthy servers are re-checked every TTL; a down or booting one on its short backoff.
    let next = now + this.#healthTtlMs;
    for (const e of this.#entries.values()) {
      const due = e.readiness.nextProbeAt ?? (e.health.last ? e.health.last.checkedAt + this.#healthTtlMs : now + this.#healthTtlMs);
      next = Math.min(next, due);
    }
    if (this.#healthTimer !== null) {
      if (this.#healthTimerAt <= next) return;
      this.#clock.clearTimeout(this.#healthTimer);
    }
    this.#healthTimerAt = next;
    this.#healthTimer = this.#clock.setTimeout(
      () => {
        this.#healthTimer = null;
        const at = this.#clock.now();
        // Keeps state, events and the degradation level current when no job is asking.
        void Promise.all(this.#order.map((n) => this.#entry(n)).map((e) => this.#checkHealth(e, e.readiness.probeDue(at)))).finally(() => {
          this.#updateDegradation();
          this.#armHealthTimer();
        });
      },
      Math.max(0, next - now),
      { background: true },
    );
  }

  #armCapsTimer(): void {
    if (this.#closing) return;
    this.#capsTimer = this.#clock.setTimeout(() => {
      this.#capsTimer = null;
      const healthy = this.#order.map((n) => this.#entry(n)).filter((e) => e.health.last?.healthy === true);
      void Promise.all(healthy.map((e) => this.#refreshCaps(e))).finally(() => this.#armCapsTimer());
    }, this.#capabilityRefreshMs, { background: true });
  }

  #emit(e: PoolEvent): void {
    for (const l of this.#listeners) {
      try {
        l(e);
      } catch {
        // A listener's bug must not break routing.
      }
    }
  }
}

function fanOutController(): AbortController {
  const ac = new AbortController();
  setMaxListeners(0, ac.signal);
  return ac;
}

function canRun(caps: Capabilities, needs: WorkflowNeeds): boolean {
  for (const t of needs.nodeTypes) if (!caps.nodeTypes.has(t)) return false;
  for (const m of needs.models) if (!hasModel(caps, m.folder, m.name, m.aliases)) return false;
  return true;
}

function defaultClientFactory(cfg: ResolvedServerConfig, ctx: { clock: Clock; requestTimeoutMs: number }): ComfyApi {
  return new ComfyClient({ baseUrl: cfg.url, name: cfg.name, headers: { ...cfg.headers }, requestTimeoutMs: ctx.requestTimeoutMs, clock: ctx.clock });
}
