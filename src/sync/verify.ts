import type { Artifact, LinkMode, Manifest } from '../manifest/types.ts';
import type { LockWait } from '../store/lock.ts';
import { openStore } from '../store/store.ts';
import { VERIFY_AHEAD } from '../store/integrity.ts';
import { observe, type Observed } from './observe.ts';
import { pool } from './concurrency.ts';
import { outputRootOf, selectArtifacts } from './sync.ts';
import { openSyncState } from './state.ts';
import { monotonicMs } from '../core/builtins.ts';

export type VerifyEvent =
  | { type: 'verified'; subject: 'blob' | 'output'; name?: string; path: string; ok: boolean; reason?: string; action?: 'removed' }
  | {
      type: 'summary';
      blobs: number;
      bytes: number;
      corrupt: number;
      outputs: number;
      outputsDiffering: number;
      elapsedMs: number;
    };

/**
 * Re-hashes every blob in the store, removing those whose content no longer matches
 * their name, then re-hashes the outputs of `manifest` (when given) and reports the
 * ones that differ. Fingerprints are refreshed so later syncs trust what was checked.
 * With the store disabled (`noStore`), only the outputs are checked and nothing is recorded.
 */
export async function verify(opts: { storeRoot: string; lockWait?: LockWait; noStore?: boolean; manifest?: Manifest; output?: string; defaultLink?: LinkMode; emit: (e: VerifyEvent) => void }) {
  const started = monotonicMs();
  const store = openStore(opts.storeRoot, opts.lockWait ? { lockWait: opts.lockWait } : {});
  const summary: Extract<VerifyEvent, { type: 'summary' }> = { type: 'summary', blobs: 0, bytes: 0, corrupt: 0, outputs: 0, outputsDiffering: 0, elapsedMs: 0 };
  if (!opts.noStore) {
    const r = await store.verify({
      onBlob: (b) => opts.emit({ type: 'verified', subject: 'blob', path: b.path, ok: b.ok, ...(b.ok ? {} : { reason: b.reason ?? 'corrupt', action: 'removed' as const }) }),
    });
    summary.blobs = r.blobs;
    summary.bytes = r.bytes;
    summary.corrupt = r.corrupt.length;
  }
  if (opts.manifest) {
    const state = openSyncState(store.root, store.lockWait);
    const outputRoot = outputRootOf(opts.manifest, opts.output);
    // The blobs were just re-hashed above (their fingerprints recorded): only outputs are read
    // again, VERIFY_AHEAD at once, reported in manifest order.
    const ctx = { store, state, outputRoot, verify: 'outputs' as const, emit: () => {}, noStore: opts.noStore ?? false, blobChecks: new Map() };
    const report = (o: Observed, a: Artifact) => {
      if (o.output === 'missing' || o.output === 'unknown') return;
      summary.outputs++;
      const ok = o.output === 'ok';
      if (!ok) summary.outputsDiffering++;
      if (o.outputFp && a.digest) state.outputs.set(o.target, { digest: a.digest, fp: o.outputFp });
      opts.emit({ type: 'verified', subject: 'output', name: a.name, path: o.target, ok, ...(ok ? {} : { reason: o.outputReason ?? o.output }) });
    };
    await pool(selectArtifacts(opts.manifest, [], undefined, opts.defaultLink), VERIFY_AHEAD, async (a) => observe(a, ctx), report);
    if (!opts.noStore) await state.outputs.flush();
  }
  if (!opts.noStore) await store.flush();
  summary.elapsedMs = Math.round(monotonicMs() - started);
  opts.emit(summary);
  return summary;
}
