import type { Checksums, Digest } from '../core/digest.ts';

/** Where an `arista:<file name>` artifact is in Arista's download tree (never a signed link). */
export interface AristaLocator {
  /** The tree's `path` attribute, verbatim (`/support/download/EOS-USA/…`). */
  path: string;
}

export type LinkMode = 'auto' | 'reflink' | 'hardlink' | 'copy';
export const LINK_MODES: readonly LinkMode[] = ['auto', 'reflink', 'hardlink', 'copy'];

/** One entry of `artifacts` as it is written in hoard.json. */
export interface ArtifactEntry {
  url: string;
  /** A vendor source's resolved locator (`"url": "arista:<file>"`): where the file was found. */
  arista?: AristaLocator;
  mirrors?: string[];
  path?: string;
  digest?: Digest;
  size?: number;
  checksums?: Checksums;
  image?: string;
  headers?: Record<string, string>;
  link?: LinkMode;
  executable?: boolean;
}

/** hoard.json as written. */
export interface ManifestDoc {
  $schema?: string;
  version: 1;
  output?: string;
  /** The team cache: oci://<host[:port]>/<repository>. */
  remote?: string;
  artifacts: Record<string, ArtifactEntry>;
}

/** A loaded, validated manifest. */
export interface Manifest {
  /** Absolute path of hoard.json. */
  file: string;
  /** Folder holding it; `output` is relative to this. */
  dir: string;
  doc: ManifestDoc;
  /** The bytes read, so a write can tell whether anything changed. */
  text: string;
  /** The file's stamp when it was read (see manifestStamp): the store records it once found valid. */
  stamp?: string;
}

/** An artifact with every default applied, ready for planning. */
export interface Artifact {
  name: string;
  url: string;
  arista?: AristaLocator;
  mirrors: string[];
  /** Path relative to the output folder (forward slashes). */
  path: string;
  digest?: Digest;
  size?: number;
  checksums: Checksums;
  image?: string;
  headers: Record<string, string>;
  link: LinkMode;
  executable: boolean;
}
