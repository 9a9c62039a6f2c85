import type { Artifact } from '../manifest/types.ts';
import type { ImageObservation } from './images.ts';
import type { Observed } from './observe.ts';

export type BlobAction =
  | 'none' // in the store and verified
  | 'fetch' // not in the store
  | 'refetch' // in the store but corrupt: remove, download again
  | 'force' // --force: download again, replace after verifying
  | 'adopt' // not in the store, but the output file is verified: copy it in, no network
  | 'lock'; // no digest yet: download to learn it, then record it in the manifest

export type OutputAction =
  | 'none'
  | 'link' // nothing there
  | 'relink' // hoard's own file is outdated or damaged
  | 'replace' // someone else's file, and --force
  | 'conflict' // someone else's file: left alone
  | 'check'; // a file is there and the digest is not known yet: compare after locking

export type ImageAction =
  | 'none' // no image, --no-images, or present and built from this digest
  | 'import' // missing: import (rootfs) or load (image archive)
  | 'reimport' // the tag exists but was built from another file
  | 'force' // --force: import again even though it is current
  | 'unavailable' // the engine could not be asked: reported as a failure
  | 'not-archive'; // the artifact's file is not an archive an engine can take: reported as a failure

export interface ArtifactPlan {
  artifact: Artifact;
  observed: Observed;
  blob: BlobAction;
  output: OutputAction;
  image: ImageAction;
  imageReason?: string;
  /** What the engine said about the tag, when asked. */
  imageObserved?: ImageObservation;
  inSync: boolean;
}

export interface PlanOptions {
  force: boolean;
  /** Someone else's output file is replaced (default: with `force`; `hoard fetch --force` replaces without downloading again). */
  replace?: boolean;
  /**
   * The store is disabled: a download goes straight to the output, so the blob action only
   * says whether one is needed ('lock', 'fetch' or 'force'), and an intact output is enough.
   */
  noStore?: boolean;
}

/** Pure: what sync must do for each artifact, from the manifest and what is on disk. */
export function plan(
  items: ReadonlyArray<{ artifact: Artifact; observed: Observed; image?: ImageObservation }>,
  opts: PlanOptions,
): ArtifactPlan[] {
  return items.map(({ artifact, observed, image: img }) => {
    let blob: BlobAction;
    if (observed.blob === 'unlocked') blob = 'lock';
    else if (observed.blob === 'corrupt') blob = 'refetch';
    else if (observed.blob === 'missing') blob = observed.output === 'ok' && !opts.force ? 'adopt' : 'fetch';
    else blob = opts.force ? 'force' : 'none';

    let output: OutputAction;
    switch (observed.output) {
      case 'ok':
        output = opts.force ? 'relink' : 'none';
        break;
      case 'missing':
        output = 'link';
        break;
      case 'stale':
        output = 'relink';
        break;
      case 'foreign':
        output = (opts.replace ?? opts.force) ? 'replace' : 'conflict';
        break;
      case 'unknown':
        output = 'check';
        break;
    }
    if (opts.noStore && blob !== 'lock') {
      // Nothing to download when the output is right, or when someone else's file is in the way.
      blob = output === 'none' || output === 'conflict' ? 'none' : opts.force ? 'force' : 'fetch';
    }
    let image: ImageAction = 'none';
    let imageReason = img?.reason;
    if (img) {
      if (img.archiveError) {
        // Whatever the engine holds, this file cannot become the image.
        image = 'not-archive';
        imageReason = img.archiveError.message;
      } else if (img.state === 'unavailable') image = 'unavailable';
      else if (img.state === 'missing' || img.state === 'unlocked') image = 'import';
      else if (img.state === 'stale') image = 'reimport';
      else if (opts.force) image = 'force';
    }
    return {
      artifact, observed, blob, output, image,
      ...(imageReason ? { imageReason } : {}),
      ...(img ? { imageObserved: img } : {}),
      inSync: blob === 'none' && output === 'none' && image === 'none',
    };
  });
}
