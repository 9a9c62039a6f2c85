import { digestHex, type Digest } from '../core/digest.ts';
import { errorInfo, HoardError } from '../core/errors.ts';
import { isNotImageArchive } from '../engine/archive.ts';
import type { ArchiveKind, Engine, ImageInfo } from '../engine/types.ts';
import { DIGEST_LABEL } from '../engine/types.ts';
import type { Artifact } from '../manifest/types.ts';
import type { ErrorInfo } from './events.ts';
import type { SyncState } from './state.ts';

/**
 * present: the engine has the tag, built from this artifact's digest.
 * missing: no such tag. stale: the tag exists but was built from something else.
 * unlocked: the entry has no digest yet. unavailable: the engine could not be asked.
 */
export type ImageState = 'present' | 'missing' | 'stale' | 'unlocked' | 'unavailable';

export interface ImageObservation {
  state: ImageState;
  reason?: string;
  info?: ImageInfo;
  /**
   * The artifact's file is here but no engine can take it (not a tar, a damaged one): why.
   * Set by checkArchives, for images sync would make; the plan reports it, sync skips the engine.
   */
  archiveError?: ErrorInfo;
}

/** What sync needs from the container side; created only when an artifact has an image. */
export interface ImageSupport {
  /** The engine, chosen on first use (docker when its daemon answers, else podman). */
  engine(): Promise<Engine>;
  /** What an archive holds (rootfs to import, or an image archive to load). */
  /** `shown` names the file in messages (the artifact and its output; `file` may be a blob). */
  classify(file: string, shown?: string): Promise<ArchiveKind>;
}

/** Where hoard remembers which image it made from which digest (loaded images carry no label). */
export const imageKey = (engine: string, ref: string) => `${engine}:${ref}`;

/** Is `info` built from `digest`? A label for imported images, hoard's record for loaded ones. */
export function boundTo(info: ImageInfo, digest: Digest, engine: string, state: SyncState): boolean {
  if (info.labels[DIGEST_LABEL] === digest) return true;
  const rec = state.images.get(imageKey(engine, info.ref));
  return rec !== undefined && rec.digest === digest && rec.id === info.id;
}

/**
 * Asks the engine about every image of `artifacts` in one query. An engine that is missing
 * or does not answer is not fatal: every image is 'unknown', with the error to report.
 */
export async function observeImages(
  artifacts: readonly Artifact[],
  support: ImageSupport,
  state: SyncState,
): Promise<{ engine: Engine | null; images: Map<string, ImageObservation>; error: ErrorInfo | null }> {
  const wanted = artifacts.filter((a) => a.image);
  const images = new Map<string, ImageObservation>();
  if (wanted.length === 0) return { engine: null, images, error: null };
  let engine: Engine;
  let found: Map<string, ImageInfo>;
  try {
    engine = await support.engine();
    found = await engine.inspect([...new Set(wanted.map((a) => a.image!))]);
  } catch (err) {
    const error = err instanceof HoardError ? { code: err.code, message: err.message, ...(err.hint ? { hint: err.hint } : {}) } : { code: 'E_ENGINE', message: String((err as Error)?.message ?? err) };
    for (const a of wanted) images.set(a.name, { state: 'unavailable', reason: error.message });
    return { engine: null, images, error };
  }
  for (const a of wanted) {
    const info = found.get(a.image!);
    if (!a.digest) images.set(a.name, { state: 'unlocked', ...(info ? { info } : {}) });
    else if (!info) images.set(a.name, { state: 'missing' });
    else if (boundTo(info, a.digest, engine.name, state)) images.set(a.name, { state: 'present', info });
    else images.set(a.name, { state: 'stale', reason: `${a.image} was built from another file`, info });
  }
  return { engine, images, error: null };
}

/**
 * Looks inside the files of artifacts whose image sync would make, when their bytes are
 * already here (`fileOf`: the blob, or with the store disabled an intact output; null when
 * not): a file that no engine can take (a disk image, a text file) gets `archiveError`, so
 * that status and the plan say so instead of a pending import. Verdicts (the file's kind) are
 * remembered per blob; an archive is read only as far as its kind shows (see engine/archive.ts).
 * Other failures (a missing decompressor) are left for sync to report.
 */
export async function checkArchives(
  items: ReadonlyArray<{ artifact: Artifact; image?: ImageObservation | undefined }>,
  support: ImageSupport,
  state: SyncState,
  fileOf: (a: Artifact) => { file: string; shown: string } | null,
): Promise<void> {
  for (const { artifact: a, image } of items) {
    if (!image || !a.digest || image.state === 'present' || image.state === 'unlocked') continue;
    const hex = digestHex(a.digest);
    if (state.archives.get(hex)) continue;
    const where = fileOf(a);
    if (!where) continue;
    try {
      state.archives.set(hex, await support.classify(where.file, where.shown));
    } catch (err) {
      if (isNotImageArchive(err)) image.archiveError = errorInfo(err);
    }
  }
}
