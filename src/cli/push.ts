// The team cache on the command line: which remote applies, `hoard push`, and `sync --push`.
import path from 'node:path';
import { EXIT, exitCode, HoardError } from '../core/errors.ts';
import { loadManifest } from '../manifest/load.ts';
import type { Manifest } from '../manifest/types.ts';
import { openRemote, type Remote } from '../remote/index.ts';
import { push, type PushItem } from '../remote/push.ts';
import { parseRemote } from '../remote/ref.ts';
import { openStore } from '../store/store.ts';
import type { ArtifactEvent } from '../sync/apply.ts';
import { selectArtifacts, type NetworkOptions } from '../sync/sync.ts';
import type { GlobalOptions } from './commands.ts';
import type { ResolvedSettings } from './config.ts';
import type { Printer } from './print.ts';

type Env = Record<string, string | undefined>;

/**
 * The team cache that applies, first that is set: --remote (--no-remote: none), HOARD_REMOTE,
 * the manifest's "remote", the configuration file's "remote".
 */
export function teamCacheFor(resolved: ResolvedSettings, env: Env, network: NetworkOptions = {}): (manifest: Manifest) => Remote | null {
  return (manifest) => {
    const { settings, origins } = resolved;
    let value: string | undefined;
    let where: string;
    if (settings.remote === false) return null;
    if (origins.remote.kind === 'flag' || origins.remote.kind === 'env') {
      value = settings.remote;
      where = origins.remote.source;
    } else if (manifest.doc.remote !== undefined) {
      value = manifest.doc.remote;
      where = `"remote" in ${manifest.file}`;
    } else {
      value = settings.remote;
      where = `"remote" in ${resolved.file}`;
    }
    if (value === undefined) return null;
    const ref = parseRemote(value, where, settings.remotes);
    return openRemote(ref, {
      env, settings: settings.remotes[ref.host] ?? {},
      ...(network.connectTimeoutMs ? { connectTimeoutMs: network.connectTimeoutMs } : {}),
      ...(network.headersTimeoutMs ? { headersTimeoutMs: network.headersTimeoutMs } : {}),
      ...(network.stallTimeoutMs ? { stallTimeoutMs: network.stallTimeoutMs } : {}),
    });
  };
}

function noRemote(manifest: Manifest): HoardError {
  return new HoardError('E_USAGE', `no team cache is set for ${manifest.file}`, {
    hint: 'add "remote": "oci://<registry>/<repository>" to hoard.json, or pass --remote oci://… (also HOARD_REMOTE)',
  });
}

/** `hoard push [names..]`: the manifest's blobs that the store holds, into the team cache. */
export async function runPush(
  g: GlobalOptions,
  printer: Printer,
  signal: AbortSignal,
  o: { names: string[]; jobs: number; teamCache: (m: Manifest) => Remote | null },
): Promise<number> {
  const manifest = await loadManifest(g.manifest);
  const remote = o.teamCache(manifest);
  if (!remote) throw noRemote(manifest);
  const artifacts = selectArtifacts(manifest, o.names);
  const store = openStore(g.store, { lockWait: g.lockWait ?? {} });
  const items: PushItem[] = [];
  let skipped = 0;
  for (const a of artifacts) {
    const there = a.digest ? await store.check(a.digest, a.size !== undefined ? { size: a.size } : {}) : null;
    if (!a.digest || there?.state !== 'ok') {
      skipped++;
      const why = !a.digest ? 'not locked yet' : there?.state === 'corrupt' ? `its blob in the local store is corrupt (${there.reason})` : 'not in the local store';
      printer.event({ type: 'warning', name: a.name, message: `${why}: nothing to push (run \`hoard sync\` first)` });
      continue;
    }
    items.push({ name: a.name, digest: a.digest, size: there.stat.size, file: there.path, title: path.posix.basename(a.path) });
  }
  try {
    const summary = await push(remote, items, { jobs: o.jobs, emit: (e) => printer.event(e), signal, skipped });
    printer.event(summary);
    if (signal.aborted) return EXIT.interrupted;
    return exitCode(summary, 'sync');
  } finally {
    await remote.close();
  }
}

/** sync --push: what this sync downloaded from elsewhere (not pulled from the team cache) goes up. */
export async function pushDownloaded(
  remote: Remote,
  g: GlobalOptions,
  results: readonly ArtifactEvent[],
  printer: Printer,
  signal: AbortSignal | undefined,
  jobs: number,
): Promise<number> {
  if (g.noStore) {
    printer.event({ type: 'warning', message: '--push with the store disabled: nothing is kept to push' });
    return EXIT.ok;
  }
  const store = openStore(g.store, { lockWait: g.lockWait ?? {} });
  const items: PushItem[] = results
    .filter((r) => r.digest && r.size !== null && (r.blob === 'downloaded' || r.blob === 'redownloaded') && !r.fromCache)
    .map((r) => ({ name: r.name, digest: r.digest!, size: r.size!, file: store.blobPath(r.digest!), title: path.posix.basename(r.path) }));
  if (items.length === 0) return EXIT.ok;
  const summary = await push(remote, items, { jobs, emit: (e) => printer.event(e), ...(signal ? { signal } : {}) });
  printer.event(summary);
  return exitCode(summary, 'sync');
}
