import type { Digest } from '../core/digest.ts';

export type EngineName = 'docker' | 'podman';
export type EngineChoice = 'auto' | EngineName;

/** The label an image imported by hoard carries: the SHA-256 of the artifact it was built from. */
export const DIGEST_LABEL = 'io.hoard.digest';

export interface ImageInfo {
  /** The reference it was asked about (as written in the manifest). */
  ref: string;
  /** Image id, normalised to `sha256:<hex>` for both engines. */
  id: string;
  labels: Record<string, string>;
}

/** What an archive holds, decided by looking inside it. */
export type ArchiveKind =
  | 'rootfs' // a root filesystem tarball (cEOS-lab .tar.xz): imported
  | 'docker-archive' // `docker save` / `podman save --format docker-archive`: loaded
  | 'oci-archive'; // an OCI image layout in a tar (oci-layout, index.json): loaded

/** docker or podman, driven through its CLI with argument arrays (never a shell). */
export interface Engine {
  readonly name: EngineName;
  /**
   * One process for all `refs`. Resolves within the query timeout or throws
   * HoardError('E_ENGINE'). Refs that do not exist are absent from the map.
   */
  inspect(refs: readonly string[]): Promise<Map<string, ImageInfo>>;
  /** `import --change 'LABEL io.hoard.digest=<digest>' <file> <ref>`. */
  importRootfs(file: string, ref: string, digest: Digest): Promise<ImageInfo>;
  /** `load -i <file>`, then `tag <loaded image> <ref>`. */
  load(file: string, ref: string): Promise<ImageInfo>;
  /**
   * What still uses an image (by id): its tags, and the containers made from it, running or
   * not. null when the engine has no such image.
   */
  imageUsers(id: string): Promise<{ tags: string[]; containers: string[] } | null>;
  /** `rmi <id>`, never forced: the engine itself refuses while a container or a child image uses it. */
  removeImage(id: string): Promise<void>;
}

export interface RunResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs one engine command. The real one uses execa (argument arrays, no shell); tests of the
 * docker adapter use a scripted one, because no docker daemon can run on the test machines.
 * Rejects with an error whose `code` is 'ENOENT' when the binary is missing, and with
 * `timedOut: true` when `timeoutMs` passed (the process is killed).
 */
export type Runner = (command: string, args: readonly string[], opts: { timeoutMs?: number; env?: Record<string, string | undefined> }) => Promise<RunResult>;
