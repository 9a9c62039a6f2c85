// Sync's image step: make the engine's tag the image built from an artifact's bytes (import a
// root filesystem, load an image archive), then remove the image hoard built before and just
// replaced, when nothing else uses it. apply.ts calls it once per artifact with an `image`.
import path from 'node:path';
import type { Digest } from '../core/digest.ts';
import { errorInfo } from '../core/errors.ts';
import { DIGEST_LABEL, type Engine, type ImageInfo } from '../engine/types.ts';
import type { Emit, ErrorInfo, ImageOutcome, OldImage } from './events.ts';
import { boundTo, imageKey, type ImageSupport } from './images.ts';
import type { ArtifactPlan } from './plan.ts';
import type { SyncState } from './state.ts';

export interface ImageStepDeps {
  /** The engine (null when it could not be reached) and the error to report then; absent: --no-images. */
  images?: { support: ImageSupport; engine: Engine | null; error: ErrorInfo | null };
  state: SyncState;
  emit: Emit;
}

export interface ImageStepResult {
  outcome: ImageOutcome;
  error?: ErrorInfo;
  /** The image the tag pointed at before, when this step replaced it: removed, or kept and why. */
  oldImage?: OldImage;
}

/** The artifact event's image fields for a step's result. */
export function imageFields(ref: string, r: ImageStepResult): { image: ImageOutcome; imageRef: string; imageError?: ErrorInfo; oldImage?: OldImage } {
  return { image: r.outcome, imageRef: ref, ...(r.error ? { imageError: r.error } : {}), ...(r.oldImage ? { oldImage: r.oldImage } : {}) };
}

/**
 * The image step of one sync. `ensureImage(p, digest, file)`: `file` holds the artifact's
 * bytes (its blob, or with the store disabled its output). One engine command runs at a time.
 */
export function createImageStep(deps: ImageStepDeps): (p: ArtifactPlan, digest: Digest, file: string) => Promise<ImageStepResult> {
  // One engine command at a time: imports of big images compete for the same disk anyway.
  let engineQueue: Promise<unknown> = Promise.resolve();
  const serial = <T>(fn: () => Promise<T>): Promise<T> => {
    const run = engineQueue.then(fn, fn);
    engineQueue = run.catch(() => {});
    return run;
  };

  return async (p, digest, file) => {
    const a = p.artifact;
    const ref = a.image!;
    const images = deps.images;
    if (!images) return { outcome: 'skipped' };
    // Known when planning: the file cannot be made into an image (nothing to ask the engine).
    if (p.image === 'not-archive') {
      return { outcome: 'failed', error: p.imageObserved?.archiveError ?? { code: 'E_ENGINE', message: p.imageReason ?? `${a.name}'s file is not an image archive` } };
    }
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
        kind = await images.support.classify(file, `${a.name}'s file ${path.relative(process.cwd(), p.observed.target) || p.observed.target}`);
        deps.state.archives.set(hex, kind);
      }
      const { made, oldImage } = await serial(async () => {
        // When the engine command starts (not while it waits its turn): the TUI shows a spinner.
        deps.emit({ type: 'image', name: a.name, ref, action: kind === 'rootfs' ? 'import' : 'load' });
        const made = kind === 'rootfs' ? await engine.importRootfs(file, ref, digest) : await engine.load(file, ref);
        return { made, oldImage: seen && seen.id !== made.id ? await removeReplaced(engine, seen) : undefined };
      });
      deps.state.images.set(imageKey(engine.name, ref), { digest, id: made.id });
      const step = { ...(oldImage ? { oldImage } : {}) };
      if (p.image === 'reimport' || p.image === 'force') return { outcome: 'reimported', ...step };
      return { outcome: kind === 'rootfs' ? 'imported' : 'loaded', ...step };
    } catch (err) {
      return { outcome: 'failed', error: errorInfo(err) };
    }
  };
}

/**
 * The image a tag pointed at before hoard moved the tag to a new one: removed when hoard built
 * it (it carries hoard's digest label) and nothing uses it any more (no other tag, no
 * container); otherwise kept, saying why. A failure to remove never fails the artifact: the
 * new image is in place.
 */
async function removeReplaced(engine: Engine, old: ImageInfo): Promise<OldImage | undefined> {
  const id = old.id;
  const kept = (reason: string): OldImage => ({ id, removed: false, reason });
  if (old.labels[DIGEST_LABEL] === undefined) return kept('not built by hoard');
  try {
    const users = await engine.imageUsers(id);
    if (!users) return undefined; // already gone: nothing to say
    if (users.tags.length > 0) return kept(`still tagged ${users.tags.join(', ')}`);
    if (users.containers.length > 0) return kept(`used by container ${users.containers.join(', ')}`);
    await engine.removeImage(id);
    return { id, removed: true };
  } catch (err) {
    return kept(errorInfo(err).message);
  }
}
