import type { ChecksumAlgorithm, Checksums, Digest } from './digest.ts';
import { hashFileBytes } from './hash-pool.ts';

/**
 * Hashes a whole file: read and hashed by a worker thread (the next block read while one is
 * hashed), or inline when it is small (see core/hash-pool.ts).
 */
export function hashFile(file: string, algorithms: Iterable<ChecksumAlgorithm> = []): Promise<{ digest: Digest; checksums: Checksums; size: number }> {
  return hashFileBytes(file, algorithms);
}
