import { lstatSync, promises as fs } from 'node:fs';
import path from 'node:path';
import { formatBytes } from '../core/format.ts';
import type { ChecksumAlgorithm, Digest } from '../core/digest.ts';
import { HoardError, isErrno } from '../core/errors.ts';
import { hashFile } from '../core/hashfile.ts';
import { redactUrl } from '../download/headers.ts';
import type { Fetcher } from '../download/http.ts';
import type { Artifact } from '../manifest/types.ts';
import { createDirectWriter, type DirectWriter } from '../materialize/direct.ts';
import { prepareTarget, type LinkMethod, type Materializer } from '../materialize/materialize.ts';
import { fileFingerprint } from '../store/fingerprint.ts';
import type { LockWaitInfo } from '../store/lock.ts';
import { resumeKeyOf, type BlobWriter, type Expected, type Store } from '../store/store.ts';
import type { Engine } from '../engine/types.ts';
import { urlCandidates, type Candidate } from '../sources/index.ts';
import { retryEvent, type BlobOutcome, type Emit, type ErrorInfo, type ImageOutcome, type OutputOutcome, type SyncEvent } from './events.ts';
import { boundTo, imageKey, type ImageSupport } from './images.ts';
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
  /** The store is disabled: downloads go straight to the outputs (verified, atomic); nothing is kept. */
  noStore?: boolean;
  /**
   * Where an artifact's bytes come from, tried in order (src/sources/). Default: its url, then
   * its mirrors, with its headers sent to the url's origin only.
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
  /** A lock to hold while downloading (the URL's, for a resumable download of an entry not locked yet). */
  hold?: () => Promise<() => Promise<void>>;
}

export type ArtifactEvent = Extract<SyncEvent, { type: 'artifact' }>;

export function errorInfo(err: unknown): ErrorInfo {
  if (err instanceof HoardError) return { code: err.code, message: err.message, ...(err.hint ? { hint: err.hint } : {}) };
  const e = err as NodeJS.ErrnoException;
  return { code: e?.code ?? 'E_INTERNAL', message: e?.message ?? String(err) };
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
async function ensureSpace(storeRoot: string, size: number, name: string, where = "the store's filesystem"): Promise<void> {
  const free = await freeBytes(storeRoot);
  if (free !== null && free < size) {
    throw new HoardError('E_STORE', `not enough space for ${name}: it needs ${formatBytes(size)}, ${formatBytes(free)} free on ${where} (${storeRoot})`, {
      hint: 'free some space, or point --store (HOARD_STORE) at a larger disk',
      details: { needed: size, free },
    });
  }
}

function waiting(name: string, info: LockWaitInfo): SyncEvent {
  return { type: 'waiting', name, lockFile: info.file, holder: info.owner ? `pid ${info.owner.pid} on ${info.owner.host}` : 'unknown' };
}

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
  const queue: Array<() => void> = [];
  const release = () => {
    const next = queue.shift();
    if (next) next();
    else free++;
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

/** Executes a plan: downloads, verifies, links, and reports each artifact as it finishes. */
export async function apply(plans: readonly ArtifactPlan[], deps: ApplyDeps): Promise<ArtifactEvent[]> {
  const { store, emit } = deps;

  const toStore = (a: Artifact, expected: Expected, replace: boolean): Sink<BlobWriter> => {
    // A download's bytes survive an interruption (a reset, Ctrl-C, kill -9) in tmp/<key>.partial
    // and the next attempt continues from them. The key is the digest, or for an entry not
    // locked yet its URL; the caller holds the digest's lock, the URL's is taken here.
    const resumeKey = resumeKeyOf(expected.digest, a.url);
    const before = deps.beforePublish;
    return {
      dir: store.root,
      open: () => store.createWriter(Object.keys(a.checksums) as ChecksumAlgorithm[], { resumeKey, sizeHint: expected.size }),
      // Every download but an unlocked entry's runs under the blob's lock (see applyOne).
      finish: (w) => w.commit(expected, { replace, ...(before ? { beforePublish: (d: Digest) => before(d, expected.digest !== undefined) } : {}) }),
      ...(expected.digest ? {} : { hold: () => store.lock(`sha256:${resumeKey}`, (info) => emit(waiting(a.name, info))) }),
    };
  };

  const transfers = semaphore(deps.jobs);

  const download = async <W extends BlobWriter>(a: Artifact, expected: Expected, reason: 'missing' | 'corrupt' | 'force' | 'unlocked', sink: Sink<W>) => {
    const fetcher = await deps.fetcher();
    const sources = deps.candidates ? await deps.candidates(a) : urlCandidates(a, deps.env);
    const release = await sink.hold?.();
    let lastError: unknown;
    try {
      for (const [i, source] of sources.entries()) {
        const url = source.label;
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
            const r = await fetcher.fetch({ url: source.key, headers: {}, resolve: source.resolve, ...(source.expiring ? { expiring: true } : {}) }, writer, {
              onProgress: (p) => emit({ type: 'progress', name: a.name, received: p.received, total: p.total ?? expected.size ?? null }),
              onRetry: (r) => emit(retryEvent(a.name, redactUrl(url), r)),
              signal: deps.signal,
              verified: expected.digest !== undefined,
            });
            keep = false;
            freeSlot();
            slotHeld = false;
            const digest = await sink.finish(writer);
            return { digest, size: writer.bytesWritten, bytes: r.bytes, writer };
          } catch (err) {
            if (slotHeld) freeSlot();
            await writer.abort({ keep: keep && !(err instanceof HoardError && err.code === 'E_STORE') });
            lastError = err;
            if (err instanceof HoardError && err.code === 'E_INTEGRITY') {
              // Bytes resumed from an earlier attempt may be what is wrong: once more, from the start.
              if (resumeFrom > 0 && !fresh) continue;
              (err as HoardError & { details: Record<string, unknown> }).details.url = redactUrl(url);
              err.message = `${redactUrl(url)} sent other bytes than expected: ${err.message.replace(/^download is /, '')}`;
            }
            if (err instanceof HoardError && (err.code === 'E_INTERRUPTED' || err.code === 'E_STORE')) throw err;
            if (i < sources.length - 1) emit({ type: 'warning', name: a.name, message: `${errorInfo(err).message}; trying the next mirror` });
            break;
          }
        }
      }
    } finally {
      await release?.();
    }
    throw lastError;
  };

  const applyOne = async (p: ArtifactPlan): Promise<ArtifactEvent> => {
    const a = p.artifact;
    const target = p.observed.target;
    let digest = a.digest ?? null;
    let size = a.size ?? null;
    let bytesDownloaded = 0;
    let blob: BlobOutcome = 'cached';
    let output: OutputOutcome = 'present';
    let method: LinkMethod | undefined;
    let reason: string | undefined;
    const event = (extra: Partial<ArtifactEvent> = {}): ArtifactEvent => ({
      type: 'artifact', name: a.name, path: a.path, digest: digest as Digest | null, size, blob, output,
      ...(method ? { method } : {}), ...(reason ? { reason } : {}), bytesDownloaded, ...extra,
    });

    // 1. The blob.
    try {
      const expected: Expected = { checksums: a.checksums, ...(a.digest ? { digest: a.digest } : {}), ...(a.size !== undefined ? { size: a.size } : {}) };
      if (p.blob === 'adopt') {
        await store.ingestFile(target, expected);
        blob = 'adopted';
      } else if (p.blob === 'lock') {
        const r = await download(a, expected, 'unlocked', toStore(a, expected, false));
        digest = r.digest;
        size = r.size;
        bytesDownloaded = r.bytes;
        blob = 'downloaded';
      } else if (p.blob !== 'none') {
        const d = a.digest!;
        const release = await store.lock(d, (info) => emit(waiting(a.name, info)));
        try {
          // Another process may have fetched or repaired it while we waited.
          const now = p.blob === 'force' ? null : await store.check(d, expected.size !== undefined ? { size: expected.size } : {});
          if (now?.state === 'ok') blob = 'cached';
          else {
            if (now?.state === 'corrupt') {
              reason = `the stored blob was corrupt (${now.reason}); removed it`;
              emit({ type: 'warning', name: a.name, message: `blob ${d} is corrupt (${now.reason}): removed, downloading again` });
              await store.remove(d);
            }
            const why = p.blob === 'force' ? 'force' : now?.state === 'corrupt' ? 'corrupt' : 'missing';
            const r = await download(a, expected, why, toStore(a, expected, p.blob === 'force'));
            bytesDownloaded = r.bytes;
            size = r.size;
            blob = why === 'missing' ? 'downloaded' : 'redownloaded';
            if (why === 'force') reason = '--force';
          }
        } finally {
          await release();
        }
      }
      // An entry with a digest but no size (added with --sha256) is completed too.
      if (digest && (a.digest !== digest || a.size === undefined)) {
        size ??= lstatSync(store.blobPath(digest as Digest)).size;
        deps.onLocked(a.name, digest as Digest, size);
      }
    } catch (err) {
      blob = 'failed';
      output = 'skipped';
      return event({ error: errorInfo(err), ...(a.image ? { image: 'skipped' as const, imageRef: a.image } : {}) });
    }

    // 2. The output file (a conflict or failure there does not stop the image).
    let outputError: ErrorInfo | undefined;
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
        const r = await deps.materializer.materialize({
          blob: store.blobPath(digest!),
          outputRoot: deps.outputRoot,
          relPath: a.path,
          ...(deps.outputBoundary ? { boundary: deps.outputBoundary } : {}),
          link: a.link,
          executable: a.executable,
        });
        method = r.method;
        deps.state.outputs.set(target, { digest: digest!, fp: fileFingerprint(lstatSync(target)) });
        output = action === 'link' ? 'linked' : action === 'replace' ? 'replaced' : 'relinked';
      }
    } catch (err) {
      output = 'failed';
      outputError = errorInfo(err);
    }

    // 3. The container image.
    if (!a.image) return event(outputError ? { error: outputError } : {});
    const img = await ensureImage(p, digest as Digest, store.blobPath(digest as Digest));
    return event({ ...(outputError ? { error: outputError } : {}), image: img.outcome, imageRef: a.image, ...(img.error ? { imageError: img.error } : {}) });
  };

  /** The store is disabled: the download goes to a temp file beside the output, verified, then renamed. */
  const applyDirect = async (p: ArtifactPlan): Promise<ArtifactEvent> => {
    const a = p.artifact;
    const target = p.observed.target;
    let digest = a.digest ?? null;
    let size = a.size ?? null;
    let bytesDownloaded = 0;
    let blob: BlobOutcome = 'none';
    let output: OutputOutcome = 'present';
    let error: ErrorInfo | undefined;
    const event = (extra: Partial<ArtifactEvent> = {}): ArtifactEvent => ({
      type: 'artifact', name: a.name, path: a.path, digest: digest as Digest | null, size, blob, output, bytesDownloaded,
      ...(error ? { error } : {}), ...extra,
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
    return event({ image: img.outcome, imageRef: a.image, ...(img.error ? { imageError: img.error } : {}) });
  };

  // One engine command at a time: imports of big images compete for the same disk anyway.
  let engineQueue: Promise<unknown> = Promise.resolve();
  const serial = <T>(fn: () => Promise<T>): Promise<T> => {
    const run = engineQueue.then(fn, fn);
    engineQueue = run.catch(() => {});
    return run;
  };

  /** `file`: the artifact's bytes (its blob, or with the store disabled its output). */
  const ensureImage = async (p: ArtifactPlan, digest: Digest, file: string): Promise<{ outcome: ImageOutcome; error?: ErrorInfo }> => {
    const a = p.artifact;
    const ref = a.image!;
    const images = deps.images;
    if (!images) return { outcome: 'skipped' };
    if (!images.engine) {
      return { outcome: 'failed', error: images.error ?? { code: 'E_ENGINE', message: 'no container engine available' } };
    }
    const engine = images.engine;
    const seen = p.imageObserved?.info;
    // An entry locked just now: the tag may already be the right image.
    if (p.image === 'none' || (p.image === 'import' && seen && boundTo(seen, digest, engine.name, deps.state))) return { outcome: 'present' };
    try {
      const hex = digest.slice(7);
      let kind = deps.state.archives.get(hex);
      if (!kind) {
        kind = await images.support.classify(file);
        deps.state.archives.set(hex, kind);
      }
      const made = await serial(() => {
        // When the engine command starts (not while it waits its turn): the TUI shows a spinner.
        emit({ type: 'image', name: a.name, ref, action: kind === 'rootfs' ? 'import' : 'load' });
        return kind === 'rootfs' ? engine.importRootfs(file, ref, digest) : engine.load(file, ref);
      });
      deps.state.images.set(imageKey(engine.name, ref), { digest, id: made.id });
      if (p.image === 'reimport' || p.image === 'force') return { outcome: 'reimported' };
      return { outcome: kind === 'rootfs' ? 'imported' : 'loaded' };
    } catch (err) {
      return { outcome: 'failed', error: errorInfo(err) };
    }
  };

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
  // Twice as many artifacts as transfers: while some are verified, linked or imported, as many
  // others download (each holds a few MiB of buffers at most).
  await pool(pending, deps.jobs * 2, async (i) => {
    const ev = await (deps.noStore ? applyDirect : applyOne)(plans[i]!);
    results[i] = ev;
    emit(ev);
  });
  return results;
}
