// Imported lazily by `hoard add --checksum-url` only, so undici loads only then.
import { request } from 'undici';
import { CHECKSUM_ALGORITHMS, type ChecksumAlgorithm } from '../core/digest.ts';
import { HoardError } from '../core/errors.ts';
import { redactUrl } from './headers.ts';

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

/** Downloads a small text file (a checksum file), following redirects; at most 1 MiB. */
export async function fetchText(url: string, headers: Record<string, string>): Promise<string> {
  const origin = new URL(url).origin;
  let current = url;
  for (let hop = 0; hop < 10; hop++) {
    let res;
    try {
      res = await request(current, { headers: { 'user-agent': 'hoard', ...(new URL(current).origin === origin ? headers : {}) }, headersTimeout: 30_000, bodyTimeout: 30_000 });
    } catch (err) {
      throw new HoardError('E_NETWORK', `GET ${redactUrl(current)}: ${(err as Error).message}`, { cause: err });
    }
    if ([301, 302, 303, 307, 308].includes(res.statusCode) && typeof res.headers.location === 'string') {
      await res.body.dump();
      current = new URL(res.headers.location, current).toString();
      continue;
    }
    if (res.statusCode !== 200) {
      await res.body.dump();
      throw new HoardError('E_HTTP', `GET ${redactUrl(current)}: HTTP ${res.statusCode}`, { details: { url: redactUrl(current), status: res.statusCode } });
    }
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of res.body) {
      size += (chunk as Buffer).length;
      if (size > 1024 * 1024) throw new HoardError('E_HTTP', `${redactUrl(current)} is larger than 1 MiB: not a checksum file`);
      chunks.push(chunk as Buffer);
    }
    return Buffer.concat(chunks).toString('utf8');
  }
  throw new HoardError('E_HTTP', `GET ${redactUrl(url)}: too many redirects`);
}
