// Garbage collection: blobs no known manifest names, blobs over a size limit (least recently
// used first), temp files and locks left by processes that are gone.
import { promises as fs, lstatSync, readdirSync } from 'node:fs';
import path from 'node:path';
import type { Digest } from '../core/digest.ts';
import { formatBytes } from '../core/format.ts';
import { lockState, pidAlive, removeStaleLock, type LockWait } from '../store/lock.ts';
import { isHex64, storeLayout } from '../store/paths.ts';
import { openFetchedBlobs } from '../store/urls.ts';
import { listBlobHexes, openStore, type Store } from '../store/store.ts';
import type { KeptEvent, RemovedEvent } from './events.ts';
import { manifestStamp, readKnownDigestsAll, readKnownManifest, type KnownState } from './known.ts';
import { openSyncState } from './state.ts';
import { monotonicMs } from '../core/builtins.ts';

export type GcEvent =
  | { type: 'manifest'; file: string; state: KnownState; digests: number; forgotten?: boolean; reason?: string }
  | RemovedEvent
  | KeptEvent
  | { type: 'warning'; message: string; hint?: string }
  | GcSummary;

export type GcSummary = {
  type: 'summary';
  dryRun: boolean;
  /** Known manifests that still exist (after forgetting the missing ones). */
  manifests: number;
  /** Blobs in the store when gc started, and after it (or, with --dry-run, after a real run). */
  blobs: number;
  blobsAfter: number;
  /** Blobs no known manifest names, removed. */
  removed: number;
  bytesRemoved: number;
  /** Blobs evicted for --max-size, least recently used first. */
  evicted: number;
  bytesEvicted: number;
  /** Temp files and locks left by processes that are gone. */
  tmpFiles: number;
  tmpBytes: number;
  locks: number;
  /** Blobs left alone because a running hoard holds them. */
  inUse: number;
  /** Unreferenced blobs kept because `hoard fetch` wanted them and they were used within the retention. */
  fetchedKept: number;
  /** The fetch retention applied (ms; 0: fetched blobs are not kept). */
  fetchRetentionMs: number;
  /** Everything removed: blobs and temp files. */
  bytesFreed: number;
  /** False when a known manifest could not be read, so no unreferenced blob was removed. */
  swept: boolean;
  /** With --max-size: the limit, and the blobs' total size afterwards. */
  maxSize?: number;
  storeBytes?: number;
  elapsedMs: number;
};

export interface GcOptions {
  storeRoot: string;
  /** List what would go; remove nothing, forget nothing. */
  dryRun?: boolean;
  /** Then evict least recently used blobs until the blobs fit in this many bytes. */
  maxSize?: number;
  /**
   * Keep a blob `hoard fetch` wanted while its last use is at most this old, though no manifest
   * names it (ms; default DEFAULT_FETCH_RETENTION_MS; 0: do not keep them).
   */
  fetchRetentionMs?: number;
  /** How waits for locks end (Ctrl-C, --lock-timeout); see LockWait. */
  lockWait?: LockWait;
  emit?: (event: GcEvent) => void;
}

/** How long a fetched blob is kept after its last use, unless --fetch-retention says otherwise. */
export const DEFAULT_FETCH_RETENTION_MS = 30 * 86_400_000;

/**
 * A temp file of a process that is not running here is removed only once it has not been
 * written to for this long: the store may be shared with another host, whose processes
 * this one cannot see.
 */
export const TMP_IDLE_MS = 60_000;

const iso = (ms: number) => new Date(ms).toISOString();

export async function gc(opts: GcOptions): Promise<GcSummary> {
  const started = monotonicMs();
  const emit = opts.emit ?? (() => {});
  const dryRun = opts.dryRun ?? false;
  const store = openStore(opts.storeRoot, opts.lockWait ? { lockWait: opts.lockWait } : {});
  const state = openSyncState(store.root, store.lockWait);
  const fetched = openFetchedBlobs(store.root, store.lockWait);
  const retention = opts.fetchRetentionMs ?? DEFAULT_FETCH_RETENTION_MS;
  const summary: GcSummary = {
    type: 'summary', dryRun, manifests: 0, blobs: 0, blobsAfter: 0, removed: 0, bytesRemoved: 0, evicted: 0, bytesEvicted: 0,
    tmpFiles: 0, tmpBytes: 0, locks: 0, inUse: 0, fetchedKept: 0, fetchRetentionMs: retention, bytesFreed: 0, swept: true, elapsedMs: 0,
  };

  // 1. The blobs there are now (hex digests). One published later is not a candidate this time.
  const hexes = listBlobHexes(store.root, { unchecked: true });
  summary.blobs = hexes.length;
  const gone = new Set<Digest>();

  // 2. What the known manifests name (hex digests: no per-blob string is made to compare them).
  const known = readKnownDigestsAll(state);
  const referenced = new Set<string>();
  let sweep = true;
  for (const m of known) {
    if (m.state === 'missing') {
      if (!dryRun) state.manifests.set(m.file, undefined);
      emit({ type: 'manifest', file: m.file, state: m.state, digests: 0, ...(dryRun ? {} : { forgotten: true }) });
      continue;
    }
    summary.manifests++;
    for (const hex of m.hexes) referenced.add(hex);
    emit({ type: 'manifest', file: m.file, state: m.state, digests: m.hexes.size, ...(m.reason ? { reason: m.reason } : {}) });
    if (m.state === 'invalid') {
      emit({
        type: 'warning',
        message: `${m.file} is not a valid manifest (${m.reason}); kept every blob its text mentions (${m.hexes.size})`,
        hint: `fix ${m.file} (or delete it if the project is gone) and run \`hoard gc\` again`,
      });
    } else if (m.state === 'unreadable') {
      sweep = false;
      emit({
        type: 'warning',
        message: `cannot read ${m.file} (${m.reason}): what it references is unknown, so no unreferenced blob was removed`,
        hint: `make ${m.file} readable, or delete it if the project is gone, and run \`hoard gc\` again`,
      });
    }
  }

  // The blobs nobody names; a name that is not 64 hex digits is not a blob (checked only here).
  const unnamed: string[] = [];
  for (const hex of hexes) {
    if (referenced.has(hex)) continue;
    if (isHex64(hex)) unnamed.push(hex);
    else summary.blobs--;
  }

  const keep = (d: Digest) => {
    summary.inUse++;
    emit({ type: 'kept', digest: d, path: store.blobPath(d), reason: 'in-use' });
  };

  // 3. Sweep the blobs nobody names. Each is taken under its lock, so a blob a running sync is
  //    fetching, repairing or has just published (pinned until its hoard.json is written) stays.
  if (sweep) {
    // A blob `hoard fetch` wanted stays while it was used within the retention.
    const now = Date.now();
    const candidates: Digest[] = [];
    for (const hex of unnamed) {
      const d: Digest = `sha256:${hex}`;
      const fetchedAt = retention > 0 ? fetched.get(hex) : undefined;
      if (fetchedAt !== undefined) {
        const lastUsed = Math.max(store.lastUsed(d) ?? 0, fetchedAt);
        if (now - lastUsed < retention) {
          summary.fetchedKept++;
          emit({ type: 'kept', digest: d, path: store.blobPath(d), reason: 'fetched', lastUsed: iso(lastUsed), keptUntil: iso(lastUsed + retention) });
          continue;
        }
      }
      candidates.push(d);
    }
    const held = new Map<Digest, () => Promise<void>>();
    try {
      const locked: Digest[] = [];
      const pinnedNow = dryRun && candidates.length > 0 ? await store.pinned() : undefined;
      for (const d of candidates) {
        if (dryRun) {
          if (await store.inUse(d, pinnedNow)) keep(d);
          else locked.push(d);
          continue;
        }
        const release = await store.tryLock(d);
        if (!release) keep(d);
        else {
          held.set(d, release);
          locked.push(d);
        }
      }
      // Pins are taken under the blob's lock, so with every candidate's lock held this list is final.
      const pinned = !dryRun && locked.length > 0 ? await store.pinned() : new Set<string>();
      const free: Digest[] = [];
      for (const d of locked) {
        if (pinned.has(d.slice(7))) keep(d);
        else free.push(d);
      }
      // A manifest may have changed while the locks were taken (a sync that locked a new entry
      // writes hoard.json before it lets go of the blob): read again the ones that did.
      const late = dryRun || free.length === 0 ? new Set<string>() : await namedSince(opts.storeRoot, known);
      for (const d of free) {
        if (late === 'all' || late.has(d)) continue;
        const st = lstatSync(store.blobPath(d), { throwIfNoEntry: false });
        if (!st) continue;
        const lastUsed = store.lastUsed(d) ?? st.mtimeMs;
        if (!dryRun) await store.remove(d);
        gone.add(d);
        summary.removed++;
        summary.bytesRemoved += st.size;
        emit({ type: 'removed', subject: 'blob', path: store.blobPath(d), digest: d, bytes: st.size, reason: 'unreferenced', lastUsed: iso(lastUsed), dryRun });
      }
    } finally {
      for (const release of held.values()) await release();
    }
  }

  summary.swept = sweep;

  // 4. The size limit.
  if (opts.maxSize !== undefined) {
    const r = await evict(store, { maxSize: opts.maxSize, dryRun, emit, skip: gone });
    summary.evicted = r.evicted;
    summary.bytesEvicted = r.bytesEvicted;
    summary.inUse += r.inUse;
    summary.maxSize = opts.maxSize;
    summary.storeBytes = r.storeBytes;
    for (const d of r.gone) gone.add(d);
  }

  // 5. What dead processes left behind.
  const tmp = await cleanTmp(store, dryRun, emit);
  summary.tmpFiles = tmp.files;
  summary.tmpBytes = tmp.bytes;
  summary.locks = await cleanLocks(store.root, dryRun, emit);

  summary.blobsAfter = summary.blobs - gone.size;
  summary.bytesFreed = summary.bytesRemoved + summary.bytesEvicted + summary.tmpBytes;
  if (!dryRun) {
    // State files are rewritten anyway when blobs were removed: then also drop what they say
    // about blobs removed by hand earlier. (Not otherwise: a gc that removes nothing stays cheap.)
    const fetchedHexes = fetched.keys();
    if (gone.size > 0 || fetchedHexes.length > 0) {
      const present = new Set(hexes.filter((hex) => !gone.has(`sha256:${hex}`)));
      if (gone.size > 0) store.forgetMissing(present);
      // What fetch wanted of blobs that are gone (removed here, evicted, or by hand) is forgotten.
      for (const hex of fetchedHexes) if (!present.has(hex) && !lstatSync(store.blobPath(`sha256:${hex}`), { throwIfNoEntry: false })) fetched.set(hex, undefined);
    }
    await Promise.all([store.flush(), state.manifests.flush(), fetched.flush()]);
  }
  summary.elapsedMs = Math.round(monotonicMs() - started);
  emit(summary);
  return summary;
}

/**
 * Digests named by known manifests that changed (or were recorded) since `before` was read;
 * 'all' when one can no longer be read (then nothing is removed).
 */
async function namedSince(storeRoot: string, before: ReadonlyArray<{ file: string; stamp: string | null }>): Promise<Set<string> | 'all'> {
  const stamps = new Map(before.map((m) => [m.file, m.stamp]));
  const late = new Set<Digest>();
  // A fresh read of manifests.json: a first sync records its manifest before it links anything.
  for (const [file] of openSyncState(storeRoot).manifests.entries()) {
    if (stamps.has(file) && stamps.get(file) === (await manifestStamp(file))) continue;
    const m = await readKnownManifest(file);
    if (m.state === 'unreadable') return 'all';
    for (const d of m.refs.keys()) late.add(d);
  }
  return late;
}

export interface EvictOptions {
  maxSize: number;
  dryRun?: boolean;
  emit: (event: RemovedEvent | KeptEvent | { type: 'warning'; message: string; hint?: string }) => void;
  /** Never evicted: the blobs of the manifest a sync just reconciled. */
  protect?: ReadonlySet<string>;
  /** Already removed (by a dry run's sweep): not counted. */
  skip?: ReadonlySet<string>;
}

/**
 * Evicts blobs, least recently used first, until their total size is at most `maxSize`. A
 * blob a running process holds is skipped (and the next one taken); referenced blobs are
 * evicted like any other (a sync fetches them again), except those in `protect`.
 */
export async function evict(store: Store, o: EvictOptions) {
  const blobs = (await store.blobs()).filter((b) => !o.skip?.has(b.digest));
  let total = blobs.reduce((n, b) => n + b.size, 0);
  const out = { evicted: 0, bytesEvicted: 0, inUse: 0, storeBytes: total, gone: [] as Digest[] };
  if (total <= o.maxSize) return out;
  const order = blobs.filter((b) => !o.protect?.has(b.digest)).sort((a, b) => a.lastUsed - b.lastUsed || (a.digest < b.digest ? -1 : 1));
  const pinnedNow = o.dryRun ? await store.pinned() : undefined;
  for (const b of order) {
    if (total <= o.maxSize) break;
    let release: (() => Promise<void>) | null = null;
    let busy: boolean;
    if (o.dryRun) busy = await store.inUse(b.digest, pinnedNow);
    else {
      release = await store.tryLock(b.digest);
      // A pin is taken under the lock, so once we hold it the pins are final.
      busy = !release || (await store.pinned()).has(b.digest.slice(7));
    }
    if (busy) {
      await release?.();
      out.inUse++;
      o.emit({ type: 'kept', digest: b.digest, path: b.path, reason: 'in-use' });
      continue;
    }
    try {
      if (!o.dryRun) await store.remove(b.digest);
    } finally {
      await release?.();
    }
    total -= b.size;
    out.evicted++;
    out.bytesEvicted += b.size;
    out.gone.push(b.digest);
    o.emit({ type: 'removed', subject: 'blob', path: b.path, digest: b.digest, bytes: b.size, reason: 'lru', lastUsed: iso(b.lastUsed), dryRun: o.dryRun ?? false });
  }
  out.storeBytes = total;
  if (total > o.maxSize) {
    o.emit({
      type: 'warning',
      message: `the store's blobs take ${formatBytes(total)}, more than the size limit of ${formatBytes(o.maxSize)}: ${
        o.protect?.size ? 'the rest is in use by this manifest or a running hoard' : 'the rest is in use by a running hoard'
      }`,
      hint: 'raise --max-size (HOARD_MAX_SIZE), or run `hoard gc --max-size …` once the other syncs are done',
    });
  }
  return out;
}

/** A partial download untouched this long is given up. */
const PARTIAL_KEEP_MS = 7 * 24 * 3600 * 1000;

/** Removes temp files of processes that are gone (and idle for TMP_IDLE_MS), and partial downloads given up. */
async function cleanTmp(store: Store, dryRun: boolean, emit: (e: RemovedEvent) => void) {
  const out = { files: 0, bytes: 0 };
  const now = Date.now();
  for (const f of await store.tmpFiles()) {
    // An interrupted download (<key>.partial and its .partial.json) is what the next sync
    // resumes from: kept for a week after its last byte, then collected.
    if (/\.partial(\.json)?$/.test(f.path)) {
      if (now - f.mtimeMs < PARTIAL_KEEP_MS) continue;
    } else {
      if (f.pid === process.pid || (f.pid !== null && pidAlive(f.pid))) continue;
      if (now - f.mtimeMs < TMP_IDLE_MS) continue;
    }
    if (!dryRun) {
      try {
        await fs.unlink(f.path);
      } catch {
        continue; // a folder, or gone meanwhile: not ours to remove
      }
    }
    out.files++;
    out.bytes += f.size;
    emit({ type: 'removed', subject: 'tmp', path: f.path, bytes: f.size, reason: 'dead-process', dryRun });
  }
  return out;
}

/** Removes locks (and pins, and recovery guards) whose holder is gone. */
async function cleanLocks(root: string, dryRun: boolean, emit: (e: RemovedEvent) => void): Promise<number> {
  const dir = storeLayout(root).locks;
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return 0;
  }
  let n = 0;
  for (const name of names) {
    if (!/\.(lock|pin|recover)$/.test(name)) continue;
    const file = path.join(dir, name);
    const stale = dryRun
      ? name.endsWith('.recover')
        ? Date.now() - (lstatSync(file, { throwIfNoEntry: false })?.mtimeMs ?? Date.now()) > 10_000
        : (await lockState(file)).state === 'stale'
      : await removeStaleLock(file);
    if (!stale) continue;
    n++;
    emit({ type: 'removed', subject: 'lock', path: file, bytes: 0, reason: 'dead-process', dryRun });
  }
  return n;
}
