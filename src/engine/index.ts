// Container engines (docker, podman) and the archives they import or load.
export { DIGEST_LABEL } from './types.ts';
export type { ArchiveKind, Engine, EngineChoice, EngineName, ImageInfo, RunResult, Runner } from './types.ts';
export { createEngine, selectEngine, type EngineOptions } from './adapter.ts';
export { classifyArchive, isNotImageArchive } from './archive.ts';
export { execaRunner } from './runner.ts';
