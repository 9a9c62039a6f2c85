import path from 'node:path';
import { errorInfo, HoardError } from '../core/errors.ts';
import type { FetcherOptions } from '../download/http.ts';
import { isInside } from '../core/fsutil.ts';
import { DEFAULT_OUTPUT, resolveArtifacts } from '../manifest/load.ts';
import type { Artifact, LinkMode, Manifest } from '../manifest/types.ts';
import { commitManifest, type ManifestChange } from '../manifest/commit.ts';
import { checkInside, createMaterializer } from '../materialize/materialize.ts';
import type { LockWait } from '../store/lock.ts';
import { openStore, USED_GRANULARITY_MS, type Store } from '../store/store.ts';
import { apply, type ArtifactEvent } from './apply.ts';
import { waitingEvent, type Emit, type SyncEvent } from './events.ts';
import { evict } from './gc.ts';
import { checkArchives, observeImages, type ImageSupport } from './images.ts';
import { observe, type Observed } from './observe.ts';
import { plan, type ArtifactPlan } from './plan.ts';
import { openSyncState, type SyncState } from './state.ts';
import { cacheLocator, checkTeamCache, type Remote } from '../remote/index.ts';
import { createSources, type Sources } from '../sources/index.ts';
import { monotonicMs } from '../core/builtins.ts';

export interface SyncOptions {
  manifest: Manifest;
  storeRoot: string;
  /** The store's sync state, when the caller read it already (to load the manifest). */
  state?: SyncState;
  /** How waits for locks end (Ctrl-C, --lock-timeout); see LockWait. */
  lockWait?: LockWait;
  /** Absolute output folder from --output; otherwise the manifest's `output`. */
  output?: string;
  names?: string[];
  /** 'status' and 'dry-run' plan and report; nothing is written anywhere. Default: 'sync'. */
  mode?: 'sync' | 'status' | 'dry-run';
  force?: boolean;
  frozen?: boolean;
  verify?: boolean;
  /** Every artifact's link mode (--link). */
  link?: LinkMode;
  /** The link mode of artifacts whose entry has no "link" (the user's configuration). */
  defaultLink?: LinkMode;
  jobs?: number;
  env?: Record<string, string | undefined>;
  emit?: Emit;
  /** Container images: how to reach the engine. Absent (--no-images): images are skipped. */
  images?: ImageSupport;
  /** Emit a `check` event for every cache check (--verbose). */
  checks?: boolean;
  /** Retries and timeouts of downloads (defaults: see createFetcher). */
  network?: NetworkOptions;
  signal?: AbortSignal;
  /**
   * The store is disabled (--no-store): artifacts are downloaded straight to their outputs,
   * still verified and written atomically, and nothing is kept or recorded in the store.
   */
  noStore?: boolean;
  /**
   * A size limit for the store (bytes, --max-size): after a sync, blobs are evicted least
   * recently used first until the store fits, except the blobs of this manifest.
   */
  maxSize?: number;
  /**
   * Entries of `manifest.doc` that are not in the file yet (`hoard add`): written, once locked,
   * as additions. Everything else this sync writes is a lock (digest and size) of an entry.
   */
  unsaved?: string[];
  /**
   * The team cache: blobs missing here are looked up there by digest before their url (the
   * caller opens it, and closes it). With `checks`, status says which missing blobs it holds.
   */
  remote?: Remote;
  /** Entries of `manifest.doc` that replace the file's (`hoard update`), by name: the url each has in the file. */
  replacing?: Record<string, string>;
  /**
   * Where artifacts' bytes come from (src/sources/); one per command, so a vendor session is
   * reused. Default: URLs and mirrors, and vendor sources from `env` (ARISTA_TOKEN).
   */
  sources?: Sources;
}

export type NetworkOptions = Pick<FetcherOptions, 'retries' | 'retryDelayMs' | 'connectTimeoutMs' | 'headersTimeoutMs' | 'stallTimeoutMs'>;

export type Summary = Extract<SyncEvent, { type: 'summary' }>;

export interface SyncResult {
  plans: ArtifactPlan[];
  results: ArtifactEvent[];
  summary: Summary;
}

export function outputRootOf(manifest: Manifest, override?: string): string {
  if (override) return path.resolve(override);
  const root = path.resolve(manifest.dir, manifest.doc.output ?? DEFAULT_OUTPUT);
  if (!isInside(manifest.dir, root) || root === manifest.dir) {
    throw new HoardError('E_PATH', `"output" (${manifest.doc.output}) must be a folder inside ${manifest.dir}`, {
      hint: 'use a relative folder such as "artifacts", or pass --output <dir> on the command line',
    });
  }
  return root;
}

export function selectArtifacts(manifest: Manifest, names: string[] = [], link?: LinkMode, defaultLink?: LinkMode): Artifact[] {
  const all = resolveArtifacts(manifest.doc);
  const unknown = names.filter((n) => !(n in manifest.doc.artifacts));
  if (unknown.length > 0) {
    throw new HoardError('E_USAGE', `no artifact named ${unknown.map((n) => `"${n}"`).join(', ')} in ${manifest.file}`, {
      hint: all.length ? `known artifacts: ${all.map((a) => a.name).join(', ')}` : 'the manifest has no artifacts yet; add one with `hoard add <url>`',
    });
  }
  const chosen = names.length ? all.filter((a) => names.includes(a.name)) : all;
  if (link) return chosen.map((a) => ({ ...a, link }));
  // A hard link cannot be executable: such an entry keeps "auto".
  if (defaultLink && defaultLink !== 'auto') {
    return chosen.map((a) => (manifest.doc.artifacts[a.name]!.link || (defaultLink === 'hardlink' && a.executable) ? a : { ...a, link: defaultLink }));
  }
  return chosen;
}

/** The reconcile loop: observe, plan, and (for `sync`) apply. */
export async function sync(opts: SyncOptions): Promise<SyncResult> {
  const started = monotonicMs();
  const startedAt = Date.now();
  const emit: Emit = opts.emit ?? (() => {});
  const { manifest } = opts;
  const artifacts = selectArtifacts(manifest, opts.names, opts.link, opts.defaultLink);
  const outputRoot = outputRootOf(manifest, opts.output);
  // Before anything is written: no output folder may lead out of the project through a symlink.
  const outputBoundary = opts.output ? outputRoot : manifest.dir;
  await checkOutputFolders(outputBoundary, outputRoot, artifacts);

  if (opts.frozen) {
    const unlocked = artifacts.filter((a) => !a.digest);
    if (unlocked.length > 0) {
      throw new HoardError('E_FROZEN', `--frozen, and ${unlocked.map((a) => `"${a.name}"`).join(', ')} ${unlocked.length > 1 ? 'have' : 'has'} no digest in ${manifest.file}`, {
        hint: 'run `hoard sync` without --frozen to lock it, and commit hoard.json',
        details: { artifacts: unlocked.map((a) => a.name) },
      });
    }
  }

  const mode = opts.mode ?? 'sync';
  const store = openStore(opts.storeRoot, opts.lockWait ? { lockWait: opts.lockWait } : {});
  const state = opts.state ?? openSyncState(store.root, store.lockWait);
  const noStore = opts.noStore ?? false;
  emit({ type: 'start', artifacts: artifacts.length, store: store.root, output: outputRoot, dryRun: mode !== 'sync', ...(noStore ? { noStore } : {}) });
  if (mode === 'sync' && !noStore) {
    const known = state.manifests.get(manifest.file);
    if (!known) {
      // Known to gc before anything is linked from the store (see src/sync/gc.ts).
      state.manifests.set(manifest.file, { added: new Date().toISOString(), ...(manifest.stamp ? { valid: manifest.stamp } : {}) });
      await state.manifests.flush();
    } else if (manifest.stamp && known.valid !== manifest.stamp) {
      // Found valid as it is now: the next run only parses it (written with the other state, below).
      state.manifests.set(manifest.file, { ...known, valid: manifest.stamp });
    }
  }

  const ctx = { store, state, outputRoot, verify: opts.verify ?? false, emit, checks: opts.checks ?? false, noStore, blobChecks: new Map() };
  const observed: Array<{ artifact: Artifact; observed: Observed }> = [];
  for (const artifact of artifacts) {
    const o = observe(artifact, ctx);
    observed.push({ artifact, observed: o instanceof Promise ? await o : o });
  }
  // One engine query for all images, only when some artifact has one.
  const img = opts.images ? await observeImages(artifacts, opts.images, state) : null;
  if (img && opts.images) {
    // A file that is here and no engine can take is said so (status, plan), not left to fail on import.
    const observedOf = new Map(observed.map((x) => [x.artifact, x.observed]));
    await checkArchives(artifacts.map((a) => ({ artifact: a, image: img.images.get(a.name) })), opts.images, state, (a) => {
      const o = observedOf.get(a)!;
      const shown = `${a.name}'s file ${path.relative(process.cwd(), o.target) || o.target}`;
      if (o.blob === 'ok') return { file: store.blobPath(a.digest!), shown };
      return noStore && o.output === 'ok' ? { file: o.target, shown } : null;
    });
  }
  if (img?.error) emit({ type: 'warning', code: img.error.code, message: `container images: ${img.error.message}`, ...(img.error.hint ? { hint: img.error.hint } : {}) });
  if (img && opts.checks) {
    for (const [name, o] of img.images) emit({ type: 'check', name, subject: 'image', path: o.info?.ref ?? '', result: o.reason ? `${o.state}: ${o.reason}` : o.state });
  }
  const plans = plan(
    img ? observed.map((o) => ({ ...o, ...(img.images.has(o.artifact.name) ? { image: img.images.get(o.artifact.name)! } : {}) })) : observed,
    { force: opts.force ?? false, noStore },
  );

  const summary: Summary = {
    type: 'summary', artifacts: artifacts.length, hits: 0, misses: 0, failed: 0, conflicts: 0,
    bytesDownloaded: 0, bytesSaved: 0, elapsedMs: 0, manifestUpdated: false, imagesPresent: 0, imagesImported: 0,
  };

  if (mode !== 'sync') {
    if (opts.remote && opts.checks && !noStore) await checkRemote(opts.remote, plans, emit);
    for (const p of plans) {
      emit({
        type: 'plan', name: p.artifact.name, path: p.artifact.path, inSync: p.inSync, blob: p.blob, output: p.output,
        ...(p.artifact.digest ? { digest: p.artifact.digest } : {}),
        ...(p.artifact.size !== undefined ? { size: p.artifact.size } : {}),
        ...(p.observed.blobReason ? { blobReason: p.observed.blobReason } : {}),
        ...(p.observed.outputReason ? { outputReason: p.observed.outputReason } : {}),
        ...(p.artifact.image && opts.images ? { image: p.image, imageRef: p.artifact.image } : {}),
        ...(p.imageReason ? { imageReason: p.imageReason } : {}),
      });
      if (p.image === 'unavailable' || p.image === 'not-archive') summary.failed++;
      if (p.artifact.image && opts.images && p.image === 'none') summary.imagesPresent++;
      if (p.output === 'conflict') summary.conflicts++;
    }
    summary.outOfSync = plans.filter((p) => !p.inSync).length;
    summary.elapsedMs = Math.round(monotonicMs() - started);
    emit(summary);
    return { plans, results: [], summary };
  }

  // What this run changes in hoard.json, committed at the end to the file as it is then.
  const changes: ManifestChange[] = [];
  const unsaved = new Set(opts.unsaved ?? []);
  const lazy: { fetcher: Promise<import('../download/http.ts').Fetcher> | null } = { fetcher: null };
  let results: ArtifactEvent[] = [];
  // Blobs downloaded by this sync stay pinned until hoard.json names them (gc leaves them alone).
  const pins: Array<() => Promise<void>> = [];
  // Made on first use: a sync with nothing to download never builds one.
  let sources: Sources | undefined = opts.sources;
  try {
    results = await apply(plans, {
      store, state, outputRoot, outputBoundary,
      fetcher: () => (lazy.fetcher ??= import('../download/http.ts').then((m) => m.createFetcher({ ...opts.network, env: opts.env ?? {} }))),
      materializer: createMaterializer(),
      ...(opts.images && img ? { images: { support: opts.images, engine: img.engine, error: img.error } } : {}),
      env: opts.env ?? {},
      jobs: opts.jobs ?? 4,
      force: opts.force ?? false,
      emit,
      ...(opts.signal ? { signal: opts.signal } : {}),
      noStore,
      ...(opts.remote ? { cache: cacheLocator(opts.remote, emit) } : {}),
      startedAt,
      candidates: (a) => (sources ??= createSources({ env: opts.env ?? {}, storeRoot: noStore ? null : store.root, ...(opts.signal ? { signal: opts.signal } : {}) })).candidates(a),
      beforePublish: async (digest, locked) => {
        pins.push(await store.pin(digest, { locked }));
      },
      // A vendor file found under a new locator: recorded like a lock (not with --frozen).
      onMoved: (name, moved) => {
        const entry = manifest.doc.artifacts[name];
        if (entry?.arista?.path === moved.from) changes.push({ kind: 'relocate', name, url: entry.url, ...moved });
      },
      onLocked: (name, digest, size) => {
        const entry = manifest.doc.artifacts[name]!;
        const from = opts.replacing?.[name];
        changes.push(
          unsaved.has(name) ? { kind: 'add', name, entry: { ...entry, digest, size } }
            : from !== undefined ? { kind: 'replace', name, from, entry: { ...entry, digest, size } }
            : { kind: 'lock', name, url: entry.url, digest, size },
        );
      },
    });
  } finally {
    if (lazy.fetcher) await (await lazy.fetcher).close().catch(() => {});
    // Whatever happened, keep what was verified and what was locked.
    // --frozen never writes hoard.json (an entry with a digest but no size stays as it is).
    if (changes.length > 0 && !opts.frozen) {
      try {
        const c = await commitManifest(manifest.file, changes, {
          ...store.lockWait,
          onWait: (info) => emit(waitingEvent(changes[0]!.name, info)),
        });
        manifest.doc = c.doc;
        manifest.text = c.text;
        summary.manifestUpdated = c.written;
        for (const x of c.applied) {
          if (x.kind === 'relocate' && c.written) {
            emit({ type: 'warning', name: x.name, message: `Arista no longer has ${x.url.replace(/^arista:/, '')} at its recorded path; ${path.basename(manifest.file)} now records arista.path ${x.to}`, hint: `commit ${path.basename(manifest.file)} so that your team's syncs find it there too` });
          }
        }
        for (const x of c.conflicts) {
          emit({ type: 'warning', name: x.name, message: x.message, hint: `look at ${path.basename(manifest.file)} (git diff), then run \`hoard sync ${x.name}\` again` });
        }
        if (c.conflicts.length > 0) summary.manifestConflicts = c.conflicts.length;
      } catch (err) {
        // hoard.json made invalid meanwhile: the manifest's own error (exit 2), as for any command.
        if (err instanceof HoardError && err.code === 'E_MANIFEST') throw err;
        // The file cannot be written (a full disk, a folder that refuses new files): the
        // downloads are done and kept in the store; say so, and what was not recorded.
        const e = errorInfo(err);
        const unrecorded = [...new Set(changes.map((x) => x.name))];
        summary.manifestError = {
          ...e,
          message: `${manifest.file} was not updated (${e.message}): the lock of ${unrecorded.map((n) => `"${n}"`).join(', ')} was not recorded`,
          hint: `${e.hint ? `${e.hint}; then ` : ''}run \`hoard sync\` again to record it (the downloads are kept in the store)`,
        };
        emit({ type: 'warning', severity: 'error', code: e.code, message: summary.manifestError.message, hint: summary.manifestError.hint! });
      }
    }
    // With the store disabled, nothing is written there: not even the record of this manifest.
    if (!noStore) {
      markUsed(store, state, manifest.file, results, (opts.names?.length ?? 0) === 0);
      await Promise.all([store.flush(), ...Object.values(state).map((f) => f.flush())]);
    }
    for (const unpin of pins) await unpin();
  }

  for (const r of results) {
    if (r.blob === 'cached' || r.blob === 'adopted') {
      summary.hits++;
      summary.bytesSaved += r.size ?? 0;
    } else if (r.blob === 'downloaded' || r.blob === 'redownloaded') summary.misses++;
    summary.bytesDownloaded += r.bytesDownloaded;
    if (r.fromCache) summary.bytesFromCache = (summary.bytesFromCache ?? 0) + r.bytesDownloaded;
    if (r.blob === 'failed' || r.output === 'failed') summary.failed++;
    if (r.output === 'conflict') summary.conflicts++;
    if (r.image === 'present') summary.imagesPresent++;
    else if (r.image === 'imported' || r.image === 'loaded' || r.image === 'reimported') summary.imagesImported++;
    else if (r.image === 'failed' && r.blob !== 'failed' && r.output !== 'failed') summary.failed++;
  }
  if (opts.maxSize !== undefined) {
    // The blobs this manifest needs are never evicted by its own sync: it would fetch them again next time.
    const protect = new Set<string>(Object.values(manifest.doc.artifacts).flatMap((e) => (e.digest ? [e.digest] : [])));
    for (const r of results) if (r.digest) protect.add(r.digest);
    const r = await evict(store, { maxSize: opts.maxSize, protect, emit });
    summary.evicted = r.evicted;
    summary.bytesEvicted = r.bytesEvicted;
    await store.flush();
  }
  summary.elapsedMs = Math.round(monotonicMs() - started);
  emit(summary);
  return { plans, results, summary };
}

/**
 * The folders outputs go to, as far as they exist: inside the project (`boundary`) and each
 * artifact's folder inside the output folder, symbolic links included (E_PATH otherwise).
 * They are checked again as they are created (prepareTarget).
 */
async function checkOutputFolders(boundary: string, outputRoot: string, artifacts: readonly Artifact[]): Promise<void> {
  const hint = 'remove the link (a repository must not choose where hoard writes), or pass --output <dir> to choose the output folder yourself';
  if (boundary !== outputRoot) await checkInside(boundary, outputRoot, { create: false, hint });
  // (each folder joined once: the entries of a big manifest share a few)
  const rels = new Set(artifacts.map((a) => a.path.slice(0, Math.max(0, a.path.lastIndexOf('/')))));
  const dirs = new Set([...rels].map((rel) => path.join(outputRoot, rel)));
  dirs.delete(outputRoot);
  for (const dir of dirs) await checkInside(outputRoot, dir, { create: false, hint });
}

/**
 * "Used", for LRU eviction: every artifact whose blob is in the store after this sync. Kept
 * cheap: a full sync of a manifest whose blobs were all marked less than USED_GRANULARITY_MS
 * ago does nothing (manifests.json is read anyway; used.json is not even read). Blobs that
 * were downloaded or adopted are marked when published, whatever this says.
 */
function markUsed(store: Store, state: SyncState, file: string, results: readonly ArtifactEvent[], full: boolean): void {
  const now = Date.now();
  const known = state.manifests.get(file);
  if (full && known?.used !== undefined && now - known.used < USED_GRANULARITY_MS && now >= known.used) return;
  for (const r of results) if (r.digest && r.blob !== 'failed') store.markUsed(r.digest, now);
  if (full) state.manifests.set(file, { ...known, added: known?.added ?? new Date(now).toISOString(), used: now });
}

/** status -v: for each blob that would be downloaded, whether the team cache holds it (a `check` event). */
async function checkRemote(remote: Remote, plans: readonly ArtifactPlan[], emit: Emit): Promise<void> {
  const wanted = plans.filter((p) => p.artifact.digest && (p.blob === 'fetch' || p.blob === 'refetch'));
  try {
    await checkTeamCache(remote, wanted.map((p) => ({ name: p.artifact.name, digest: p.artifact.digest! })), emit);
  } catch (err) {
    emit({ type: 'warning', message: `${(err as Error).message}; cannot tell what the team cache holds` });
  }
}
