/**
 * Server feature gating from `GET /system_stats` -> `system.comfyui_version`. Versions are compared
 * as semver triples, so post-0.3.x numbering ("0.9.2", "0.18.0", "v0.36.0") orders correctly.
 */
import type { SystemStats } from './types.js';

/** `[major, minor, patch]`. */
export type VersionTriple = readonly [number, number, number];

/** The first release of each feature we gate on (shared/comfyui-protocol.md, section 0). */
export const FEATURE_VERSIONS = {
  clientPromptId: [0, 3, 45],
  partialExecutionTargets: [0, 3, 48],
  scopedInterrupt: [0, 3, 57],
  historyOffset: [0, 3, 60],
} as const satisfies Record<string, VersionTriple>;

/** What one server supports. Unknown versions support nothing optional. */
export interface ServerCapabilities {
  version: string | undefined;
  supportsClientPromptId: boolean;
  supportsPartialTargets: boolean;
  supportsScopedInterrupt: boolean;
  supportsHistoryOffset: boolean;
}

/** Parses "0.3.64", "v0.18.0", "0.9" or "0.3.64-rc1+abc" into a triple; undefined when it is not a version. */
export function parseVersion(version: string | undefined | null): VersionTriple | undefined {
  if (typeof version !== 'string') return undefined;
  const m = /^\s*v?(\d+)(?:\.(\d+))?(?:\.(\d+))?/.exec(version);
  if (!m) return undefined;
  return [Number(m[1]), Number(m[2] ?? 0), Number(m[3] ?? 0)];
}

/** Negative, zero or positive as `a` is older than, equal to or newer than `b`. */
export function compareVersions(a: VersionTriple, b: VersionTriple): number {
  return a[0] - b[0] || a[1] - b[1] || a[2] - b[2];
}

/** True when `version` is at least `minimum`; false for an unparseable version. */
export function versionAtLeast(version: string | undefined | null, minimum: VersionTriple): boolean {
  const v = parseVersion(version);
  return v !== undefined && compareVersions(v, minimum) >= 0;
}

/**
 * The capabilities of a server from its system stats (or its version string).
 *
 * @example
 * const caps = serverCapabilities(await client.getSystemStats());
 * await client.submitPrompt(wf, { promptId: caps.supportsClientPromptId ? id : undefined });
 */
export function serverCapabilities(stats: SystemStats | string | undefined): ServerCapabilities {
  const version = typeof stats === 'string' ? stats : stats?.system.comfyui_version;
  return {
    version,
    supportsClientPromptId: versionAtLeast(version, FEATURE_VERSIONS.clientPromptId),
    supportsPartialTargets: versionAtLeast(version, FEATURE_VERSIONS.partialExecutionTargets),
    supportsScopedInterrupt: versionAtLeast(version, FEATURE_VERSIONS.scopedInterrupt),
    supportsHistoryOffset: versionAtLeast(version, FEATURE_VERSIONS.historyOffset),
  };
}
