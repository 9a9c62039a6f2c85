// The library API: the same engine the CLI uses.
//   import { openStore, loadManifest, sync } from 'hoard';
export {
  openStore, USED_GRANULARITY_MS,
  type Store, type StoreOptions, type BlobWriter, type Expected, type BlobInfo, type PutSource, type VerifiedBlob, type TmpFile,
} from './store/store.ts';
export { loadManifest, resolveArtifacts, parseManifest } from './manifest/load.ts';
export { writeManifest, serializeManifest } from './manifest/write.ts';
export { commitManifest, type ManifestChange, type CommitResult } from './manifest/commit.ts';
export { sync, type SyncOptions, type SyncResult, type Summary } from './sync/sync.ts';
export { verify, type VerifyEvent } from './sync/verify.ts';
export { gc, evict, type GcOptions, type GcEvent, type GcSummary } from './sync/gc.ts';
export { plan } from './sync/plan.ts';
export type { SyncEvent, RemovedEvent, KeptEvent } from './sync/events.ts';
export type { Manifest, ManifestDoc, Artifact, ArtifactEntry, LinkMode } from './manifest/types.ts';
export { HoardError, type ErrorCode } from './core/errors.ts';
export { parseDigest, type Digest } from './core/digest.ts';
export { parseSize, formatBytes } from './core/format.ts';
export { openRemote, type Remote } from './remote/index.ts';
export { parseRemote, type RemoteRef, type RemoteSettings } from './remote/ref.ts';
export { push, type PushItem, type PushSummary } from './remote/push.ts';
