// What an archive holds, decided by looking inside it: a root filesystem (imported) or an
// image archive (loaded). The tar headers are read as a stream, file contents are skipped
// without being kept, and reading stops at the first entry that decides: a root filesystem's
// (etc/, bin/, …) or one only `docker save` writes (<id>.tar, manifest.json, …). A 500 MB
// cEOS .tar.xz or a `docker save` archive is classified after a few kilobytes; an OCI
// archive (blobs/ first, index.json and oci-layout last) is decompressed to its end.
import type { ChildProcess } from 'node:child_process';
import { createReadStream, promises as fs } from 'node:fs';
import type { Readable } from 'node:stream';
import { HoardError } from '../core/errors.ts';
import type { ArchiveKind } from './types.ts';

type Compression = 'gzip' | 'xz' | 'zstd' | 'bzip2' | 'none';

const MAGIC: ReadonlyArray<[Compression, number[]]> = [
  ['gzip', [0x1f, 0x8b]],
  ['xz', [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]],
  ['zstd', [0x28, 0xb5, 0x2f, 0xfd]],
  ['bzip2', [0x42, 0x5a, 0x68]], // "BZh"
];

/** The decompressor each external format needs, and the Debian package that has it. */
const TOOLS: Record<'xz' | 'zstd' | 'bzip2', { command: string; pkg: string }> = {
  xz: { command: 'xz', pkg: 'xz-utils' },
  zstd: { command: 'zstd', pkg: 'zstd' },
  bzip2: { command: 'bzip2', pkg: 'bzip2' },
};

/**
 * Root entries only `docker save` makes (manifest.json, repositories, `<id>/…`, `<id>.json`,
 * `<id>.tar`): the first one decides 'docker-archive'.
 */
const DOCKER_ENTRY = /^(manifest\.json|repositories|[0-9a-f]{64}(\.json|\.tar)?)$/;
/**
 * Root entries of an OCI layout, which docker >= 25 also writes (blobs/ first, then
 * index.json, manifest.json, oci-layout): reading goes on. Anything else is a root filesystem.
 */
const OCI_ENTRY = /^(index\.json|oci-layout|blobs)$/;

/** Headers whose data describes the next entry, or nothing to classify by. */
const METADATA_TYPES = new Set(['L', 'K', 'x', 'g', 'V']);
/** Long names and PAX records are small; more than this is not a tar we can trust. */
const MAX_METADATA = 1 << 20;

/** Reads a byte stream block by block; `read` returns fewer bytes only at the end. */
interface Source {
  read(n: number): Promise<Buffer>;
  /** Skips `n` bytes; false when the input ended first. */
  skip(n: number): Promise<boolean>;
  /** Bytes consumed so far (decompressed). */
  position(): number;
  /** True once the input ended (or failed). */
  ended(): boolean;
  /** Reads and discards the rest (so that the decompressor checks its integrity data). */
  drain(): Promise<void>;
  /** Stops reading (and the decompressor); safe to call twice. */
  close(): void;
  /** After the input ended: rejects when the decompressor failed. */
  finished(): Promise<void>;
}

export function detectCompression(head: Uint8Array): Compression {
  for (const [kind, magic] of MAGIC) if (magic.every((b, i) => head[i] === b)) return kind;
  return 'none';
}

/** A plain tar: read headers where they are and seek over the contents. */
async function fileSource(file: string): Promise<Source> {
  const handle = await fs.open(file, 'r');
  let pos = 0;
  let size: number | undefined;
  let ended = false;
  return {
    async read(n) {
      const buf = Buffer.alloc(n);
      const { bytesRead } = await handle.read(buf, 0, n, pos);
      pos += bytesRead;
      if (bytesRead < n) ended = true;
      return buf.subarray(0, bytesRead);
    },
    async skip(n) {
      size ??= (await handle.stat()).size;
      pos += n;
      if (pos >= size) ended = true;
      return pos <= size;
    },
    position: () => pos,
    ended: () => ended,
    drain: async () => {},
    close: () => void handle.close().catch(() => {}),
    finished: async () => {},
  };
}

/** A decompressed stream, pulled chunk by chunk; its errors become `failed(err)`. */
function streamSource(stream: Readable, opts: { close: () => void; finished: () => Promise<void>; failed: (err: unknown) => HoardError }): Source {
  const chunks = stream[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  let pending: Buffer = Buffer.alloc(0);
  let pos = 0;
  let ended = false;
  const more = async (): Promise<boolean> => {
    if (ended) return false;
    let next: IteratorResult<Buffer>;
    try {
      next = await chunks.next();
    } catch (err) {
      ended = true;
      throw opts.failed(err);
    }
    if (next.done) {
      ended = true;
      return false;
    }
    pending = pending.length === 0 ? next.value : Buffer.concat([pending, next.value]);
    return true;
  };
  return {
    async read(n) {
      while (pending.length < n && (await more()));
      const out = pending.subarray(0, n);
      pending = pending.subarray(out.length);
      pos += out.length;
      return out;
    },
    async skip(n) {
      while (n > 0) {
        if (pending.length === 0 && !(await more())) return false;
        const take = Math.min(n, pending.length);
        pending = pending.subarray(take);
        pos += take;
        n -= take;
      }
      return true;
    },
    position: () => pos,
    ended: () => ended,
    async drain() {
      do {
        pos += pending.length;
        pending = Buffer.alloc(0);
      } while (await more());
    },
    close: () => {
      stream.destroy();
      opts.close();
    },
    finished: opts.finished,
  };
}

/** `shown`: how messages name the file (an artifact and its output, not a blob path). */
async function openSource(file: string, shown = file): Promise<Source> {
  const head = Buffer.alloc(6);
  const handle = await fs.open(file, 'r');
  try {
    await handle.read(head, 0, 6, 0);
  } finally {
    await handle.close();
  }
  const compression = detectCompression(head);
  if (compression === 'none') return fileSource(file);
  if (compression === 'gzip') {
    const input = createReadStream(file);
    const gunzip = process.getBuiltinModule('node:zlib').createGunzip();
    input.on('error', (err) => gunzip.destroy(err));
    input.pipe(gunzip);
    return streamSource(gunzip, {
      close: () => input.destroy(),
      finished: async () => {},
      failed: (err) => new HoardError('E_ENGINE', `${shown} could not be decompressed (gzip): ${(err as Error).message}`, { cause: err, details: { file, notArchive: true } }),
    });
  }
  return toolSource(file, compression, TOOLS[compression], shown);
}

/** `xz -dc file` (or zstd, bzip2): Debian's tools, faster than any JavaScript decoder. */
function toolSource(file: string, compression: keyof typeof TOOLS, tool: { command: string; pkg: string }, shown: string): Source {
  // xz >= 5.4 decompresses multi-block files (made by `xz -T`) on all cores; older xz ignores -T0.
  const args = compression === 'xz' ? ['-T0', '-dc', '--', file] : ['-dc', '--', file];
  // (node:child_process and node:zlib are loaded here, not when sync loads this module for isNotImageArchive)
  const child: ChildProcess = process.getBuiltinModule('node:child_process').spawn(tool.command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d));
  const exited = new Promise<{ code: number | null; error?: Error }>((resolve) => {
    child.on('error', (error) => resolve({ code: null, error }));
    child.on('close', (code) => resolve({ code }));
  });
  // A spawn failure (xz missing) must reach the reader too, not only `finished`.
  child.on('error', (err) => child.stdout!.destroy(err));
  return streamSource(child.stdout!, {
    close: () => child.kill('SIGKILL'),
    finished: async () => {
      const { code, error } = await exited;
      if (error || code !== 0) throw toolError(shown, tool, error, stderr, code);
    },
    failed: (err) => toolError(shown, tool, err as Error, stderr, null),
  });
}

function toolError(file: string, tool: { command: string; pkg: string }, error: Error | undefined, stderr: string, code: number | null): HoardError {
  if ((error as NodeJS.ErrnoException | undefined)?.code === 'ENOENT') {
    return new HoardError('E_ENGINE', `${tool.command} is not installed; it is needed to look inside ${file}`, {
      hint: `install it (apt-get install ${tool.pkg}), or pass --no-images`,
      cause: error,
      details: { file, tool: tool.command },
    });
  }
  const line = stderr.trim().split('\n').at(-1) ?? '';
  return new HoardError('E_ENGINE', `${tool.command} could not decompress ${file}: ${line || error?.message || `exit code ${code}`}`, {
    cause: error,
    details: { file, tool: tool.command, notArchive: true },
  });
}

function cstring(block: Buffer, start: number, length: number): string {
  const end = block.indexOf(0, start);
  return block.toString('utf8', start, end >= 0 && end < start + length ? end : start + length);
}

function octal(block: Buffer, start: number, length: number): number | undefined {
  const text = block.toString('latin1', start, start + length).replace(/[\0 ]+$/, '').replace(/^ +/, '');
  if (text === '') return 0;
  return /^[0-7]+$/.test(text) ? parseInt(text, 8) : undefined;
}

/** The size field: octal, or base-256 (first byte 0x80) for sizes of 8 GiB and more. */
function entrySize(block: Buffer): number | undefined {
  if (block[124]! & 0x80) {
    if (block[124] === 0xff) return undefined; // negative
    let n = BigInt(block[124]! & 0x7f);
    for (let i = 125; i < 136; i++) n = (n << 8n) | BigInt(block[i]!);
    return Number(n);
  }
  return octal(block, 124, 12);
}

function checksumOk(block: Buffer): boolean {
  const stored = octal(block, 148, 8);
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < 512; i++) {
    const b = i >= 148 && i < 156 ? 0x20 : block[i]!;
    unsigned += b;
    signed += b > 127 ? b - 256 : b;
  }
  return stored !== undefined && (stored === unsigned || stored === signed);
}

/** name, with the ustar prefix field (POSIX ustar only: GNU tar keeps other things there). */
function headerName(block: Buffer): string {
  const name = cstring(block, 0, 100);
  const posix = block.toString('latin1', 257, 263) === 'ustar\0';
  const prefix = posix ? cstring(block, 345, 155) : '';
  return prefix ? `${prefix}/${name}` : name;
}

/** PAX records: `<length> <key>=<value>\n` … */
function paxRecords(data: Buffer): Map<string, string> {
  const records = new Map<string, string>();
  let pos = 0;
  while (pos < data.length) {
    const space = data.indexOf(0x20, pos);
    const length = space > pos ? parseInt(data.toString('latin1', pos, space), 10) : NaN;
    if (!(length > 0) || pos + length > data.length) break;
    const record = data.toString('utf8', space + 1, pos + length - 1);
    const eq = record.indexOf('=');
    if (eq > 0) records.set(record.slice(0, eq), record.slice(eq + 1));
    pos += length;
  }
  return records;
}

/** The first path component of an entry, or undefined for the root itself (`./`). */
function rootOf(name: string): string | undefined {
  const root = name.replace(/^(\.?\/)+/, '').split('/')[0];
  return root === '' || root === '.' ? undefined : root;
}

function damaged(file: string, offset: number, what: string): HoardError {
  return new HoardError('E_ENGINE', `${file} is a damaged tar archive: ${what} at byte ${offset} (after decompression)`, {
    details: { file, offset, notArchive: true },
  });
}

/**
 * Whether a classification error is a verdict on the file (not a tar, a damaged tar, data its
 * decompressor refuses): no engine can take it. A missing decompressor is not one.
 */
export function isNotImageArchive(err: unknown): boolean {
  return err instanceof HoardError && err.details.notArchive === true;
}

/** What `classifyArchive` decided, and how many (decompressed) bytes it read to decide. */
export interface ArchiveInspection {
  kind: ArchiveKind;
  bytesRead: number;
}

async function classifyTar(shown: string, src: Source): Promise<ArchiveInspection> {
  const roots = new Set<string>();
  const done = (kind: ArchiveKind): ArchiveInspection => ({ kind, bytesRead: src.position() });
  let longName: string | undefined;
  let paxPath: string | undefined;
  let paxSize: number | undefined;
  for (let first = true; ; first = false) {
    const offset = src.position();
    const block = await src.read(512);
    if (block.length === 0 && !first) break; // no end-of-archive blocks: tolerated
    if (block.length < 512 || (first && !checksumOk(block))) {
      if (first) {
        throw new HoardError('E_ENGINE', `${shown} is not a tar archive (compressed or not); cannot import it as an image`, {
          hint: 'an image artifact must be a root filesystem tarball, a `docker save` archive or an OCI archive',
          details: { file: shown, notArchive: true },
        });
      }
      throw damaged(shown, offset, 'truncated header');
    }
    if (block.every((b) => b === 0)) break; // end of archive
    if (!checksumOk(block)) throw damaged(shown, offset, 'bad header checksum');
    const type = String.fromCharCode(block[156]!);
    const ownSize = entrySize(block);
    if (ownSize === undefined) throw damaged(shown, offset, 'bad size field');
    if (METADATA_TYPES.has(type)) {
      if (type === 'L' || type === 'x') {
        if (ownSize > MAX_METADATA) throw damaged(shown, offset, `a ${ownSize}-byte ${type === 'L' ? 'long name' : 'PAX header'}`);
        const data = await src.read(Math.ceil(ownSize / 512) * 512);
        if (data.length < ownSize) throw damaged(shown, offset, 'truncated entry');
        if (type === 'L') longName = cstring(data, 0, ownSize);
        else {
          const records = paxRecords(data.subarray(0, ownSize));
          paxPath = records.get('path') ?? paxPath;
          const size = records.get('size');
          if (size !== undefined && /^\d+$/.test(size)) paxSize = Number(size);
        }
      } else if (!(await src.skip(Math.ceil(ownSize / 512) * 512))) throw damaged(shown, offset, 'truncated entry');
      continue;
    }
    const name = paxPath ?? longName ?? headerName(block);
    const size = paxSize ?? ownSize;
    longName = paxPath = paxSize = undefined;
    const root = rootOf(name);
    if (root !== undefined) {
      if (DOCKER_ENTRY.test(root)) return done('docker-archive');
      if (!OCI_ENTRY.test(root)) return done('rootfs');
      roots.add(root);
    }
    // Links, folders and devices carry no data, whatever their size field says.
    const hasData = !'123456'.includes(type);
    if (hasData && !(await src.skip(Math.ceil(size / 512) * 512))) throw damaged(shown, offset, 'truncated entry');
  }
  await src.drain();
  await src.finished();
  if (roots.has('oci-layout') && roots.has('index.json')) return done('oci-archive');
  return done('rootfs');
}

/** Like `classifyArchive`, and also says how much it read (for tests and benchmarks). */
export async function inspectArchive(file: string, shown = file): Promise<ArchiveInspection> {
  const src = await openSource(file, shown);
  try {
    return await classifyTar(shown, src);
  } catch (err) {
    // A decompressor that failed explains the problem better than the tar it cut short.
    if (src.ended()) await src.finished();
    throw err;
  } finally {
    src.close();
  }
}

/**
 * What `file` (a tar, or a tar compressed with gzip, xz, zstd or bzip2) holds: a root
 * filesystem → 'rootfs' (import it); a `docker save` archive → 'docker-archive' (load it;
 * it wins when an archive is both, as newer docker's are); an OCI layout → 'oci-archive'.
 * Root filesystems and classic `docker save` archives are recognised by their first entry;
 * an OCI layout is read to its end (contents skipped) to know it has no manifest.json.
 */
export async function classifyArchive(file: string, shown = file): Promise<ArchiveKind> {
  return (await inspectArchive(file, shown)).kind;
}
