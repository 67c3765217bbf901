/**
 * The simulator's own configuration error: bad options, fault specs, CLI flags or admin bodies.
 * It names the offending part (`where`) so a user sees exactly what to fix.
 */

const kSimConfigError = Symbol.for('comfyguard.SimConfigError');

/** A bad simulator setting; `where` names the flag, option or spec part that is wrong. */
export class SimConfigError extends Error {
  readonly code = 'SIM_CONFIG_ERROR';
  constructor(
    readonly where: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`${where}: ${message}`, options);
    this.name = 'SimConfigError';
    Object.defineProperty(this, kSimConfigError, { value: true });
  }

  /** Cross-realm safe check. */
  static override [Symbol.hasInstance](x: unknown): boolean {
    return typeof x === 'object' && x !== null && (x as Record<symbol, unknown>)[kSimConfigError] === true;
  }
}

/** The port the simulator was asked to listen on is taken; the message names it. */
export class PortInUseError extends Error {
  readonly code = 'PORT_IN_USE';
  constructor(
    readonly host: string,
    readonly port: number,
    cause: unknown,
  ) {
    super(`port ${port} on ${host} is already in use (another ComfyUI or simulator?); choose another port, or 0 for a free one`, { cause });
    this.name = 'PortInUseError';
  }
}
