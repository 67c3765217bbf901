/**
 * `Retry-After` (RFC 9110 §10.2.3): either delay-seconds or an HTTP-date. Proxies in front of hosted
 * ComfyUI pods send it with 429 and 503; the retry policy lets it replace its own backoff.
 */

/** Milliseconds to wait from `nowMs`, or undefined when the header is absent or unreadable. */
export function parseRetryAfter(value: string | null | undefined, nowMs: number): number | undefined {
  if (value === null || value === undefined) return undefined;
  const v = value.trim();
  if (v === '') return undefined;
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  // Only real HTTP-dates: Date.parse alone would accept "1.5" or "soon-ish 2020" as a date.
  if (!/^[A-Za-z]{3},? /.test(v) && !/ GMT$/.test(v)) return undefined;
  const at = Date.parse(v);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - nowMs);
}

/**
 * Reads `Retry-After` from anything that carries response headers (a ComfyRequestError does), with
 * header names compared case-insensitively.
 */
export function retryAfterFrom(error: unknown, nowMs: number): number | undefined {
  if (typeof error !== 'object' || error === null || !('headers' in error)) return undefined;
  const headers = (error as { headers: unknown }).headers;
  if (typeof headers !== 'object' || headers === null) return undefined;
  for (const [k, v] of Object.entries(headers as Record<string, unknown>)) {
    if (k.toLowerCase() === 'retry-after' && typeof v === 'string') return parseRetryAfter(v, nowMs);
  }
  return undefined;
}
