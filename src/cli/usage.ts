/**
 * Bad usage (a bad flag value, an unreadable workflow file) exits 2 with one line naming the culprit,
 * distinct from exit 1 (the job or a server failed). Commands wrap their actions with `withUsage`.
 */

/** The command line is wrong; the message names the flag, file or value at fault. */
export class UsageError extends Error {
  readonly code = 'USAGE_ERROR';
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/** Exit code for bad usage. */
export const EXIT_USAGE = 2;

/** Error codes that mean "the command line or its configuration is wrong" (ours, the guard's, the service's). */
const USAGE_CODES = new Set(['USAGE_ERROR', 'CONFIG_ERROR', 'SERVICE_CONFIG_ERROR', 'SIM_CONFIG_ERROR']);

/** Codes of failures to start that the user can fix from the message alone (a taken port, an unusable store or queue). */
const START_CODES = new Set(['STACK_START_ERROR', 'PORT_IN_USE', 'STORE_UNAVAILABLE', 'QUEUE_UNAVAILABLE']);

/** True for a failure to start whose message says what to fix (exit 1, no stack trace). */
export function isStartError(err: unknown): err is Error {
  return err instanceof Error && START_CODES.has(String((err as { code?: unknown }).code));
}

/** True for an error that is the user's input, not a failure. */
export function isUsageError(err: unknown): err is Error {
  return err instanceof Error && USAGE_CODES.has(String((err as { code?: unknown }).code));
}

/** Wraps a commander action: usage and configuration errors print `comfyguard <cmd>: …` and exit 2. */
export function withUsage<A extends unknown[]>(command: string, action: (...args: A) => Promise<void>): (...args: A) => Promise<void> {
  return async (...args: A) => {
    try {
      await action(...args);
    } catch (err) {
      if (isUsageError(err)) {
        process.stderr.write(`comfyguard ${command}: ${err.message}\n`);
        process.exitCode = EXIT_USAGE;
        return;
      }
      if (isStartError(err)) {
        process.stderr.write(`comfyguard ${command}: ${err.message}\n`);
        process.exitCode = 1;
        return;
      }
      throw err;
    }
  };
}
