import { promises as fs } from 'node:fs';
import path from 'node:path';
import { randomHex } from './builtins.ts';
import { isErrno } from './errors.ts';

/** A unique name beside `target`, on the same filesystem, hidden from globbing. */
export function tempPathBeside(target: string): string {
  return path.join(path.dirname(target), `.${path.basename(target)}.hoard-${process.pid}-${randomHex(4)}.tmp`);
}

/**
 * Writes `data` to `target` atomically (temp file beside it, then rename), and only when
 * the bytes differ from what is there. Returns whether the file was written.
 */
export async function writeFileAtomic(file: string, data: string | Uint8Array, mode = 0o644): Promise<boolean> {
  const bytes = typeof data === 'string' ? Buffer.from(data) : data;
  let target = file;
  let existingMode: number | null = null;
  try {
    // A symlinked file (a shared manifest, say) is updated where it really lives, keeping its mode.
    target = await fs.realpath(file);
    const current = await fs.readFile(target);
    if (current.equals(bytes)) return false;
    existingMode = (await fs.stat(target)).mode & 0o7777;
  } catch (err) {
    if (!isErrno(err, 'ENOENT')) throw err;
  }
  const tmp = tempPathBeside(target);
  try {
    const fh = await fs.open(tmp, 'wx', existingMode ?? mode);
    try {
      await fh.writeFile(bytes);
      if (existingMode !== null) await fh.chmod(existingMode); // exactly as it was, whatever the umask
      // On disk before the rename, and the rename on disk after it: a power loss leaves the old
      // file or the new one, never a torn or empty one.
      await fh.sync();
    } finally {
      await fh.close();
    }
    await fs.rename(tmp, target);
    await syncDir(path.dirname(target));
  } finally {
    await fs.rm(tmp, { force: true });
  }
  return true;
}

/** fsync of a folder, so that a rename in it is durable; a filesystem that cannot is left alone. */
export async function syncDir(dir: string): Promise<void> {
  let fh;
  try {
    fh = await fs.open(dir, 'r');
    await fh.sync();
  } catch (err) {
    if (!isErrno(err, 'EINVAL', 'ENOTSUP', 'EOPNOTSUPP', 'EPERM', 'EACCES', 'EISDIR', 'EBADF')) throw err;
  } finally {
    await fh?.close();
  }
}

/** True when `child` is `parent` or inside it (both absolute, already resolved). */
export function isInside(parent: string, child: string): boolean {
  const rel = path.relative(parent, child);
  return rel === '' || (rel !== '..' && !rel.startsWith(`..${path.sep}`) && !path.isAbsolute(rel));
}
