// The team cache as the rest of hoard sees it. Light: the registry client (and undici) is
// loaded on first use, so a sync that finds everything in the local store never loads it.
import type { Digest } from '../core/digest.ts';
import type { Source } from '../download/http.ts';
import type { Emit } from '../sync/events.ts';
import type { ClientOptions, RegistryClient } from './client.ts';
import type { RemoteRef, RemoteSettings } from './ref.ts';

export interface Remote {
  readonly ref: RemoteRef;
  client(): Promise<RegistryClient>;
  close(): Promise<void>;
}

export function openRemote(ref: RemoteRef, o: Omit<ClientOptions, 'ref' | 'settings'> & { settings?: RemoteSettings }): Remote {
  let made: Promise<RegistryClient> | null = null;
  return {
    ref,
    client: () => (made ??= import('./client.ts').then((m) => m.createRegistryClient({ ...o, ref }))),
    close: async () => {
      if (made) await (await made).close().catch(() => {});
    },
  };
}

/** Why the remote was not used for one blob; the message of the one warning. */
function reason(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * Sync's read-through: where a blob can be fetched from the team cache, or null (a miss, or
 * the remote failed: one warning, and the artifact's own sources are used). A remote that
 * cannot be reached at all is not asked again by this sync (one warning in all).
 */
export function cacheLocator(remote: Remote, emit: Emit): (name: string, digest: Digest) => Promise<Source | null> {
  let down: string | null = null;
  // The first lookup runs alone: when the registry is down, the artifacts behind it learn
  // that from it (one warning) instead of each trying too.
  let first: Promise<void> | null = null;
  const locate = async (name: string, digest: Digest): Promise<Source | null> => {
    try {
      const source = await (await remote.client()).blobSource(digest);
      if (!source) emit({ type: 'warning', name, message: `not in the team cache ${remote.ref.spec}; downloading from its url` });
      return source;
    } catch (err) {
      const e = err as { code?: string };
      if (e.code === 'E_INTERRUPTED') throw err;
      if (e.code === 'E_NETWORK' || e.code === 'E_AUTH') {
        down = reason(err);
        emit({ type: 'warning', message: `${down}; not using the team cache in this run, downloading from the artifacts' urls`, ...(hintOf(err) ? { hint: hintOf(err)! } : {}) });
      } else emit({ type: 'warning', name, message: `${reason(err)}; downloading from its url` });
      return null;
    }
  };
  return async (name, digest) => {
    if (first) await first;
    if (down) return null;
    const r = locate(name, digest);
    first ??= r.then(() => {}, () => {});
    return r;
  };
}

/**
 * Whether the team cache holds each of these blobs: one `check` event each, with the fact in
 * `inTeamCache` (status -v prints them; hoard ui marks its rows). One HEAD per blob, in order.
 * Throws when the remote cannot be asked (down, refused); stops quietly once `signal` aborts.
 */
export async function checkTeamCache(remote: Remote, blobs: ReadonlyArray<{ name: string; digest: Digest }>, emit: Emit, signal?: AbortSignal): Promise<void> {
  if (blobs.length === 0) return;
  const client = await remote.client();
  for (const b of blobs) {
    if (signal?.aborted) return;
    const there = await client.hasBlob(b.digest, signal ? { signal } : {});
    emit({ type: 'check', name: b.name, subject: 'blob', path: remote.ref.spec, result: there ? 'in the team cache' : 'not in the team cache', inTeamCache: there });
  }
}

function hintOf(err: unknown): string | undefined {
  return (err as { hint?: string }).hint;
}
