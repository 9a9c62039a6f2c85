import { existsSync } from 'node:fs';
import path from 'node:path';

export const MANIFEST_NAME = 'hoard.json';

/**
 * The manifest a command run in `start` uses when none is named: `hoard.json` there, else in
 * the closest folder above, as git and npm look for theirs. The search stops at the top of
 * the repository (a folder with `.git`) and at the filesystem root. Null when there is none.
 */
export function findManifest(start: string): string | null {
  for (let dir = path.resolve(start); ; ) {
    const file = path.join(dir, MANIFEST_NAME);
    if (existsSync(file)) return file;
    if (existsSync(path.join(dir, '.git'))) return null;
    const up = path.dirname(dir);
    if (up === dir) return null;
    dir = up;
  }
}
