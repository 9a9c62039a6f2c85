// Hashing off the main thread. A download's main thread receives bytes and hands them to the
// disk (libuv's thread pool); SHA-256 and any extra checksums run in a worker thread over the
// very same memory (a SharedArrayBuffer: nothing is copied for the worker), so receiving,
// writing and hashing overlap. A file already on disk (a blob to verify, the prefix of a
// resumed download) is read by the worker itself.
//
// Several hashers share a small pool of workers, made at first use and left idle (unref'd) so
// they never keep the process alive; a hasher is bound to one worker, which keeps its order.
// Small inputs are hashed inline: a worker's start costs more than hashing a few MiB.
import { availableParallelism } from 'node:os';
import type { Worker } from 'node:worker_threads';
import { promises as fs } from 'node:fs';
import { MultiHash, type ChecksumAlgorithm, type Checksums, type Digest } from './digest.ts';
import { HoardError } from './errors.ts';

export interface HashResult {
  digest: Digest;
  checksums: Checksums;
  size: number;
}

/** SHA-256 plus extra checksums of one stream of bytes, fed in order. */
export interface Hasher {
  /** Bytes given so far (a file range counts once it is hashed, or at once when its length is given). */
  readonly size: number;
  /**
   * Hashes `buf` after everything given before. Until the promise resolves (when one is
   * returned), `buf` is being read and must not change. A buffer over a SharedArrayBuffer
   * (see sharedBuffer) reaches the worker without a copy; any other is copied once.
   */
  update(buf: Uint8Array): Promise<void> | void;
  /** Hashes the bytes of `file` from `start`: `length` of them (an error when fewer), or up to its end. */
  updateFile(file: string, start?: number, length?: number): Promise<void>;
  /** The digests of everything given; the hasher is done. */
  digest(): Promise<HashResult>;
  /** The SHA-256 hex of everything given so far, the hash going on (a partial download's checkpoint). */
  prefix(): Promise<string>;
  /** Forgets the hash (safe after digest(), or twice); what was given is still read first. */
  dispose(): void;
}

export interface HashPool {
  hasher(algorithms?: Iterable<ChecksumAlgorithm>): Hasher;
  /** The worker threads running now (for tests: a thread that dies must fail its hashers, not hang them). */
  threads(): readonly Worker[];
  /** Stops the workers; hashers still running fail. */
  close(): Promise<void>;
}

/**
 * Below this size a hasher hashes on the calling thread. Measured on a loaded 2-core machine: a
 * worker's first start takes 0.4-1.3 s there (30-50 ms idle), inline SHA-256 of 4 MiB 28 ms and
 * of 16 MiB 64 ms; the worker pays off when it overlaps a longer transfer.
 */
export const INLINE_BYTES = 8 * 1024 * 1024;

/** A buffer the hash workers read without a copy. */
export function sharedBuffer(size: number): Buffer {
  return Buffer.from(new SharedArrayBuffer(size));
}

/**
 * A hasher for bytes about to come: inline when `sizeHint` says they are few, else on the
 * process's worker pool.
 */
export function createHasher(algorithms: Iterable<ChecksumAlgorithm> = [], opts: { sizeHint?: number } = {}): Hasher {
  if (opts.sizeHint !== undefined && opts.sizeHint < INLINE_BYTES) return inlineHasher(algorithms);
  return sharedPool().hasher(algorithms);
}

/** Hashes a whole file (a worker reads it unless it is small). */
export async function hashFileBytes(file: string, algorithms: Iterable<ChecksumAlgorithm> = []): Promise<HashResult> {
  const st = await fs.stat(file);
  const h = createHasher(algorithms, { sizeHint: st.size });
  try {
    await h.updateFile(file);
    return await h.digest();
  } finally {
    h.dispose();
  }
}

let shared: HashPool | null = null;
/** The pool every hasher of this process shares: min(2, cores) workers. */
export function sharedPool(): HashPool {
  return (shared ??= createHashPool());
}

/** A hasher on the calling thread (MultiHash), keeping order between files and buffers. */
export function inlineHasher(algorithms: Iterable<ChecksumAlgorithm> = []): Hasher {
  const hash = new MultiHash(algorithms);
  /** A file being read: later buffers wait for it. */
  let busy: Promise<void> | null = null;
  let given = 0;
  const after = (step: () => Promise<void> | void): Promise<void> => {
    const p: Promise<void> = (busy ?? Promise.resolve()).then(step).finally(() => {
      if (busy === p) busy = null;
    });
    busy = p;
    return p;
  };
  return {
    get size() {
      return given;
    },
    update(buf) {
      given += buf.byteLength;
      if (!busy) hash.update(buf);
      else return after(() => hash.update(buf));
    },
    updateFile(file, start = 0, length) {
      if (length !== undefined) given += length;
      return after(async () => {
        const n = await readFile(openFile, file, start, length, (b) => hash.update(b), READ_BYTES);
        if (length === undefined) given += n;
      });
    },
    async digest() {
      await busy;
      return { ...hash.digest(), size: hash.size };
    },
    async prefix() {
      await busy;
      return hash.prefixDigest();
    },
    dispose() {},
  };
}

const READ_BYTES = 4 * 1024 * 1024;

/**
 * Feeds `file`'s bytes from `start` to `use` in blocks of `blockBytes`, reading the next block
 * while `use` runs; resolves with the number of bytes. Fewer than `length` is an error (the file
 * changed under us).
 *
 * Written once for both threads: the inline hasher calls it, and the worker's code (WORKER_CODE)
 * is built from its text (workerCode). So it uses nothing but its arguments and globals (no import, no
 * helper of this module: a bundler renames those), and test/core/hash-pool.test.ts checks that
 * the worker's copy runs.
 */
async function readFile(
  open: (file: string, flags: string) => Promise<import('node:fs/promises').FileHandle>,
  file: string,
  start: number,
  length: number | undefined | null,
  use: (b: Buffer) => void,
  blockBytes: number,
): Promise<number> {
  const fh = await open(file, 'r');
  try {
    let bufs = [Buffer.allocUnsafe(blockBytes), Buffer.allocUnsafe(blockBytes)];
    let left = length == null ? Infinity : length;
    let at = start;
    // (No function of its own inside: tsx would wrap it in a helper the worker does not have.)
    let reading = fh.read(bufs[0]!, 0, Math.min(blockBytes, left), at);
    for (;;) {
      const { bytesRead } = await reading;
      if (bytesRead === 0) break;
      at += bytesRead;
      left -= bytesRead;
      bufs = [bufs[1]!, bufs[0]!];
      reading = left > 0 ? fh.read(bufs[0]!, 0, Math.min(blockBytes, left), at) : Promise.resolve({ bytesRead: 0, buffer: bufs[0]! });
      use(bufs[1]!.subarray(0, bytesRead));
    }
    if (length != null && left > 0) throw new Error(`${file} ended after ${at - start} of ${length} bytes`);
    return at - start;
  } finally {
    await fh.close();
  }
}

const openFile = (file: string, flags: string) => fs.open(file, flags);

// The worker's code, run with `eval`: plain CommonJS that needs nothing but Node (readFile above
// as its text), so it is the same under tsx (tests) and in the esbuild bundles, with no file of
// its own to ship. (Made at the first worker's start.)
const workerCode = () => `
const { parentPort } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const fs = require('node:fs');
const READ = ${READ_BYTES};
const jobs = new Map();
const readFile = ${readFile.toString()};
async function run(job, m) {
  switch (m.op) {
    case 'update': {
      const view = new Uint8Array(m.buf, m.offset, m.length);
      for (const h of job.hashes) h[1].update(view);
      job.size += m.length;
      return {};
    }
    case 'file': {
      const n = await readFile((f, flags) => fs.promises.open(f, flags), m.file, m.start, m.length, (b) => { for (const h of job.hashes) h[1].update(b); }, READ);
      job.size += n;
      return { bytes: n };
    }
    case 'prefix':
      return { hex: [['sha256', job.hashes[0][1].copy().digest('hex')]] };
    case 'digest': {
      jobs.delete(m.id);
      return { hex: job.hashes.map((h) => [h[0], h[1].digest('hex')]), size: job.size };
    }
    case 'drop':
      jobs.delete(m.id);
      return null;
  }
}
parentPort.on('message', (m) => {
  if (m.op === 'open') {
    jobs.set(m.id, { hashes: m.algs.map((a) => [a, createHash(a)]), size: 0, chain: Promise.resolve() });
    return;
  }
  const job = jobs.get(m.id);
  if (!job) return;
  job.chain = job.chain.then(() => run(job, m)).then(
    (r) => { if (r) parentPort.postMessage({ id: m.id, seq: m.seq, ...r }); },
    (e) => parentPort.postMessage({ id: m.id, seq: m.seq, error: String(e && e.message || e) }),
  );
});
`;

interface Reply {
  id: number;
  seq: number;
  error?: string;
  bytes?: number;
  hex?: Array<[ChecksumAlgorithm, string]>;
  size?: number;
}

interface Slot {
  worker: Worker;
  /** Hashers bound to this worker. */
  hashers: number;
  /** Replies awaited, by `${id}:${seq}`. */
  waiting: Map<string, { resolve: (r: Reply) => void; reject: (e: Error) => void }>;
  dead: HoardError | null;
}

export function createHashPool(opts: { size?: number } = {}): HashPool {
  const size = Math.max(1, opts.size ?? Math.min(2, availableParallelism()));
  const slots: Slot[] = [];
  let nextId = 1;
  let closing = false;

  const died = (slot: Slot, why: string) => {
    if (slot.dead) return;
    slot.dead = new HoardError('E_STORE', `the hashing thread stopped (${why}) before it had hashed everything`, {
      hint: 'run the command again; nothing unverified was kept',
      details: { thread: 'hash' },
    });
    const i = slots.indexOf(slot);
    if (i >= 0) slots.splice(i, 1);
    for (const w of slot.waiting.values()) w.reject(slot.dead);
    slot.waiting.clear();
  };

  const spawnSlot = (): Slot => {
    // execArgv: []: plain JavaScript, it needs none of the parent's flags (--import tsx, profilers).
    const { Worker } = process.getBuiltinModule('node:worker_threads'); // (loaded at the first worker, not at start-up)
    const worker = new Worker(workerCode(), { eval: true, name: 'hoard-hash', execArgv: [] });
    const slot: Slot = { worker, hashers: 0, waiting: new Map(), dead: null };
    worker.on('message', (r: Reply) => {
      const key = `${r.id}:${r.seq}`;
      const w = slot.waiting.get(key);
      if (!w) return;
      slot.waiting.delete(key);
      // Idle again: it no longer holds the process (unless close() waits for its exit).
      if (slot.waiting.size === 0 && !closing) worker.unref();
      w.resolve(r);
    });
    worker.on('error', (err) => died(slot, err.message));
    worker.on('exit', (code) => died(slot, closing ? 'the pool was closed' : `exit code ${code}`));
    // Idle until asked. After the listeners: adding a 'message' listener refs the worker's port again.
    worker.unref();
    slots.push(slot);
    return slot;
  };

  /** The worker with the fewest hashers; a new one while the pool is not full. */
  const pick = (): Slot => {
    const idle = slots.find((s) => s.hashers === 0);
    if (idle) return idle;
    if (slots.length < size) return spawnSlot();
    return slots.reduce((a, b) => (b.hashers < a.hashers ? b : a));
  };

  const hasher = (algorithms: Iterable<ChecksumAlgorithm> = []): Hasher => {
    const algs = [...new Set(['sha256', ...algorithms])] as ChecksumAlgorithm[];
    const slot = pick();
    slot.hashers++;
    const id = nextId++;
    let seq = 0;
    let given = 0;
    let done = false;
    slot.worker.postMessage({ op: 'open', id, algs });
    const release = () => {
      if (!done) {
        done = true;
        slot.hashers--;
      }
    };
    const ask = (m: Record<string, unknown>, transfer?: ArrayBuffer[]): Promise<Reply> => {
      if (slot.dead) return Promise.reject(slot.dead);
      const s = ++seq;
      return new Promise<Reply>((resolve, reject) => {
        if (slot.waiting.size === 0) slot.worker.ref();
        slot.waiting.set(`${id}:${s}`, { resolve, reject });
        slot.worker.postMessage({ ...m, id, seq: s }, transfer);
      }).then((r) => (r.error !== undefined ? Promise.reject(new Error(r.error)) : r));
    };
    return {
      get size() {
        return given;
      },
      async update(buf) {
        if (done) throw new Error('update() after digest() or dispose()');
        given += buf.byteLength;
        if (buf.byteLength === 0) return;
        if (buf.buffer instanceof SharedArrayBuffer) {
          await ask({ op: 'update', buf: buf.buffer, offset: buf.byteOffset, length: buf.byteLength });
        } else {
          const copy = new Uint8Array(buf); // its own ArrayBuffer, moved to the worker (not the caller's)
          await ask({ op: 'update', buf: copy.buffer, offset: 0, length: copy.byteLength }, [copy.buffer]);
        }
      },
      async updateFile(file, start = 0, length) {
        if (done) throw new Error('updateFile() after digest() or dispose()');
        if (length !== undefined) given += length;
        const r = await ask({ op: 'file', file, start, length });
        if (length === undefined) given += r.bytes ?? 0;
      },
      async prefix() {
        if (done) throw new Error('prefix() after digest() or dispose()');
        const r = await ask({ op: 'prefix' });
        return (r.hex ?? [])[0]?.[1] ?? '';
      },
      async digest() {
        if (done) throw new Error('digest() twice, or after dispose()');
        try {
          const r = await ask({ op: 'digest' });
          const hex = Object.fromEntries(r.hex ?? []) as Checksums;
          return { digest: `sha256:${hex.sha256}`, checksums: hex, size: r.size ?? 0 };
        } finally {
          release();
        }
      },
      dispose() {
        if (done) return;
        release();
        if (!slot.dead) slot.worker.postMessage({ op: 'drop', id, seq: ++seq });
      },
    };
  };

  return {
    hasher,
    threads: () => slots.map((s) => s.worker),
    async close() {
      closing = true;
      // (ref'd first: an idle worker is unref'd, and its exit must still be waited for)
      await Promise.all(slots.map((s) => (s.worker.ref(), s.worker.terminate())));
      closing = false;
    },
  };
}
