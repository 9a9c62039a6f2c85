import { randomBytes } from 'node:crypto';
import { promises as fs, constants, linkSync, lstatSync, renameSync } from 'node:fs';
import path from 'node:path';
import { HoardError, isErrno } from '../core/errors.ts';
import { isInside } from '../core/fsutil.ts';
import type { Digest } from '../core/digest.ts';
import type { LinkMode } from '../manifest/types.ts';
import { copyVerified } from './copy.ts';

export type LinkMethod = 'reflink' | 'hardlink' | 'copy';

export interface MaterializeRequest {
  blob: string;
  /** The output folder; `relPath` must stay inside it, symlinks included. */
  outputRoot: string;
  relPath: string;
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

/**
 * Resolves outputRoot/relPath, creating its folder, and refuses anything that leaves outputRoot.
 * `checked`: folders already created and checked in this run (a manifest of thousands of
 * files in a few folders checks each folder once), with their device.
 */
export async function prepareTarget(outputRoot: string, relPath: string, checked?: Map<string, number>): Promise<string> {
  const target = path.resolve(outputRoot, relPath);
  if (!isInside(outputRoot, target) || target === outputRoot) {
    throw new HoardError('E_PATH', `${relPath} leaves the output folder ${outputRoot}`, { details: { path: relPath } });
  }
  if (checked?.has(path.dirname(target))) return target;
  await fs.mkdir(outputRoot, { recursive: true });
  const realRoot = await fs.realpath(outputRoot);
  // Create the folders one level at a time, checking each existing one, so that a symbolic
  // link inside the output folder can never make hoard create anything outside it.
  let dir = outputRoot;
  for (const part of path.relative(outputRoot, path.dirname(target)).split(path.sep).filter(Boolean)) {
    dir = path.join(dir, part);
    try {
      await fs.mkdir(dir);
    } catch (err) {
      if (!isErrno(err, 'EEXIST')) throw err;
    }
    if (!isInside(realRoot, await fs.realpath(dir))) {
      throw new HoardError('E_PATH', `${relPath} leads outside the output folder ${outputRoot} through a symbolic link`, {
        hint: `remove the link at ${dir} or choose another path`,
        details: { path: relPath },
      });
    }
  }
  checked?.set(path.dirname(target), (await fs.stat(path.dirname(target))).dev);
  return target;
}

/** This process's temp names beside outputs: one random part, then a counter (a random draw per file costs). */
const nonce = randomBytes(4).toString('hex');
let counter = 0;
function tempName(target: string): string {
  return path.join(path.dirname(target), `.${path.basename(target)}.hoard-${process.pid}-${nonce}${(counter++).toString(36)}.tmp`);
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
      const target = await prepareTarget(req.outputRoot, req.relPath, checked);
      const dev = checked.get(path.dirname(target)) ?? (await fs.stat(path.dirname(target))).dev;
      const failed = unsupported.get(dev) ?? new Set<LinkMethod>();
      unsupported.set(dev, failed);

      const methods: LinkMethod[] =
        req.link === 'auto' ? (['reflink', 'hardlink', 'copy'] as const).filter((m) => !(m === 'hardlink' && req.executable)) : [req.link];
      const tmp = tempName(target);
      try {
        for (const method of methods) {
          if (req.link === 'auto' && failed.has(method) && method !== 'copy') continue;
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
