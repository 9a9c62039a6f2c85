// Imported lazily by `hoard add --checksum-url` only, so undici loads only then.
import { CHECKSUM_ALGORITHMS, type ChecksumAlgorithm } from '../core/digest.ts';
import { HoardError } from '../core/errors.ts';
import { redactUrl } from './headers.ts';
import { createFetcher, type FetcherOptions, type Sink } from './http.ts';

const BY_LENGTH: Record<number, ChecksumAlgorithm> = { 128: 'sha512', 64: 'sha256', 40: 'sha1', 32: 'md5' };

/** The algorithm a checksum file's name announces (`.sha512sum`, `.sha256`, `.md5`, `SHA256SUMS`…). */
function algorithmFromName(url: string): ChecksumAlgorithm | null {
  const name = url.split(/[?#]/)[0]!.split('/').pop()!.toLowerCase();
  for (const alg of Object.keys(CHECKSUM_ALGORITHMS) as ChecksumAlgorithm[]) if (name.includes(alg)) return alg;
  return null;
}

/**
 * Reads an upstream checksum file: coreutils style (`<hex>  <file>` or `<hex> *<file>`, one
 * or many lines), BSD style (`SHA256 (file) = <hex>`), or a bare hex digest. With several
 * lines, the one naming `fileName` is used.
 */
export function parseChecksumFile(text: string, fileName: string, sourceUrl: string): { algorithm: ChecksumAlgorithm; hex: string } {
  const entries: Array<{ hex: string; file: string | null; alg?: ChecksumAlgorithm }> = [];
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    let m = /^([0-9a-fA-F]+)(?:\s+\*?(.+))?$/.exec(line);
    if (m) {
      entries.push({ hex: m[1]!.toLowerCase(), file: m[2]?.trim() ?? null });
      continue;
    }
    m = /^(SHA512|SHA256|SHA1|MD5)\s*\((.+)\)\s*=\s*([0-9a-fA-F]+)$/i.exec(line);
    if (m) entries.push({ hex: m[3]!.toLowerCase(), file: m[2]!, alg: m[1]!.toLowerCase() as ChecksumAlgorithm });
  }
  const base = (f: string) => f.split('/').pop();
  const chosen = entries.length === 1 ? entries[0] : entries.find((e) => e.file !== null && base(e.file) === fileName);
  if (!chosen) {
    throw new HoardError('E_INTEGRITY', `${redactUrl(sourceUrl)} has no checksum for ${fileName}`, {
      hint: entries.length ? `it lists ${entries.map((e) => e.file ?? '(no name)').join(', ')}` : 'the file holds no checksum line',
    });
  }
  const algorithm = chosen.alg ?? BY_LENGTH[chosen.hex.length] ?? null;
  const announced = algorithmFromName(sourceUrl);
  if (!algorithm || CHECKSUM_ALGORITHMS[algorithm] !== chosen.hex.length || (announced && announced !== algorithm)) {
    throw new HoardError('E_INTEGRITY', `${redactUrl(sourceUrl)}: "${chosen.hex.slice(0, 16)}…" is not a ${announced ?? 'sha512, sha256, sha1 or md5'} checksum`);
  }
  return { algorithm, hex: chosen.hex };
}

/** Downloads a small text file (a checksum file): at most 1 MiB, with the retries, timeouts and proxy of any download. */
export async function fetchText(url: string, headers: Record<string, string>, opts: FetcherOptions = {}): Promise<string> {
  const LIMIT = 1024 * 1024;
  let chunks: Buffer[] = [];
  let size = 0;
  const sink: Sink = {
    source: null,
    get bytesWritten() {
      return size;
    },
    write(chunk) {
      size += chunk.byteLength;
      if (size > LIMIT) throw new HoardError('E_HTTP', `${redactUrl(url)} is larger than 1 MiB: not a checksum file`);
      chunks.push(Buffer.from(chunk));
    },
    async restart() {
      chunks = [];
      size = 0;
    },
  };
  const fetcher = createFetcher(opts);
  try {
    await fetcher.fetch({ url, headers }, sink);
  } finally {
    await fetcher.close();
  }
  return Buffer.concat(chunks).toString('utf8');
}
