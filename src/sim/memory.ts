/**
 * The memory model. GPU memory holds every model part loaded since the last unload, plus the
 * working memory of the node that runs now:
 *
 *   peak(node) = sum(loaded model parts) + activation(node)
 *
 * activation: sampler  = batch * megapixels * family.sample
 *             VAEDecode = batch * megapixels * family.decode
 *             VAEDecodeTiled = family.tiled (one tile at a time, whatever the image size)
 *             CLIPTextEncode = 0.1 GiB
 * (megapixels = width * height / 2^20 of the latent's pixel size), plus 0.3 GiB of CUDA context.
 * Above the configured VRAM the node fails like torch's CUDA OOM and ComfyUI unloads every model.
 * Model parts stay loaded across prompts until `/free` (or an OOM), so a prompt that fits alone can
 * fail after a bigger model ran. With these numbers SD1.5 512x512 x1 peaks at 2.7 GiB (fits 4 GiB);
 * SDXL 1024x1024 x8 needs 10.3 GiB to sample and 18.6 GiB to decode (fits 24 GiB, not 8 GiB); on
 * 8 GiB the OOM ladder fits it once the VAE is tiled, the batch halved to 4 and the size scaled to
 * 816 or 824 (about 7.6 GiB). SD1.5 1024x1024 x8 on 8 GiB samples (7.1 GiB) but only decodes tiled.
 * A node served from the cache loads nothing, so a warm retry (cached text encodings: no CLIP)
 * needs less than a cold one, as in ComfyUI.
 *
 * CPU tensors (EmptyImage, LoadImage, image ops; everything on a `cpu` device) must fit in RAM;
 * an allocation above free RAM fails with the CPU allocator's RuntimeError.
 */

export const GiB = 2 ** 30;
export const MiB = 2 ** 20;
/** Whole bytes of `n` GiB. */
const g = (n: number): number => Math.round(n * GiB);

export type ModelFamily = 'sd15' | 'sdxl' | 'sd3' | 'flux';

export interface FamilyProfile {
  unet: number;
  clip: number;
  vae: number;
  /** Sampler working memory per image per megapixel. */
  sample: number;
  /** Full VAE decode working memory per image per megapixel. */
  decode: number;
  /** Tiled VAE decode working memory (one tile). */
  tiled: number;
}

export const FAMILIES: Readonly<Record<ModelFamily, FamilyProfile>> = {
  sd15: { unet: g(1.6), clip: g(0.24), vae: g(0.16), sample: g(0.6), decode: g(1.5), tiled: g(0.35) },
  sdxl: { unet: g(4.8), clip: g(1.35), vae: g(0.16), sample: g(0.45), decode: g(1.5), tiled: g(0.35) },
  sd3: { unet: g(4.2), clip: g(1.5), vae: g(0.16), sample: g(0.8), decode: g(1.5), tiled: g(0.35) },
  flux: { unet: g(11.1), clip: g(4.6), vae: g(0.16), sample: g(1.2), decode: g(1.5), tiled: g(0.35) },
};

export const LORA_BYTES = g(0.15);
export const TEXT_ENCODE_BYTES = g(0.1);
/** Memory the CUDA context and allocator keep whatever runs. */
export const CUDA_CONTEXT_BYTES = g(0.3);
/** RAM the server process itself uses. */
export const PROCESS_RAM_BYTES = g(1.5);

/** The model family a file name suggests (SDXL, SD3, Flux; SD1.5 otherwise). */
export function familyOf(fileName: string): ModelFamily {
  const n = fileName.toLowerCase();
  if (n.includes('flux')) return 'flux';
  if (/sd3|sd_3|stable-diffusion-3/.test(n)) return 'sd3';
  if (n.includes('xl')) return 'sdxl';
  return 'sd15';
}

/** One piece of a model that occupies GPU memory once loaded. */
export interface ModelPart {
  key: string;
  bytes: number;
}

/** torch's `format_size`: bytes, KiB, MiB or GiB with two decimals. */
export function formatTorchSize(bytes: number): string {
  const b = Math.max(0, Math.round(bytes));
  if (b <= 1024) return `${b} bytes`;
  if (b <= MiB) return `${(b / 1024).toFixed(2)} KiB`;
  if (b <= GiB) return `${(b / MiB).toFixed(2)} MiB`;
  return `${(b / GiB).toFixed(2)} GiB`;
}

/** What ComfyUI appends to a torch OOM message (execution.py). */
export const OOM_TIPS =
  'This error means you ran out of memory on your GPU.\n\nTIPS: If the workflow worked before you might have accidentally set the batch_size to a large number.';

/** torch.OutOfMemoryError's text for a failed CUDA allocation. */
export function cudaOomMessage(tried: number, total: number, inUse: number): string {
  const free = Math.max(0, total - inUse);
  const allocated = Math.max(0, inUse - CUDA_CONTEXT_BYTES);
  const reservedFree = Math.min(allocated * 0.02, 512 * MiB);
  return (
    `CUDA out of memory. Tried to allocate ${formatTorchSize(tried)}. GPU 0 has a total capacity of ${formatTorchSize(total)} ` +
    `of which ${formatTorchSize(free)} is free. Including non-PyTorch memory, this process has ${formatTorchSize(inUse)} memory in use. ` +
    `Of the allocated memory ${formatTorchSize(allocated)} is allocated by PyTorch, and ${formatTorchSize(reservedFree)} is reserved by PyTorch but unallocated. ` +
    'If reserved but unallocated memory is large try setting PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True to avoid fragmentation.  ' +
    'See documentation for Memory Management  (https://pytorch.org/docs/stable/notes/cuda.html#environment-variables)'
  );
}

/** The CPU allocator's RuntimeError text (as recorded in exec_error_oom.json). */
export function cpuOomMessage(bytes: number): string {
  return `[enforce fail at alloc_cpu.cpp:75] err == 0. DefaultCPUAllocator: can't allocate memory: you tried to allocate ${Math.round(bytes)} bytes. Error code 12 (Cannot allocate memory)`;
}

/** Why an allocation failed. */
export class AllocationError extends Error {
  constructor(
    readonly pyType: 'torch.OutOfMemoryError' | 'RuntimeError',
    message: string,
    /** CUDA OOMs make ComfyUI append its tips and unload every model. */
    readonly cudaOom: boolean,
  ) {
    super(message);
    this.name = 'AllocationError';
  }
}

/** GPU and RAM bookkeeping of one simulated server process. */
export class MemoryModel {
  private readonly loaded = new Map<string, number>();

  constructor(
    readonly device: 'cuda' | 'cpu',
    readonly vramTotal: number,
    readonly ramTotal: number,
  ) {}

  /** Bytes of model parts currently loaded on the device. */
  loadedBytes(): number {
    let sum = 0;
    for (const b of this.loaded.values()) sum += b;
    return sum;
  }

  loadedKeys(): string[] {
    return [...this.loaded.keys()];
  }

  /** ComfyUI's `unload_all_models`. */
  unloadAll(): void {
    this.loaded.clear();
  }

  /** Free RAM as `/system_stats` reports it. */
  ramFree(): number {
    const models = this.device === 'cpu' ? this.loadedBytes() : 0;
    return Math.max(0, this.ramTotal - PROCESS_RAM_BYTES - models);
  }

  /** Free device memory as `/system_stats` reports it. */
  vramFree(): number {
    if (this.device === 'cpu') return this.ramFree();
    return Math.max(0, this.vramTotal - CUDA_CONTEXT_BYTES - this.loadedBytes());
  }

  /** A CPU-side tensor allocation; throws the CPU allocator error when it does not fit. */
  allocCpu(bytes: number): void {
    if (bytes > this.ramFree()) throw new AllocationError('RuntimeError', cpuOomMessage(bytes), false);
  }

  /**
   * Loads `parts` on the device, then checks that `activation` more bytes fit. Throws like torch
   * when they do not (CUDA: torch.OutOfMemoryError; cpu device: the CPU allocator RuntimeError).
   */
  useDevice(parts: readonly ModelPart[], activation: number): void {
    if (this.device === 'cpu') {
      for (const p of parts) this.loaded.set(p.key, p.bytes);
      this.allocCpu(activation);
      return;
    }
    for (const p of parts) {
      if (this.loaded.has(p.key)) continue;
      const inUse = CUDA_CONTEXT_BYTES + this.loadedBytes();
      if (inUse + p.bytes > this.vramTotal) {
        throw new AllocationError('torch.OutOfMemoryError', cudaOomMessage(p.bytes, this.vramTotal, inUse), true);
      }
      this.loaded.set(p.key, p.bytes);
    }
    const inUse = CUDA_CONTEXT_BYTES + this.loadedBytes();
    if (inUse + activation > this.vramTotal) {
      throw new AllocationError('torch.OutOfMemoryError', cudaOomMessage(activation, this.vramTotal, inUse), true);
    }
  }
}
