import { lstatSync, promises as fs } from 'node:fs';
import path from 'node:path';
import { formatBytes } from '../core/format.ts';
import type { ChecksumAlgorithm, Digest } from '../core/digest.ts';
import { errorInfo, HoardError, isErrno } from '../core/errors.ts';
import { hashFile } from '../core/hashfile.ts';
import { redactUrl } from '../download/headers.ts';
import type { Fetcher, FetchResult, Source } from '../download/http.ts';
import type { Artifact } from '../manifest/types.ts';
import { createDirectWriter, type DirectWriter } from '../materialize/direct.ts';
import { prepareTarget, type LinkMethod, type Materializer } from '../materialize/materialize.ts';
import { fileFingerprint, inodeId } from '../store/fingerprint.ts';
import { openUrlIndex, urlKey } from '../store/urls.ts';
import type { LockWaitInfo } from '../store/lock.ts';
import { integrityError, resumeKeyOf, type BlobWriter, type Expected, type Store } from '../store/store.ts';
import type { Engine } from '../engine/types.ts';
import { urlCandidates, type Candidate } from '../sources/index.ts';
import { retryEvent, waitingEvent, type BlobOutcome, type Emit, type ErrorInfo, type OutputOutcome, type SyncEvent } from './events.ts';
import { createImageStep, imageFields } from './image-step.ts';
import type { ImageSupport } from './images.ts';
import type { ArtifactPlan, OutputAction } from './plan.ts';
import type { SyncState } from './state.ts';

export interface ApplyDeps {
  store: Store;
  state: SyncState;
  /** Created on first use, so a sync with nothing to download never loads the HTTP client. */
  fetcher: () => Promise<Fetcher>;
  materializer: Materializer;
  outputRoot: string;
  /** The folder the output folder must stay inside, symlinks included: the manifest's, unless --output chose it. */
  outputBoundary?: string;
  env: Record<string, string | undefined>;
  jobs: number;
  force: boolean;
  emit: Emit;
  /** Container images: the engine (null when it could not be reached) and the error to report then. */
  images?: { support: ImageSupport; engine: Engine | null; error: ErrorInfo | null };
  /** Called when an unlocked entry's digest becomes known. */
  onLocked: (name: string, digest: Digest, size: number) => void;
  /**
   * Called with each downloaded blob's digest just before it is published (sync pins it for
   * gc); `locked` tells whether this process holds the blob's lock at that moment.
   */
  beforePublish?: (digest: Digest, locked: boolean) => Promise<void>;
  signal?: AbortSignal;
  /** When the sync started (ms since the epoch): what another process fetched since is taken as fresh. */
  startedAt?: number;
  /** The store is disabled: downloads go straight to the outputs (verified, atomic); nothing is kept. */
  noStore?: boolean;
  /**
   * The team cache (src/remote/): where a locked blob can be fetched from, tried before the
   * artifact's url and mirrors; null when it has no copy or failed (it has warned then).
   */
  cache?: (name: string, digest: Digest) => Promise<Source | null>;
  /**
   * Where an artifact's bytes come from, tried in order after the team cache (src/sources/).
   * Default: its url, then its mirrors, with its headers sent to the url's origin only.
   */
  candidates?: (a: Artifact) => Promise<Candidate[]>;
}

/** Where a download's bytes go: a blob in the store, or a temp file beside the output. */
interface Sink<W extends BlobWriter> {
  /** Checked for free space first. */
  dir: string;
  open(): Promise<W>;
  /** Verifies (and for the store, publishes) what was written; the digest. */
  finish(writer: W): Promise<Digest>;
}

export type ArtifactEvent = Extract<SyncEvent, { type: 'artifact' }>;

/** (Moved to core/errors.ts, where the codes are.) */
export { errorInfo };

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
async function ensureSpace(storeRoot: string, size: number, name: string, where = "the store's filesystem"): Promise<void> {
  const free = await freeBytes(storeRoot);
  if (free !== null && free < size) {
    throw new HoardError('E_STORE', `not enough space for ${name}: it needs ${formatBytes(size)}, ${formatBytes(free)} free on ${where} (${storeRoot})`, {
      hint: 'free some space, or point --store (HOARD_STORE) at a larger disk',
      details: { needed: size, free },
    });
  }
}

const waiting = waitingEvent;

function conflictInfo(target: string, name: string, reason: string | undefined): ErrorInfo {
  return {
    code: 'E_CONFLICT',
    message: `${target} differs from ${name}: ${reason ?? 'someone else\'s file'}`,
    hint: 'move the file away, or run `hoard sync --force` to replace it',
  };
}

/** At most `n` holders at a time; acquire() resolves with the function that releases. */
function semaphore(n: number): { acquire(): Promise<() => void> } {
  let free = n;
  // A queue of thousands (every entry waiting for an output step) is not shifted: O(1) each.
  const queue: Array<(() => void) | undefined> = [];
  let head = 0;
  const release = () => {
    const next = queue[head];
    if (next) {
      queue[head++] = undefined;
      if (head === queue.length) queue.length = head = 0;
      next();
    } else free++;
  };
  return {
    acquire() {
      if (free > 0) {
        free--;
        return Promise.resolve(once(release));
      }
      return new Promise((resolve) => queue.push(() => resolve(once(release))));
    },
  };
}

function once(fn: () => void): () => void {
  let done = false;
  return () => {
    if (!done) {
      done = true;
      fn();
    }
  };
}

/** Runs `fn` over `items` with at most `limit` at a time, keeping order in the results. */
export async function pool<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  return results;
}

/** What an artifact's blob step came to: shared by every entry that needs the same blob. */
interface BlobDone {
  digest: Digest;
  size: number | null;
  /** The entry whose source was used: it reports the download; the others report a cache hit. */
  leader: string;
  blob: BlobOutcome;
  bytes: number;
  reason?: string;
  /** The bytes came from the team cache. */
  fromCache?: boolean;
}

/** A copy refused because the blob's bytes do not match its digest (see materialize/copy.ts). */
function isCorruptBlob(err: unknown): boolean {
  return err instanceof HoardError && err.code === 'E_INTEGRITY' && err.details.corruptBlob === true;
}

/**
 * Which entries share one blob step: those with one digest (and the same extra checksums),
 * and those not locked yet with one source (URL, mirrors, headers, checksums). null: the
 * blob is in place, nothing to do.
 */
function blobKey(p: ArtifactPlan): string | null {
  const a = p.artifact;
  if (p.blob === 'none') return null;
  const sums = JSON.stringify(Object.entries(a.checksums).sort());
  if (p.blob === 'lock') return `url ${JSON.stringify([a.url, a.mirrors, Object.entries(a.headers).sort(), sums])}`;
  return `digest ${a.digest} ${sums}`;
}

/** Executes a plan: downloads, verifies, links, and reports each artifact as it finishes. */
export async function apply(plans: readonly ArtifactPlan[], deps: ApplyDeps): Promise<ArtifactEvent[]> {
  const { store, emit } = deps;
  /** A download another process finished after this moment is as fresh as one of ours. */
  const startedAt = deps.startedAt ?? Date.now();
  const urls = openUrlIndex(store.root, store.lockWait);

  const toStore = (a: Artifact, expected: Expected, replace: boolean): Sink<BlobWriter> => {
    // A download's bytes survive an interruption (a reset, Ctrl-C, kill -9) in tmp/<key>.partial
    // and the next attempt continues from them. The key is the digest, or for an entry not
    // locked yet its URL; the caller holds the lock of that key.
    const resumeKey = resumeKeyOf(expected.digest, a.url);
    const before = deps.beforePublish;
    return {
      dir: store.root,
      open: () => store.createWriter(Object.keys(a.checksums) as ChecksumAlgorithm[], { resumeKey, sizeHint: expected.size }),
      // Every download but an unlocked entry's runs under the blob's lock (see lockedBlob).
      finish: (w) => w.commit(expected, { replace, ...(before ? { beforePublish: (d: Digest) => before(d, expected.digest !== undefined) } : {}) }),
    };
  };

  const transfers = semaphore(deps.jobs);
  /** Bytes each artifact's downloads brought in this run, failed ones included (for the summary). */
  const moved = new Map<string, number>();

  const download = async <W extends BlobWriter>(a: Artifact, expected: Expected, reason: 'missing' | 'corrupt' | 'force' | 'unlocked', sink: Sink<W>) => {
    const fetcher = await deps.fetcher();
    // The team cache first (by digest), then the artifact's own candidates: its url and
    // mirrors, or a vendor's source, which hands out a fresh link for every attempt.
    const cached = expected.digest && deps.cache ? await deps.cache(a.name, expected.digest) : null;
    const candidates = deps.candidates ? await deps.candidates(a) : urlCandidates(a, deps.env);
    const sources: Array<{ label: string; source: Source; cache?: true }> = [
      ...(cached ? [{ label: cached.url, source: cached, cache: true as const }] : []),
      ...candidates.map((c) => ({ label: c.label, source: { url: c.key, headers: {}, resolve: c.resolve, ...(c.expiring ? { expiring: true } : {}) } })),
    ];
    let lastError: unknown;
    for (const [i, { label: url, source, cache }] of sources.entries()) {
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
          if (expected.size !== undefined) {
            await ensureSpace(sink.dir, expected.size - resumeFrom, a.name, sink.dir === store.root ? undefined : "the output's filesystem");
          }
          emit({ type: 'download', name: a.name, url: redactUrl(url), size: expected.size ?? null, reason, ...(resumeFrom > 0 ? { resumeFrom } : {}) });
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
          keep = false;
          freeSlot();
          slotHeld = false;
          const digest = await sink.finish(writer);
          return { digest, size: writer.bytesWritten, bytes: r.bytes, writer, url, fetched: r, ...(cache ? { fromCache: true as const } : {}) };
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
          if (err instanceof HoardError && (err.code === 'E_INTERRUPTED' || err.code === 'E_STORE')) throw err;
          if (i < sources.length - 1) emit({ type: 'warning', name: a.name, message: `${errorInfo(err).message}; ${cache ? 'downloading from its url instead of the team cache' : 'trying the next mirror'}` });
          break;
        }
      }
    }
    throw lastError;
  };

  /** Remembers what a URL served (state/urls.json, written at once): a process waiting for it takes that. */
  const recordUrl = async (r: { url: string; digest: Digest; size: number; fetched: FetchResult; fromCache?: boolean }) => {
    if (r.fromCache) return; // the team cache's URL says nothing about the entry's own
    urls.set(urlKey(r.url), {
      url: redactUrl(r.url), digest: r.digest, size: r.size,
      ...(r.fetched.etag ? { etag: r.fetched.etag } : {}), ...(r.fetched.lastModified ? { lastModified: r.fetched.lastModified } : {}),
      checked: new Date().toISOString(),
    });
    await urls.flush().catch(() => {}); // only a later download of the same URL is at stake
  };

  /** Downloads from one URL in this process run one after another: the second finds the first's blob. */
  const urlTurns = new Map<string, Promise<unknown>>();
  const inTurn = <T>(url: string, fn: () => Promise<T>): Promise<T> => {
    const run = (urlTurns.get(url) ?? Promise.resolve()).then(fn, fn);
    urlTurns.set(url, run.catch(() => {}));
    return run;
  };

  /** What another process (or this one) fetched from the entry's URL since this run started, when it is intact. */
  const fetchedMeanwhile = async (a: Artifact): Promise<BlobDone | null> => {
    const rec = urls.reread(urlKey(a.url));
    if (!rec || !(Date.parse(rec.checked) >= startedAt)) return null;
    // Pinned before it is looked at: gc must leave it alone until hoard.json names it.
    await deps.beforePublish?.(rec.digest, false);
    const c = await store.check(rec.digest, { size: rec.size });
    if (c.state !== 'ok') return null;
    const algorithms = Object.keys(a.checksums) as ChecksumAlgorithm[];
    if (algorithms.length > 0 && integrityError('', { checksums: a.checksums }, await hashFile(c.path, algorithms))) return null;
    return { digest: rec.digest, size: rec.size, leader: a.name, blob: 'cached', bytes: 0 };
  };

  /** An entry not locked yet: under its URL's lock, what was fetched from it meanwhile, or a download. */
  const unlockedBlob = (a: Artifact): Promise<BlobDone> =>
    inTurn(a.url, async () => {
      const expected: Expected = { checksums: a.checksums };
      // Processes that sync the same unlocked URL wait for each other: it is downloaded once.
      const release = await store.lock(`sha256:${resumeKeyOf(undefined, a.url)}`, (info) => emit(waiting(a.name, info)));
      try {
        const reused = await fetchedMeanwhile(a);
        if (reused) return reused;
        const r = await download(a, expected, 'unlocked', toStore(a, expected, false));
        await recordUrl(r);
        return { digest: r.digest, size: r.size, leader: a.name, blob: 'downloaded', bytes: r.bytes };
      } finally {
        await release();
      }
    });

  /** A locked entry whose blob is missing, corrupt or forced: under the blob's lock. */
  const lockedBlob = (p: ArtifactPlan, action: 'fetch' | 'refetch' | 'force'): Promise<BlobDone> => {
    const a = p.artifact;
    const d = a.digest!;
    const expected: Expected = { checksums: a.checksums, digest: d, ...(a.size !== undefined ? { size: a.size } : {}) };
    return inTurn(a.url, async () => {
      const release = await store.lock(d, (info) => emit(waiting(a.name, info)));
      try {
        // Another process (or an unlocked entry of the same URL) may have fetched or repaired it meanwhile.
        const now = action === 'force' ? null : await store.check(d, expected.size !== undefined ? { size: expected.size } : {});
        if (now?.state === 'ok') return { digest: d, size: a.size ?? null, leader: a.name, blob: 'cached', bytes: 0 };
        let reason: string | undefined;
        if (now?.state === 'corrupt') {
          reason = `the stored blob was corrupt (${now.reason}); removed it`;
          emit({ type: 'warning', name: a.name, message: `blob ${d} is corrupt (${now.reason}): removed, downloading again` });
          await store.remove(d);
        }
        const why = action === 'force' ? 'force' : now?.state === 'corrupt' ? 'corrupt' : 'missing';
        const r = await download(a, expected, why, toStore(a, expected, action === 'force'));
        await recordUrl(r);
        if (why === 'force') reason = '--force';
        return {
          digest: d, size: r.size, leader: a.name, blob: why === 'missing' ? 'downloaded' : 'redownloaded', bytes: r.bytes,
          ...(reason ? { reason } : {}), ...(r.fromCache ? { fromCache: true } : {}),
        };
      } finally {
        await release();
      }
    });
  };

  /**
   * The blob step of a group of entries that need one blob: adopted from an output that has it,
   * else fetched from the first entry's sources (then the next entry's, when they differ).
   */
  const groupBlob = async (members: readonly ArtifactPlan[]): Promise<BlobDone> => {
    const first = members[0]!;
    if (first.blob === 'lock') return unlockedBlob(first.artifact);
    const adopter = members.find((m) => m.blob === 'adopt');
    if (adopter) {
      const a = adopter.artifact;
      try {
        await store.ingestFile(adopter.observed.target, { checksums: a.checksums, digest: a.digest!, ...(a.size !== undefined ? { size: a.size } : {}) });
        return { digest: a.digest!, size: a.size ?? null, leader: a.name, blob: 'adopted', bytes: 0 };
      } catch (err) {
        // The file changed since it was looked at: fetch the blob instead.
        if (members.every((m) => m.blob === 'adopt')) throw err;
      }
    }
    const action = members.some((m) => m.blob === 'force') ? 'force' : members.some((m) => m.blob === 'refetch') ? 'refetch' : 'fetch';
    const seen = new Set<string>();
    let lastError: unknown;
    for (const m of members) {
      const a = m.artifact;
      const sourceKey = JSON.stringify([a.url, a.mirrors, Object.entries(a.headers).sort()]);
      if (seen.has(sourceKey)) continue;
      seen.add(sourceKey);
      try {
        return await lockedBlob(m, action);
      } catch (err) {
        lastError = err;
        if (err instanceof HoardError && (err.code === 'E_INTERRUPTED' || err.code === 'E_STORE')) throw err;
      }
    }
    throw lastError;
  };

  // Entries that need the same blob share one blob step (one transfer at most). An entry that
  // waits for it holds nothing: no --jobs slot, no place among the blob steps running.
  const groups = new Map<string, ArtifactPlan[]>();
  for (const p of plans) {
    const k = p.inSync && p.artifact.size !== undefined ? null : blobKey(p);
    if (!k) continue;
    const members = groups.get(k);
    if (members) members.push(p);
    else groups.set(k, [p]);
  }
  const blobSteps = semaphore(deps.jobs * 2);
  const blobTasks = new Map<string, Promise<BlobDone>>();
  const blobOf = (p: ArtifactPlan): Promise<BlobDone> => {
    const a = p.artifact;
    const k = blobKey(p);
    if (!k) return Promise.resolve({ digest: a.digest!, size: a.size ?? null, leader: a.name, blob: 'cached', bytes: 0 });
    let task = blobTasks.get(k);
    if (!task) {
      task = blobSteps.acquire().then(async (release) => {
        try {
          return await groupBlob(groups.get(k) ?? [p]);
        } finally {
          release();
        }
      });
      blobTasks.set(k, task);
    }
    return task;
  };

  /** A blob a copy found damaged (its fingerprint vouched for it): removed and fetched again, once per run. */
  const repairs = new Map<Digest, Promise<number>>();
  const repairBlob = (a: Artifact, d: Digest): Promise<number> => {
    let task = repairs.get(d);
    if (!task) {
      task = (async () => {
        const expected: Expected = { checksums: a.checksums, digest: d, ...(a.size !== undefined ? { size: a.size } : {}) };
        const release = await store.lock(d, (info) => emit(waiting(a.name, info)));
        try {
          const c = await store.check(d, { verify: true });
          if (c.state === 'ok') return 0;
          if (c.state === 'corrupt') {
            emit({ type: 'warning', name: a.name, message: `blob ${d} is corrupt (${c.reason}): removed, downloading again` });
            await store.remove(d);
          }
          const r = await download(a, expected, 'corrupt', toStore(a, expected, false));
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

  const outputSteps = semaphore(Math.max(8, deps.jobs * 2));

  const applyOne = async (p: ArtifactPlan): Promise<ArtifactEvent> => {
    const a = p.artifact;
    const target = p.observed.target;
    let digest = a.digest ?? null;
    let size = a.size ?? null;
    let bytesDownloaded = 0;
    let fromCache = false;
    let blob: BlobOutcome = 'cached';
    let output: OutputOutcome = 'present';
    let method: LinkMethod | undefined;
    let reason: string | undefined;
    const event = (extra: Partial<ArtifactEvent> = {}): ArtifactEvent => ({
      type: 'artifact', name: a.name, path: a.path, digest: digest as Digest | null, size, blob, output,
      ...(method ? { method } : {}), ...(reason ? { reason } : {}), bytesDownloaded, ...(fromCache ? { fromCache } : {}), ...extra,
    });

    // 1. The blob (shared with every entry that needs the same one).
    try {
      const done = await blobOf(p);
      const mine = done.leader === a.name;
      digest = done.digest;
      size = done.size ?? size;
      blob = mine ? done.blob : 'cached';
      bytesDownloaded = mine ? done.bytes : 0;
      fromCache = mine && done.fromCache === true;
      if (mine && done.reason) reason = done.reason;
      // An entry with a digest but no size (added with --sha256) is completed too.
      if (digest && (a.digest !== digest || a.size === undefined)) {
        size ??= lstatSync(store.blobPath(digest as Digest)).size;
        deps.onLocked(a.name, digest as Digest, size);
      }
    } catch (err) {
      blob = 'failed';
      output = 'skipped';
      bytesDownloaded = moved.get(a.name) ?? 0;
      return event({ error: errorInfo(err), ...(a.image ? { image: 'skipped' as const, imageRef: a.image } : {}) });
    }

    // 2. The output file (a conflict or failure there does not stop the image).
    let outputError: ErrorInfo | undefined;
    const releaseOutput = await outputSteps.acquire();
    try {
      let action = p.output;
      if (action === 'check') {
        // The digest was unknown when planning; compare the file that is there now.
        const found = (await hashFile(target)).digest;
        action = found === digest || p.observed.ours ? 'relink' : deps.force ? 'replace' : 'conflict';
      }
      if (action === 'conflict') {
        output = 'conflict';
        outputError = conflictInfo(target, a.name, p.observed.outputReason);
      } else if (action === 'none') {
        if (p.observed.outputFp) deps.state.outputs.set(target, { digest: digest!, fp: p.observed.outputFp });
        output = 'present';
      } else {
        const d = digest as Digest;
        // A hard link made here, or one replaced here, moves a blob's ctime: hoard's own doing,
        // recorded, so that the next sync still trusts the blob's fingerprint.
        const previous = deps.state.outputs.get(target)?.digest;
        const materialize = () =>
          store.linking(previous && previous !== d ? [d, previous] : [d], () =>
            deps.materializer.materialize({
              blob: store.blobPath(d), outputRoot: deps.outputRoot, relPath: a.path,
              ...(deps.outputBoundary ? { boundary: deps.outputBoundary } : {}),
              link: a.link, executable: a.executable, digest: d,
            }),
          );
        let r: Awaited<ReturnType<typeof materialize>>;
        try {
          r = await materialize();
        } catch (err) {
          if (!isCorruptBlob(err)) throw err;
          // A copy found the blob damaged although its fingerprint vouched for it: no wrong
          // byte was served; the blob is fetched again and the copy made from that.
          bytesDownloaded += await repairBlob(a, d);
          blob = 'redownloaded';
          reason = 'the stored blob was corrupt (found while copying it); fetched it again';
          r = await materialize();
        }
        method = r.method;
        const st = lstatSync(target);
        deps.state.outputs.set(target, { digest: d, fp: fileFingerprint(st), ...(r.method === 'hardlink' ? { blobInode: inodeId(st) } : {}) });
        output = action === 'link' ? 'linked' : action === 'replace' ? 'replaced' : 'relinked';
      }
    } catch (err) {
      output = 'failed';
      outputError = errorInfo(err);
    } finally {
      releaseOutput();
    }

    // 3. The container image.
    if (!a.image) return event(outputError ? { error: outputError } : {});
    const img = await ensureImage(p, digest as Digest, store.blobPath(digest as Digest));
    return event({ ...(outputError ? { error: outputError } : {}), ...imageFields(a.image, img) });
  };

  /** The store is disabled: the download goes to a temp file beside the output, verified, then renamed. */
  const applyDirect = async (p: ArtifactPlan): Promise<ArtifactEvent> => {
    const a = p.artifact;
    const target = p.observed.target;
    let digest = a.digest ?? null;
    let size = a.size ?? null;
    let bytesDownloaded = 0;
    let fromCache = false;
    let blob: BlobOutcome = 'none';
    let output: OutputOutcome = 'present';
    let error: ErrorInfo | undefined;
    const event = (extra: Partial<ArtifactEvent> = {}): ArtifactEvent => ({
      type: 'artifact', name: a.name, path: a.path, digest: digest as Digest | null, size, blob, output, bytesDownloaded,
      ...(fromCache ? { fromCache } : {}), ...(error ? { error } : {}), ...extra,
    });

    if (p.output === 'conflict') {
      output = 'conflict';
      error = conflictInfo(target, a.name, p.observed.outputReason);
    } else if (p.blob !== 'none') {
      let writer: DirectWriter | undefined;
      try {
        await prepareTarget(deps.outputRoot, a.path, deps.outputBoundary); // the folders, never through a symbolic link out of it
        const expected: Expected = { checksums: a.checksums, ...(a.digest ? { digest: a.digest } : {}), ...(a.size !== undefined ? { size: a.size } : {}) };
        const r = await download(a, expected, p.blob === 'lock' ? 'unlocked' : p.blob === 'force' ? 'force' : 'missing', {
          dir: deps.outputRoot,
          open: () => createDirectWriter(target, Object.keys(a.checksums) as ChecksumAlgorithm[], a.executable, a.size),
          finish: (w) => w.verify(expected),
        });
        writer = r.writer;
        digest = r.digest;
        size = r.size;
        bytesDownloaded = r.bytes;
        if (r.fromCache) fromCache = true;
        blob = 'downloaded';
        if (a.digest !== digest || a.size === undefined) deps.onLocked(a.name, digest, size);
        let action: OutputAction = p.output;
        if (action === 'check') {
          // The digest was unknown when planning; compare the file that is there now.
          const found = await hashFile(target).then((h) => h.digest, (err: unknown) => (isErrno(err, 'ENOENT') ? null : Promise.reject(err)));
          action = found === digest ? 'none' : found === null || p.observed.ours ? 'relink' : deps.force ? 'replace' : 'conflict';
        }
        if (action === 'none' || action === 'conflict') {
          await writer.abort();
          if (action === 'conflict') {
            output = 'conflict';
            error = conflictInfo(target, a.name, p.observed.outputReason);
          }
        } else {
          await writer.publish();
          output = 'written';
        }
      } catch (err) {
        await writer?.abort();
        blob = blob === 'downloaded' ? blob : 'failed';
        output = blob === 'failed' ? 'skipped' : 'failed';
        if (blob === 'failed') bytesDownloaded = moved.get(a.name) ?? 0;
        error = errorInfo(err);
        return event(a.image ? { image: 'skipped', imageRef: a.image } : {});
      }
    } else if (digest && a.size === undefined) {
      // An entry with a digest but no size, its output already right: record the size.
      size = lstatSync(target).size;
      deps.onLocked(a.name, digest as Digest, size);
    }

    if (!a.image) return event();
    // The image is made from the output file; not from someone else's file in its place.
    if (output === 'conflict') return event({ image: 'skipped', imageRef: a.image });
    const img = await ensureImage(p, digest as Digest, target);
    return event(imageFields(a.image, img));
  };

  const ensureImage = createImageStep({ ...(deps.images ? { images: deps.images } : {}), state: deps.state, emit });

  // Artifacts already in place are reported straight away, without the async machinery:
  // a no-op sync of a thousand artifacts is all this loop.
  const results = new Array<ArtifactEvent>(plans.length);
  const pending: number[] = [];
  for (let i = 0; i < plans.length; i++) {
    const p = plans[i]!;
    // (An entry without its size still goes the long way, which records the size.)
    if (!p.inSync || p.artifact.size === undefined) {
      pending.push(i);
      continue;
    }
    const a = p.artifact;
    if (p.observed.outputFp) deps.state.outputs.set(p.observed.target, { digest: a.digest!, fp: p.observed.outputFp });
    const ev: ArtifactEvent = {
      type: 'artifact', name: a.name, path: a.path, digest: a.digest ?? null, size: a.size ?? null,
      blob: deps.noStore ? 'none' : 'cached', output: 'present', bytesDownloaded: 0,
    };
    if (a.image) {
      ev.image = deps.images ? 'present' : 'skipped';
      ev.imageRef = a.image;
    }
    results[i] = ev;
    emit(ev);
  }
  const finish = async (i: number) => {
    const ev = await (deps.noStore ? applyDirect : applyOne)(plans[i]!);
    results[i] = ev;
    emit(ev);
  };
  // Twice as many artifacts as transfers: while some are verified, linked or imported, as many
  // others download (each holds a few MiB of buffers at most). With the store, applyOne limits
  // its own steps (blob steps, transfers, output steps), so every entry starts at once.
  if (deps.noStore) await pool(pending, deps.jobs * 2, finish);
  else await Promise.all(pending.map(finish));
  return results;
}
