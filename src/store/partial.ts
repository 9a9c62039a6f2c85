// A resumable download's files in v1/tmp/: `<key>.partial` (the bytes so far) and
// `<key>.partial.json` (where they came from, and checkpoints that prove them). A process
// killed mid-download leaves both; the next attempt keeps only the bytes a checkpoint
// vouches for, so damage to the partial file (a bad page, a stray write) is never resumed
// into a blob, nor locked as an artifact's digest.
import { promises as fs, readFileSync } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import type { Hasher } from '../core/hash-pool.ts';
import type { PartialSource } from './store.ts';

/** A prefix of the partial file and the SHA-256 of exactly those bytes. */
export type Checkpoint = [at: number, sha256: string];

export interface PartialMeta extends PartialSource {
  /** Ascending; each one recorded only after its bytes were written to the partial file. */
  checkpoints: Checkpoint[];
}

/** The most checkpoints kept: when there are more, every second one is dropped (the last stays). */
const MAX_CHECKPOINTS = 64;

/** Adds `cp` to `list` (in place), thinning the list so that it stays short however long the download. */
export function addCheckpoint(list: Checkpoint[], cp: Checkpoint): void {
  const last = list[list.length - 1];
  if (last && last[0] >= cp[0]) return;
  list.push(cp);
  if (list.length > MAX_CHECKPOINTS) {
    const kept = list.filter((_, i) => i % 2 === 1 || i === list.length - 1);
    list.length = 0;
    list.push(...kept);
  }
}

/** The meta file beside a partial download, or null when it is missing, unreadable or not hoard's. */
export function readPartialMeta(file: string): PartialMeta | null {
  try {
    const o = JSON.parse(readFileSync(file, 'utf8')) as Partial<PartialMeta>;
    if (typeof o.url !== 'string') return null;
    const checkpoints: Checkpoint[] = [];
    for (const c of Array.isArray(o.checkpoints) ? o.checkpoints : []) {
      if (!Array.isArray(c) || !Number.isSafeInteger(c[0]) || c[0] <= 0 || typeof c[1] !== 'string' || !/^[0-9a-f]{64}$/.test(c[1])) return { url: o.url, checkpoints: [] };
      if (checkpoints.length > 0 && checkpoints[checkpoints.length - 1]![0] >= c[0]) return { url: o.url, checkpoints: [] };
      checkpoints.push([c[0], c[1]]);
    }
    return {
      url: o.url,
      ...(typeof o.etag === 'string' ? { etag: o.etag } : {}),
      ...(typeof o.lastModified === 'string' ? { lastModified: o.lastModified } : {}),
      checkpoints,
    };
  } catch {
    return null;
  }
}

export async function writePartialMeta(file: string, meta: PartialMeta): Promise<void> {
  const tmp = `${file}.${process.pid}.tmp`;
  await fs.writeFile(tmp, JSON.stringify(meta));
  await fs.rename(tmp, file);
}

/**
 * Re-reads a partial file and keeps the longest prefix a checkpoint proves: the file is cut
 * there, and the returned hasher has hashed exactly that prefix. Bytes after the last
 * checkpoint (written, but not yet vouched for when the process died) and everything from the
 * first damaged checkpoint on are dropped. No checkpoint at all (or a meta file from an older
 * hoard): start from zero.
 */
export async function resumePartial(
  file: string,
  fh: FileHandle,
  meta: PartialMeta,
  newHasher: () => Hasher,
): Promise<{ hasher: Hasher | null; kept: number; checkpoints: Checkpoint[] }> {
  const size = (await fh.stat()).size;
  let h: Hasher | null = null;
  let kept = 0;
  let damaged = false;
  const good: Checkpoint[] = [];
  for (const [end, sha] of meta.checkpoints) {
    if (end > size) break;
    h ??= newHasher();
    await h.updateFile(file, kept, end - kept);
    if ((await h.prefix()) !== sha) {
      damaged = true;
      break;
    }
    kept = end;
    good.push([end, sha]);
  }
  if (damaged) {
    // The hasher read damaged bytes: a new one for the good prefix only.
    h?.dispose();
    h = null;
    if (kept > 0) {
      h = newHasher();
      await h.updateFile(file, 0, kept);
    }
  }
  await fh.truncate(kept);
  return { hasher: h, kept, checkpoints: good };
}
