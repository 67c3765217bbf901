/**
 * The simulated server's folders: `output/` (kept across crashes, like a real disk), `input/`
 * (uploads, LoadImage) and `temp/` (previews, wiped at every start like ComfyUI does). Saved image
 * names follow ComfyUI's `<prefix>_<counter:05>_.png` scheme with a per-prefix counter.
 */
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join, normalize, relative, resolve, sep } from 'node:path';
import { solidPng } from './png.js';

export type DirType = 'output' | 'input' | 'temp';

/** One saved file as ComfyUI reports it in `images`. */
export interface FileRef {
  filename: string;
  subfolder: string;
  type: string;
}

/** A save that ComfyUI refuses (raised as a Python exception in the node). */
export class SaveError extends Error {
  constructor(
    readonly pyType: string,
    message: string,
  ) {
    super(message);
    this.name = 'SaveError';
  }
}

function within(root: string, p: string): boolean {
  const rel = relative(root, p);
  return rel === '' || (!rel.startsWith('..') && !rel.startsWith(sep) && !/^[A-Za-z]:/.test(rel));
}

/** The three folders of a simulated server. */
export class SimStorage {
  private readonly counters = new Map<string, number>();

  private constructor(
    readonly root: string,
    private readonly owned: boolean,
  ) {
    for (const d of ['output', 'input', 'temp'] as const) mkdirSync(this.dir(d), { recursive: true });
  }

  /** Uses `dataDir`, or a fresh directory under the OS temp dir that `close()` removes. */
  static async create(dataDir?: string): Promise<SimStorage> {
    if (dataDir) {
      mkdirSync(dataDir, { recursive: true });
      return new SimStorage(resolve(dataDir), false);
    }
    return new SimStorage(await mkdtemp(join(tmpdir(), 'comfyguard-sim-')), true);
  }

  dir(type: DirType): string {
    return join(this.root, type);
  }

  /** Empties `temp/` (ComfyUI does it at every start). */
  wipeTemp(): void {
    rmSync(this.dir('temp'), { recursive: true, force: true });
    mkdirSync(this.dir('temp'), { recursive: true });
    this.counters.clear();
  }

  /** File names in `input/` (top level), as LoadImage lists them. */
  inputFiles(): string[] {
    try {
      return readdirSync(this.dir('input')).filter((f) => statSync(join(this.dir('input'), f)).isFile());
    } catch {
      return [];
    }
  }

  /** sha256 of an input file (LoadImage's IS_CHANGED), or a marker when it is missing. */
  inputFileHash(name: string): string {
    try {
      return createHash('sha256').update(readFileSync(join(this.dir('input'), name.replace(/ \[(input|output|temp)\]$/, '')))).digest('hex');
    } catch {
      return `missing:${name}`;
    }
  }

  readInput(name: string): Buffer | undefined {
    const p = join(this.dir('input'), basename(name.replace(/ \[(input|output|temp)\]$/, '')));
    try {
      return readFileSync(p);
    } catch {
      return undefined;
    }
  }

  private nextCounter(folder: string, filename: string): number {
    const key = `${folder}\u0000${filename}`;
    let current = this.counters.get(key);
    if (current === undefined) {
      current = 0;
      const prefixLen = filename.length;
      let names: string[] = [];
      try {
        names = readdirSync(folder);
      } catch {
        names = [];
      }
      for (const name of names) {
        const prefix = name.slice(0, prefixLen + 1);
        if (prefix.slice(0, -1).toLowerCase() !== filename.toLowerCase() || !prefix.endsWith('_')) continue;
        const digits = Number.parseInt(name.slice(prefixLen + 1).split('_')[0] ?? '', 10);
        if (Number.isInteger(digits) && digits > current) current = digits;
      }
    }
    return current + 1;
  }

  /**
   * Writes one PNG per image like SaveImage/PreviewImage, small (at most 64 px a side) but real.
   * Throws SaveError when the prefix escapes the folder.
   */
  async saveImages(
    type: 'output' | 'temp',
    filenamePrefix: string,
    image: { batch: number; width: number; height: number; rgb: [number, number, number] },
    metadata: Record<string, string>,
  ): Promise<FileRef[]> {
    const base = this.dir(type);
    let prefix = filenamePrefix;
    if (prefix.includes('%')) {
      const now = new Date();
      const pad = (n: number) => String(n).padStart(2, '0');
      prefix = prefix
        .replaceAll('%width%', String(image.width))
        .replaceAll('%height%', String(image.height))
        .replaceAll('%year%', String(now.getFullYear()))
        .replaceAll('%month%', pad(now.getMonth() + 1))
        .replaceAll('%day%', pad(now.getDate()))
        .replaceAll('%hour%', pad(now.getHours()))
        .replaceAll('%minute%', pad(now.getMinutes()))
        .replaceAll('%second%', pad(now.getSeconds()));
    }
    const norm = normalize(prefix);
    const subfolder = dirname(norm) === '.' ? '' : dirname(norm);
    const filename = basename(norm);
    const folder = resolve(base, subfolder);
    if (!within(base, folder)) {
      throw new SaveError(
        'Exception',
        `**** ERROR: Saving image outside the output folder is not allowed.\n full_output_folder: ${folder}\n         output_dir: ${base}\n         commonpath: ${this.root}`,
      );
    }
    if (!existsSync(folder)) mkdirSync(folder, { recursive: true });
    let counter = this.nextCounter(folder, filename);
    const scale = Math.min(1, 64 / Math.max(image.width, image.height));
    const png = solidPng(Math.max(1, image.width * scale), Math.max(1, image.height * scale), image.rgb, metadata);
    const results: FileRef[] = [];
    for (let i = 0; i < image.batch; i++) {
      const file = `${filename.replaceAll('%batch_num%', String(i))}_${String(counter).padStart(5, '0')}_.png`;
      await writeFile(join(folder, file), png);
      results.push({ filename: file, subfolder, type });
      this.counters.set(`${folder}\u0000${filename}`, counter);
      counter++;
    }
    return results;
  }

  /** Stores an upload like `POST /upload/image`; returns the name actually used. */
  async upload(type: DirType, subfolder: string, name: string, data: Buffer, overwrite: boolean): Promise<FileRef | undefined> {
    const base = this.dir(type);
    const folder = resolve(base, normalize(subfolder || '.'));
    let file = resolve(folder, name);
    if (!within(base, file) || name === '') return undefined;
    mkdirSync(folder, { recursive: true });
    let finalName = name;
    if (!overwrite) {
      const dot = name.lastIndexOf('.');
      const stem = dot > 0 ? name.slice(0, dot) : name;
      const ext = dot > 0 ? name.slice(dot) : '';
      for (let i = 1; existsSync(file); i++) {
        if (readFileSync(file).equals(data)) return { filename: finalName, subfolder, type };
        finalName = `${stem} (${i})${ext}`;
        file = join(folder, finalName);
      }
    }
    await writeFile(file, data);
    return { filename: finalName, subfolder, type };
  }

  /** Removes one file of a folder (the custom delete routes); `refused` for a path that leaves it. */
  deleteFile(type: DirType, subfolder: string, filename: string): 'deleted' | 'missing' | 'refused' {
    const base = this.dir(type);
    const file = resolve(base, normalize(subfolder || '.'), filename);
    if (!filename || !within(base, file) || file === base) return 'refused';
    try {
      if (!statSync(file).isFile()) return 'missing';
    } catch {
      return 'missing';
    }
    rmSync(file);
    return 'deleted';
  }

  /** Resolves a `/view` request like ComfyUI: a path, or the status ComfyUI answers. */
  resolveView(query: URLSearchParams): { path: string; filename: string } | { status: 400 | 403 | 404 } {
    const raw = query.get('filename');
    if (raw === null) return { status: 404 };
    let name = raw;
    let dirType: string | null = null;
    const m = / ?\[(output|input|temp)\]$/.exec(name);
    if (m) {
      dirType = m[1] ?? null;
      name = name.slice(0, m.index);
    }
    if (!name || name.startsWith('/') || name.includes('..')) return { status: 400 };
    const type = dirType ?? query.get('type') ?? 'output';
    if (type !== 'output' && type !== 'input' && type !== 'temp') return { status: 400 };
    let dir = this.dir(type);
    const sub = query.get('subfolder');
    if (sub !== null) {
      const full = resolve(dir, sub);
      if (!within(dir, full)) return { status: 403 };
      dir = full;
    }
    const file = join(dir, basename(name));
    try {
      if (statSync(file).isFile()) return { path: file, filename: basename(name) };
    } catch {
      // falls through to 404
    }
    return { status: 404 };
  }

  /** Writes the sample input image a fresh ComfyUI ships (`input/example.png`). */
  ensureExampleInput(): void {
    const p = join(this.dir('input'), 'example.png');
    if (!existsSync(p)) writeFileSync(p, solidPng(64, 64, [120, 160, 200]));
  }

  /** A random 5-letter suffix, as PreviewImage appends to its prefix. */
  static previewSuffix(): string {
    const letters = 'abcdefghijklmnopqrstupvxyz';
    return [...randomBytes(5)].map((b) => letters[b % letters.length]).join('');
  }

  /** Removes the data directory if the simulator created it. */
  async close(): Promise<void> {
    if (this.owned) await rm(this.root, { recursive: true, force: true });
  }
}
