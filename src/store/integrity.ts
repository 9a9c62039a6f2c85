// Integrity: what a blob must be, the check that trusts a recorded fingerprint or re-hashes,
// the fingerprints recorded at each verification (state/blobs.json), and `verify` of every blob.
import { promises as fs, statSync, type Stats } from 'node:fs';
import path from 'node:path';
import type { ChecksumAlgorithm, Checksums, Digest } from '../core/digest.ts';
import { HoardError } from '../core/errors.ts';
import { hashFile } from '../core/hashfile.ts';
import { blobFingerprint, fingerprintCtime, onlyLinksChanged, type Fingerprint } from './fingerprint.ts';
import type { LockWait } from './lock.ts';
import { storeLayout } from './paths.ts';
import { StateFile } from './state-file.ts';

/** What a blob must be: its digest (when locked), size and extra checksums. */
export interface Expected {
  digest?: Digest;
  size?: number;
  checksums?: Checksums;
}

export type BlobCheck =
  | { state: 'ok'; path: string; rehashed: boolean; stat: Stats }
  | { state: 'missing'; path: string }
  | { state: 'corrupt'; path: string; found: Digest | null; reason: string; stat?: Stats };

export interface VerifiedBlob {
  digest: Digest;
  path: string;
  ok: boolean;
  size: number;
  reason?: string;
}

export function integrityError(what: string, expected: Expected, found: { digest: Digest; size: number; checksums: Checksums }, source?: string): HoardError | null {
  let problem: string | null = null;
  if (expected.size !== undefined && found.size < expected.size) problem = `too short: ${found.size} of ${expected.size} bytes`;
  else if (expected.size !== undefined && found.size > expected.size) problem = `too long: ${found.size} bytes, expected ${expected.size}`;
  else if (expected.digest && expected.digest !== found.digest) problem = `digest mismatch: expected ${expected.digest}, got ${found.digest}`;
  else {
    for (const [alg, hex] of Object.entries(expected.checksums ?? {})) {
      const got = found.checksums[alg as ChecksumAlgorithm];
      if (hex && got !== hex) {
        problem = `${alg} mismatch: expected ${hex}, got ${got}`;
        break;
      }
    }
  }
  if (!problem) return null;
  return new HoardError('E_INTEGRITY', `${what} ${problem}`, {
    hint: source ? `the server at ${source} sent other bytes than the manifest records; if the artifact really changed upstream, remove its digest and size from hoard.json and sync again` : undefined,
    details: { expected: expected.digest, found: found.digest, expectedSize: expected.size, foundSize: found.size },
  });
}

/** Blobs `verify` hashes at once (the hash pool has two workers). */
export const VERIFY_AHEAD = 2;

/**
 * The fingerprints recorded when blobs were last verified, and the checks that use them.
 * `blobPrefix`: the blobs folder with a trailing separator (a blob's path is it plus the hex).
 */
export function openIntegrity(layout: ReturnType<typeof storeLayout>, blobPrefix: string, wait: LockWait = {}) {
  // Two processes that both verified a blob keep the later record (a link since moved its ctime).
  const verified = new StateFile<Fingerprint>(path.join(layout.state, 'blobs.json'), path.join(layout.locks, 'state-blobs.lock'), (inFile, mine) =>
    typeof inFile === 'string' && inFile.split(':')[1] === mine.split(':')[1] && fingerprintCtime(inFile) > fingerprintCtime(mine) ? inFile : mine,
  wait);
  /** Fingerprints this process recorded itself, per blob hex (its own links may have moved on since). */
  const mine = new Map<string, Set<Fingerprint>>();
  const trusted = (hex: string, fp: Fingerprint) => verified.get(hex) === fp || (mine.get(hex)?.has(fp) ?? false);
  /**
   * Link operations in progress per blob hex: the blob's stat when the first began (and whether
   * it was trusted then), and who wants its stat when the last ends (see Store.linking).
   */
  const brackets = new Map<string, { first: Stats | null; trusted: boolean; ops: number; settled: Set<(blob: Stats | null, inodes: readonly number[]) => void> }>();
  const recordVerified = (hex: string, st: Stats) => {
    const fp = blobFingerprint(st);
    let set = mine.get(hex);
    if (!set) mine.set(hex, (set = new Set()));
    set.add(fp);
    const current = verified.get(hex);
    // Links made concurrently finish in any order: the latest state of the blob wins.
    if (current && current.split(':')[1] === String(st.ino) && fingerprintCtime(current) > st.ctimeMs) return;
    verified.set(hex, fp);
  };

  return {
    recordVerified,

    /** A `stat` when the fingerprint recorded at the last verification still matches; a full re-hash otherwise. */
    async check(digest: Digest, opts: { verify?: boolean; size?: number } = {}): Promise<BlobCheck> {
      const hex = digest.slice(7);
      const p = blobPrefix + hex;
      // Synchronous on purpose: a no-op sync stats every blob, and a thread-pool round trip
      // per stat costs more than the stat.
      const st = statSync(p, { throwIfNoEntry: false });
      if (!st) return { state: 'missing', path: p };
      if (!st.isFile()) return { state: 'corrupt', path: p, found: null, reason: 'not a regular file' };
      if (opts.size !== undefined && st.size !== opts.size) {
        return { state: 'corrupt', path: p, found: null, reason: `size ${st.size}, expected ${opts.size}`, stat: st };
      }
      // (A blob hoard is linking now: trusted when it was at the start and only links moved since.)
      const linking = brackets.get(hex);
      if (!opts.verify && (trusted(hex, blobFingerprint(st)) || (linking?.trusted && onlyLinksChanged(linking.first!, st)))) return { state: 'ok', path: p, rehashed: false, stat: st };
      // A writable blob is made read-only again first, so that the stat before hashing is final.
      if ((st.mode & 0o222) !== 0) await fs.chmod(p, 0o444).catch(() => {});
      const before = (st.mode & 0o222) !== 0 ? await fs.stat(p) : st;
      const { digest: found } = await hashFile(p);
      if (found !== digest) {
        // Never trusted on its fingerprint again (a record someone made for these bytes, or one
        // that matches by accident): the next look, under the blob's lock, re-hashes it too.
        verified.set(hex, undefined);
        mine.delete(hex);
        return { state: 'corrupt', path: p, found, reason: `content hashes to ${found}`, stat: st };
      }
      const after = await fs.stat(p);
      // Recorded only when nothing moved while it was read.
      if (blobFingerprint(before) === blobFingerprint(after)) recordVerified(hex, after);
      return { state: 'ok', path: p, rehashed: true, stat: after };
    },

    /** See Store.trusts. */
    trusts: (digest: Digest, st: Stats): boolean => trusted(digest.slice(7), blobFingerprint(st)),

    /** See Store.linking. */
    async linking<T>(digests: readonly Digest[], op: () => Promise<T>, settled?: (blob: Stats | null, inodes: readonly number[]) => void): Promise<T> {
      // (A first sync of 40,000 links of one blob, made a few at a time, stats it twice, not 80,000 times.)
      const hexes = digests.map((d) => d.slice(7));
      // Every stat first (one may throw: an unreadable store), then the brackets are joined.
      const firsts = hexes.map((hex) => (brackets.has(hex) ? null : (statSync(blobPrefix + hex, { throwIfNoEntry: false }) ?? null)));
      hexes.forEach((hex, i) => {
        let b = brackets.get(hex);
        if (!b) {
          const first = firsts[i]!;
          brackets.set(hex, (b = { first, trusted: first !== null && trusted(hex, blobFingerprint(first)), ops: 0, settled: new Set() }));
        }
        b.ops++;
      });
      if (settled && hexes.length > 0) brackets.get(hexes[0]!)!.settled.add(settled);
      try {
        return await op();
      } finally {
        for (const hex of hexes) {
          const b = brackets.get(hex)!;
          if (--b.ops > 0) continue;
          brackets.delete(hex);
          if (!b.first && b.settled.size === 0) continue;
          const now = statSync(blobPrefix + hex, { throwIfNoEntry: false });
          const same = now && b.first && onlyLinksChanged(b.first, now) ? now : null;
          if (same && b.trusted) recordVerified(hex, same);
          const inodes = [b.first?.ino, now?.ino].filter((ino): ino is number => ino !== undefined);
          for (const f of b.settled) f(same, inodes);
        }
      }
    },

    /** Forgets a removed blob. */
    forget(hex: string): void {
      verified.set(hex, undefined);
      mine.delete(hex);
    },

    /** Forgets every blob for which `gone(hex)` says so. */
    forgetWhere(gone: (hex: string) => boolean): void {
      for (const hex of verified.keys()) if (gone(hex)) verified.set(hex, undefined);
    },

    flush: () => verified.flush(),
  };
}

/** What verifyAll needs of the store. */
interface Verifiable {
  list(): Promise<Digest[]>;
  check(digest: Digest, opts?: { verify?: boolean }): Promise<BlobCheck>;
  lock(digest: Digest): Promise<() => Promise<void>>;
  remove(digest: Digest): Promise<void>;
  flush(): Promise<void>;
}

/** Re-hashes every blob (VERIFY_AHEAD at once, reported in order) and removes the corrupt ones. */
export async function verifyAll(store: Verifiable, opts: { onBlob?: (r: VerifiedBlob) => void } = {}): Promise<{ blobs: number; bytes: number; corrupt: Digest[] }> {
  const result = { blobs: 0, bytes: 0, corrupt: [] as Digest[] };
  const checkOne = async (digest: Digest): Promise<BlobCheck> => {
    const c = await store.check(digest, { verify: true });
    if (c.state !== 'corrupt') return c;
    // Under the lock: a sync may be replacing it right now.
    const release = await store.lock(digest);
    try {
      const again = await store.check(digest, { verify: true });
      if (again.state === 'corrupt') await store.remove(digest);
      return again;
    } finally {
      await release();
    }
  };
  const digests = await store.list();
  const running: Array<Promise<BlobCheck>> = [];
  for (let next = 0, i = 0; i < digests.length; i++) {
    while (next < digests.length && next < i + VERIFY_AHEAD) {
      const p = checkOne(digests[next++]!);
      p.catch(() => {}); // awaited in order below
      running.push(p);
    }
    const digest = digests[i]!;
    const c = await running.shift()!;
    if (c.state === 'missing') continue;
    result.blobs++;
    if (c.state === 'ok') {
      result.bytes += c.stat.size;
      opts.onBlob?.({ digest, path: c.path, ok: true, size: c.stat.size });
    } else {
      result.corrupt.push(digest);
      opts.onBlob?.({ digest, path: c.path, ok: false, size: c.stat?.size ?? 0, reason: c.reason });
    }
  }
  await store.flush();
  return result;
}
