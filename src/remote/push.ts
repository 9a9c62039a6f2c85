// hoard push: the store's blobs into the team cache, each anchored by its artifact manifest.
import type { Digest } from '../core/digest.ts';
import { errorInfo } from '../core/errors.ts';
import { pool } from '../sync/concurrency.ts';
import type { Emit, SyncEvent } from '../sync/events.ts';
import type { Remote } from './index.ts';
import { tagOf } from './ref.ts';
import { monotonicMs } from '../core/builtins.ts';

export interface PushItem {
  /** The artifact's name (the first of them, when several share a blob). */
  name: string;
  digest: Digest;
  size: number;
  /** The blob's file in the store. */
  file: string;
  /** The artifact's file name: the layer's org.opencontainers.image.title. */
  title: string;
}

export type PushSummary = Extract<SyncEvent, { type: 'push-summary' }>;

/** HEADs are cheap: this many at a time, whatever --jobs says for uploads. */
const CHECKS = 16;
/**
 * From this many blobs on, one read of the repository's tag list says which are anchored,
 * instead of a HEAD each (undici closes the connection after every HEAD: a HEAD each is a new
 * connection, and a TLS handshake, each).
 */
const LIST_FROM = 8;

/**
 * Pushes what the remote lacks: which anchors (tags `sha256-<hex>`) are there first, from the
 * repository's tag list or a HEAD each, in parallel; then, `jobs` at a time, the blob (unless
 * the registry has it, or can mount it) and its anchor. One item's failure does not stop the others.
 */
export async function push(remote: Remote, items: readonly PushItem[], o: { jobs: number; emit: Emit; signal?: AbortSignal; skipped?: number }): Promise<PushSummary> {
  const started = monotonicMs();
  const summary: PushSummary = {
    type: 'push-summary', remote: remote.ref.spec, pushed: 0, mounted: 0, present: 0, failed: 0, skipped: o.skipped ?? 0, bytesPushed: 0, elapsedMs: 0,
  };
  // One push per blob, however many artifacts share it.
  const unique = [...new Map(items.map((i) => [i.digest, i])).values()];
  const done = (item: PushItem, outcome: 'pushed' | 'mounted' | 'present' | 'failed', bytes = 0, err?: unknown) => {
    if (outcome === 'pushed') summary.pushed++;
    else if (outcome === 'mounted') summary.mounted++;
    else if (outcome === 'present') summary.present++;
    else summary.failed++;
    summary.bytesPushed += bytes;
    o.emit({ type: 'pushed', name: item.name, digest: item.digest, outcome, bytes, ...(err !== undefined ? { error: errorInfo(err) } : {}) });
  };

  const client = await remote.client();
  // An error that says the registry cannot be used at all (down, refused the credentials)
  // ends the push: the same error for every other blob helps nobody.
  let fatal: unknown = null;
  const isFatal = (err: unknown) => ['E_NETWORK', 'E_AUTH', 'E_INTERRUPTED'].includes((err as { code?: string }).code ?? '');

  const check = async (item: PushItem): Promise<boolean | null> => {
    if (fatal) return null;
    try {
      return await client.hasAnchor(item.digest);
    } catch (err) {
      if (isFatal(err)) fatal ??= err;
      else done(item, 'failed', 0, err);
      return null;
    }
  };
  let listed: Set<string> | null = null;
  if (unique.length >= LIST_FROM) {
    try {
      listed = await client.anchors();
    } catch (err) {
      // (A registry that cannot be used at all ends the push; another failure: a HEAD each.)
      if (isFatal(err)) throw err;
    }
  }
  // The first alone: it answers the registry's challenge (one token), then the rest in parallel.
  const anchored = listed
    ? unique.map((item) => listed.has(tagOf(item.digest)))
    : unique.length ? [await check(unique[0]!), ...(await pool(unique.slice(1), CHECKS, check))] : [];
  const todo: PushItem[] = [];
  for (const [i, item] of unique.entries()) {
    if (anchored[i] === true) done(item, 'present');
    else if (anchored[i] === false) todo.push(item);
  }

  await pool(todo, o.jobs, async (item) => {
    if (fatal || o.signal?.aborted) return;
    try {
      let outcome: 'pushed' | 'mounted' | 'present' = 'present';
      let bytes = 0;
      if (!(await client.hasBlob(item.digest))) {
        o.emit({ type: 'upload', name: item.name, url: `${remote.ref.spec}@${item.digest}`, size: item.size });
        const how = await client.uploadBlob(item.file, item.digest, item.size, {
          onProgress: (sent) => o.emit({ type: 'progress', name: item.name, received: sent, total: item.size }),
          ...(o.signal ? { signal: o.signal } : {}),
        });
        outcome = how === 'mounted' ? 'mounted' : how === 'uploaded' ? 'pushed' : 'present';
        if (how === 'uploaded') bytes = item.size;
      }
      await client.putAnchor({ digest: item.digest, size: item.size, title: item.title });
      done(item, outcome, bytes);
    } catch (err) {
      if (isFatal(err)) fatal ??= err;
      else done(item, 'failed', 0, err);
    }
  });
  // The registry cannot be used at all: that one error is the command's.
  if (fatal) throw fatal;
  return finish(summary, started);
}

function finish(summary: PushSummary, started: number): PushSummary {
  summary.elapsedMs = Math.round(monotonicMs() - started);
  return summary;
}
