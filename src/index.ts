// The library API: the same engine the CLI uses.
export { openStore, type Store, type BlobWriter, type Expected } from './store/store.ts';
export { loadManifest, resolveArtifacts, parseManifest } from './manifest/load.ts';
export { writeManifest, serializeManifest } from './manifest/write.ts';
export { sync, type SyncOptions, type SyncResult } from './sync/sync.ts';
export { verify } from './sync/verify.ts';
export { plan } from './sync/plan.ts';
export type { SyncEvent } from './sync/events.ts';
export type { Manifest, ManifestDoc, Artifact, ArtifactEntry, LinkMode } from './manifest/types.ts';
export { HoardError, type ErrorCode } from './core/errors.ts';
export type { Digest } from './core/digest.ts';
