/**
 * Reading the transport error code out of whatever undici, net or ws threw: the underlying system
 * code (ECONNREFUSED, ECONNRESET, ENOTFOUND, ...) wins over a wrapper code (UND_ERR_SOCKET), found
 * by walking `cause` chains and AggregateError members (happy-eyeballs connects raise those).
 */

/** The most specific error code in `err`, its causes and aggregated errors; undefined if none. */
export function transportCodeOf(err: unknown): string | undefined {
  let wrapperCode: string | undefined;
  const seen = new Set<unknown>();
  const queue: unknown[] = [err];
  while (queue.length > 0) {
    const e = queue.shift();
    if (typeof e !== 'object' || e === null || seen.has(e)) continue;
    seen.add(e);
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && code.length > 0) {
      if (isSystemCode(code)) return code;
      wrapperCode ??= code;
    }
    const cause = (e as { cause?: unknown }).cause;
    if (cause !== undefined) queue.push(cause);
    const errors = (e as { errors?: unknown }).errors;
    if (Array.isArray(errors)) queue.push(...errors);
  }
  return wrapperCode;
}

/** Node system error codes look like `ECONNRESET`, `EPIPE`, `EAI_AGAIN`. */
function isSystemCode(code: string): boolean {
  return /^E[A-Z0-9_]+$/.test(code) && !code.startsWith('ERR_');
}

/** A short message for an unknown thrown value. */
export function messageOf(err: unknown): string {
  if (err instanceof Error) return err.message || err.name;
  return typeof err === 'string' ? err : String(err);
}
