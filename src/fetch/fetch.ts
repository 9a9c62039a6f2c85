// `hoard fetch <url>`: a cached download without a manifest. It is a one-artifact sync: the
// artifact is made from the command line, observed and planned like any entry (src/sync/plan.ts),
// and applied by the one pipeline (src/sync/apply.ts → transfer.ts): the same candidates (a URL,
// or a vendor's `arista:<file>`), resume lock, corrupt-blob warning, output classification and,
// with the store disabled, the same direct writer. What is fetch's own: the URL → digest index
// (state/urls.json) that answers a second fetch without a request, --refresh (ETag /
// Last-Modified, a 304 keeps the stored copy), and --sha256 (the digest decides).
import path from 'node:path';
import { digestHex, type Checksums, type Digest } from '../core/digest.ts';
import { HoardError, type ErrorCode, type ErrorInfo } from '../core/errors.ts';
import { redactUrl } from '../download/headers.ts';
import type { Fetcher } from '../download/http.ts';
import type { Artifact, LinkMode } from '../manifest/types.ts';
import { createMaterializer, type LinkMethod } from '../materialize/materialize.ts';
import { createSources, isVendorUrl, type Candidate, type Sources } from '../sources/index.ts';
import { urlCandidate } from '../sources/types.ts';
import type { LockWait } from '../store/lock.ts';
import { openFetchedBlobs, openUrlIndex, urlKey } from '../store/urls.ts';
import { openStore, USED_GRANULARITY_MS } from '../store/store.ts';
import { apply } from '../sync/apply.ts';
import type { SyncEvent } from '../sync/events.ts';
import { observe } from '../sync/observe.ts';
import { plan } from '../sync/plan.ts';
import { openSyncState } from '../sync/state.ts';
import { blobIntact } from '../sync/transfer.ts';

export { openUrlIndex, urlKey, type UrlRecord } from '../store/urls.ts';

export type FetchEvent =
  | Extract<SyncEvent, { type: 'download' | 'progress' | 'retry' | 'warning' | 'waiting' }>
  | {
      type: 'fetched';
      url: string;
      digest: Digest;
      size: number;
      /** The output file (-o), or the blob in the store. */
      path: string;
      /** cached: no request; not-modified: the server answered 304 to --refresh; downloaded. */
      result: 'cached' | 'not-modified' | 'downloaded';
      bytesDownloaded: number;
      /** With -o: what happened to the file. */
      output?: 'linked' | 'relinked' | 'replaced' | 'present' | 'written';
      method?: LinkMethod;
    };

export interface FetchOptions {
  /** An http(s) URL, or a vendor's exact file (`arista:cEOS-lab-4.32.1F.tar.xz`). */
  url: string;
  /** A vendor file's locator, when already resolved (`arista:cEOS@4.32.1F` → its path). */
  arista?: { path: string };
  storeRoot: string;
  /** How waits for locks end (Ctrl-C, --lock-timeout); see LockWait. */
  lockWait?: LockWait;
  /** The store is disabled: download straight to `output` (required then), keep nothing. */
  noStore?: boolean;
  /** Absolute path of the file to write (-o); without it the blob's path is the result. */
  output?: string;
  sha256?: Digest;
  /** Ask the server whether the URL changed since it was last fetched. */
  refresh?: boolean;
  /** Replace a file at `output` that is not hoard's and differs. */
  force?: boolean;
  link?: LinkMode;
  executable?: boolean;
  /** Request headers, already expanded (sent to the URL's origin only). */
  headers?: Record<string, string>;
  /** Name shown in download and progress events. */
  name: string;
  fetcher: () => Promise<Fetcher>;
  /** The environment: a vendor source's token (ARISTA_TOKEN) and API base (HOARD_ARISTA_URL). */
  env?: Record<string, string | undefined>;
  /** Checksums the bytes must also match, asked for only when something is downloaded (a vendor's published sha512). */
  checksums?: () => Promise<Checksums>;
  /** The vendor sources of this command (made on first use otherwise). */
  sources?: Sources;
  emit?: (e: FetchEvent) => void;
  signal?: AbortSignal;
}

type Fetched = Extract<FetchEvent, { type: 'fetched' }>;

/** An output in the way of -o, in fetch's words (it has -o and --force, not a manifest). */
function conflictInfo(noStore: boolean) {
  return (target: string, _name: string, reason: string | undefined): ErrorInfo => {
    if (reason === 'a folder') return { code: 'E_CONFLICT', message: `${target} is a folder`, hint: 'give -o a file name (inside the folder, if that is where it should go)' };
    const what = reason === 'a symbolic link' || reason === 'not a regular file' ? `is ${reason}` : `has other content (${reason ?? "someone else's file"})`;
    return {
      code: 'E_CONFLICT',
      message: `${target} already exists and ${what}; hoard does not overwrite it${noStore ? ' (with the store disabled hoard keeps no record of what it wrote)' : ''}`,
      hint: 'move it away, choose another -o, or pass --force to replace it',
    };
  };
}

/** An artifact event's error as the error this command ends with. */
function failure(e: ErrorInfo): HoardError {
  return new HoardError(e.code as ErrorCode, e.message, e.hint ? { hint: e.hint } : {});
}

export async function fetchUrl(o: FetchOptions): Promise<Fetched> {
  const noStore = o.noStore ?? false;
  if (noStore && !o.output) {
    throw new HoardError('E_USAGE', 'the store is disabled, so hoard fetch has nowhere to keep the file: give -o FILE', {
      hint: 'pass -o FILE, or use the store for this command (HOARD_NO_STORE=0)',
    });
  }
  const emit = o.emit ?? (() => {});
  // Only the transfer's own events reach the caller; the artifact event becomes `fetched`.
  const forward = (e: SyncEvent) => {
    if (e.type === 'download' || e.type === 'progress' || e.type === 'retry' || e.type === 'warning' || e.type === 'waiting') emit(e);
  };
  const store = openStore(o.storeRoot, o.lockWait ? { lockWait: o.lockWait } : {});
  const state = openSyncState(store.root, store.lockWait);
  const index = openUrlIndex(store.root, store.lockWait);
  const fetched = openFetchedBlobs(store.root, store.lockWait);
  const target = o.output ? path.resolve(o.output) : null;
  const vendor = isVendorUrl(o.url);
  let sources = o.sources;

  try {
    // 1. What the store already has: the digest asked for, or what this URL served last (when
    //    it is intact: a corrupt one is removed, and the URL asked again).
    let digest = o.sha256;
    let size: number | undefined;
    let unchanged: Candidate['unchanged'];
    const record = o.sha256 || noStore ? undefined : index.get(urlKey(o.url));
    if (record && (await blobIntact(store, forward, o.name, record.digest, { size: record.size })).ok) {
      if (!o.refresh) {
        digest = record.digest;
        size = record.size;
      } else if (!vendor && (record.etag || record.lastModified)) {
        unchanged = { digest: record.digest, size: record.size, ...(record.etag ? { etag: record.etag } : {}), ...(record.lastModified ? { lastModified: record.lastModified } : {}) };
      }
    }

    // 2. One artifact, observed and planned as sync would (no output without -o).
    let artifact: Artifact = {
      name: o.name, url: o.url, mirrors: [], path: target ? path.basename(target) : '', checksums: {}, headers: o.headers ?? {},
      link: o.link ?? 'auto', executable: o.executable ?? false,
      ...(o.arista ? { arista: o.arista } : {}), ...(digest ? { digest } : {}), ...(size !== undefined ? { size } : {}),
    };
    const outputRoot = target ? path.dirname(target) : null;
    const observed = await observe(artifact, { store, state, outputRoot, verify: false, emit: forward, noStore });
    const force = { force: false, replace: o.force ?? false };
    let [p] = plan([{ artifact, observed }], { ...force, noStore });
    if (o.checksums && p!.blob !== 'none') {
      // A download: what it must match besides the digest (no request for it otherwise).
      artifact = { ...artifact, checksums: await o.checksums() };
      [p] = plan([{ artifact, observed }], { ...force, noStore });
    }

    // 3. Applied by the one pipeline: a conditional request when --refresh has validators.
    const conditional = {
      ...(unchanged?.etag ? { 'if-none-match': unchanged.etag } : {}),
      ...(unchanged?.lastModified ? { 'if-modified-since': unchanged.lastModified } : {}),
    };
    const [ev] = await apply([p!], {
      store, state, outputRoot: outputRoot ?? store.root, fetcher: o.fetcher, materializer: createMaterializer(),
      env: o.env ?? {}, jobs: 1, ...force, emit: forward, noStore, startedAt: Date.now(),
      ...(o.signal ? { signal: o.signal } : {}),
      conflict: conflictInfo(noStore),
      onLocked: () => {},
      candidates: async (a) => {
        if (vendor) return (sources ??= createSources({ env: o.env ?? {}, storeRoot: noStore ? null : store.root, ...(o.signal ? { signal: o.signal } : {}) })).candidates(a);
        const c = urlCandidate(a.url, { ...a.headers, ...conditional });
        return [unchanged ? { ...c, unchanged } : c];
      },
    });
    if (ev!.error && (ev!.blob === 'failed' || ev!.output === 'conflict' || ev!.output === 'failed')) throw failure(ev!.error);
    const d = ev!.digest!;
    if (!noStore) {
      // A use, whether downloaded or cached: gc keeps the blob for the fetch retention after it.
      const now = Date.now();
      store.markUsed(d, now);
      if (now - (fetched.get(digestHex(d)) ?? 0) >= USED_GRANULARITY_MS) fetched.set(digestHex(d), now);
    }
    const done: Fetched = {
      type: 'fetched', url: redactUrl(o.url), digest: d, size: ev!.size!, path: target ?? store.blobPath(d),
      result: ev!.blob === 'downloaded' || ev!.blob === 'redownloaded' ? 'downloaded' : ev!.notModified ? 'not-modified' : 'cached',
      bytesDownloaded: ev!.bytesDownloaded,
    };
    if (!target || ev!.output === 'skipped' || ev!.output === 'conflict' || ev!.output === 'failed') return done;
    return { ...done, output: ev!.output, ...(ev!.method ? { method: ev!.method } : {}) };
  } finally {
    if (!noStore) await Promise.all([store.flush(), index.flush(), fetched.flush(), state.outputs.flush()]);
  }
}
