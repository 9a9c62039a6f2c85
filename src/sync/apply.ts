import { lstatSync, type Stats } from 'node:fs';
import path from 'node:path';
import type { Digest } from '../core/digest.ts';
import { errorInfo, HoardError } from '../core/errors.ts';
import type { Fetcher, Source } from '../download/http.ts';
import type { Artifact } from '../manifest/types.ts';
import type { DirectWriter } from '../materialize/direct.ts';
import { prepareTarget, type LinkMethod, type Materializer } from '../materialize/materialize.ts';
import { fileFingerprint, inodeId } from '../store/fingerprint.ts';
import type { Expected, Store } from '../store/store.ts';
import type { Engine } from '../engine/types.ts';
import { urlCandidates, type Candidate } from '../sources/index.ts';
import { pool, semaphore } from './concurrency.ts';
import type { BlobOutcome, Emit, ErrorInfo, OutputOutcome, SyncEvent } from './events.ts';
import { createImageStep, imageFields } from './image-step.ts';
import type { ImageSupport } from './images.ts';
import { observe } from './observe.ts';
import { plan, type ArtifactPlan } from './plan.ts';
import type { SyncState } from './state.ts';
import { createTransfer, directSink } from './transfer.ts';

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
  /** Someone else's output file is replaced (default: with `force`; see PlanOptions). */
  replace?: boolean;
  emit: Emit;
  /** Container images: the engine (null when it could not be reached) and the error to report then. */
  images?: { support: ImageSupport; engine: Engine | null; error: ErrorInfo | null };
  /** Called when an unlocked entry's digest becomes known. */
  onLocked: (name: string, digest: Digest, size: number) => void;
  /** Called when a vendor found an entry's file under a new locator (`arista.path`): to record in the manifest. */
  onMoved?: (name: string, moved: { from: string; to: string }) => void;
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
  /** How an output in the way is reported (default: sync's words; `hoard fetch` names -o). */
  conflict?: (target: string, name: string, reason: string | undefined) => ErrorInfo;
}

export type ArtifactEvent = Extract<SyncEvent, { type: 'artifact' }>;

/** (Moved to core/errors.ts, where the codes are; pool to ./concurrency.ts.) */
export { errorInfo, pool };

function conflictInfo(target: string, name: string, reason: string | undefined): ErrorInfo {
  return {
    code: 'E_CONFLICT',
    message: `${target} differs from ${name}: ${reason ?? 'someone else\'s file'}`,
    hint: 'move the file away, or run `hoard sync --force` to replace it',
  };
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
  redownload?: 'force' | 'corrupt';
  /** The bytes came from the team cache. */
  fromCache?: boolean;
  /** A conditional request (hoard fetch --refresh) answered 304. */
  notModified?: boolean;
  /** The vendor found the file under a new locator. */
  moved?: { from: string; to: string };
}

/** A copy refused because the blob's bytes do not match its digest (see materialize/copy.ts). */
function isCorruptBlob(err: unknown): boolean {
  return err instanceof HoardError && err.code === 'E_INTEGRITY' && err.details.corruptBlob === true;
}

/** An output record's fingerprint that no file has (see hardLinks in apply()). */
const UNMATCHED = 'unmatched';

/** How many output steps (link, copy, replace) run at once. */
const OUTPUT_STEPS = (jobs: number) => Math.max(8, jobs * 2);

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
  const conflictOf = deps.conflict ?? conflictInfo;
  // The one transfer pipeline (./transfer.ts): team cache, candidates, locks, resume, retries.
  const transfer = createTransfer({
    store, emit, fetcher: deps.fetcher, jobs: deps.jobs,
    // A download another process finished after this moment is as fresh as one of ours.
    startedAt: deps.startedAt ?? Date.now(),
    candidates: deps.candidates ?? ((a) => Promise.resolve(urlCandidates(a, deps.env))),
    ...(deps.signal ? { signal: deps.signal } : {}),
    ...(deps.cache ? { cache: deps.cache } : {}),
    ...(deps.beforePublish ? { beforePublish: deps.beforePublish } : {}),
  });

  /**
   * An output whose entry had no digest when it was planned ('check'): looked at again now
   * that the digest is known, and planned as sync would have (the same pure plan).
   */
  const recheck = async (p: ArtifactPlan, digest: Digest, size: number | null): Promise<Pick<ArtifactPlan, 'output' | 'observed'>> => {
    const a: Artifact = { ...p.artifact, digest, ...(size !== null ? { size } : {}) };
    const observed = await observe(a, { store, state: deps.state, outputRoot: deps.outputRoot, verify: false, emit, noStore: deps.noStore ?? false });
    return { output: plan([{ artifact: a, observed }], { force: deps.force, noStore: deps.noStore ?? false, ...(deps.replace !== undefined ? { replace: deps.replace } : {}) })[0]!.output, observed };
  };

  /**
   * The blob step of a group of entries that need one blob: adopted from an output that has it,
   * else fetched from the first entry's sources (then the next entry's, when they differ).
   */
  const groupBlob = async (members: readonly ArtifactPlan[]): Promise<BlobDone> => {
    const first = members[0]!;
    if (first.blob === 'lock') return { ...(await transfer.unlockedBlob(first.artifact)), leader: first.artifact.name };
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
        return { ...(await transfer.lockedBlob(a, action)), leader: a.name };
      } catch (err) {
        lastError = err;
        if (err instanceof HoardError && (err.code === 'E_INTERRUPTED' || err.code === 'E_STORE')) throw err;
      }
    }
    throw lastError;
  };

  // Entries that need the same blob share one blob step (one transfer at most). An entry that
  // waits for it holds nothing: no --jobs slot, no place among the blob steps running.
  // (Groups hold the plans' indexes: the entries are also started group by group, below.)
  const groups = new Map<string, number[]>();
  /** Each plan's blob key (null: no blob step), computed once. */
  const keys = new Map<ArtifactPlan, string | null>();
  plans.forEach((p, i) => {
    const k = p.inSync && p.artifact.size !== undefined ? null : blobKey(p);
    keys.set(p, k);
    if (!k) return;
    const members = groups.get(k);
    if (members) members.push(i);
    else groups.set(k, [i]);
  });
  const blobSteps = semaphore(deps.jobs * 2);
  const blobTasks = new Map<string, Promise<BlobDone>>();
  const blobOf = (p: ArtifactPlan): Promise<BlobDone> => {
    const a = p.artifact;
    const k = keys.get(p);
    if (!k) return Promise.resolve({ digest: a.digest!, size: a.size ?? null, leader: a.name, blob: 'cached', bytes: 0 });
    let task = blobTasks.get(k);
    if (!task) {
      task = blobSteps.acquire().then(async (release) => {
        try {
          return await groupBlob(groups.get(k)!.map((i) => plans[i]!));
        } finally {
          release();
        }
      });
      blobTasks.set(k, task);
    }
    return task;
  };

  const outputSteps = semaphore(OUTPUT_STEPS(deps.jobs));

  // Outputs made hard links of a blob are recorded with the blob's own stat when the store's
  // bracket of link operations on it ends (Store.linking): one stat for all of them, with the
  // ctime they all have then (an output someone replaced since has another inode: not taken
  // for hoard's). When the blob did not stay the same file meanwhile (replaced, repaired,
  // removed), an output that is still one of the inodes the blob's name had is recorded as
  // hoard's hard link with a fingerprint nothing matches: the next sync reads it before it
  // trusts it (that inode may be the damaged blob). Any other file there is not hoard's.
  const linked = new Map<Digest, { targets: string[]; settled: (blob: Stats | null, inodes: readonly number[]) => void }>();
  const hardLinks = (d: Digest) => {
    let l = linked.get(d);
    if (!l) {
      const targets: string[] = [];
      const settled = (blob: Stats | null, inodes: readonly number[]) => {
        const same = blob && { digest: d, fp: fileFingerprint(blob), blobInode: inodeId(blob) };
        for (const target of targets.splice(0)) {
          if (same) {
            deps.state.outputs.set(target, same);
            continue;
          }
          let st: Stats | undefined;
          try {
            st = lstatSync(target, { throwIfNoEntry: false });
          } catch {
            // unreadable now: no record (the next sync looks at it again)
          }
          if (st && inodes.includes(st.ino)) deps.state.outputs.set(target, { digest: d, fp: UNMATCHED, blobInode: inodeId(st) });
        }
      };
      linked.set(d, (l = { targets, settled }));
    }
    return l;
  };

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
    let redownload: 'force' | 'corrupt' | undefined;
    let notModified = false;
    let moved: { from: string; to: string } | undefined;
    const event = (extra: Partial<ArtifactEvent> = {}): ArtifactEvent => ({
      type: 'artifact', name: a.name, path: a.path, digest: digest as Digest | null, size, blob, output,
      ...(method ? { method } : {}), ...(reason ? { reason } : {}), ...(redownload ? { redownload } : {}), bytesDownloaded, ...(fromCache ? { fromCache } : {}),
      ...(notModified ? { notModified } : {}), ...(moved ? { moved } : {}), ...extra,
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
      if (mine && done.redownload) redownload = done.redownload;
      if (mine && done.notModified) notModified = true;
      if (mine && done.moved) {
        moved = done.moved;
        deps.onMoved?.(a.name, done.moved);
      }
      // An entry with a digest but no size (added with --sha256) is completed too.
      if (digest && (a.digest !== digest || a.size === undefined)) {
        size ??= lstatSync(store.blobPath(digest as Digest)).size;
        deps.onLocked(a.name, digest as Digest, size);
      }
    } catch (err) {
      blob = 'failed';
      output = 'skipped';
      bytesDownloaded = transfer.moved(a.name);
      return event({ error: errorInfo(err), ...(a.image ? { image: 'skipped' as const, imageRef: a.image } : {}) });
    }

    // 2. The output file (a conflict or failure there does not stop the image).
    let outputError: ErrorInfo | undefined;
    const releaseOutput = await outputSteps.acquire();
    try {
      // The digest was unknown when planning: the file there now is looked at again.
      const { output: action, observed } = p.output === 'check' ? await recheck(p, digest as Digest, size) : p;
      if (action === 'conflict') {
        output = 'conflict';
        outputError = conflictOf(target, a.name, observed.outputReason);
      } else if (action === 'none') {
        if (observed.outputFp) deps.state.outputs.set(target, { digest: digest!, fp: observed.outputFp });
        output = 'present';
      } else {
        const d = digest as Digest;
        // A hard link made here, or one replaced here, moves a blob's ctime: hoard's own doing,
        // recorded, so that the next sync still trusts the blob's fingerprint.
        const previous = deps.state.outputs.get(target)?.digest;
        const links = hardLinks(d);
        const materialize = () =>
          store.linking(previous && previous !== d ? [d, previous] : [d], async () => {
            const r = await deps.materializer.materialize({
              blob: store.blobPath(d), outputRoot: deps.outputRoot, relPath: a.path,
              ...(deps.outputBoundary ? { boundary: deps.outputBoundary } : {}),
              link: a.link, executable: a.executable, digest: d,
            });
            if (r.method === 'hardlink') links.targets.push(target);
            return r;
          }, links.settled);
        let r: Awaited<ReturnType<typeof materialize>>;
        try {
          r = await materialize();
        } catch (err) {
          if (!isCorruptBlob(err)) throw err;
          // A copy found the blob damaged although its fingerprint vouched for it: no wrong
          // byte was served; the blob is fetched again and the copy made from that.
          bytesDownloaded += await transfer.repairBlob(a, d);
          blob = 'redownloaded';
          redownload = 'corrupt';
          reason = 'the stored blob was corrupt (found while copying it); fetched it again';
          r = await materialize();
        }
        method = r.method;
        // (A hard link is recorded when the store's bracket on its blob ends: see hardLinks.)
        if (r.method !== 'hardlink') deps.state.outputs.set(target, { digest: d, fp: fileFingerprint(lstatSync(target)) });
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

  /** The store is disabled: the download goes to a temp file beside the output (directSink), verified, then renamed. */
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
    let moved: { from: string; to: string } | undefined;
    const event = (extra: Partial<ArtifactEvent> = {}): ArtifactEvent => ({
      type: 'artifact', name: a.name, path: a.path, digest: digest as Digest | null, size, blob, output, bytesDownloaded,
      ...(fromCache ? { fromCache } : {}), ...(moved ? { moved } : {}), ...(error ? { error } : {}), ...extra,
    });

    if (p.output === 'conflict') {
      output = 'conflict';
      error = conflictOf(target, a.name, p.observed.outputReason);
    } else if (p.blob !== 'none') {
      let writer: DirectWriter | undefined;
      try {
        await prepareTarget(deps.outputRoot, a.path, deps.outputBoundary); // the folders, never through a symbolic link out of it
        const expected: Expected = { checksums: a.checksums, ...(a.digest ? { digest: a.digest } : {}), ...(a.size !== undefined ? { size: a.size } : {}) };
        const r = await transfer.download(a, expected, p.blob === 'lock' ? 'unlocked' : p.blob === 'force' ? 'force' : 'missing', directSink(target, a, expected));
        writer = r.writer;
        digest = r.digest;
        size = r.size;
        bytesDownloaded = r.bytes;
        if (r.fromCache) fromCache = true;
        if (r.moved) {
          moved = r.moved;
          deps.onMoved?.(a.name, r.moved);
        }
        blob = 'downloaded';
        if (a.digest !== digest || a.size === undefined) deps.onLocked(a.name, digest, size);
        // The digest was unknown when planning: the file there now is looked at again.
        const { output: action, observed } = p.output === 'check' ? await recheck(p, digest, size) : p;
        if (action === 'none' || action === 'conflict') {
          await writer.abort();
          if (action === 'conflict') {
            output = 'conflict';
            error = conflictOf(target, a.name, observed.outputReason);
          }
        } else {
          await writer.publish();
          output = 'written';
        }
      } catch (err) {
        await writer?.abort();
        blob = blob === 'downloaded' ? blob : 'failed';
        output = blob === 'failed' ? 'skipped' : 'failed';
        if (blob === 'failed') bytesDownloaded = transfer.moved(a.name);
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
  // its own steps (blob steps, transfers, output steps), so every group of entries that share
  // a blob starts at once, each with as many entries at a time as there are output steps:
  // 40,000 entries of one blob are not 40,000 suspended tasks (they cost memory, and the
  // garbage collector's time to copy them).
  const started: Array<Promise<unknown>> = [];
  if (deps.noStore) started.push(pool(pending, deps.jobs * 2, finish));
  else {
    for (const i of pending) if (!keys.get(plans[i]!)) started.push(finish(i));
    for (const members of groups.values()) started.push(members.length === 1 ? finish(members[0]!) : pool(members, OUTPUT_STEPS(deps.jobs), finish));
  }
  try {
    await Promise.all(started);
  } finally {
    await transfer.flushUrls();
  }
  return results;
}
