// The store: blobs under their digests (v1/blobs/sha256/<hex>), and openStore, which wires its
// parts together: the writer (writer.ts), integrity checks and fingerprints (integrity.ts),
// locks and pins (pins.ts), last use (usage.ts). The names below are re-exported from here, so
// that `../store/store.ts` stays the one import for the store.
import { promises as fs, lstatSync, readdirSync, statSync, type Dirent, type Stats } from 'node:fs';
import path from 'node:path';
import { digestHex, parseDigest, type ChecksumAlgorithm, type Digest } from '../core/digest.ts';
import { randomHex } from '../core/builtins.ts';
import { HoardError, isErrno } from '../core/errors.ts';
import { hashFile } from '../core/hashfile.ts';
import { integrityError, openIntegrity, verifyAll, type BlobCheck, type Expected, type VerifiedBlob } from './integrity.ts';
import type { LockWait, LockWaitInfo } from './lock.ts';
import { blobPath, isHex64, storeLayout } from './paths.ts';
import { openPins } from './pins.ts';
import { openUsage } from './usage.ts';
import { createBlobWriter, syncFile, type BlobWriter, type WriterOptions } from './writer.ts';

export { integrityError, type BlobCheck, type Expected, type VerifiedBlob } from './integrity.ts';
export { USED_GRANULARITY_MS } from './usage.ts';
export { resumeKeyOf, writeError, type BlobWriter, type CommitOptions, type PartialSource, type WriterOptions } from './writer.ts';

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

export interface Store {
  readonly root: string;
  /** How waits for this store's locks end (see StoreOptions.lockWait): for the state files beside it too. */
  readonly lockWait: LockWait;
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
   * Whether `st` (of the blob, or of a hard link of it) is the fingerprint recorded when the
   * blob was last verified (ctime included, so its name in the store is still there).
   */
  trusts(digest: Digest, st: Stats): boolean;
  /**
   * Runs `op`, one of hoard's own link operations on these blobs (a hard link made or removed,
   * which moves a blob's ctime), and records their fingerprints anew afterwards, for each blob
   * that was trusted just before and whose bytes, mtime and mode did not move meanwhile.
   * Operations on one blob that overlap share one bracket, one look before the first and one
   * after the last. `settled` is called when the bracket on the first blob ends, with the
   * blob's stat then, or null when it is no longer the same file (gone, replaced, changed),
   * and the inode numbers its name had when the bracket began and ended.
   */
  linking<T>(digests: readonly Digest[], op: () => Promise<T>, settled?: (blob: Stats | null, inodes: readonly number[]) => void): Promise<T>;
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

export interface StoreOptions {
  /**
   * How this store's waits for a lock end (Ctrl-C, --lock-timeout): every lock it takes, and
   * the locks of its state files, obey it. The CLI passes its own; a library caller may too.
   */
  lockWait?: LockWait;
}

export function openStore(root: string, options: StoreOptions = {}): Store {
  const layout = storeLayout(path.resolve(root));
  // A file where the store should be: said once, here (newer Nodes report ENOTDIR below it as
  // "no such entry", which would make every blob look missing instead).
  if (statSync(path.resolve(root), { throwIfNoEntry: false })?.isDirectory() === false) {
    throw new HoardError('E_NOTDIR', `the store ${path.resolve(root)} is a file, not a folder`, {
      hint: 'move the file away, or point --store (HOARD_STORE) at a folder',
      details: { path: path.resolve(root) },
    });
  }
  const wait = options.lockWait ?? {};
  // blobPath() without path.join's normalising, for the no-op hot path (same result).
  const blobPrefix = `${blobPath(layout.root, `sha256:${'0'.repeat(64)}`).slice(0, -64)}`;
  const integrity = openIntegrity(layout, blobPrefix, wait);
  const used = openUsage(layout, wait);
  const pins = openPins(layout, wait);

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
    integrity.recordVerified(digestHex(digest), st);
    used.set(digestHex(digest), Date.now());
  };

  const createWriter = (algorithms: Iterable<ChecksumAlgorithm> = [], opts: WriterOptions = {}): Promise<BlobWriter> =>
    createBlobWriter({ tmp: layout.tmp, ensureDirs, publish }, algorithms, opts);

  const store: Store = {
    root: layout.root,
    lockWait: wait,
    blobPath: (digest) => blobPath(layout.root, digest),

    check: integrity.check,
    trusts: integrity.trusts,
    linking: integrity.linking,

    async remove(digest) {
      await fs.rm(blobPath(layout.root, digest), { force: true });
      integrity.forget(digestHex(digest));
      used.forget(digestHex(digest));
    },

    createWriter,

    async ingestFile(file, expected = {}) {
      const algorithms = Object.keys(expected.checksums ?? {}) as ChecksumAlgorithm[];
      await ensureDirs();
      const tmp = path.join(layout.tmp, `${process.pid}-${randomHex(6)}.part`);
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

    lock: pins.lock,
    pin: pins.pin,
    tryLock: pins.tryLock,
    pinned: pins.pinned,
    inUse: pins.inUse,

    markUsed(digest, now = Date.now()) {
      used.mark(digest.slice(7), now);
    },

    lastUsed(digest) {
      return used.last(digest.slice(7));
    },

    async list() {
      return listBlobHexes(layout.root).map((hex) => `sha256:${hex}` as Digest);
    },

    async blobs() {
      const out: BlobInfo[] = [];
      for (const hex of listBlobHexes(layout.root)) {
        const p = blobPrefix + hex;
        const st = statSync(p, { throwIfNoEntry: false });
        if (!st?.isFile()) continue; // removed meanwhile, or not a blob
        out.push({ digest: `sha256:${hex}`, path: p, size: st.size, lastUsed: used.last(hex) ?? st.mtimeMs });
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
      integrity.forgetWhere(gone);
      used.forgetWhere(gone);
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

    verify(opts = {}) {
      return verifyAll(store, opts);
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
      await Promise.all([integrity.flush(), used.flush()]);
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
