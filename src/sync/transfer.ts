// The one transfer pipeline: how an artifact's bytes get from its sources into a sink. The team
// cache first (by digest), then the artifact's candidates (its url and mirrors, or a vendor's
// source that resolves a fresh link for every attempt); --jobs transfer slots; free-space checks;
// resumable partial files; warnings when one source fails and the next is tried; the bytes each
// artifact moved. A sink is where the bytes go: a blob in the store (storeSink), or a temp file
// beside the output when the store is disabled (directSink). `hoard sync`, `hoard add`,
// `hoard fetch` and --no-store all download through here.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { ChecksumAlgorithm, Digest } from '../core/digest.ts';
import { errorInfo, HoardError, isErrno } from '../core/errors.ts';
import { formatBytes } from '../core/format.ts';
import { hashFile } from '../core/hashfile.ts';
import { redactUrl } from '../download/headers.ts';
import type { Fetcher, FetchResult, Source } from '../download/http.ts';
import type { Artifact } from '../manifest/types.ts';
import { createDirectWriter, type DirectWriter } from '../materialize/direct.ts';
import type { Candidate } from '../sources/types.ts';
import { openUrlIndex, urlKey } from '../store/urls.ts';
import { integrityError, resumeKeyOf, type BlobWriter, type Expected, type Store } from '../store/store.ts';
import { semaphore } from './concurrency.ts';
import { retryEvent, waitingEvent, type Emit } from './events.ts';

/** Where a download's bytes go: a blob in the store, or a temp file beside the output. */
export interface Sink<W extends BlobWriter> {
  /** Checked for free space first. */
  dir: string;
  /** Named in the free-space error. */
  where: string;
  open(): Promise<W>;
  /** Verifies (and for the store, publishes) what was written; the digest. */
  finish(writer: W): Promise<Digest>;
}

export type DownloadReason = 'missing' | 'corrupt' | 'force' | 'unlocked';

/** One finished download. */
export interface Downloaded<W> {
  digest: Digest;
  size: number;
  /** Bytes received over the network (all attempts). */
  bytes: number;
  writer: W;
  /** The source's label (a URL as it may be shown, or a vendor's locator). */
  url: string;
  fetched: FetchResult;
  /** The bytes came from the team cache. */
  fromCache?: true;
  /** A conditional request (Candidate.unchanged) answered 304: nothing was written; `digest` is the store's. */
  notModified?: true;
  /** The vendor found the file under a new locator (see Resolved.moved). */
  moved?: { from: string; to: string };
}

/** What a blob step came to (one artifact's blob in the store). */
export interface BlobFetched {
  digest: Digest;
  size: number | null;
  blob: 'cached' | 'downloaded' | 'redownloaded';
  bytes: number;
  reason?: string;
  /** With blob `redownloaded`: --force, or the stored blob was corrupt. */
  redownload?: 'force' | 'corrupt';
  fromCache?: true;
  notModified?: true;
  moved?: { from: string; to: string };
}

export interface TransferDeps {
  store: Store;
  /** Created on first use, so a run with nothing to download never loads the HTTP client. */
  fetcher: () => Promise<Fetcher>;
  emit: Emit;
  /** Transfers at once (--jobs). */
  jobs: number;
  signal?: AbortSignal;
  /** The team cache: where a locked blob can be fetched from, tried first; null when it has no copy. */
  cache?: (name: string, digest: Digest) => Promise<Source | null>;
  /** Where an artifact's bytes come from, tried in order after the team cache (src/sources/). */
  candidates: (a: Artifact) => Promise<Candidate[]>;
  /** Called with each downloaded blob's digest just before it is published; `locked`: this process holds its lock. */
  beforePublish?: (digest: Digest, locked: boolean) => Promise<void>;
  /** When the run started (ms since the epoch): what another process fetched since is taken as fresh. */
  startedAt: number;
}

/** Free bytes on the filesystem that holds `dir` (or its nearest existing parent). */
async function freeBytes(dir: string): Promise<number | null> {
  for (let d = dir; ; d = path.dirname(d)) {
    try {
      const s = await fs.statfs(d);
      return s.bavail * s.bsize;
    } catch (err) {
      if (!isErrno(err, 'ENOENT', 'ENOTDIR') || path.dirname(d) === d) return null;
    }
  }
}

/** Fails before a download that cannot fit, saying how much is needed (a full disk mid-way helps nobody). */
async function ensureSpace(dir: string, size: number, name: string, where: string): Promise<void> {
  const free = await freeBytes(dir);
  if (free !== null && free < size) {
    throw new HoardError('E_STORE', `not enough space for ${name}: it needs ${formatBytes(size)}, ${formatBytes(free)} free on ${where} (${dir})`, {
      hint: 'free some space, or point --store (HOARD_STORE) at a larger disk',
      details: { needed: size, free },
    });
  }
}

/** Errors after which no other source is tried: the run was interrupted, or the store cannot take the bytes. */
function isFinal(err: unknown): boolean {
  return err instanceof HoardError && (err.code === 'E_INTERRUPTED' || err.code === 'E_STORE');
}

/**
 * Whether the store holds blob `d` intact; a corrupt one is removed, and the person told
 * (the caller holds its lock, or is about to download it again).
 */
export async function blobIntact(store: Store, emit: Emit, name: string, d: Digest, o: { size?: number; verify?: boolean } = {}): Promise<{ ok: boolean; corrupt?: string }> {
  const c = await store.check(d, { ...(o.size !== undefined ? { size: o.size } : {}), ...(o.verify ? { verify: true } : {}) });
  if (c.state === 'corrupt') {
    emit({ type: 'warning', name, message: `blob ${d} is corrupt (${c.reason}): removed, downloading again` });
    await store.remove(d);
    return { ok: false, corrupt: c.reason };
  }
  return { ok: c.state === 'ok' };
}

/** The store as the sink: a resumable temp file in v1/tmp, verified and published as a blob. */
export function storeSink(store: Store, a: Pick<Artifact, 'url' | 'checksums'>, expected: Expected, o: { replace: boolean; beforePublish?: TransferDeps['beforePublish'] }): Sink<BlobWriter> {
  // A download's bytes survive an interruption (a reset, Ctrl-C, kill -9) in tmp/<key>.partial
  // and the next attempt continues from them. The key is the digest, or for an entry not
  // locked yet its URL; the caller holds the lock of that key.
  const resumeKey = resumeKeyOf(expected.digest, a.url);
  const before = o.beforePublish;
  return {
    dir: store.root,
    where: "the store's filesystem",
    open: () => store.createWriter(Object.keys(a.checksums) as ChecksumAlgorithm[], { resumeKey, sizeHint: expected.size }),
    // Every download but an unlocked entry's runs under the blob's lock.
    finish: (w) => w.commit(expected, { replace: o.replace, ...(before ? { beforePublish: (d: Digest) => before(d, expected.digest !== undefined) } : {}) }),
  };
}

/**
 * The output as the sink (the store is disabled): a temp file beside `target` (whose folder
 * is prepared), verified; the caller publishes it (DirectWriter.publish) or drops it.
 */
export function directSink(target: string, a: Pick<Artifact, 'checksums' | 'executable' | 'size'>, expected: Expected): Sink<DirectWriter> {
  return {
    dir: path.dirname(target),
    where: "the output's filesystem",
    open: () => createDirectWriter(target, Object.keys(a.checksums) as ChecksumAlgorithm[], a.executable, a.size),
    finish: (w) => w.verify(expected),
  };
}

export type Transfer = ReturnType<typeof createTransfer>;

/** How often a run writes the URL index while downloads of locked entries finish. */
const URL_FLUSH_MS = 1000;

export function createTransfer(deps: TransferDeps) {
  const { store, emit } = deps;
  const urls = openUrlIndex(store.root, store.lockWait);
  const transfers = semaphore(deps.jobs);
  /** Bytes each artifact's downloads brought in this run, failed ones included (for the summary). */
  const moved = new Map<string, number>();

  /** The artifact's bytes into `sink`: the team cache first, then each candidate until one serves them. */
  const download = async <W extends BlobWriter>(a: Artifact, expected: Expected, reason: DownloadReason, sink: Sink<W>): Promise<Downloaded<W>> => {
    const fetcher = await deps.fetcher();
    // The team cache first (by digest), then the artifact's own candidates: its url and
    // mirrors, or a vendor's source, which hands out a fresh link for every attempt.
    const cached = expected.digest && deps.cache ? await deps.cache(a.name, expected.digest) : null;
    const candidates = await deps.candidates(a);
    type Entry = { label: string; source: Source; cache?: true; unchanged?: Candidate['unchanged']; moved?: { from: string; to: string } };
    const sources: Entry[] = [...(cached ? [{ label: cached.url, source: cached, cache: true as const }] : [])];
    for (const c of candidates) {
      const entry: Entry = { label: c.label, source: { url: c.key, headers: {} }, ...(c.unchanged ? { unchanged: c.unchanged } : {}) };
      entry.source = {
        url: c.key, headers: {}, ...(c.expiring ? { expiring: true } : {}),
        resolve: async (n) => {
          const r = await c.resolve(n);
          if (r.moved) entry.moved = r.moved;
          return r;
        },
      };
      sources.push(entry);
    }
    let lastError: unknown;
    for (const [i, { label: url, source, cache, unchanged }] of sources.entries()) {
      for (let fresh = false; ; fresh = true) {
        // A transfer holds one of --jobs slots; verifying, publishing, linking and importing
        // the image do not, so the next download starts as soon as this one's bytes are in.
        const freeSlot = await transfers.acquire();
        let slotHeld = true;
        const writer = await sink.open().catch((err: unknown) => {
          freeSlot();
          throw err;
        });
        const resumeFrom = writer.bytesWritten;
        let keep = true;
        try {
          if (expected.size !== undefined) await ensureSpace(sink.dir, expected.size - resumeFrom, a.name, sink.where);
          emit({ type: 'download', name: a.name, url: redactUrl(url), size: expected.size ?? null, reason: unchanged ? 'refresh' : reason, ...(resumeFrom > 0 ? { resumeFrom } : {}) });
          let last = resumeFrom;
          const r = await fetcher.fetch(source, writer, {
            onProgress: (p) => {
              // (Fewer than before: the server ignored Range and the transfer started over.)
              moved.set(a.name, (moved.get(a.name) ?? 0) + (p.received >= last ? p.received - last : p.received));
              last = p.received;
              emit({ type: 'progress', name: a.name, received: p.received, total: p.total ?? expected.size ?? null });
            },
            onRetry: (r) => emit(retryEvent(a.name, redactUrl(url), r)),
            signal: deps.signal,
            verified: expected.digest !== undefined,
            ...(expected.size !== undefined ? { size: expected.size } : {}),
          });
          const found = sources[i]!.moved;
          if (r.notModified) {
            if (!unchanged) throw new HoardError('E_HTTP', `GET ${redactUrl(url)}: HTTP 304 to a request that was not conditional`, { details: { url: redactUrl(url), status: 304 } });
            freeSlot();
            slotHeld = false;
            await writer.abort();
            // A 304 may leave the validators out: the recorded ones still hold then.
            const fetched = { ...r, ...(r.etag ?? unchanged.etag ? { etag: (r.etag ?? unchanged.etag)! } : {}), ...(r.lastModified ?? unchanged.lastModified ? { lastModified: (r.lastModified ?? unchanged.lastModified)! } : {}) };
            return { digest: unchanged.digest, size: unchanged.size, bytes: 0, writer, url, fetched, notModified: true };
          }
          keep = false;
          freeSlot();
          slotHeld = false;
          const digest = await sink.finish(writer);
          return { digest, size: writer.bytesWritten, bytes: r.bytes, writer, url, fetched: r, ...(cache ? { fromCache: true as const } : {}), ...(found ? { moved: found } : {}) };
        } catch (err) {
          if (slotHeld) freeSlot();
          // What arrived stays for the next attempt, unless it is what was wrong.
          await writer.abort({ keep: keep && !(err instanceof HoardError && (err.code === 'E_STORE' || err.code === 'E_INTEGRITY')) });
          lastError = err;
          if (err instanceof HoardError && err.code === 'E_INTEGRITY') {
            // Bytes resumed from an earlier attempt may be what is wrong: once more, from the start.
            if (resumeFrom > 0 && !fresh) continue;
            (err as HoardError & { details: Record<string, unknown> }).details.url = redactUrl(url);
            err.message = `${redactUrl(url)} sent other bytes than expected: ${err.message.replace(/^download is /, '')}`;
          }
          if (isFinal(err)) throw err;
          if (i < sources.length - 1) emit({ type: 'warning', name: a.name, message: `${errorInfo(err).message}; ${cache ? 'downloading from its url instead of the team cache' : 'trying the next mirror'}` });
          break;
        }
      }
    }
    throw lastError;
  };

  /** When this run last wrote the URL index (see recordUrl). */
  let urlsWritten = Date.now();
  /**
   * Remembers what a URL served (state/urls.json): `hoard fetch` takes that, and so does a process
   * that waited for this one's download of an unlocked URL (`now`: written before the URL's lock
   * is released). The others are written at most every URL_FLUSH_MS, and at the end of the
   * run (see flushUrls): a thousand downloads do not write the index a thousand times.
   */
  const recordUrl = async (r: Downloaded<unknown>, now = false) => {
    if (r.fromCache) return; // the team cache's URL says nothing about the entry's own
    urls.set(urlKey(r.url), {
      url: redactUrl(r.url), digest: r.digest, size: r.size,
      ...(r.fetched.etag ? { etag: r.fetched.etag } : {}), ...(r.fetched.lastModified ? { lastModified: r.fetched.lastModified } : {}),
      checked: new Date().toISOString(),
    });
    if (now) await flushUrls();
    else if (Date.now() - urlsWritten >= URL_FLUSH_MS) {
      // Also written now and then during the run: one that is interrupted loses little.
      urlsWritten = Date.now();
      void flushUrls();
    }
  };
  const flushUrls = () => urls.flush().catch(() => {}); // only a later download of the same URL is at stake

  /** Downloads from one URL in this process run one after another: the second finds the first's blob. */
  const urlTurns = new Map<string, Promise<unknown>>();
  const inTurn = <T>(url: string, fn: () => Promise<T>): Promise<T> => {
    const run = (urlTurns.get(url) ?? Promise.resolve()).then(fn, fn);
    urlTurns.set(url, run.catch(() => {}));
    return run;
  };

  /** What another process (or this one) fetched from the entry's URL since this run started, when it is intact. */
  const fetchedMeanwhile = async (a: Artifact): Promise<BlobFetched | null> => {
    const rec = urls.reread(urlKey(a.url));
    if (!rec || !(Date.parse(rec.checked) >= deps.startedAt)) return null;
    // Pinned before it is looked at: gc must leave it alone until hoard.json names it.
    await deps.beforePublish?.(rec.digest, false);
    const c = await store.check(rec.digest, { size: rec.size });
    if (c.state !== 'ok') return null;
    const algorithms = Object.keys(a.checksums) as ChecksumAlgorithm[];
    if (algorithms.length > 0 && integrityError('', { checksums: a.checksums }, await hashFile(c.path, algorithms))) return null;
    return { digest: rec.digest, size: rec.size, blob: 'cached', bytes: 0 };
  };

  const intact = (name: string, d: Digest, o: { size?: number; verify?: boolean } = {}) => blobIntact(store, emit, name, d, o);

  /** An entry not locked yet: under its URL's lock, what was fetched from it meanwhile, or a download. */
  const unlockedBlob = (a: Artifact): Promise<BlobFetched> =>
    inTurn(a.url, async () => {
      const expected: Expected = { checksums: a.checksums };
      // Processes that fetch the same unlocked URL wait for each other: it is downloaded once.
      const release = await store.lock(`sha256:${resumeKeyOf(undefined, a.url)}`, (info) => emit(waitingEvent(a.name, info)));
      try {
        const reused = await fetchedMeanwhile(a);
        if (reused) return reused;
        const r = await download(a, expected, 'unlocked', storeSink(store, a, expected, { replace: false, ...(deps.beforePublish ? { beforePublish: deps.beforePublish } : {}) }));
        await recordUrl(r, true);
        if (r.notModified) return { digest: r.digest, size: r.size, blob: 'cached', bytes: 0, notModified: true };
        return { digest: r.digest, size: r.size, blob: 'downloaded', bytes: r.bytes, ...(r.moved ? { moved: r.moved } : {}) };
      } finally {
        await release();
      }
    });

  /** A locked entry whose blob is missing, corrupt or forced: under the blob's lock. */
  const lockedBlob = (a: Artifact, action: 'fetch' | 'refetch' | 'force'): Promise<BlobFetched> => {
    const d = a.digest!;
    const expected: Expected = { checksums: a.checksums, digest: d, ...(a.size !== undefined ? { size: a.size } : {}) };
    return inTurn(a.url, async () => {
      const release = await store.lock(d, (info) => emit(waitingEvent(a.name, info)));
      try {
        // Another process (or an unlocked entry of the same URL) may have fetched or repaired it meanwhile.
        const now = action === 'force' ? null : await intact(a.name, d, expected.size !== undefined ? { size: expected.size } : {});
        if (now?.ok) return { digest: d, size: a.size ?? null, blob: 'cached', bytes: 0 };
        const why = action === 'force' ? 'force' : now?.corrupt !== undefined ? 'corrupt' : 'missing';
        const r = await download(a, expected, why, storeSink(store, a, expected, { replace: action === 'force', ...(deps.beforePublish ? { beforePublish: deps.beforePublish } : {}) }));
        await recordUrl(r);
        const reason = why === 'force' ? '--force' : why === 'corrupt' ? `the stored blob was corrupt (${now!.corrupt}); removed it` : undefined;
        return {
          digest: d, size: r.size, blob: why === 'missing' ? 'downloaded' : 'redownloaded', bytes: r.bytes,
          ...(reason ? { reason } : {}), ...(why === 'missing' ? {} : { redownload: why }), ...(r.fromCache ? { fromCache: true as const } : {}), ...(r.moved ? { moved: r.moved } : {}),
        };
      } finally {
        await release();
      }
    });
  };

  /** A blob a copy found damaged (its fingerprint vouched for it): removed and fetched again, once per run; the bytes downloaded. */
  const repairs = new Map<Digest, Promise<number>>();
  const repairBlob = (a: Artifact, d: Digest): Promise<number> => {
    let task = repairs.get(d);
    if (!task) {
      task = (async () => {
        const expected: Expected = { checksums: a.checksums, digest: d, ...(a.size !== undefined ? { size: a.size } : {}) };
        const release = await store.lock(d, (info) => emit(waitingEvent(a.name, info)));
        try {
          if ((await intact(a.name, d, { verify: true })).ok) return 0;
          const r = await download(a, expected, 'corrupt', storeSink(store, a, expected, { replace: false, ...(deps.beforePublish ? { beforePublish: deps.beforePublish } : {}) }));
          await recordUrl(r);
          return r.bytes;
        } finally {
          await release();
        }
      })();
      repairs.set(d, task);
      return task;
    }
    return task.then(() => 0);
  };

  return {
    download,
    unlockedBlob,
    lockedBlob,
    repairBlob,
    intact,
    /** Bytes the artifact's downloads brought in this run, failed ones included. */
    moved: (name: string) => moved.get(name) ?? 0,
    /** Writes what the URL index learnt in this run (the end of a run). */
    flushUrls,
  };
}
