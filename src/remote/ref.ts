// The team cache's address and the OCI documents hoard puts there: pure functions, no network.
import { digestHex, type Digest } from '../core/digest.ts';
import { HoardError } from '../core/errors.ts';

/** Per-registry settings from the configuration file ("remotes": {"<host[:port]>": {…}}). */
export interface RemoteSettings {
  /** Plain HTTP to a registry that is not on a loopback address. */
  insecure?: boolean;
  /** Upload in PATCH chunks of this many bytes instead of one PUT. */
  chunkSize?: number;
  /** Repositories of the same registry to mount blobs from (cross-repository mount). */
  mountFrom?: string[];
}

/** `oci://<host[:port]>/<repository>`, parsed. */
export interface RemoteRef {
  /** As written, normalised: `oci://host[:port]/repository`. */
  spec: string;
  /** `host[:port]`: the key of auth files and of the configuration's "remotes". */
  host: string;
  repository: string;
  /** `https://host[:port]` (or `http://` for loopback or an insecure registry). */
  base: string;
}

// Distribution's grammar for repository names: path components of lowercase alphanumerics
// separated by `.`, `_`, `__`, or dashes, joined by `/`.
const REPOSITORY_RE = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$/;
const HOST_RE = /^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?)(?::\d{1,5})?$/;

/** localhost, 127.0.0.0/8 and ::1: plain HTTP is allowed there, as docker allows it. */
export function isLoopback(host: string): boolean {
  const name = host.replace(/:\d+$/, '').replace(/^\[|\]$/g, '').toLowerCase();
  return name === 'localhost' || name === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(name);
}

/** Parses a remote; `where` names the setting it came from (for the error). */
export function parseRemote(value: string, where: string, settings: Record<string, RemoteSettings> = {}): RemoteRef {
  const m = /^oci:\/\/([^/]+)\/(.+?)\/?$/.exec(value.trim());
  if (!m || !HOST_RE.test(m[1]!) || !REPOSITORY_RE.test(m[2]!)) {
    throw new HoardError('E_USAGE', `${where}: ${JSON.stringify(value)} is not a team cache address`, {
      hint: 'write oci://<registry host[:port]>/<repository>, e.g. oci://ghcr.io/acme/hoard-cache (lowercase repository)',
    });
  }
  const host = m[1]!.toLowerCase();
  const repository = m[2]!;
  const plain = isLoopback(host) || settings[host]?.insecure === true;
  return { spec: `oci://${host}/${repository}`, host, repository, base: `${plain ? 'http' : 'https'}://${host}` };
}

export const ARTIFACT_TYPE = 'application/vnd.hoard.artifact.v1';
/** The OCI empty descriptor's media type and the two bytes `{}`. */
export const EMPTY_CONFIG_TYPE = 'application/vnd.oci.empty.v1+json';
/** The config media type of the OCI 1.0 form, for registries that refuse `artifactType`. */
export const LEGACY_CONFIG_TYPE = 'application/vnd.hoard.config.v1+json';
export const MANIFEST_TYPE = 'application/vnd.oci.image.manifest.v1+json';
export const EMPTY_CONFIG = Buffer.from('{}');
/** SHA-256 of EMPTY_CONFIG (a constant: no hashing when the module loads; test/remote/ref.test.ts checks it). */
export const EMPTY_CONFIG_DIGEST: Digest = 'sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a';

/** The tag that anchors a blob: `sha256-<hex>`. */
export function tagOf(digest: Digest): string {
  return `sha256-${digestHex(digest)}`;
}

/**
 * The artifact manifest that anchors one blob (so registry GC keeps it and UIs show it).
 * Deterministic bytes: no timestamps, fixed key order, so two machines pushing the same blob
 * under the same name write the same manifest. `legacy`: the OCI 1.0 form, without
 * `artifactType`, the hoard type carried by the config's media type instead.
 */
export function artifactManifest(blob: { digest: Digest; size: number; title: string }, legacy = false): Buffer {
  const doc = {
    schemaVersion: 2,
    mediaType: MANIFEST_TYPE,
    ...(legacy ? {} : { artifactType: ARTIFACT_TYPE }),
    config: { mediaType: legacy ? LEGACY_CONFIG_TYPE : EMPTY_CONFIG_TYPE, digest: EMPTY_CONFIG_DIGEST, size: EMPTY_CONFIG.length },
    layers: [{ mediaType: 'application/octet-stream', digest: blob.digest, size: blob.size, annotations: { 'org.opencontainers.image.title': blob.title } }],
  };
  return Buffer.from(JSON.stringify(doc));
}
