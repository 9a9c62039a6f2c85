import { promises as fs, constants, linkSync, lstatSync, realpathSync, renameSync } from 'node:fs';
import path from 'node:path';
import type { Digest } from '../core/digest.ts';
import { randomHex } from '../core/builtins.ts';
import { HoardError, isErrno } from '../core/errors.ts';
import { isInside } from '../core/fsutil.ts';
import type { LinkMode } from '../manifest/types.ts';
import { copyVerified } from './copy.ts';

export type LinkMethod = 'reflink' | 'hardlink' | 'copy';

export interface MaterializeRequest {
  blob: string;
  /** The output folder; `relPath` must stay inside it, symlinks included. */
  outputRoot: string;
  relPath: string;
  /** The folder outputRoot must stay inside, symlinks included (the manifest's); default: outputRoot. */
  boundary?: string;
  link: LinkMode;
  executable: boolean;
  /** The blob's digest: a copy is hashed as it is made and refused when it does not match. */
  digest?: Digest;
}

export interface Materializer {
  /** Puts the blob's content at outputRoot/relPath atomically; returns how. */
  materialize(req: MaterializeRequest): Promise<{ method: LinkMethod; target: string }>;
}

/** errno codes that mean "this filesystem (pair) cannot do that", not "something broke". */
const UNSUPPORTED = ['EXDEV', 'ENOTSUP', 'EOPNOTSUPP', 'EPERM', 'EINVAL', 'ENOSYS', 'EMLINK', 'ENOTTY'];

/** True when a relative path (native separators) goes through a `.git` folder, in any letter case. */
const throughGit = (rel: string) => rel.split(path.sep).some((seg) => seg.toLowerCase() === '.git');

/** The E_PATH error for a folder whose real path leaves `top` (or enters a .git folder) through a symbolic link. */
async function escapeError(dir: string, real: string | null, top: string, hint: string): Promise<HoardError> {
  // (Each folder above `dir` was checked already: `dir` itself is the link.)
  const link = dir;
  const to = real ?? (await fs.readlink(link).catch(() => '?'));
  const where = real === null ? 'which does not exist' : isInside(top, real) ? 'inside a .git folder' : `outside ${top}`;
  return new HoardError('E_PATH', `${link} is a symbolic link to ${to}, ${where}: hoard will not write through it`, {
    hint,
    details: { path: link, target: to },
  });
}

/**
 * Checks the folders from `top` down to `dir` one level at a time: the real path of each must
 * stay inside the real path of `top` and out of any .git folder, so a symbolic link (committed
 * to a repository, say) can never make hoard write elsewhere. With `create`, missing folders
 * are made, each checked as it is; without, the check stops at the first one that is missing.
 */
export async function checkInside(top: string, dir: string, opts: { create: boolean; hint: string }): Promise<void> {
  if (opts.create) await fs.mkdir(top, { recursive: true });
  let realTop: string;
  try {
    // (Synchronous: a no-op sync checks a few folders, and never needs fs/promises otherwise.)
    realTop = realpathSync.native(top);
  } catch (err) {
    if (!opts.create && isErrno(err, 'ENOENT')) return;
    throw err;
  }
  let cur = top;
  for (const part of path.relative(top, dir).split(path.sep).filter(Boolean)) {
    cur = path.join(cur, part);
    if (opts.create) {
      try {
        await fs.mkdir(cur);
      } catch (err) {
        if (!isErrno(err, 'EEXIST')) throw err;
      }
    }
    let real: string;
    try {
      real = realpathSync.native(cur);
    } catch (err) {
      if (!isErrno(err, 'ENOENT')) throw err;
      // A symbolic link to nothing: hoard would create its target, wherever that is.
      if (lstatSync(cur, { throwIfNoEntry: false })?.isSymbolicLink()) throw await escapeError(cur, null, top, opts.hint);
      if (!opts.create) return;
      throw err;
    }
    if (!isInside(realTop, real) || throughGit(path.relative(realTop, real))) throw await escapeError(cur, real, top, opts.hint);
  }
}

/** The last output folder prepareTarget saw, and its normal absolute form. */
let lastRoot: [string, string] = ['', ''];
const normalRoot = (dir: string): string => (lastRoot[0] === dir ? lastRoot[1] : (lastRoot = [dir, path.resolve(dir)])[1]);

/**
 * Resolves outputRoot/relPath, creating its folders, and refuses anything that leaves
 * outputRoot, or leaves `boundary` on the way to outputRoot (the manifest's folder; by
 * default outputRoot itself, for an output folder a person chose with --output).
 */
export async function prepareTarget(outputRoot: string, relPath: string, boundary = outputRoot, checked?: Map<string, number>): Promise<string> {
  const target = path.resolve(outputRoot, relPath);
  // Both normal and absolute: inside is a prefix (path.relative would resolve both again, per file).
  const root = normalRoot(outputRoot);
  if (target === root || !target.startsWith(root.endsWith(path.sep) ? root : root + path.sep)) {
    throw new HoardError('E_PATH', `${relPath} leaves the output folder ${outputRoot}`, { details: { path: relPath } });
  }
  // `checked`: folders created and checked earlier in this run (a manifest of thousands of
  // files in a few folders checks each folder once), with their device.
  if (checked?.has(path.dirname(target))) return target;
  // The output folder, from the project's folder down; then the artifact's folders inside it.
  if (boundary !== outputRoot) {
    await checkInside(boundary, outputRoot, { create: true, hint: 'remove the link, or pass --output <dir> to choose the output folder yourself' });
  }
  await checkInside(outputRoot, path.dirname(target), { create: true, hint: `remove the link or choose another path for ${relPath}` });
  checked?.set(path.dirname(target), (await fs.stat(path.dirname(target))).dev);
  return target;
}

/** This process's temp names beside outputs: one random part, then a counter (a random draw per file costs). */
let nonce: string | null = null;
let counter = 0;
function tempName(target: string): string {
  nonce ??= randomHex(4);
  return path.join(path.dirname(target), `.${path.basename(target)}.hoard-${process.pid}-${nonce}${(counter++).toString(36)}.tmp`);
}

/** link(2) of the blob at `target` itself: true when done, false when something is there already or it cannot be. */
function linkedInPlace(blob: string, target: string): boolean {
  try {
    linkSync(blob, target);
    return true;
  } catch {
    // EEXIST; or no hard links here (another filesystem...): the usual attempts say what it is.
    return false;
  }
}

export function createMaterializer(): Materializer {
  // What failed on which destination filesystem, remembered for the rest of the run.
  const unsupported = new Map<number, Set<LinkMethod>>();
  /** Output folders created and checked in this run, and their device. */
  const checked = new Map<string, number>();

  const attempt = async (method: LinkMethod, blob: string, tmp: string, executable: boolean, digest: Digest | undefined) => {
    if (method === 'reflink') await fs.copyFile(blob, tmp, constants.COPYFILE_FICLONE_FORCE);
    // A hard link is a metadata update of a few microseconds: done synchronously, it costs less
    // than a round trip through the thread pool (a manifest of 40,000 links does 40,000).
    else if (method === 'hardlink') linkSync(blob, tmp);
    else if (digest) await copyVerified(blob, tmp, digest, executable ? 0o755 : 0o644);
    else await fs.copyFile(blob, tmp);
    if (method !== 'hardlink') await fs.chmod(tmp, executable ? 0o755 : 0o644);
  };

  return {
    async materialize(req) {
      const target = await prepareTarget(req.outputRoot, req.relPath, req.boundary, checked);
      const dev = checked.get(path.dirname(target)) ?? (await fs.stat(path.dirname(target))).dev;
      const failed = unsupported.get(dev) ?? new Set<LinkMethod>();
      unsupported.set(dev, failed);

      const methods: LinkMethod[] =
        req.link === 'auto' ? (['reflink', 'hardlink', 'copy'] as const).filter((m) => !(m === 'hardlink' && req.executable)) : [req.link];
      /** `auto` skips what already failed on this filesystem (a copy always works). */
      const skipped = (method: LinkMethod) => req.link === 'auto' && failed.has(method) && method !== 'copy';
      // A hard link where nothing is yet is made under its own name: link(2) is atomic, and
      // refuses (EEXIST) anything already there, which goes the usual way below (a temp name,
      // then a rename over it). A first sync of 40,000 links saves a rename and a look each.
      if (methods.find((m) => !skipped(m)) === 'hardlink' && linkedInPlace(req.blob, target)) return { method: 'hardlink', target };
      const tmp = tempName(target);
      try {
        for (const method of methods) {
          if (skipped(method)) continue;
          try {
            await attempt(method, req.blob, tmp, req.executable, req.digest);
          } catch (err) {
            await fs.rm(tmp, { force: true });
            if (!isErrno(err, ...UNSUPPORTED) || method === 'copy') throw err;
            failed.add(method);
            if (req.link !== 'auto') {
              throw new HoardError('E_LINK', `cannot ${method} ${req.relPath}: ${(err as Error).message}`, {
                hint: `the store and the output folder do not support ${method} here; use "link": "auto" or "copy"`,
                cause: err,
              });
            }
            continue;
          }
          if (method === 'hardlink') renameSync(tmp, target);
          else await fs.rename(tmp, target);
          return { method, target };
        }
        throw new HoardError('E_LINK', `no link method worked for ${req.relPath}`);
      } catch (err) {
        if (isErrno(err, 'EISDIR')) {
          throw new HoardError('E_CONFLICT', `${target} is a folder; hoard will not replace it`, { hint: 'move it away, or choose another path' });
        }
        throw err;
      } finally {
        // Also covers rename() onto a hard link of the same inode, which succeeds without removing tmp.
        // (A look first: an error object per artifact costs more than a stat.)
        if (lstatSync(tmp, { throwIfNoEntry: false })) await fs.rm(tmp, { force: true });
      }
    },
  };
}
