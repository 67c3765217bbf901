/**
 * Creates a folder and its missing parents one level at a time. Node 20's `mkdirSync(dir,
 * { recursive: true })` never returns for a path under /proc; walking up with `stat` and creating
 * each level fails at once instead (ENOENT/EACCES/ENOTDIR from the level that cannot be made).
 */
import { mkdirSync, statSync } from 'node:fs';
import { dirname } from 'node:path';

/** Thrown when a level of the path exists but is not a folder. */
export class NotAFolderError extends Error {
  constructor(readonly path: string) {
    super(`${path} is not a folder`);
    this.name = 'NotAFolderError';
  }
}

/** Makes `dir` (and missing parents); returns the folders it created, outermost first. */
export function makeFolder(dir: string): string[] {
  const missing: string[] = [];
  let at = dir;
  for (;;) {
    let isDir: boolean | null;
    try {
      isDir = statSync(at).isDirectory();
    } catch {
      isDir = null;
    }
    if (isDir === true) break;
    if (isDir === false) throw new NotAFolderError(at);
    const parent = dirname(at);
    if (parent === at) break;
    missing.unshift(at);
    at = parent;
  }
  for (const d of missing) {
    try {
      mkdirSync(d);
    } catch (err) {
      if ((err as { code?: unknown }).code !== 'EEXIST') throw err;
    }
  }
  return missing;
}
