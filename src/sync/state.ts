import path from 'node:path';
import type { Digest } from '../core/digest.ts';
import type { ArchiveKind } from '../engine/types.ts';
import type { Fingerprint } from '../store/fingerprint.ts';
import { storeLayout } from '../store/paths.ts';
import type { LockWait } from '../store/lock.ts';
import { StateFile } from '../store/state-file.ts';

/** What hoard wrote at an output path: the digest, and the file's fingerprint just after. */
export interface OutputRecord {
  digest: Digest;
  fp: Fingerprint;
  /**
   * Set when hoard made the output a hard link of the blob: that inode (see inodeId). Whatever
   * the file holds later is the blob's bytes, hoard's own, even once the blob is removed.
   */
  blobInode?: string;
}

/** Output files hoard made (keyed by absolute path), and the manifests that use the store. */
export function openSyncState(storeRoot: string, wait: LockWait = {}) {
  const { state, locks } = storeLayout(storeRoot);
  return {
    outputs: new StateFile<OutputRecord>(path.join(state, 'outputs.json'), path.join(locks, 'state-outputs.lock'), undefined, wait),
    /**
     * Manifest file → when it was first synced, and when a full sync of it last marked its
     * blobs used (ms): within USED_GRANULARITY_MS of that, a no-op sync skips reading used.json.
     * valid: the file's stamp when a sync or gc last found it valid (manifestStamp): a file that still
     * has it is only parsed, not checked again (src/manifest/load.ts).
     */
    manifests: new StateFile<{ added: string; used?: number; valid?: string }>(path.join(state, 'manifests.json'), path.join(locks, 'state-manifests.lock'), undefined, wait),
    /** `<engine>:<ref>` → the image hoard made there, and the artifact digest it came from. */
    images: new StateFile<{ digest: Digest; id: string }>(path.join(state, 'images.json'), path.join(locks, 'state-images.lock'), undefined, wait),
    /** Blob hex → what the archive holds; a blob never changes, so neither does this. */
    archives: new StateFile<ArchiveKind>(path.join(state, 'archives.json'), path.join(locks, 'state-archives.lock'), undefined, wait),
  };
}
export type SyncState = ReturnType<typeof openSyncState>;
