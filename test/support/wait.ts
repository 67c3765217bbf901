/**
 * Bounded waiting for tests: poll a condition until it holds or a generous bound passes. The bound
 * only turns a hang into a clear failure; tests never assert on how long something took. `pause`
 * replaces the sleep between probes, for tests that fake `setTimeout` (e.g. wait on `setImmediate`).
 */
export async function until<T>(
  probe: () => T | Promise<T>,
  what: string,
  { timeoutMs = 45_000, intervalMs = 20, pause }: { timeoutMs?: number; intervalMs?: number; pause?: () => Promise<void> } = {},
): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v) return v as NonNullable<T>;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${what}${last ? ` (last error: ${String(last)})` : ''}`);
    }
    await (pause ? pause() : new Promise((r) => setTimeout(r, intervalMs)));
  }
}
