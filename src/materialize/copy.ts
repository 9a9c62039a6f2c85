// A copy that reads every byte of a blob also checks every byte: the bytes are hashed as they
// are copied, and a copy whose bytes do not hash to the blob's digest is removed and refused.
// A damaged blob that its fingerprint still vouches for (a change nobody could see in its stat)
// never reaches a new project's output this way.
import { promises as fs } from 'node:fs';
import { MultiHash, type Digest } from '../core/digest.ts';
import { HoardError } from '../core/errors.ts';

const COPY_BYTES = 1024 * 1024;

/** Feeds copied bytes to the hash (one small function, so where hashing runs can change). */
function hashPiece(hash: MultiHash, piece: Uint8Array): void {
  hash.update(piece);
}

/**
 * Copies `blob` to `dest` (a new file, mode `mode`), synced to the disk, and only when its
 * bytes hash to `digest`; otherwise `dest` is removed and an E_INTEGRITY error with
 * `details.corruptBlob` says the blob is damaged.
 */
export async function copyVerified(blob: string, dest: string, digest: Digest, mode: number): Promise<void> {
  const src = await fs.open(blob, 'r');
  let ok = false;
  try {
    const out = await fs.open(dest, 'wx', mode);
    try {
      const hash = new MultiHash();
      const buf = Buffer.allocUnsafe(COPY_BYTES);
      for (;;) {
        const { bytesRead } = await src.read(buf, 0, COPY_BYTES, null);
        if (bytesRead === 0) break;
        const piece = buf.subarray(0, bytesRead);
        hashPiece(hash, piece);
        for (let done = 0; done < bytesRead; ) done += (await out.write(piece, done, bytesRead - done)).bytesWritten;
      }
      const found = hash.digest().digest;
      if (found !== digest) {
        throw new HoardError('E_INTEGRITY', `blob ${digest} is corrupt: its bytes hash to ${found}; nothing was copied from it`, {
          hint: 'run `hoard sync` again: it removes the damaged blob and downloads it anew',
          details: { digest, found, path: blob, corruptBlob: true },
        });
      }
      await out.datasync();
      ok = true;
    } finally {
      await out.close();
    }
  } finally {
    await src.close();
    if (!ok) await fs.rm(dest, { force: true });
  }
}
