/**
 * Server configuration: validated once, defaults merged, frozen. A bad entry fails the pool's
 * construction with the field named, never a job later.
 */
import { z } from 'zod';
import { PolicyConfigError, configErrorFromZod } from '../resilience/config-error.js';
import { parseOutputDeleteRoute } from './output-deleter.js';

/** One ComfyUI server of the pool. */
export interface ServerConfig {
  /** Base URL, e.g. `http://10.0.0.5:8188`. */
  url: string;
  /** Unique name used in routing, logs and job records. @default the URL's host */
  name?: string;
  /** Relative capacity: load is divided by it. @default 1 */
  weight?: number;
  /** Labels a job can require (`serverTags`). @default [] */
  tags?: string[];
  /** Extra headers for every request (auth for hosted pods). @default {} */
  headers?: Record<string, string>;
  /** Jobs comfyguard runs there at once; more are routed elsewhere. @default Infinity */
  maxInFlight?: number;
  /**
   * How output files are deleted there when cleanup removes old jobs with `cleanupOutputs`: ComfyUI
   * has no API for it, so `'none'` reports them as "cannot"; `'image-browsing'` uses the
   * ComfyUI-Image-Browsing custom node; `"DELETE /route?filename={filename}&subfolder={subfolder}&type={type}"`
   * calls a route of your own once per file. @default 'none'
   */
  outputDelete?: string;
}

/** A server configuration with every default filled in. */
export type ResolvedServerConfig = Readonly<Required<ServerConfig>>;

/** A server's `outputDelete` setting: `none`, `image-browsing` or a route template (see output-deleter.ts). */
export const OutputDeleteRouteSchema = z.string().superRefine((v, ctx) => {
  try {
    parseOutputDeleteRoute(v);
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: err instanceof Error ? err.message : String(err) });
  }
});

const serverSchema = z.strictObject({
  url: z.string().refine((u) => {
    try {
      const p = new URL(u).protocol;
      return p === 'http:' || p === 'https:';
    } catch {
      return false;
    }
  }, 'must be an http(s) URL'),
  name: z.string().min(1, 'must not be empty').optional(),
  weight: z.number().refine(Number.isFinite, 'must be a finite number').positive('must be > 0').optional(),
  tags: z.array(z.string()).optional(),
  headers: z.record(z.string(), z.string()).optional(),
  maxInFlight: z.number().int('must be an integer').min(1, 'must be >= 1').or(z.literal(Number.POSITIVE_INFINITY)).optional(),
  outputDelete: OutputDeleteRouteSchema.optional(),
});

/** Validates the server list; throws a PolicyConfigError naming e.g. `servers.1.weight`. */
export function resolveServers(servers: readonly ServerConfig[]): ResolvedServerConfig[] {
  if (!Array.isArray(servers) || servers.length === 0) {
    throw new PolicyConfigError('pool options', [{ field: 'servers', message: 'must list at least one server' }]);
  }
  const out: ResolvedServerConfig[] = [];
  const seen = new Map<string, number>();
  servers.forEach((raw, i) => {
    const parsed = serverSchema.safeParse(raw);
    if (!parsed.success) throw configErrorFromZod('pool options', `servers.${i}`, parsed.error.issues);
    const s = parsed.data;
    const url = new URL(s.url);
    const name = s.name ?? url.host;
    const dup = seen.get(name);
    if (dup !== undefined) {
      throw new PolicyConfigError('pool options', [{ field: `servers.${i}.name`, message: `"${name}" is already used by servers.${dup}; names must be unique` }]);
    }
    seen.set(name, i);
    out.push(
      Object.freeze({
        url: url.href.replace(/\/+$/, ''),
        name,
        weight: s.weight ?? 1,
        tags: Object.freeze([...(s.tags ?? [])]) as string[],
        headers: Object.freeze({ ...(s.headers ?? {}) }),
        maxInFlight: s.maxInFlight ?? Number.POSITIVE_INFINITY,
        outputDelete: s.outputDelete ?? 'none',
      }),
    );
  });
  return out;
}
