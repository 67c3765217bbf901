/**
 * How much memory an out-of-memory error says was asked for, read from the allocator's own text:
 * torch's CUDA message ("Tried to allocate 2.00 GiB. GPU 0 has a total capacity of 7.79 GiB of which
 * 1.06 GiB is free. ... this process has 6.72 GiB memory in use", and the older "(GPU 0; 7.79 GiB
 * total capacity; 5.10 GiB already allocated; 1.06 GiB free; ...)") and the CPU allocator's
 * "you tried to allocate 206158430208 bytes". Pure; the memory model turns these into bounds.
 */

/** What an OOM message says, in bytes; absent fields were not in the text. */
export interface OomAmount {
  /** `gpu`: torch's CUDA (or MPS) allocator; `cpu`: the CPU allocator (system memory). */
  device: 'gpu' | 'cpu';
  /** The allocation that failed. */
  triedBytes: number;
  /** The device's total capacity. */
  totalBytes?: number;
  /** What was free when it failed. */
  freeBytes?: number;
  /** Memory in use by the process (including non-PyTorch), or total minus free when not stated. */
  inUseBytes?: number;
}

const UNITS: Readonly<Record<string, number>> = {
  b: 1,
  byte: 1,
  bytes: 1,
  kib: 2 ** 10,
  kb: 2 ** 10,
  mib: 2 ** 20,
  mb: 2 ** 20,
  gib: 2 ** 30,
  gb: 2 ** 30,
  tib: 2 ** 40,
  tb: 2 ** 40,
};

const SIZE = String.raw`(\d+(?:\.\d+)?)\s*(bytes?|[KMGT]i?B|B)`;

/** "2.00 GiB" -> bytes (torch uses binary units whatever the suffix says). */
function bytes(value: string | undefined, unit: string | undefined): number | undefined {
  if (value === undefined || unit === undefined) return undefined;
  const mult = UNITS[unit.toLowerCase()];
  const n = Number(value);
  if (mult === undefined || !Number.isFinite(n)) return undefined;
  return Math.round(n * mult);
}

/**
 * Reads the amounts out of an OOM message (exception text as ComfyUI reports it). Null when the
 * text names no allocation size (e.g. "Allocation on device" without numbers).
 * @example parseOomAmount('CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity of 8.00 GiB of which 1.00 GiB is free.')
 * // { device: 'gpu', triedBytes: 2147483648, totalBytes: 8589934592, freeBytes: 1073741824, inUseBytes: 7516192768 }
 */
export function parseOomAmount(text: string): OomAmount | null {
  // Bound the scan: the numbers are in the first lines of torch's message.
  const t = text.slice(0, 4_000);
  const cpu = /you tried to allocate (\d+) bytes/i.exec(t);
  if (cpu) return { device: 'cpu', triedBytes: Number(cpu[1]) };
  const tried = new RegExp(String.raw`Tried to allocate ${SIZE}`, 'i').exec(t);
  const triedBytes = bytes(tried?.[1], tried?.[2]);
  if (triedBytes === undefined) return null;
  const out: OomAmount = { device: 'gpu', triedBytes };
  // torch >= 2.1: "GPU 0 has a total capacity of X of which Y is free."
  const modern = new RegExp(String.raw`total capacity of ${SIZE} of which ${SIZE} is free`, 'i').exec(t);
  // torch < 2.1: "(GPU 0; X total capacity; A already allocated; Y free; ...)"
  const legacyTotal = new RegExp(String.raw`${SIZE} total capacity`, 'i').exec(t);
  const legacyFree = new RegExp(String.raw`${SIZE} free`, 'i').exec(t);
  // Apple MPS: "(MPS allocated: A, other allocations: B, max allowed: C)".
  const mps = new RegExp(String.raw`MPS allocated: ${SIZE}, other allocations: ${SIZE}, max allowed: ${SIZE}`, 'i').exec(t);
  if (mps) {
    const inUse = (bytes(mps[1], mps[2]) ?? 0) + (bytes(mps[3], mps[4]) ?? 0);
    const max = bytes(mps[5], mps[6]);
    return { ...out, inUseBytes: inUse, ...(max !== undefined ? { totalBytes: max, freeBytes: Math.max(0, max - inUse) } : {}) };
  }
  const total = modern ? bytes(modern[1], modern[2]) : bytes(legacyTotal?.[1], legacyTotal?.[2]);
  const free = modern ? bytes(modern[3], modern[4]) : bytes(legacyFree?.[1], legacyFree?.[2]);
  if (total !== undefined) out.totalBytes = total;
  if (free !== undefined) out.freeBytes = free;
  const process = new RegExp(String.raw`this process has ${SIZE} memory in use`, 'i').exec(t);
  const inUse = bytes(process?.[1], process?.[2]) ?? (total !== undefined && free !== undefined ? Math.max(0, total - free) : undefined);
  if (inUse !== undefined) out.inUseBytes = inUse;
  return out;
}

/** "6.50 GiB" for messages. */
export function formatBytes(n: number): string {
  if (n >= 2 ** 30) return `${(n / 2 ** 30).toFixed(2)} GiB`;
  if (n >= 2 ** 20) return `${(n / 2 ** 20).toFixed(1)} MiB`;
  return `${Math.round(n)} bytes`;
}

/**
 * The message and hint of an OOM in words that fit the device it happened on: the CPU allocator, or
 * a server whose `/system_stats` device is `cpu`, ran out of system memory (RAM), not of a GPU.
 * Returns null when the registry's GPU wording is right (a CUDA OOM on a GPU server).
 * @example oomWordsForDevice({ text: 'DefaultCPUAllocator: ... you tried to allocate 206158430208 bytes', deviceType: 'cpu' })
 * // { message: 'The server ran out of system memory (RAM) ...', hint: '...' }
 */
export function oomWordsForDevice(i: { text: string; deviceType?: string | null; server?: string }): { message: string; hint: string } | null {
  const amount = parseOomAmount(i.text);
  const cpu = amount?.device === 'cpu' || /DefaultCPUAllocator/.test(i.text) || (i.deviceType ?? '').toLowerCase() === 'cpu';
  if (!cpu) return null;
  const on = i.server ? `server ${i.server}` : 'the server';
  const tried = amount ? ` (it tried to allocate ${formatBytes(amount.triedBytes)})` : '';
  return {
    message: `${on === 'the server' ? 'The server' : `Server ${i.server}`} ran out of system memory (RAM) while running the workflow${tried}.`,
    hint: `Lower the batch size or image size, run the job on a server with more RAM, or give ${on} more memory; this server computes on the CPU, so a bigger GPU does not help.`,
  };
}
