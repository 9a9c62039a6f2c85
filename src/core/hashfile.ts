import { promises as fs } from 'node:fs';
import { MultiHash, type ChecksumAlgorithm, type Checksums, type Digest } from './digest.ts';

const READ_SIZE = 4 * 1024 * 1024;

/** Hashes a whole file with large reads (one buffer reused). */
export async function hashFile(
  file: string,
  algorithms: Iterable<ChecksumAlgorithm> = [],
): Promise<{ digest: Digest; checksums: Checksums; size: number }> {
  const fh = await fs.open(file, 'r');
  try {
    const hash = new MultiHash(algorithms);
    const buf = Buffer.allocUnsafe(READ_SIZE);
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, READ_SIZE, null);
      if (bytesRead === 0) break;
      hash.update(buf.subarray(0, bytesRead));
    }
    return { ...hash.digest(), size: hash.size };
  } finally {
    await fh.close();
  }
}
