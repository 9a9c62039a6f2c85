// The store's writer: bytes arrive in fixed buffers, are written to a temp file (or a resumable
// partial file) on the thread pool and hashed in a worker as they go; commit() verifies them and
// hands the file to the store to publish under its digest.
import { promises as fs } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { digestHex, type ChecksumAlgorithm, type Digest } from '../core/digest.ts';
import { crypto, randomHex } from '../core/builtins.ts';
import { HoardError, isErrno } from '../core/errors.ts';
import { createHasher, INLINE_BYTES, sharedBuffer, type Hasher } from '../core/hash-pool.ts';
import { integrityError, type Expected } from './integrity.ts';
import { addCheckpoint, readPartialMeta, resumePartial, writePartialMeta, type Checkpoint } from './partial.ts';

/** Where a partial download's bytes came from: what a later request may resume from. */
export interface PartialSource {
  /** The URL the artifact was requested from (before redirects). */
  url: string;
  etag?: string;
  lastModified?: string;
}

export interface CommitOptions {
  /** Replace a blob already there (--force) instead of keeping it. */
  replace?: boolean;
  /** Called once the bytes are verified, before the blob appears under its name (sync pins it for gc). */
  beforePublish?: (digest: Digest) => Promise<void>;
}

/** Where bytes go while they arrive: a temp file in the store, hashed as it is written. */
export interface BlobWriter {
  readonly tmpPath: string;
  /** Bytes accepted so far, including those found in a partial file at open. */
  readonly bytesWritten: number;
  /** A resumable writer: where the bytes it found at open came from (null: it starts empty). */
  readonly source: PartialSource | null;
  write(chunk: Uint8Array): Promise<void> | void;
  /**
   * Drops every byte so far and records where the next ones come from. Takes effect at once
   * (bytes written after the call are the file's first); the promise reports a failure.
   */
  restart(source: PartialSource): Promise<void>;
  /** Verifies everything in `expected` and publishes the blob; the digest it is stored under. */
  commit(expected: Expected, opts?: CommitOptions): Promise<Digest>;
  /**
   * Drops the temp file (safe after commit, or twice). With `keep`, a resumable writer instead
   * writes out what it holds and leaves the partial file for the next attempt.
   */
  abort(opts?: { keep?: boolean }): Promise<void>;
}

export interface WriterOptions {
  /**
   * Makes the writer resumable: its file is `tmp/<key>.partial`, beside `<key>.partial.json`
   * (the source), and outlives the process. The caller holds the store lock for this key.
   */
  resumeKey?: string;
  /** How many bytes are coming, when known: a small download is hashed inline, not in a worker. */
  sizeHint?: number;
}

/** What a writer needs of its store: where temp files go, and how a verified file is published. */
export interface WriterHost {
  /** The store's tmp folder. */
  tmp: string;
  ensureDirs(): Promise<void>;
  /** Gives the verified temp file its name (see CommitOptions.replace); records it verified and used. */
  publish(tmp: string, digest: Digest, replace?: boolean): Promise<void>;
}

/** A writer copies what it is given into buffers of this size and writes each when full... */
const BUFFER_BYTES = 1024 * 1024;
/** ...except its first, small one (most artifacts need no more; a big allocation per small file costs)... */
const FIRST_BUFFER_BYTES = 64 * 1024;
/** ...and has at most this many (the most a download holds in memory: about 7 MiB). */
const MAX_BUFFERS = 8;
/** A resumable download records a checkpoint in its meta file at most this often. */
const CHECKPOINT_MS = 200;
/** A download's bytes are synced to the disk every this many bytes (and all of them before publishing). */
const SYNC_EVERY_BYTES = 64 * 1024 * 1024;

/**
 * The name of a resumable download (see WriterOptions.resumeKey): the digest's hex when it is
 * known, else a hash of the URL (and the caller locks `sha256:<key>` for it).
 */
export function resumeKeyOf(digest: Digest | undefined, url: string): string {
  return digest ? digestHex(digest) : crypto().createHash('sha256').update(`url ${url}`).digest('hex');
}

export async function createBlobWriter(host: WriterHost, algorithms: Iterable<ChecksumAlgorithm> = [], opts: WriterOptions = {}): Promise<BlobWriter> {
  await host.ensureDirs();
  const algs = [...algorithms];
  /** Made when the first buffer leaves for the disk (or at open, to re-hash a partial file). */
  let hash: Hasher | null = null;
  /** Bytes accepted so far (the partial file's included). */
  let accepted = 0;
  /** Set by commit() and abort(): the size is known now. */
  let finishing = false;
  const hasher = (): Hasher => (hash ??= createHasher(algs, { sizeHint: opts.sizeHint ?? (finishing ? accepted : undefined) }));
  let source: PartialSource | null = null;
  let checkpoints: Checkpoint[] = [];
  let tmpPath: string;
  let metaPath: string | null = null;
  let fh: FileHandle;
  if (opts.resumeKey === undefined) {
    tmpPath = path.join(host.tmp, `${process.pid}-${randomHex(6)}.part`);
    fh = await fs.open(tmpPath, 'wx', 0o644);
  } else {
    if (!/^[0-9a-f]{64}$/.test(opts.resumeKey)) throw new Error(`resume key must be 64 hex digits: ${opts.resumeKey}`);
    tmpPath = path.join(host.tmp, `${opts.resumeKey}.partial`);
    metaPath = `${tmpPath}.json`;
    // What a killed process left: its bytes are a prefix of what it was sent (writes go out
    // in order), the meta file says where they came from, and its checkpoints prove how much
    // of them is intact. Only that much is kept (and hashed); without a meta file, start over.
    const meta = readPartialMeta(metaPath);
    fh = await openPartial(tmpPath);
    if (meta) {
      const r = await resumePartial(tmpPath, fh, meta, () => createHasher(algs, opts.sizeHint !== undefined ? { sizeHint: opts.sizeHint } : {}));
      hash = r.hasher;
      accepted = r.kept;
      checkpoints = r.checkpoints;
      source = accepted > 0 ? { url: meta.url, ...(meta.etag ? { etag: meta.etag } : {}), ...(meta.lastModified ? { lastModified: meta.lastModified } : {}) } : null;
    } else await fh.truncate(0);
  }
  /** Set by abort(): what is still written out is not hashed. */
  let unhashed = false;
  // A big download's hash worker starts now, while the request is on its way.
  if (opts.sizeHint !== undefined && opts.sizeHint >= INLINE_BYTES) hasher();
  // Bytes are copied into a few fixed buffers (shared with the hash workers): the caller may
  // reuse its chunk as soon as write() returns, and memory stays the same however fast the
  // bytes come. A full buffer is written (one write at a time, on libuv's thread pool) and
  // hashed (see core/hash-pool.ts) while the next one fills, and is reused once both are
  // done; the caller waits only when every buffer is on its way.
  const spare: Buffer[] = [];
  let buffers = 0;
  let current: Buffer | null = null;
  let fill = 0;
  /** Buffers on their way to the disk; `cp`: the checkpoint their last byte completes. */
  const full: Array<{ buf: Buffer; len: number; hashed: Promise<void> | void; cp: Promise<Checkpoint> | null }> = [];
  /** Meta file writes, one at a time; `generation` moves on restart, so a stale one is skipped. */
  let metaChain: Promise<void> = Promise.resolve();
  let generation = 0;
  let lastMetaWrite = 0;
  /** A checkpoint held back by the rate limit is written when the limit allows. */
  let trailing: NodeJS.Timeout | null = null;
  let removed = false;
  /** Checkpoints of the bytes written so far, recorded in order. */
  let checkpointed: Promise<void> = Promise.resolve();
  const saveMeta = (force = false): Promise<void> => {
    if (!metaPath || !source || removed) return metaChain;
    const now = Date.now();
    if (!force && now - lastMetaWrite < CHECKPOINT_MS) {
      trailing ??= setTimeout(() => {
        trailing = null;
        if (!closed) void saveMeta();
      }, lastMetaWrite + CHECKPOINT_MS - now).unref();
      return metaChain;
    }
    if (trailing) clearTimeout(trailing);
    trailing = null;
    lastMetaWrite = now;
    const gen = generation;
    const file = metaPath;
    metaChain = metaChain.then(async () => {
      if (gen !== generation || !source || removed) return;
      await writePartialMeta(file, { ...source, checkpoints: [...checkpoints] });
    }).catch(() => {}); // a checkpoint not recorded only means more to download again
    return metaChain;
  };
  /** The bytes written but not yet synced to the disk, and the sync in flight. */
  let unsynced = 0;
  let syncing: Promise<void> | null = null;
  let offset = accepted;
  let writing = false;
  /** A restart in progress: no write starts until the file is empty again. */
  let truncating: Promise<void> | null = null;
  let stopped = false;
  let failed: unknown = null;
  let closed = false;
  let waiting: Array<() => void> = [];
  /** Resolves when the write in flight is done (or failed). */
  const writeDone = () => new Promise<void>((resolve) => waiting.push(resolve));
  const wake = () => {
    const w = waiting;
    waiting = [];
    for (const resolve of w) resolve();
  };
  const writeAll = async (buf: Buffer, len: number, at: number): Promise<void> => {
    for (let done = 0; done < len; ) {
      const { bytesWritten } = await fh.write(buf, done, len - done, at + done);
      if (bytesWritten === 0) throw new Error('write returned 0 bytes');
      done += bytesWritten;
    }
  };
  /** `buf` is free again once its hash is done. */
  const reuse = (buf: Buffer, hashed: Promise<void> | void): void => {
    if (!hashed) spare.push(buf);
    else {
      hashed.then(
        () => {
          spare.push(buf);
          wake();
        },
        () => {},
      );
    }
  };
  const pump = (): void => {
    if (writing || truncating || stopped || failed || full.length === 0) return;
    const { buf, len, hashed, cp } = full.shift()!;
    const at = offset;
    offset += len;
    writing = true;
    const gen = generation;
    writeAll(buf, len, at).then(
      () => {
        writing = false;
        reuse(buf, hashed);
        if (cp) {
          // Only now are these bytes in the file: the checkpoint may vouch for them.
          checkpointed = checkpointed.then(() => cp).then((c) => {
            if (gen !== generation) return;
            addCheckpoint(checkpoints, c);
            void saveMeta();
          }, () => {});
        }
        // Big blobs are pushed to the disk as they arrive, so the fsync before publishing
        // has little left to do.
        unsynced += len;
        if (unsynced >= SYNC_EVERY_BYTES && !syncing) {
          unsynced = 0;
          syncing = fh.datasync().catch(() => {}).finally(() => {
            syncing = null;
          });
        }
        pump();
        wake();
      },
      (err: unknown) => {
        failed ??= err;
        writing = false;
        wake();
      },
    );
  };
  /** Hands `len` bytes of `buf` to the hasher (resolves when `buf` is free again); a failure stops the writer. */
  const hashing = (buf: Buffer, len: number): Promise<void> | void => {
    if (unhashed) return;
    const h = hasher();
    const p = h.update(len === buf.byteLength ? buf : buf.subarray(0, len));
    return p?.catch((err: unknown) => {
      if (hash === h) failed ??= err; // (a restart dropped that hash: nothing is lost)
    });
  };
  /** The checkpoint at the end of what was handed to the hasher so far. */
  const checkpointNow = (): Promise<Checkpoint> => {
    const h = hasher();
    const at = h.size;
    return h.prefix().then((sha) => [at, sha] as Checkpoint);
  };
  const queueCurrent = (): void => {
    if (current && fill > 0) {
      const hashed = hashing(current, fill);
      full.push({ buf: current, len: fill, hashed, cp: metaPath && !unhashed ? checkpointNow() : null });
    }
    else if (current) spare.push(current);
    current = null;
    fill = 0;
    pump();
  };
  /** Copies `chunk` from `from` on, as far as there is room; returns where it stopped. */
  const copy = (chunk: Uint8Array, from: number): number => {
    if (stopped) return chunk.byteLength; // aborted while the caller waited: drop the rest
    while (from < chunk.byteLength) {
      if (!current) {
        current = spare.pop() ?? (buffers < MAX_BUFFERS ? sharedBuffer(buffers++ === 0 ? FIRST_BUFFER_BYTES : BUFFER_BYTES) : null);
        if (!current) return from;
      }
      const n = Math.min(current.byteLength - fill, chunk.byteLength - from);
      current.set(n === chunk.byteLength ? chunk : chunk.subarray(from, from + n), fill);
      fill += n;
      from += n;
      if (fill === current.byteLength) queueCurrent();
    }
    return from;
  };
  const copyRest = async (chunk: Uint8Array, from: number): Promise<void> => {
    while ((from = copy(chunk, from)) < chunk.byteLength) {
      await writeDone();
      if (failed) throw writeError(failed, tmpPath);
    }
  };
  /** Writes out everything accepted so far. */
  const drain = async (): Promise<void> => {
    queueCurrent();
    while ((writing || truncating || full.length > 0) && !failed) await writeDone();
    if (failed) throw writeError(failed, tmpPath);
  };
  const close = async () => {
    if (!closed) {
      closed = true;
      if (trailing) clearTimeout(trailing);
      await syncing;
      await metaChain;
      await fh.close();
    }
  };

  const removeFiles = async () => {
    removed = true;
    await metaChain;
    await fs.rm(tmpPath, { force: true });
    if (metaPath) await fs.rm(metaPath, { force: true });
  };

  return {
    tmpPath,
    get bytesWritten() {
      return accepted;
    },
    get source() {
      return source;
    },
    restart(next) {
      if (failed) return Promise.reject(writeError(failed, tmpPath));
      hash?.dispose();
      hash = null;
      accepted = 0;
      source = next;
      generation++;
      checkpoints = [];
      for (const f of full) reuse(f.buf, f.hashed);
      full.length = 0;
      fill = 0;
      const previous = truncating;
      const done = (async () => {
        await previous?.catch(() => {});
        while (writing) await writeDone();
        // The order matters for a crash: the old source goes before the old bytes, and the
        // new source is recorded with the first checkpoint of the new bytes, CHECKPOINT_MS on
        // (a download that ends sooner has nothing worth resuming: it writes no meta file, and
        // a first sync of thousands of small files creates thousands fewer files).
        await metaChain;
        if (metaPath) await fs.rm(metaPath, { force: true });
        await fh.truncate(0);
        offset = 0;
        lastMetaWrite = Date.now();
      })().then(
        () => {
          if (truncating === done) truncating = null;
          pump();
          wake();
        },
        (err: unknown) => {
          failed ??= err;
          if (truncating === done) truncating = null;
          wake();
          throw writeError(err, tmpPath);
        },
      );
      truncating = done;
      return done;
    },
    write(chunk) {
      if (failed) throw writeError(failed, tmpPath);
      if (stopped) throw new Error('write() after commit() or abort()');
      accepted += chunk.byteLength;
      const done = copy(chunk, 0);
      if (done < chunk.byteLength) return copyRest(chunk, done);
    },
    async commit(expected, opts = {}) {
      try {
        finishing = true;
        await drain();
        stopped = true;
        // On the disk before it gets its name: a power loss cannot leave a wrong blob.
        await syncing;
        await fh.datasync();
        await close();
        const found = await hasher().digest();
        const err = integrityError('download is', expected, found);
        if (err) throw err;
        await opts.beforePublish?.(found.digest);
        await host.publish(tmpPath, found.digest, opts.replace);
        return found.digest;
      } finally {
        stopped = true;
        hash?.dispose();
        await close().catch(() => {});
        await removeFiles();
      }
    },
    async abort(o = {}) {
      finishing = true;
      if (o.keep && metaPath && source && !stopped && !failed && accepted > 0) {
        try {
          // The rest is written and hashed too: its checkpoint vouches for every byte kept.
          await drain();
          stopped = true;
          await checkpointed;
          await saveMeta(true);
          unhashed = true;
          hash?.dispose();
          await close();
          return;
        } catch {
          // could not write it out: drop it below
        }
      }
      unhashed = true;
      stopped = true;
      hash?.dispose();
      full.length = 0;
      while (writing || truncating) await (truncating?.catch(() => {}) ?? writeDone());
      await close().catch(() => {});
      await removeFiles();
    },
  };
}

/** Flushes a file's bytes to the disk (before it is renamed into place). */
export async function syncFile(file: string): Promise<void> {
  const fh = await fs.open(file, 'r');
  try {
    await fh.datasync();
  } finally {
    await fh.close();
  }
}

/** Opens (or creates) a partial file for reading and writing; one a crash left read-only is replaced. */
async function openPartial(file: string): Promise<FileHandle> {
  try {
    return await fs.open(file, fs.constants.O_RDWR | fs.constants.O_CREAT, 0o644);
  } catch (err) {
    if (!isErrno(err, 'EACCES', 'EPERM')) throw err;
    await fs.rm(file, { force: true });
    return fs.open(file, fs.constants.O_RDWR | fs.constants.O_CREAT, 0o644);
  }
}

/** A write that failed: a full disk is said plainly, with `hint` (what to free or where to go). */
export function writeError(err: unknown, tmpPath: string, hint = 'free some space (or point --store at a larger disk) and sync again'): HoardError {
  if (err instanceof HoardError) return err; // already said plainly (a hashing thread that stopped)
  if (isErrno(err, 'ENOSPC')) {
    return new HoardError('E_STORE', `no space left on the device while writing ${tmpPath}`, { hint, cause: err });
  }
  return new HoardError('E_STORE', `cannot write ${tmpPath}: ${(err as Error).message}`, { cause: err });
}
