import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cpuOomMessage, cudaOomMessage, GiB, MiB } from '../sim/memory.js';
import { oomWordsForDevice, parseOomAmount } from './oom-amount.js';

const capture = JSON.parse(readFileSync(join(import.meta.dirname, '../../../shared/comfyui-captures/exec_error_oom.json'), 'utf8')) as {
  events: Array<{ kind: string; data?: { type?: string; data?: { exception_message?: string } } }>;
};
const realCpuText = capture.events.find((e) => e.data?.type === 'execution_error')?.data?.data?.exception_message ?? '';

describe('parseOomAmount', () => {
  it('reads the byte count of the CPU allocator message recorded from a real ComfyUI', () => {
    expect(realCpuText).toContain('DefaultCPUAllocator');
    expect(parseOomAmount(realCpuText)).toEqual({ device: 'cpu', triedBytes: 68719476736 });
  });

  it('reads tried, total, free and in-use from torch >= 2.1 CUDA messages', () => {
    const text = cudaOomMessage(2 * GiB, 8 * GiB, 7 * GiB);
    const a = parseOomAmount(text);
    expect(a?.device).toBe('gpu');
    expect(a?.triedBytes).toBe(2 * GiB);
    expect(a?.totalBytes).toBe(8 * GiB);
    expect(a?.freeBytes).toBe(1 * GiB);
    expect(a?.inUseBytes).toBe(7 * GiB);
  });

  it('reads the older "(GPU 0; X total capacity; ...; Y free)" form and derives in-use from it', () => {
    const text = 'CUDA out of memory. Tried to allocate 512.00 MiB (GPU 0; 7.79 GiB total capacity; 5.10 GiB already allocated; 1.50 GiB free; 5.20 GiB reserved in total by PyTorch)';
    const a = parseOomAmount(text);
    expect(a).toMatchObject({ device: 'gpu', triedBytes: 512 * MiB, freeBytes: Math.round(1.5 * GiB) });
    expect(a?.totalBytes).toBe(Math.round(7.79 * GiB));
    expect(a?.inUseBytes).toBe(Math.round(7.79 * GiB) - Math.round(1.5 * GiB));
  });

  it('reads the MPS form with its max allowed as the capacity', () => {
    const a = parseOomAmount('MPS backend out of memory (MPS allocated: 16.91 GB, other allocations: 2.77 MB, max allowed: 18.13 GB). Tried to allocate 1.28 GB on private pool.');
    expect(a?.triedBytes).toBe(Math.round(1.28 * GiB));
    expect(a?.totalBytes).toBe(Math.round(18.13 * GiB));
    expect(a?.inUseBytes).toBe(Math.round(16.91 * GiB) + Math.round(2.77 * MiB));
  });

  it('returns null when the text names no size', () => {
    expect(parseOomAmount('torch.OutOfMemoryError: Allocation on device')).toBeNull();
    expect(parseOomAmount('')).toBeNull();
  });

  it('agrees with the simulator CPU message for any size', () => {
    for (const n of [1, 4096, 206158430208]) expect(parseOomAmount(cpuOomMessage(n))?.triedBytes).toBe(n);
  });
});

describe('oomWordsForDevice', () => {
  it('speaks of system memory for the CPU allocator, not of a GPU', () => {
    const w = oomWordsForDevice({ text: realCpuText, server: 'cpu-box' });
    expect(w?.message).toContain('system memory');
    expect(w?.message).toContain('64.00 GiB');
    expect(w?.message).not.toMatch(/GPU/);
    expect(w?.hint).toContain('bigger GPU does not help');
  });

  it('speaks of system memory on a server whose device is cpu even for a torch message', () => {
    expect(oomWordsForDevice({ text: 'Allocation on device', deviceType: 'cpu' })?.message).toContain('system memory');
  });

  it('keeps the GPU wording (returns null) for a CUDA OOM on a GPU server', () => {
    expect(oomWordsForDevice({ text: cudaOomMessage(GiB, 8 * GiB, 7.5 * GiB), deviceType: 'cuda' })).toBeNull();
  });
});
