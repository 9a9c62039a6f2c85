// A resumable download's files in v1/tmp/: `<key>.partial` (the bytes so far) and
// `<key>.partial.json` (where they came from, and checkpoints that prove them). A process
// killed mid-download leaves both; the next attempt keeps only the bytes a checkpoint
// vouches for, so damage to the partial file (a bad page, a stray write) is never resumed
// into a blob, nor locked as an artifact's digest.
import { promises as fs, readFileSync } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { MultiHash, type ChecksumAlgorithm } from '../core/digest.ts';
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
 * there, and the hash continues from there. Bytes after the last checkpoint (written, but not
 * yet vouched for when the process died) and everything from the first damaged checkpoint on
 * are dropped. No checkpoint at all (or a meta file from an older hoard): start from zero.
 */
export async function resumePartial(
  fh: FileHandle,
  meta: PartialMeta,
  algorithms: readonly ChecksumAlgorithm[],
): Promise<{ hash: MultiHash; checkpoints: Checkpoint[] }> {
  let hash = new MultiHash(algorithms);
  let good = { hash: hash.clone(), checkpoints: [] as Checkpoint[] };
  const buf = Buffer.allocUnsafe(1024 * 1024);
  let at = 0;
  for (const [end, sha] of meta.checkpoints) {
    // Hash up to this checkpoint (or to the end of the file, when the file is shorter).
    while (at < end) {
      const { bytesRead } = await fh.read(buf, 0, Math.min(buf.byteLength, end - at), at);
      if (bytesRead === 0) break;
      hash.update(bytesRead === buf.byteLength ? buf : buf.subarray(0, bytesRead));
      at += bytesRead;
    }
    if (at !== end || hash.prefixDigest() !== sha) break;
    good = { hash: hash.clone(), checkpoints: [...good.checkpoints, [end, sha]] };
  }
  hash = good.hash;
  await fh.truncate(hash.size);
  return { hash, checkpoints: good.checkpoints };
}
