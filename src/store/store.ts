import { createHash, randomBytes } from 'node:crypto';
import { promises as fs, lstatSync, readdirSync, statSync, type Dirent, type Stats } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { digestHex, parseDigest, type ChecksumAlgorithm, type Checksums, type Digest } from '../core/digest.ts';
import { HoardError, isErrno } from '../core/errors.ts';
import { createHasher, INLINE_BYTES, sharedBuffer, type Hasher } from '../core/hash-pool.ts';
import { hashFile } from '../core/hashfile.ts';
import { blobFingerprint, fingerprintCtime, onlyLinksChanged, type Fingerprint } from './fingerprint.ts';
import { addCheckpoint, readPartialMeta, resumePartial, writePartialMeta, type Checkpoint } from './partial.ts';
import { acquireLock, lockState, tryAcquireLock, type LockWaitInfo } from './lock.ts';
import { blobPath, isHex64, storeLayout } from './paths.ts';
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

/** One blob as `hoard store ls` and gc see it. */
export interface BlobInfo {
  digest: Digest;
  path: string;
  size: number;
  /** When it was last synced, linked, fetched or added (ms since the epoch); its mtime when never recorded. */
  lastUsed: number;
}

/** A file in `v1/tmp/`: a download or copy in flight, or left behind by a process that died. */
export interface TmpFile {
  path: string;
  size: number;
  mtimeMs: number;
  /** The writer's pid, from the name (`<pid>-<random>.part`); null for a name hoard did not make. */
  pid: number | null;
}

/** What `put` accepts: a local file's path, bytes, or a stream of bytes (a Node.js Readable is one). */
export type PutSource = string | Uint8Array | AsyncIterable<Uint8Array>;

/** Blobs `verify` hashes at once (the hash pool has two workers). */
const VERIFY_AHEAD = 2;

/** "Used" is recorded at most this often per blob, so a no-op sync usually writes nothing. */
export const USED_GRANULARITY_MS = 60 * 60 * 1000;

export interface Store {
  readonly root: string;
  blobPath(digest: Digest): string;

  // The library API (also what `hoard store` runs). Digests may be `sha256:<hex>` or bare hex.
  /** Whether a blob with this digest is in the store (not re-hashed: `get` verifies). */
  has(digest: string): Promise<boolean>;
  /** Stores a file, bytes or a stream, verified against `expected` when given; its digest. */
  put(source: PutSource, expected?: Expected): Promise<Digest>;
  /**
   * The path of the blob, verified (its fingerprint matches the last verification, else it is
   * re-hashed). Read-only: copy or hard-link it, never write to it. A corrupt blob is removed
   * and an E_INTEGRITY error thrown; an unknown digest is an E_STORE error.
   */
  get(digest: string): Promise<string>;
  /** Re-hashes every blob and removes the corrupt ones. */
  verify(opts?: { onBlob?: (r: VerifiedBlob) => void }): Promise<{ blobs: number; bytes: number; corrupt: Digest[] }>;
  /** Removes a blob under its lock (waiting for a process that uses it); false when there was none. */
  delete(digest: string, onWait?: (info: LockWaitInfo) => void): Promise<boolean>;


  /** A `stat` when the fingerprint recorded at the last verification still matches; a full re-hash otherwise. */
  check(digest: Digest, opts?: { verify?: boolean; size?: number }): Promise<BlobCheck>;
  /**
   * Runs `op`, one of hoard's own link operations on these blobs (a hard link made or removed,
   * which moves a blob's ctime), and records their fingerprints anew afterwards, for each blob
   * that was trusted just before and whose bytes, mtime and mode did not move meanwhile.
   */
  linking<T>(digests: readonly Digest[], op: () => Promise<T>): Promise<T>;
  /** Removes a blob; the caller holds its lock. */
  remove(digest: Digest): Promise<void>;
  createWriter(algorithms?: Iterable<ChecksumAlgorithm>, opts?: WriterOptions): Promise<BlobWriter>;
  /** Copies a local file into the store, verified against `expected`. */
  ingestFile(file: string, expected?: Expected): Promise<Digest>;
  /** A per-digest lock between processes (or per resume key: any 64-hex name works). */
  lock(digest: Digest, onWait?: (info: LockWaitInfo) => void): Promise<() => Promise<void>>;
  /**
   * Pins a blob this process is about to publish under a digest its manifest file does not
   * record yet (sync keeps the pin until hoard.json is written), so that gc leaves it alone.
   * Pins of several processes coexist; pinning takes the blob's lock for a moment (pass
   * `locked` when the caller holds it already), so it waits only while gc holds it.
   */
  pin(digest: Digest, opts?: { locked?: boolean }): Promise<() => Promise<void>>;
  /** Takes the blob's lock unless a live process holds it; null when one does. */
  tryLock(digest: Digest): Promise<(() => Promise<void>) | null>;
  /** Hex digests pinned by live processes now. */
  pinned(): Promise<Set<string>>;
  /**
   * Whether a live process holds the blob's lock or a pin on it (for --dry-run, which takes
   * nothing); `pinned` is a `pinned()` taken earlier, to ask about many blobs at once.
   */
  inUse(digest: Digest, pinned?: ReadonlySet<string>): Promise<boolean>;
  /** Records that a blob was used (synced, linked); written only when the record is older than USED_GRANULARITY_MS. */
  markUsed(digest: Digest, now?: number): void;
  /** When the blob was last used, as recorded (ms since the epoch); null when never recorded. */
  lastUsed(digest: Digest): number | null;
  /** Every digest in the store. */
  list(): Promise<Digest[]>;
  /** Every blob with its size and when it was last used. */
  blobs(): Promise<BlobInfo[]>;
  /** Files in v1/tmp/. */
  tmpFiles(): Promise<TmpFile[]>;
  /**
   * Drops what the store remembers (fingerprints, last use) about blobs that are gone:
   * those not in `present` (hex digests listed earlier) and not there now either.
   */
  forgetMissing(present: ReadonlySet<string>): void;
  /** Persists fingerprints and use times recorded by this process. */
  flush(): Promise<void>;
}

export interface VerifiedBlob {
  digest: Digest;
  path: string;
  ok: boolean;
  size: number;
  reason?: string;
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
  return digest ? digestHex(digest) : createHash('sha256').update(`url ${url}`).digest('hex');
}

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
  // A file where the store should be: said once, here (newer Nodes report ENOTDIR below it as
  // "no such entry", which would make every blob look missing instead).
  if (statSync(path.resolve(root), { throwIfNoEntry: false })?.isDirectory() === false) {
    throw new HoardError('E_NOTDIR', `the store ${path.resolve(root)} is a file, not a folder`, {
      hint: 'move the file away, or point --store (HOARD_STORE) at a folder',
      details: { path: path.resolve(root) },
    });
  }
  // Two processes that both verified a blob keep the later record (a link since moved its ctime).
  const verified = new StateFile<Fingerprint>(path.join(layout.state, 'blobs.json'), path.join(layout.locks, 'state-blobs.lock'), (inFile, mine) =>
    typeof inFile === 'string' && inFile.split(':')[1] === mine.split(':')[1] && fingerprintCtime(inFile) > fingerprintCtime(mine) ? inFile : mine,
  );
  /** Fingerprints this process recorded itself, per blob hex (its own links may have moved on since). */
  const mine = new Map<string, Set<Fingerprint>>();
  const trusted = (hex: string, fp: Fingerprint) => verified.get(hex) === fp || (mine.get(hex)?.has(fp) ?? false);
  const recordVerified = (hex: string, st: Stats) => {
    const fp = blobFingerprint(st);
    let set = mine.get(hex);
    if (!set) mine.set(hex, (set = new Set()));
    set.add(fp);
    const current = verified.get(hex);
    // Links made concurrently finish in any order: the latest state of the blob wins.
    if (current && current.split(':')[1] === String(st.ino) && fingerprintCtime(current) > st.ctimeMs) return;
    verified.set(hex, fp);
  };
  // Last use per blob hex (ms since the epoch). Two processes that both record keep the later time.
  const used = new StateFile<number>(path.join(layout.state, 'used.json'), path.join(layout.locks, 'state-used.lock'), (inFile, mine) =>
    typeof inFile === 'number' && inFile > mine ? inFile : mine,
  );
  const lockFile = (digest: Digest) => path.join(layout.locks, `${digestHex(digest)}.lock`);

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
    recordVerified(digestHex(digest), st);
    used.set(digestHex(digest), Date.now());
  };

  const createWriter = async (algorithms: Iterable<ChecksumAlgorithm> = [], opts: WriterOptions = {}): Promise<BlobWriter> => {
    await ensureDirs();
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
      tmpPath = path.join(layout.tmp, `${process.pid}-${randomBytes(6).toString('hex')}.part`);
      fh = await fs.open(tmpPath, 'wx', 0o644);
    } else {
      if (!/^[0-9a-f]{64}$/.test(opts.resumeKey)) throw new Error(`resume key must be 64 hex digits: ${opts.resumeKey}`);
      tmpPath = path.join(layout.tmp, `${opts.resumeKey}.partial`);
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
          // The order matters for a crash: the old bytes go before the new source is recorded.
          await metaChain;
          await fh.truncate(0);
          offset = 0;
          if (metaPath) await writePartialMeta(metaPath, { ...next, checkpoints: [] });
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
          await publish(tmpPath, found.digest, opts.replace);
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
      if (!opts.verify && trusted(hex, blobFingerprint(st))) return { state: 'ok', path: p, rehashed: false, stat: st };
      // A writable blob is made read-only again first, so that the stat before hashing is final.
      if ((st.mode & 0o222) !== 0) await fs.chmod(p, 0o444).catch(() => {});
      const before = (st.mode & 0o222) !== 0 ? await fs.stat(p) : st;
      const { digest: found } = await hashFile(p);
      if (found !== digest) return { state: 'corrupt', path: p, found, reason: `content hashes to ${found}`, stat: st };
      const after = await fs.stat(p);
      // Recorded only when nothing moved while it was read.
      if (blobFingerprint(before) === blobFingerprint(after)) recordVerified(hex, after);
      return { state: 'ok', path: p, rehashed: true, stat: after };
    },

    async linking(digests, op) {
      const before = digests.map((d) => {
        const st = statSync(blobPrefix + d.slice(7), { throwIfNoEntry: false });
        return st && trusted(d.slice(7), blobFingerprint(st)) ? st : null;
      });
      try {
        return await op();
      } finally {
        digests.forEach((d, i) => {
          const was = before[i];
          if (!was) return;
          const now = statSync(blobPrefix + d.slice(7), { throwIfNoEntry: false });
          if (now && onlyLinksChanged(was, now)) recordVerified(d.slice(7), now);
        });
      }
    },

    async remove(digest) {
      await fs.rm(blobPath(layout.root, digest), { force: true });
      verified.set(digestHex(digest), undefined);
      mine.delete(digestHex(digest));
      used.set(digestHex(digest), undefined);
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
        await syncFile(tmp);
        await publish(tmp, found.digest);
        return found.digest;
      } finally {
        await fs.rm(tmp, { force: true });
      }
    },

    lock(digest, onWait) {
      return acquireLock(lockFile(digest), { onWait });
    },

    async pin(digest, opts = {}) {
      // Under the blob's lock: gc, which holds the lock while it decides, never misses a pin.
      const release = opts.locked ? null : await store.lock(digest);
      try {
        return await acquireLock(path.join(layout.locks, `${digestHex(digest)}.${process.pid}-${randomBytes(4).toString('hex')}.pin`));
      } finally {
        await release?.();
      }
    },

    tryLock(digest) {
      return tryAcquireLock(lockFile(digest));
    },

    async pinned() {
      const names = await fs.readdir(layout.locks).catch(() => [] as string[]);
      const out = new Set<string>();
      for (const name of names) {
        if (!name.endsWith('.pin')) continue;
        const hex = name.slice(0, 64);
        if (!out.has(hex) && (await lockState(path.join(layout.locks, name))).state === 'held') out.add(hex);
      }
      return out;
    },

    async inUse(digest, pinned) {
      return (await lockState(lockFile(digest))).state === 'held' || (pinned ?? (await store.pinned())).has(digestHex(digest));
    },

    markUsed(digest, now = Date.now()) {
      const hex = digest.slice(7);
      const last = used.get(hex);
      if (last === undefined || now - last >= USED_GRANULARITY_MS) used.set(hex, now);
    },

    async list() {
      return listBlobHexes(layout.root).map((hex) => `sha256:${hex}` as Digest);
    },

    lastUsed(digest) {
      const last = used.get(digest.slice(7));
      return typeof last === 'number' ? last : null;
    },

    async blobs() {
      const digests = await store.list();
      const out: BlobInfo[] = [];
      for (const digest of digests) {
        const p = blobPrefix + digest.slice(7);
        const st = statSync(p, { throwIfNoEntry: false });
        if (!st?.isFile()) continue; // removed meanwhile, or not a blob
        const last = used.get(digest.slice(7));
        out.push({ digest, path: p, size: st.size, lastUsed: typeof last === 'number' ? last : st.mtimeMs });
      }
      return out;
    },

    async tmpFiles() {
      // Synchronous: a handful of files, read faster than through the thread pool.
      let names: string[];
      try {
        names = readdirSync(layout.tmp);
      } catch (err) {
        if (isErrno(err, 'ENOENT')) return [];
        throw err;
      }
      const out: TmpFile[] = [];
      for (const name of names) {
        const p = path.join(layout.tmp, name);
        const st = lstatSync(p, { throwIfNoEntry: false });
        if (!st) continue;
        const m = /^(\d+)-/.exec(name);
        out.push({ path: p, size: st.isFile() ? st.size : 0, mtimeMs: st.mtimeMs, pid: m ? Number(m[1]) : null });
      }
      return out;
    },

    forgetMissing(present) {
      const gone = (hex: string) => !present.has(hex) && !statSync(blobPrefix + hex, { throwIfNoEntry: false });
      for (const hex of verified.keys()) if (gone(hex)) verified.set(hex, undefined);
      for (const hex of used.keys()) if (gone(hex)) used.set(hex, undefined);
    },

    async has(digest) {
      return statSync(blobPath(layout.root, parseDigest(digest)), { throwIfNoEntry: false })?.isFile() ?? false;
    },

    async put(source, expected = {}) {
      let digest: Digest;
      if (typeof source === 'string') digest = await store.ingestFile(source, expected);
      else {
        const writer = await createWriter(Object.keys(expected.checksums ?? {}) as ChecksumAlgorithm[]);
        try {
          if (source instanceof Uint8Array) await writer.write(source);
          else {
            for await (const chunk of source) {
              const wait = writer.write(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
              if (wait) await wait;
            }
          }
          digest = await writer.commit(expected);
        } catch (err) {
          await writer.abort();
          throw err;
        }
      }
      await store.flush();
      return digest;
    },

    async get(input) {
      const digest = parseDigest(input);
      const c = await store.check(digest);
      if (c.state === 'missing') {
        throw new HoardError('E_STORE', `no blob ${digest} in the store at ${layout.root}`, {
          hint: 'put it there first (store.put(), `hoard store add <file>`, or a sync of a manifest that names it)',
          details: { digest },
        });
      }
      if (c.state === 'corrupt') {
        const release = await store.lock(digest);
        try {
          // Another process may have repaired it meanwhile.
          const again = await store.check(digest, { verify: true });
          if (again.state === 'corrupt') await store.remove(digest);
          if (again.state !== 'ok') {
            await store.flush();
            throw new HoardError('E_INTEGRITY', `blob ${digest} is corrupt (${c.reason}); removed it from the store`, {
              hint: 'fetch it again: `hoard sync` for a manifest that names it, or store.put() the original file',
              details: { digest, found: c.found },
            });
          }
        } finally {
          await release();
        }
      }
      store.markUsed(digest);
      await store.flush();
      return c.path;
    },

    async verify(opts = {}) {
      const result = { blobs: 0, bytes: 0, corrupt: [] as Digest[] };
      const checkOne = async (digest: Digest): Promise<BlobCheck> => {
        const c = await store.check(digest, { verify: true });
        if (c.state !== 'corrupt') return c;
        // Under the lock: a sync may be replacing it right now.
        const release = await store.lock(digest);
        try {
          const again = await store.check(digest, { verify: true });
          if (again.state === 'corrupt') await store.remove(digest);
          return again;
        } finally {
          await release();
        }
      };
      // VERIFY_AHEAD blobs are hashed at once (each by a hash worker), reported in order.
      const digests = await store.list();
      const running: Array<Promise<BlobCheck>> = [];
      for (let next = 0, i = 0; i < digests.length; i++) {
        while (next < digests.length && next < i + VERIFY_AHEAD) {
          const p = checkOne(digests[next++]!);
          p.catch(() => {}); // awaited in order below
          running.push(p);
        }
        const digest = digests[i]!;
        const c = await running.shift()!;
        if (c.state === 'missing') continue;
        result.blobs++;
        if (c.state === 'ok') {
          result.bytes += c.stat.size;
          opts.onBlob?.({ digest, path: c.path, ok: true, size: c.stat.size });
        } else {
          result.corrupt.push(digest);
          opts.onBlob?.({ digest, path: c.path, ok: false, size: c.stat?.size ?? 0, reason: c.reason });
        }
      }
      await store.flush();
      return result;
    },

    async delete(input, onWait) {
      const digest = parseDigest(input);
      const release = await store.lock(digest, onWait);
      try {
        if (!(await store.has(digest))) return false;
        await store.remove(digest);
      } finally {
        await release();
      }
      await store.flush();
      return true;
    },

    flush: async () => {
      await Promise.all([verified.flush(), used.flush()]);
    },
  };
  return store;
}

/**
 * The hex digests of the blobs in a store. Only regular files are blobs: a folder or a symbolic
 * link put there by hand is left alone by verify, gc and ls (never followed, never a reason to
 * stop). Synchronous: one readdir, cheaper than a thread-pool round trip with 10,000 names.
 * `unchecked`: names of 64 characters, not checked for hex digits (10,000 checks cost a gc more
 * than its readdir): the caller checks with isHex64 the names it acts on.
 */
export function listBlobHexes(root: string, opts: { unchecked?: boolean } = {}): string[] {
  let entries: Dirent[];
  try {
    entries = readdirSync(storeLayout(path.resolve(root)).blobs, { withFileTypes: true });
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return [];
    throw err;
  }
  const out: string[] = [];
  for (const e of entries) if (e.isFile() && e.name.length === 64 && (opts.unchecked || isHex64(e.name))) out.push(e.name);
  return out;
}

/** Flushes a file's bytes to the disk (before it is renamed into place). */
async function syncFile(file: string): Promise<void> {
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
