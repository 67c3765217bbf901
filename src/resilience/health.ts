/**
 * Health of one server: `GET /system_stats` (identity, VRAM) and `GET /prompt` (queue depth) under
 * one short deadline, cached for a TTL and dropped at once when a request to the server fails.
 */
import type { ComfyApi } from '../comfy/api.js';
import type { SystemStats } from '../comfy/types.js';
import { systemClock, type Clock } from '../util/clock.js';
import { DEFAULT_TIMEOUTS, withTimeout } from './timeouts.js';

/** One health probe's result. */
export interface HealthResult {
  healthy: boolean;
  latencyMs: number | null;
  vramTotal: number | null;
  vramFree: number | null;
  queueRemaining: number | null;
  /** Why it is unhealthy; null when healthy. */
  error: string | null;
  /** Clock time the probe finished. */
  checkedAt: number;
  /** `system.comfyui_version`, for feature gates. */
  version: string | null;
  /** `devices[0].type` (`cuda`, `cpu`, `mps`…): what an OOM there means. */
  device?: string | null;
  /** `system.ram_total`: where CPU tensors must fit. */
  ramTotal?: number | null;
}

export interface HealthCheckerOptions {
  /** Only `getSystemStats` and `getPromptStatus` are used. */
  client: Pick<ComfyApi, 'name' | 'getSystemStats' | 'getPromptStatus'>;
  clock?: Clock;
  /** How long a result is reused. @default 30000 */
  ttlMs?: number;
  /** Deadline of one probe. @default 2000 */
  timeoutMs?: number;
  /** Called with every probe's result (not with cached ones), e.g. to record its latency. */
  onProbe?: (result: HealthResult) => void;
}

export const DEFAULT_HEALTH_TTL_MS = 30_000;

/** Cached health probe of one server. */
export class HealthChecker {
  readonly ttlMs: number;
  readonly timeoutMs: number;
  readonly #client: HealthCheckerOptions['client'];
  readonly #clock: Clock;
  readonly #onProbe: ((result: HealthResult) => void) | undefined;
  #last: HealthResult | null = null;
  /** Bumped by invalidate(); a result is only fresh if probed in the current generation. */
  #generation = 0;
  #lastGeneration = -1;
  #inFlight: { generation: number; promise: Promise<HealthResult> } | null = null;

  constructor(opts: HealthCheckerOptions) {
    this.#client = opts.client;
    this.#clock = opts.clock ?? systemClock;
    this.ttlMs = opts.ttlMs ?? DEFAULT_HEALTH_TTL_MS;
    this.timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUTS.healthMs;
    this.#onProbe = opts.onProbe;
  }

  /** The last result, fresh or not (null before the first probe). */
  get last(): HealthResult | null {
    return this.#last;
  }

  /** Whether `last` may be used without probing again. */
  isFresh(): boolean {
    return this.#last !== null && this.#lastGeneration === this.#generation && this.#clock.now() - this.#last.checkedAt < this.ttlMs;
  }

  /**
   * The cached result while fresh; otherwise one probe (concurrent callers share it). `force`
   * always probes. Never throws for a server problem: that is an unhealthy result.
   */
  async check(force = false, signal?: AbortSignal): Promise<HealthResult> {
    if (!force && this.isFresh() && this.#last) return this.#last;
    if (this.#inFlight && this.#inFlight.generation === this.#generation) return this.#inFlight.promise;
    const generation = this.#generation;
    const promise = this.#probe(signal).then((result) => {
      // A probe that started before an invalidation may predate the failure: report it, do not cache it as fresh.
      if (generation === this.#generation) {
        this.#last = result;
        this.#lastGeneration = generation;
      } else if (this.#last === null || result.checkedAt >= this.#last.checkedAt) {
        this.#last = result;
      }
      try {
        this.#onProbe?.(result);
      } catch {
        // An observer's bug must not turn a health result into a failure.
      }
      return result;
    });
    this.#inFlight = { generation, promise };
    try {
      return await promise;
    } finally {
      if (this.#inFlight?.promise === promise) this.#inFlight = null;
    }
  }

  /** Drops the cached result so the next check probes (a request to the server just failed). */
  invalidate(): void {
    this.#generation += 1;
  }

  /** Records an outside verdict (e.g. a GPU fault) as the last result; it is not fresh. */
  recordUnhealthy(reason: string): HealthResult {
    const base = this.#last;
    this.#last = {
      healthy: false,
      latencyMs: null,
      vramTotal: base?.vramTotal ?? null,
      vramFree: base?.vramFree ?? null,
      queueRemaining: base?.queueRemaining ?? null,
      error: reason,
      checkedAt: this.#clock.now(),
      version: base?.version ?? null,
    };
    this.invalidate();
    return this.#last;
  }

  async #probe(signal?: AbortSignal): Promise<HealthResult> {
    const started = this.#clock.now();
    try {
      const [stats, prompt] = await withTimeout(
        this.timeoutMs,
        (s) =>
          Promise.all([
            this.#client.getSystemStats({ signal: s, timeoutMs: this.timeoutMs }),
            this.#client.getPromptStatus({ signal: s, timeoutMs: this.timeoutMs }),
          ]),
        { signal, server: this.#client.name, what: 'health check' },
      );
      const finished = this.#clock.now();
      const device = firstDevice(stats);
      return {
        healthy: true,
        latencyMs: finished - started,
        vramTotal: device?.vram_total ?? null,
        vramFree: device?.vram_free ?? null,
        queueRemaining: prompt.exec_info.queue_remaining,
        error: null,
        checkedAt: finished,
        version: typeof stats.system.comfyui_version === 'string' ? stats.system.comfyui_version : null,
        device: typeof device?.type === 'string' ? device.type : null,
        ramTotal: typeof stats.system.ram_total === 'number' ? stats.system.ram_total : null,
      };
    } catch (e) {
      if (signal?.aborted) throw signal.reason;
      return {
        healthy: false,
        latencyMs: null,
        vramTotal: this.#last?.vramTotal ?? null,
        vramFree: null,
        queueRemaining: null,
        error: describe(e),
        checkedAt: this.#clock.now(),
        version: this.#last?.version ?? null,
      };
    }
  }
}

// ComfyUI lists the one device the process runs on; a multi-GPU host runs one process per GPU.
function firstDevice(stats: SystemStats): SystemStats['devices'][number] | undefined {
  return Array.isArray(stats.devices) ? stats.devices[0] : undefined;
}

function describe(e: unknown): string {
  if (e instanceof Error) return e.message || e.name;
  return String(e);
}
