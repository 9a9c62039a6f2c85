// `hoard fetch <url>`: a cached download without a manifest, over the same store, fetcher and
// materializer as sync. The store keeps a URL → digest index (state/urls.json) so that the
// second fetch of a URL makes no request; --refresh asks the server (ETag / Last-Modified);
// --sha256 lets the digest decide.
import { lstatSync } from 'node:fs';
import path from 'node:path';
import { digestHex, type Digest } from '../core/digest.ts';
import { HoardError, isErrno } from '../core/errors.ts';
import { hashFile } from '../core/hashfile.ts';
import { redactUrl } from '../download/headers.ts';
import type { Fetcher, FetchResult } from '../download/http.ts';
import type { LinkMode } from '../manifest/types.ts';
import { createDirectWriter, type DirectWriter } from '../materialize/direct.ts';
import { createMaterializer, prepareTarget, type LinkMethod } from '../materialize/materialize.ts';
import { fileFingerprint } from '../store/fingerprint.ts';
import type { LockWait } from '../store/lock.ts';
import { openFetchedBlobs, openUrlIndex, urlKey } from '../store/urls.ts';
import { openStore, resumeKeyOf, USED_GRANULARITY_MS, type BlobWriter, type Expected } from '../store/store.ts';
import { retryEvent, type SyncEvent } from '../sync/events.ts';
import { openSyncState } from '../sync/state.ts';

export { openUrlIndex, urlKey, type UrlRecord } from '../store/urls.ts';

export type FetchEvent =
  | Extract<SyncEvent, { type: 'download' | 'progress' | 'retry' | 'warning' }>
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
  url: string;
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
  /** Request headers, already expanded. */
  headers?: Record<string, string>;
  /** Name shown in download and progress events. */
  name: string;
  fetcher: () => Promise<Fetcher>;
  emit?: (e: FetchEvent) => void;
  signal?: AbortSignal;
}

type Fetched = Extract<FetchEvent, { type: 'fetched' }>;

function conflict(target: string, what: string): HoardError {
  return new HoardError('E_CONFLICT', `${target} already exists and ${what}; hoard does not overwrite it`, {
    hint: 'move it away, choose another -o, or pass --force to replace it',
    details: { path: target },
  });
}

/** The download and progress events of one request, and the bytes into `writer`. */
async function request(o: FetchOptions, writer: BlobWriter, headers: Record<string, string>, reason: 'missing' | 'corrupt' | 'refresh', size: number | null): Promise<FetchResult> {
  const emit = o.emit ?? (() => {});
  emit({ type: 'download', name: o.name, url: redactUrl(o.url), size, reason });
  const fetcher = await o.fetcher();
  return fetcher.fetch({ url: o.url, headers: { ...o.headers, ...headers } }, writer, {
    onProgress: (p) => emit({ type: 'progress', name: o.name, received: p.received, total: p.total ?? size }),
    onRetry: (r) => emit(retryEvent(o.name, redactUrl(o.url), r)),
    ...(o.signal ? { signal: o.signal } : {}),
    verified: o.sha256 !== undefined,
  });
}

function integrity(err: unknown, url: string): unknown {
  if (err instanceof HoardError && err.code === 'E_INTEGRITY') err.message = `${redactUrl(url)} sent other bytes than expected: ${err.message.replace(/^download is /, '')}`;
  return err;
}

export async function fetchUrl(o: FetchOptions): Promise<Fetched> {
  return o.noStore ? fetchDirect(o) : fetchCached(o);
}

async function fetchCached(o: FetchOptions): Promise<Fetched> {
  const emit = o.emit ?? (() => {});
  const store = openStore(o.storeRoot, o.lockWait ? { lockWait: o.lockWait } : {});
  const index = openUrlIndex(store.root, store.lockWait);
  const fetched = openFetchedBlobs(store.root, store.lockWait);
  const outputs = openSyncState(store.root, store.lockWait).outputs;
  const key = urlKey(o.url);
  const record = index.get(key);
  let digest: Digest | null = null;
  let result: Fetched['result'] = 'cached';
  let bytesDownloaded = 0;
  let reason: 'missing' | 'corrupt' | 'refresh' = 'missing';

  /** The blob, when the store has it intact; a corrupt one is removed. */
  const have = async (d: Digest, size?: number): Promise<boolean> => {
    const c = await store.check(d, size !== undefined ? { size } : {});
    if (c.state === 'corrupt') {
      emit({ type: 'warning', name: o.name, message: `blob ${d} is corrupt (${c.reason}): removed, downloading again` });
      await store.remove(d);
      reason = 'corrupt';
    }
    return c.state === 'ok';
  };

  try {
    // 1. What the store already has: the digest asked for, or what this URL served last.
    let conditional: Record<string, string> = {};
    if (o.sha256) {
      if (await have(o.sha256)) digest = o.sha256;
    } else if (record && (await have(record.digest, record.size))) {
      if (!o.refresh) digest = record.digest;
      else {
        reason = 'refresh';
        if (record.etag) conditional['if-none-match'] = record.etag;
        if (record.lastModified) conditional['if-modified-since'] = record.lastModified;
      }
    }

    // 2. A request, when needed.
    if (!digest) {
      const expected: Expected = o.sha256 ? { digest: o.sha256 } : {};
      // An interrupted fetch continues from tmp/<key>.partial, under the key's lock.
      const resumeKey = resumeKeyOf(o.sha256, o.url);
      const release = await store.lock(`sha256:${resumeKey}`);
      try {
        // Another process may have fetched it while we waited for the lock.
        if (o.sha256 && (await have(o.sha256))) digest = o.sha256;
        else {
          const writer = await store.createWriter([], { resumeKey });
          let r: FetchResult;
          try {
            r = await request(o, writer, conditional, reason, null);
            if (r.notModified && record && Object.keys(conditional).length > 0) {
              await writer.abort();
              digest = record.digest;
              result = 'not-modified';
            } else if (r.notModified) {
              throw new HoardError('E_HTTP', `GET ${redactUrl(o.url)}: HTTP 304 to a request that was not conditional`);
            } else {
              digest = await writer.commit(expected);
              result = 'downloaded';
              bytesDownloaded = r.bytes;
            }
          } catch (err) {
            // What arrived stays for the next fetch, unless it is what was wrong.
            await writer.abort({ keep: !(err instanceof HoardError && (err.code === 'E_INTEGRITY' || err.code === 'E_STORE')) });
            throw integrity(err, o.url);
          }
          const size = result === 'downloaded' ? writer.bytesWritten : record!.size;
          // A 304 may leave the validators out: the recorded ones still hold then.
          const etag = r.etag ?? (result === 'not-modified' ? record?.etag : undefined);
          const lastModified = r.lastModified ?? (result === 'not-modified' ? record?.lastModified : undefined);
          index.set(key, {
            url: redactUrl(o.url), digest, size, ...(etag ? { etag } : {}), ...(lastModified ? { lastModified } : {}), checked: new Date().toISOString(),
          });
        }
      } finally {
        await release?.();
      }
    }

    // A use, whether downloaded or cached: gc keeps the blob for the fetch retention after it.
    const now = Date.now();
    store.markUsed(digest, now);
    if (now - (fetched.get(digestHex(digest)) ?? 0) >= USED_GRANULARITY_MS) fetched.set(digestHex(digest), now);
    const blob = store.blobPath(digest);
    const size = lstatSync(blob).size;
    const done: Fetched = { type: 'fetched', url: redactUrl(o.url), digest, size, path: blob, result, bytesDownloaded };
    if (!o.output) return done;

    // 3. The output file: made from the blob, unless it already has this content.
    const target = path.resolve(o.output);
    const link = o.link ?? 'auto';
    const executable = o.executable ?? false;
    const lst = lstatSync(target, { throwIfNoEntry: false });
    let action: 'link' | 'relink' | 'replace' | 'none' = 'link';
    if (lst && !lst.isFile()) {
      if (lst.isDirectory()) throw new HoardError('E_CONFLICT', `${target} is a folder`, { hint: 'give -o a file name (inside the folder, if that is where it should go)' });
      if (!o.force) throw conflict(target, lst.isSymbolicLink() ? 'is a symbolic link' : 'is not a regular file');
      action = 'replace';
    } else if (lst) {
      // hoard's own file: unchanged since it was written (fingerprint), or still holding what it wrote
      // (a hard link's ctime changes when the blob is linked elsewhere).
      const rec = outputs.get(target);
      const content = rec && rec.fp === fileFingerprint(lst) ? rec.digest : (await hashFile(target)).digest;
      const ours = rec !== undefined && content === rec.digest;
      const modeOk = ((lst.mode & 0o111) !== 0) === executable;
      const sharesBlob = lst.ino === lstatSync(blob).ino;
      const linkOk = !sharesBlob || link === 'auto' || link === 'hardlink';
      if (content === digest && modeOk && linkOk) action = 'none';
      else if (content === digest || ours) action = 'relink';
      else if (o.force) action = 'replace';
      else throw conflict(target, 'has other content (hoard did not write it, or it was changed since)');
    }
    if (action === 'none') return { ...done, path: target, output: 'present' };
    const d = digest;
    const made = await store.linking([d], () => createMaterializer().materialize({ blob, outputRoot: path.dirname(target), relPath: path.basename(target), link, executable, digest: d }));
    outputs.set(target, { digest, fp: fileFingerprint(lstatSync(target)) });
    return { ...done, path: target, output: action === 'link' ? 'linked' : action === 'relink' ? 'relinked' : 'replaced', method: made.method };
  } finally {
    await Promise.all([store.flush(), index.flush(), fetched.flush(), outputs.flush()]);
  }
}

/** The store is disabled: a temp file beside the output, verified, renamed; nothing kept. */
async function fetchDirect(o: FetchOptions): Promise<Fetched> {
  if (!o.output) {
    throw new HoardError('E_USAGE', 'the store is disabled, so hoard fetch has nowhere to keep the file: give -o FILE', {
      hint: 'pass -o FILE, or use the store for this command (HOARD_NO_STORE=0)',
    });
  }
  const target = path.resolve(o.output);
  const executable = o.executable ?? false;
  const done = (digest: Digest, size: number, result: Fetched['result'], bytesDownloaded: number, output: Fetched['output']): Fetched => ({
    type: 'fetched', url: redactUrl(o.url), digest, size, path: target, result, bytesDownloaded, output,
  });
  const lst = lstatSync(target, { throwIfNoEntry: false });
  if (lst?.isDirectory()) throw new HoardError('E_CONFLICT', `${target} is a folder`, { hint: 'give -o a file name (inside the folder, if that is where it should go)' });
  if (lst && !lst.isFile() && !o.force) throw conflict(target, 'is not a regular file');
  // What is there already, when it matters: with --sha256 a file that has it needs no request.
  const existing = lst?.isFile() ? (await hashFile(target)).digest : null;
  const modeOk = lst ? ((lst.mode & 0o111) !== 0) === executable : false;
  if (o.sha256 && existing === o.sha256 && modeOk) return done(existing, lst!.size, 'cached', 0, 'present');

  await prepareTarget(path.dirname(target), path.basename(target));
  let writer: DirectWriter | null = null;
  try {
    writer = await createDirectWriter(target, [], executable);
    const r = await request(o, writer, {}, 'missing', null);
    const digest = await writer.verify(o.sha256 ? { digest: o.sha256 } : {});
    const size = writer.bytesWritten;
    if (existing === digest && modeOk) {
      await writer.abort();
      return done(digest, size, 'downloaded', r.bytes, 'present');
    }
    if (lst && existing !== digest && !o.force) throw conflict(target, 'has other content; with the store disabled hoard keeps no record of what it wrote');
    await writer.publish();
    return done(digest, size, 'downloaded', r.bytes, lst ? 'replaced' : 'written');
  } catch (err) {
    await writer?.abort();
    throw isErrno(err, 'EISDIR') ? conflict(target, 'is a folder') : integrity(err, o.url);
  }
}
