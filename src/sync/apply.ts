import { lstatSync } from 'node:fs';
import type { ChecksumAlgorithm, Digest } from '../core/digest.ts';
import { HoardError } from '../core/errors.ts';
import { hashFile } from '../core/hashfile.ts';
import { expandHeaders, redactUrl } from '../download/headers.ts';
import type { Fetcher } from '../download/http.ts';
import type { Artifact } from '../manifest/types.ts';
import type { LinkMethod, Materializer } from '../materialize/materialize.ts';
import { fileFingerprint } from '../store/fingerprint.ts';
import type { Expected, Store } from '../store/store.ts';
import type { BlobOutcome, Emit, ErrorInfo, OutputOutcome, SyncEvent } from './events.ts';
import type { ArtifactPlan } from './plan.ts';
import type { SyncState } from './state.ts';

export interface ApplyDeps {
  store: Store;
  state: SyncState;
  /** Created on first use, so a sync with nothing to download never loads the HTTP client. */
  fetcher: () => Promise<Fetcher>;
  materializer: Materializer;
  outputRoot: string;
  env: Record<string, string | undefined>;
  jobs: number;
  force: boolean;
  emit: Emit;
  /** Called when an unlocked entry's digest becomes known. */
  onLocked: (name: string, digest: Digest, size: number) => void;
  signal?: AbortSignal;
}

export type ArtifactEvent = Extract<SyncEvent, { type: 'artifact' }>;

export function errorInfo(err: unknown): ErrorInfo {
  if (err instanceof HoardError) return { code: err.code, message: err.message, ...(err.hint ? { hint: err.hint } : {}) };
  const e = err as NodeJS.ErrnoException;
  return { code: e?.code ?? 'E_INTERNAL', message: e?.message ?? String(err) };
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

  const download = async (a: Artifact, expected: Expected, reason: 'missing' | 'corrupt' | 'force' | 'unlocked', replace: boolean) => {
    const fetcher = await deps.fetcher();
    const headers = expandHeaders(a.headers, deps.env, a.name);
    const origin = new URL(a.url).origin;
    const sources = [a.url, ...a.mirrors];
    const algorithms = Object.keys(a.checksums) as ChecksumAlgorithm[];
    let lastError: unknown;
    for (const [i, url] of sources.entries()) {
      emit({ type: 'download', name: a.name, url: redactUrl(url), size: expected.size ?? null, reason });
      const writer = await store.createWriter(algorithms);
      try {
        const { bytes } = await fetcher.fetch(
          { url, headers: new URL(url).origin === origin ? headers : {} },
          writer,
          (p) => emit({ type: 'progress', name: a.name, received: p.received, total: p.total ?? expected.size ?? null }),
          deps.signal,
        );
        const digest = await writer.commit(expected, { replace });
        return { digest, size: writer.bytesWritten, bytes };
      } catch (err) {
        await writer.abort();
        lastError = err;
        if (err instanceof HoardError && err.code === 'E_INTEGRITY') {
          (err as HoardError & { details: Record<string, unknown> }).details.url = redactUrl(url);
          err.message = `${redactUrl(url)} sent other bytes than expected: ${err.message.replace(/^download is /, '')}`;
        }
        if (err instanceof HoardError && err.code === 'E_INTERRUPTED') throw err;
        if (i < sources.length - 1) emit({ type: 'warning', name: a.name, message: `${errorInfo(err).message}; trying the next mirror` });
      }
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
        const r = await download(a, expected, 'unlocked', false);
        digest = r.digest;
        size = r.size;
        bytesDownloaded = r.bytes;
        blob = 'downloaded';
      } else if (p.blob !== 'none') {
        const d = a.digest!;
        const release = await store.lock(d, (info) =>
          emit({ type: 'waiting', name: a.name, lockFile: info.file, holder: info.owner ? `pid ${info.owner.pid} on ${info.owner.host}` : 'unknown' }),
        );
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
            const r = await download(a, expected, why, p.blob === 'force');
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
      return event({ error: errorInfo(err) });
    }

    // 2. The output file.
    try {
      let action = p.output;
      if (action === 'check') {
        // The digest was unknown when planning; compare the file that is there now.
        const found = (await hashFile(target)).digest;
        action = found === digest || p.observed.ours ? 'relink' : deps.force ? 'replace' : 'conflict';
      }
      if (action === 'conflict') {
        output = 'conflict';
        return event({
          error: {
            code: 'E_CONFLICT',
            message: `${target} differs from ${a.name}: ${p.observed.outputReason ?? 'someone else\'s file'}`,
            hint: 'move the file away, or run `hoard sync --force` to replace it',
          },
        });
      }
      if (action === 'none') {
        if (p.observed.outputFp) deps.state.outputs.set(target, { digest: digest!, fp: p.observed.outputFp });
        output = 'present';
        return event();
      }
      const r = await deps.materializer.materialize({
        blob: store.blobPath(digest!),
        outputRoot: deps.outputRoot,
        relPath: a.path,
        link: a.link,
        executable: a.executable,
      });
      method = r.method;
      deps.state.outputs.set(target, { digest: digest!, fp: fileFingerprint(lstatSync(target)) });
      output = action === 'link' ? 'linked' : action === 'replace' ? 'replaced' : 'relinked';
      return event();
    } catch (err) {
      output = 'failed';
      return event({ error: errorInfo(err) });
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
      blob: 'cached', output: 'present', bytesDownloaded: 0,
    };
    results[i] = ev;
    emit(ev);
  }
  await pool(pending, deps.jobs, async (i) => {
    const ev = await applyOne(plans[i]!);
    results[i] = ev;
    emit(ev);
  });
  return results;
}
