// A copy that reads every byte of a blob also checks every byte: the bytes are hashed as they
// are copied, and a copy whose bytes do not hash to the blob's digest is removed and refused.
// A damaged blob that its fingerprint still vouches for (a change nobody could see in its stat)
// never reaches a new project's output this way.
//
// As the store's writer does (src/store/store.ts), the main thread only moves bytes: each block
// is read into a buffer shared with the hash workers (src/core/hash-pool.ts), then written (at
// its offset, on libuv's thread pool) and hashed (in a worker, the same memory) at once, while
// the next block is read into another buffer. A buffer is reused once both are done with it.
import { promises as fs } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import type { Digest } from '../core/digest.ts';
import { HoardError } from '../core/errors.ts';
import { createHasher, sharedBuffer } from '../core/hash-pool.ts';

const COPY_BYTES = 1024 * 1024;
/** Blocks on their way at once (read, written, hashed): memory per copy stays at 4 MiB. */
const COPY_BUFFERS = 4;

/** Writes all of `piece` at `position`. */
async function writeAt(out: FileHandle, piece: Uint8Array, position: number): Promise<void> {
  for (let done = 0; done < piece.byteLength; ) {
    done += (await out.write(piece, done, piece.byteLength - done, position + done)).bytesWritten;
  }
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
    const size = (await src.stat()).size;
    const out = await fs.open(dest, 'wx', mode);
    // Inline for a small blob, on the worker pool for a big one (see createHasher).
    const hash = createHasher([], { sizeHint: size });
    /** Buffers, each with what it is waiting for (its block's write and hash). */
    const ring: Array<{ buf: Buffer; busy: Promise<void> | null }> = [];
    let failed: unknown = null;
    try {
      let position = 0;
      for (let i = 0; ; i++) {
        if (ring.length < COPY_BUFFERS && i === ring.length) ring.push({ buf: sharedBuffer(Math.min(COPY_BYTES, Math.max(size, 1))), busy: null });
        const slot = ring[i % ring.length]!;
        await slot.busy;
        if (failed) throw failed;
        const { bytesRead } = await src.read(slot.buf, 0, slot.buf.byteLength, position);
        if (bytesRead === 0) break;
        const piece = slot.buf.subarray(0, bytesRead);
        slot.busy = Promise.all([hash.update(piece), writeAt(out, piece, position)]).then(
          () => {},
          (err: unknown) => {
            failed ??= err;
          },
        );
        position += bytesRead;
      }
      await Promise.all(ring.map((s) => s.busy));
      if (failed) throw failed;
      const found = (await hash.digest()).digest;
      if (found !== digest) {
        throw new HoardError('E_INTEGRITY', `blob ${digest} is corrupt: its bytes hash to ${found}; nothing was copied from it`, {
          hint: 'run `hoard sync` again: it removes the damaged blob and downloads it anew',
          details: { digest, found, path: blob, corruptBlob: true },
        });
      }
      await out.datasync();
      ok = true;
    } finally {
      // (after every block is done with: nothing reads the buffers any more)
      await Promise.all(ring.map((s) => s.busy));
      hash.dispose();
      await out.close();
    }
  } finally {
    await src.close();
    if (!ok) await fs.rm(dest, { force: true });
  }
}
