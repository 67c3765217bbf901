/**
 * How bad an error code is, read from the registry: its category, whether it pages someone at once,
 * and seed 001's recovery-rate targets. Shared by the error analytics, the metrics and the alerts.
 */
import { ERROR_REGISTRY, isErrorCode } from './codes.js';

/** low: retried away unchanged; medium: recovered with a change; high: failed permanent; critical: fatal codes and GPU faults. */
export const SEVERITIES = ['low', 'medium', 'high', 'critical'] as const;
export type Severity = (typeof SEVERITIES)[number];

/** Seed 001's recovery-rate targets (share of jobs hit by the code that still complete). */
export const SEED_RECOVERY_TARGETS: Readonly<Record<string, { label: string; target: number }>> = Object.freeze({
  COMFYUI_OOM: { label: 'OOM', target: 0.9 },
  COMFYUI_TIMEOUT: { label: 'timeout', target: 0.8 },
  COMFYUI_CONNECTION_ERROR: { label: 'network', target: 0.95 },
  COMFYUI_MODEL_MISSING: { label: 'model missing', target: 0.75 },
});

/** The registry's category of a code, or 'unknown' for codes outside it. */
export function categoryOf(code: string): string {
  return isErrorCode(code) ? ERROR_REGISTRY[code].category : 'unknown';
}

/** True for codes that page someone at once: fatal codes and GPU faults. */
export function isCriticalCode(code: string): boolean {
  return categoryOf(code) === 'fatal' || code === 'COMFYUI_GPU_FAULT';
}
