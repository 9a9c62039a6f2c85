// Downloads that go straight to their output, for when the store is disabled: the bytes are
// written to a temp file beside the target, hashed as they arrive, verified, and renamed into
// place. A mismatch leaves no output file, exactly as it leaves no blob in the store.
import { promises as fs } from 'node:fs';
import type { ChecksumAlgorithm, Digest } from '../core/digest.ts';
import { HoardError, isErrno } from '../core/errors.ts';
import { tempPathBeside } from '../core/fsutil.ts';
import { createHasher, sharedBuffer, type Hasher } from '../core/hash-pool.ts';
import { integrityError, writeError, type BlobWriter, type Expected } from '../store/store.ts';

/** A BlobWriter whose bytes end up at `target` instead of in the store. */
export interface DirectWriter extends BlobWriter {
  readonly target: string;
  /** Verifies everything in `expected` and keeps the verified temp file; the digest. */
  verify(expected: Expected): Promise<Digest>;
  /** Renames the verified temp file over `target`. */
  publish(): Promise<void>;
  /** verify() then publish(); the temp file is removed on failure. */
  commit(expected: Expected): Promise<Digest>;
}

/** Bytes queued for the disk (or the hash worker) beyond which write() makes the caller wait. */
const QUEUE_LIMIT = 8 * 1024 * 1024;

/**
 * Opens a temp file beside `target` (whose folder must exist and be checked: see
 * prepareTarget). The output gets mode 0755 when `executable`, else 0644. `sizeHint` (the
 * bytes coming, when known) lets a small download be hashed inline rather than in a worker.
 */
export async function createDirectWriter(target: string, algorithms: Iterable<ChecksumAlgorithm>, executable: boolean, sizeHint?: number): Promise<DirectWriter> {
  const tmpPath = tempPathBeside(target);
  const fh = await fs.open(tmpPath, 'wx', 0o644);
  const algs = [...algorithms];
  const newHash = () => createHasher(algs, sizeHint === undefined ? {} : { sizeHint });
  let hash: Hasher = newHash();
  /** Where the next accepted bytes go (writes are positional: restart() starts over at 0). */
  let offset = 0;
  let queued = 0;
  let chain: Promise<void> = Promise.resolve();
  let failed: unknown = null;
  let closed = false;
  let verified = false;
  const close = async () => {
    if (!closed) {
      closed = true;
      await fh.close();
    }
  };
  const failure = (err: unknown) => writeError(err, tmpPath, 'free some space and run the command again');
  const drained = async () => {
    await chain;
    if (failed) throw failure(failed);
  };
  const discard = async () => {
    hash.dispose();
    await chain;
    await close().catch(() => {});
    await fs.rm(tmpPath, { force: true });
  };

  const writer: DirectWriter = {
    tmpPath,
    target,
    get bytesWritten() {
      return hash.size;
    },
    // Nothing here outlives the process: a download to the output starts from its first byte.
    source: null,
    restart() {
      hash.dispose();
      hash = newHash();
      offset = 0;
      chain = chain.then(() => fh.truncate(0)).catch((err: unknown) => {
        failed ??= err;
      });
      return drained();
    },
    write(chunk) {
      if (failed) throw failure(failed);
      // One copy (the caller may reuse its chunk as soon as write() returns), in memory the hash
      // worker reads as it is: the write and the hash of it run at once.
      const buf = sharedBuffer(chunk.byteLength);
      buf.set(chunk);
      const h = hash;
      const hashed = Promise.resolve(h.update(buf)).catch((err: unknown) => {
        if (hash === h) failed ??= err;
      });
      const at = offset;
      offset += buf.byteLength;
      queued += buf.byteLength;
      chain = chain.then(async () => {
        try {
          for (let done = 0; done < buf.byteLength && !failed; ) done += (await fh.write(buf, done, buf.byteLength - done, at + done)).bytesWritten;
          await hashed;
        } catch (err) {
          failed ??= err;
        } finally {
          queued -= buf.byteLength;
        }
      });
      if (queued > QUEUE_LIMIT) return drained();
    },
    async verify(expected) {
      try {
        await drained();
        await close();
        const found = await hash.digest();
        const err = integrityError('download is', expected, found);
        if (err) throw err;
        await fs.chmod(tmpPath, executable ? 0o755 : 0o644);
        verified = true;
        return found.digest;
      } catch (err) {
        await discard();
        throw err;
      }
    },
    async publish() {
      if (!verified) throw new Error('publish() before verify()');
      try {
        await fs.rename(tmpPath, target);
      } catch (err) {
        await fs.rm(tmpPath, { force: true });
        if (isErrno(err, 'EISDIR')) throw new HoardError('E_CONFLICT', `${target} is a folder; hoard will not replace it`, { hint: 'move it away, or choose another path' });
        throw err;
      }
    },
    async commit(expected) {
      const digest = await writer.verify(expected);
      await writer.publish();
      return digest;
    },
    abort: () => discard(),
  };
  return writer;
}
