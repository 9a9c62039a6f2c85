import { randomBytes } from 'node:crypto';
import { promises as fs, readFileSync, statSync, type Stats } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { digestHex, MultiHash, type ChecksumAlgorithm, type Checksums, type Digest } from '../core/digest.ts';
import { HoardError, isErrno } from '../core/errors.ts';
import { hashFile } from '../core/hashfile.ts';
import { blobFingerprint, type Fingerprint } from './fingerprint.ts';
import { acquireLock, type LockWaitInfo } from './lock.ts';
import { blobPath, storeLayout } from './paths.ts';
import { StateFile } from './state-file.ts';

/** What a blob must be: its digest (when locked), size and extra checksums. */
export interface Expected {
  digest?: Digest;
  size?: number;
  checksums?: Checksums;
}

export type BlobCheck =
  | { state: 'ok'; path: string; rehashed: boolean; stat: Stats }
  | { state: 'missing'; path: string }
  | { state: 'corrupt'; path: string; found: Digest | null; reason: string; stat?: Stats };

/** Where a partial download's bytes came from: what a later request may resume from. */
export interface PartialSource {
  /** The URL the artifact was requested from (before redirects). */
  url: string;
  etag?: string;
  lastModified?: string;
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
  commit(expected: Expected, opts?: { replace?: boolean }): Promise<Digest>;
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
}

export interface Store {
  readonly root: string;
  blobPath(digest: Digest): string;
  /** A `stat` when the fingerprint recorded at the last verification still matches; a full re-hash otherwise. */
  check(digest: Digest, opts?: { verify?: boolean; size?: number }): Promise<BlobCheck>;
  /** Records that the blob as it is now on disk is verified (after linking changed its ctime, say). */
  touchVerified(digest: Digest): Promise<void>;
  remove(digest: Digest): Promise<void>;
  createWriter(algorithms?: Iterable<ChecksumAlgorithm>, opts?: WriterOptions): Promise<BlobWriter>;
  /** Copies a local file into the store, verified against `expected`. */
  ingestFile(file: string, expected?: Expected): Promise<Digest>;
  /** A per-digest lock between processes (or per resume key: any 64-hex name works). */
  lock(digest: Digest, onWait?: (info: LockWaitInfo) => void): Promise<() => Promise<void>>;
  /** Every digest in the store. */
  list(): Promise<Digest[]>;
  /** Persists fingerprints recorded by this process. */
  flush(): Promise<void>;
}

/** A writer copies what it is given into buffers of this size and writes each when full... */
const BUFFER_BYTES = 1024 * 1024;
/** ...except its first, small one (most artifacts need no more; a big allocation per small file costs)... */
const FIRST_BUFFER_BYTES = 64 * 1024;
/** ...and has at most this many (the most a download holds in memory: about 7 MiB). */
const MAX_BUFFERS = 8;

export function integrityError(what: string, expected: Expected, found: { digest: Digest; size: number; checksums: Checksums }, source?: string): HoardError | null {
  let problem: string | null = null;
  if (expected.size !== undefined && found.size < expected.size) problem = `too short: ${found.size} of ${expected.size} bytes`;
  else if (expected.size !== undefined && found.size > expected.size) problem = `too long: ${found.size} bytes, expected ${expected.size}`;
  else if (expected.digest && expected.digest !== found.digest) problem = `digest mismatch: expected ${expected.digest}, got ${found.digest}`;
  else {
    for (const [alg, hex] of Object.entries(expected.checksums ?? {})) {
      const got = found.checksums[alg as ChecksumAlgorithm];
      if (hex && got !== hex) {
        problem = `${alg} mismatch: expected ${hex}, got ${got}`;
        break;
      }
    }
  }
  if (!problem) return null;
  return new HoardError('E_INTEGRITY', `${what} ${problem}`, {
    hint: source ? `the server at ${source} sent other bytes than the manifest records; if the artifact really changed upstream, remove its digest and size from hoard.json and sync again` : undefined,
    details: { expected: expected.digest, found: found.digest, expectedSize: expected.size, foundSize: found.size },
  });
}

export function openStore(root: string): Store {
  const layout = storeLayout(path.resolve(root));
  const verified = new StateFile<Fingerprint>(path.join(layout.state, 'blobs.json'), path.join(layout.locks, 'state-blobs.lock'));

  const ensureDirs = async () => {
    await fs.mkdir(layout.blobs, { recursive: true });
    await fs.mkdir(layout.tmp, { recursive: true });
  };

  const publish = async (tmp: string, digest: Digest, replace = false): Promise<void> => {
    await fs.chmod(tmp, 0o444);
    const dest = blobPath(layout.root, digest);
    if (replace) await fs.rename(tmp, dest);
    else {
      try {
        // link, not rename: an existing blob (another process won the race) is kept...
        await fs.link(tmp, dest);
      } catch (err) {
        if (!isErrno(err, 'EEXIST')) throw err;
        // ...once it is known to be right; a damaged one is replaced by the verified bytes.
        if ((await hashFile(dest)).digest !== digest) await fs.rename(tmp, dest);
      }
    }
    await fs.rm(tmp, { force: true });
    const st = await fs.stat(dest);
    verified.set(digestHex(digest), blobFingerprint(st));
  };

  const createWriter = async (algorithms: Iterable<ChecksumAlgorithm> = [], opts: WriterOptions = {}): Promise<BlobWriter> => {
    await ensureDirs();
    const algs = [...algorithms];
    let hash = new MultiHash(algs);
    let source: PartialSource | null = null;
    let tmpPath: string;
    let metaPath: string | null = null;
    let fh: FileHandle;
    if (opts.resumeKey === undefined) {
      tmpPath = path.join(layout.tmp, `${process.pid}-${randomBytes(6).toString('hex')}.part`);
      fh = await fs.open(tmpPath, 'wx', 0o644);
    } else {
      if (!/^[0-9a-f]{64}$/.test(opts.resumeKey)) throw new Error(`resume key must be 64 hex digits: ${opts.resumeKey}`);
      tmpPath = path.join(layout.tmp, `${opts.resumeKey}.partial`);
      metaPath = `${tmpPath}.json`;
      // What a killed process left: its bytes are a prefix of what it was sent (writes go out
      // in order), and the source file says where they came from. Without one, start over.
      source = readPartialSource(metaPath);
      fh = await openPartial(tmpPath);
      if (source) await hashInto(fh, hash);
      else await fh.truncate(0);
    }
    // Bytes are hashed the moment they arrive, while they are still in the CPU's cache, and
    // copied into a few fixed buffers: the caller may reuse its chunk as soon as write()
    // returns, and memory stays the same however fast the bytes come. A full buffer is written
    // (one write at a time, on libuv's thread pool) while the next one fills; the caller waits
    // only when every buffer is full and on its way to the disk.
    const spare: Buffer[] = [];
    let buffers = 0;
    let current: Buffer | null = null;
    let fill = 0;
    const full: Array<{ buf: Buffer; len: number }> = [];
    let offset = hash.size;
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
    const pump = (): void => {
      if (writing || truncating || stopped || failed || full.length === 0) return;
      const { buf, len } = full.shift()!;
      const at = offset;
      offset += len;
      writing = true;
      writeAll(buf, len, at).then(
        () => {
          writing = false;
          spare.push(buf);
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
    const queueCurrent = (): void => {
      if (current && fill > 0) full.push({ buf: current, len: fill });
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
          current = spare.pop() ?? (buffers < MAX_BUFFERS ? Buffer.allocUnsafeSlow(buffers++ === 0 ? FIRST_BUFFER_BYTES : BUFFER_BYTES) : null);
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
        if (failed) throw storeWriteError(failed, tmpPath);
      }
    };
    /** Writes out everything accepted so far. */
    const drain = async (): Promise<void> => {
      queueCurrent();
      while ((writing || truncating || full.length > 0) && !failed) await writeDone();
      if (failed) throw storeWriteError(failed, tmpPath);
    };
    const close = async () => {
      if (!closed) {
        closed = true;
        await fh.close();
      }
    };

    const removeFiles = async () => {
      await fs.rm(tmpPath, { force: true });
      if (metaPath) await fs.rm(metaPath, { force: true });
    };

    return {
      tmpPath,
      get bytesWritten() {
        return hash.size;
      },
      get source() {
        return source;
      },
      restart(next) {
        if (failed) return Promise.reject(storeWriteError(failed, tmpPath));
        hash = new MultiHash(algs);
        source = next;
        for (const f of full) spare.push(f.buf);
        full.length = 0;
        fill = 0;
        const previous = truncating;
        const done = (async () => {
          await previous?.catch(() => {});
          while (writing) await writeDone();
          // The order matters for a crash: the old bytes go before the new source is recorded.
          await fh.truncate(0);
          offset = 0;
          if (metaPath) await writePartialSource(metaPath, next);
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
            throw storeWriteError(err, tmpPath);
          },
        );
        truncating = done;
        return done;
      },
      write(chunk) {
        if (failed) throw storeWriteError(failed, tmpPath);
        if (stopped) throw new Error('write() after commit() or abort()');
        hash.update(chunk);
        const done = copy(chunk, 0);
        if (done < chunk.byteLength) return copyRest(chunk, done);
      },
      async commit(expected, opts = {}) {
        try {
          await drain();
          stopped = true;
          await close();
          const found = { ...hash.digest(), size: hash.size };
          const err = integrityError('download is', expected, found);
          if (err) throw err;
          await publish(tmpPath, found.digest, opts.replace);
          return found.digest;
        } finally {
          stopped = true;
          await close().catch(() => {});
          await removeFiles();
        }
      },
      async abort(o = {}) {
        if (o.keep && metaPath && source && !stopped && !failed && hash.size > 0) {
          try {
            await drain();
            stopped = true;
            await close();
            return;
          } catch {
            // could not write it out: drop it below
          }
        }
        stopped = true;
        full.length = 0;
        while (writing || truncating) await (truncating?.catch(() => {}) ?? writeDone());
        await close().catch(() => {});
        await removeFiles();
      },
    };
  };

  // blobPath() without path.join's normalising, for the no-op hot path (same result).
  const blobPrefix = `${blobPath(layout.root, `sha256:${'0'.repeat(64)}`).slice(0, -64)}`;

  const store: Store = {
    root: layout.root,
    blobPath: (digest) => blobPath(layout.root, digest),

    async check(digest, opts = {}) {
      const hex = digest.slice(7);
      const p = blobPrefix + hex;
      // Synchronous on purpose: a no-op sync stats every blob, and a thread-pool round trip
      // per stat costs more than the stat.
      const st = statSync(p, { throwIfNoEntry: false });
      if (!st) return { state: 'missing', path: p };
      if (!st.isFile()) return { state: 'corrupt', path: p, found: null, reason: 'not a regular file' };
      if (opts.size !== undefined && st.size !== opts.size) {
        return { state: 'corrupt', path: p, found: null, reason: `size ${st.size}, expected ${opts.size}`, stat: st };
      }
      const fp = blobFingerprint(st);
      if (!opts.verify && verified.get(hex) === fp) return { state: 'ok', path: p, rehashed: false, stat: st };
      const { digest: found } = await hashFile(p);
      if (found !== digest) return { state: 'corrupt', path: p, found, reason: `content hashes to ${found}`, stat: st };
      if ((st.mode & 0o222) !== 0) await fs.chmod(p, 0o444).catch(() => {});
      const after = await fs.stat(p);
      verified.set(digestHex(digest), blobFingerprint(after));
      return { state: 'ok', path: p, rehashed: true, stat: after };
    },

    async touchVerified(digest) {
      const st = await fs.stat(blobPath(layout.root, digest));
      verified.set(digestHex(digest), blobFingerprint(st));
    },

    async remove(digest) {
      await fs.rm(blobPath(layout.root, digest), { force: true });
      verified.set(digestHex(digest), undefined);
    },

    createWriter,

    async ingestFile(file, expected = {}) {
      const algorithms = Object.keys(expected.checksums ?? {}) as ChecksumAlgorithm[];
      await ensureDirs();
      const tmp = path.join(layout.tmp, `${process.pid}-${randomBytes(6).toString('hex')}.part`);
      try {
        await fs.copyFile(file, tmp, fs.constants.COPYFILE_FICLONE);
        const found = await hashFile(tmp, algorithms);
        const err = integrityError(`${file} is`, expected, found);
        if (err) throw err;
        await publish(tmp, found.digest);
        return found.digest;
      } finally {
        await fs.rm(tmp, { force: true });
      }
    },

    lock(digest, onWait) {
      return acquireLock(path.join(layout.locks, `${digestHex(digest)}.lock`), { onWait });
    },

    async list() {
      try {
        const names = await fs.readdir(layout.blobs);
        return names.filter((n) => /^[0-9a-f]{64}$/.test(n)).map((n) => `sha256:${n}` as Digest);
      } catch (err) {
        if (isErrno(err, 'ENOENT')) return [];
        throw err;
      }
    },

    flush: () => verified.flush(),
  };
  return store;
}

/** The source file beside a partial download, or null when it is missing or unreadable. */
function readPartialSource(file: string): PartialSource | null {
  try {
    const o = JSON.parse(readFileSync(file, 'utf8')) as Partial<PartialSource>;
    if (typeof o.url !== 'string') return null;
    return {
      url: o.url,
      ...(typeof o.etag === 'string' ? { etag: o.etag } : {}),
      ...(typeof o.lastModified === 'string' ? { lastModified: o.lastModified } : {}),
    };
  } catch {
    return null;
  }
}

async function writePartialSource(file: string, source: PartialSource): Promise<void> {
  const tmp = `${file}.${process.pid}.tmp`;
  await fs.writeFile(tmp, JSON.stringify(source));
  await fs.rename(tmp, file);
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

/** Feeds a file's bytes to `hash` (the prefix a resumed download continues). */
async function hashInto(fh: FileHandle, hash: MultiHash): Promise<void> {
  const buf = Buffer.allocUnsafe(1024 * 1024);
  for (let at = 0; ; ) {
    const { bytesRead } = await fh.read(buf, 0, buf.byteLength, at);
    if (bytesRead === 0) return;
    hash.update(bytesRead === buf.byteLength ? buf : buf.subarray(0, bytesRead));
    at += bytesRead;
  }
}

function storeWriteError(err: unknown, tmpPath: string): HoardError {
  if (isErrno(err, 'ENOSPC')) {
    return new HoardError('E_STORE', `no space left on the device while writing ${tmpPath}`, {
      hint: 'free some space (or point --store at a larger disk) and sync again',
      cause: err,
    });
  }
  return new HoardError('E_STORE', `cannot write ${tmpPath}: ${(err as Error).message}`, { cause: err });
}
