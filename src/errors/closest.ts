/**
 * "Did you mean": the allowed values closest to a wrong one, by edit distance on the lowercased
 * name without folder and file extension (so `dreamshaper_8.safetensors` is near `dreamshaper_7.ckpt`).
 */

/** Up to `max` of `options` closest to `wanted`, closest first (ties keep the options' order). */
export function closestNames(wanted: string, options: readonly string[], max = 3): string[] {
  const key = (s: string) =>
    (s.split(/[\\/]/).pop() ?? s)
      .toLowerCase()
      .replace(/\.(safetensors|ckpt|pt|pth|bin|gguf|sft)$/, '');
  const w = key(wanted);
  return options
    .slice(0, 5_000)
    .map((o, i) => ({ o, i, d: distance(w, key(o)) }))
    .sort((a, b) => a.d - b.d || a.i - b.i)
    .slice(0, max)
    .map((x) => x.o);
}

/** Levenshtein distance, two rows, inputs capped at 200 characters. */
function distance(a: string, b: string): number {
  const s = a.slice(0, 200);
  const t = b.slice(0, 200);
  let prev = Array.from({ length: t.length + 1 }, (_, j) => j);
  for (let i = 1; i <= s.length; i++) {
    const cur = [i];
    for (let j = 1; j <= t.length; j++) cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (s[i - 1] === t[j - 1] ? 0 : 1));
    prev = cur;
  }
  return prev[t.length]!;
}
