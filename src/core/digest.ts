import type { Hash } from 'node:crypto';
import { crypto } from './builtins.ts';
import { HoardError } from './errors.ts';

/** `sha256:<64 lowercase hex>`, the OCI form. */
export type Digest = `sha256:${string}`;

export function digestHex(digest: Digest): string {
  return digest.slice('sha256:'.length);
}

export function toDigest(hex: string): Digest {
  const lower = hex.toLowerCase();
  if (!/^[0-9a-f]{64}$/.test(lower)) {
    throw new HoardError('E_USAGE', `not a SHA-256 digest: ${hex}`, {
      hint: 'give 64 hexadecimal characters, optionally prefixed with sha256:',
    });
  }
  return `sha256:${lower}`;
}

/** Accepts `sha256:<hex>` or bare hex. */
export function parseDigest(value: string): Digest {
  return toDigest(value.startsWith('sha256:') ? value.slice(7) : value);
}

/** Algorithms allowed in a manifest's `checksums`, with their hex lengths. */
export const CHECKSUM_ALGORITHMS = { sha512: 128, sha256: 64, sha1: 40, md5: 32 } as const;
export type ChecksumAlgorithm = keyof typeof CHECKSUM_ALGORITHMS;
export type Checksums = Partial<Record<ChecksumAlgorithm, string>>;

/** Hashes one stream of bytes with SHA-256 plus any extra algorithms, in one pass. */
export class MultiHash {
  private main: Hash = crypto().createHash('sha256');
  private extra: Array<[ChecksumAlgorithm, Hash]>;
  size = 0;

  constructor(algorithms: Iterable<ChecksumAlgorithm> = []) {
    this.extra = [...new Set(algorithms)].filter((a) => a !== 'sha256').map((a) => [a, crypto().createHash(a)]);
  }

  /** An independent copy of the state so far (a checkpoint to continue from). */
  clone(): MultiHash {
    const c = new MultiHash();
    c.main = this.main.copy();
    c.extra = this.extra.map(([a, h]) => [a, h.copy()]);
    c.size = this.size;
    return c;
  }

  /** The SHA-256 hex of the bytes so far, without ending this hash (a partial download's checkpoint). */
  prefixDigest(): string {
    return this.main.copy().digest('hex');
  }

  update(chunk: Uint8Array): void {
    this.main.update(chunk);
    for (const [, h] of this.extra) h.update(chunk);
    this.size += chunk.byteLength;
  }

  digest(): { digest: Digest; checksums: Checksums } {
    const sha256 = this.main.digest('hex');
    const checksums: Checksums = { sha256 };
    for (const [a, h] of this.extra) checksums[a] = h.digest('hex');
    return { digest: `sha256:${sha256}`, checksums };
  }
}
