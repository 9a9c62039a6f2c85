import { lstatSync, type Stats } from 'node:fs';
import path from 'node:path';
import type { Digest } from '../core/digest.ts';
import { hashFile } from '../core/hashfile.ts';
import { normalizeRel } from '../manifest/load.ts';
import type { Artifact } from '../manifest/types.ts';
import { fileFingerprint, inodeId, type Fingerprint } from '../store/fingerprint.ts';
import type { BlobCheck, Store } from '../store/store.ts';
import type { Emit } from './events.ts';
import type { SyncState } from './state.ts';

export type BlobState = 'ok' | 'missing' | 'corrupt' | 'unlocked';
/**
 * ok: has the artifact's content (and mode). missing: nothing there.
 * stale: hoard's own file, from another digest or damaged, or a hard link where a copy is wanted.
 * foreign: a file hoard did not put there, with other content; or not a regular file.
 * unknown: there is a file but the entry has no digest yet to compare with.
 */
export type OutputState = 'ok' | 'missing' | 'stale' | 'foreign' | 'unknown';

export interface Observed {
  target: string;
  blob: BlobState;
  blobReason?: string;
  output: OutputState;
  outputReason?: string;
  /** The output file is one hoard wrote, unchanged since (its fingerprint matches the record). */
  ours?: boolean;
  /** A fingerprint to remember for the output, when it was re-hashed and found right. */
  outputFp?: Fingerprint;
}

export interface ObserveContext {
  store: Store;
  state: SyncState;
  /** null: the artifact has no output file (`hoard fetch` without -o): only its blob is looked at. */
  outputRoot: string | null;
  /** Re-hash instead of trusting fingerprints: true for blobs and outputs, 'outputs' when the blobs were just verified. */
  verify: boolean | 'outputs';
  emit: Emit;
  /** Emit a `check` event per look (for --verbose); off, a no-op sync builds no such strings. */
  checks?: boolean;
  /** The store is disabled: it is not looked at (blobs count as missing). */
  noStore?: boolean;
  /** Blobs looked at in this run, by digest (with the size asked for): entries that share a blob look at it once. */
  blobChecks?: Map<string, { size: number | undefined; check: Promise<BlobCheck> }>;
}

/**
 * Looks at the store and the output folder for one artifact. Reads only; writes nothing.
 * What needs no hashing is answered at once (not through a promise): a no-op sync of
 * 10,000 artifacts is mostly this.
 */
export function observe(a: Artifact, ctx: ObserveContext): Observed | Promise<Observed> {
  // outputRoot is absolute and normal; a.path relative, and normal unless it has `.` segments or `//`.
  const target =
    ctx.outputRoot === null ? ''
    : normalizeRel(a.path) === a.path && !ctx.outputRoot.endsWith(path.sep) ? `${ctx.outputRoot}${path.sep}${a.path}`
    : path.join(ctx.outputRoot, a.path);
  // lstat: a symbolic link at the output path is someone else's, whatever it points to.
  const lst = ctx.outputRoot === null ? undefined : lstatSync(target, { throwIfNoEntry: false });
  // A hard link of the blob whose stat is the blob's verified fingerprint, ctime included: no
  // link to that inode was made or removed since hoard recorded it, so the blob's own name in
  // the store is still there, and the blob is trusted on this one stat (a no-op sync of
  // 10,000 hard links stats 10,000 files, not 20,000).
  if (
    lst?.isFile() && a.digest && !ctx.noStore && ctx.verify === false && !hardLinkUnwanted(a) &&
    (a.size === undefined || lst.size === a.size) && ctx.store.trusts(a.digest, lst)
  ) {
    if (ctx.checks) {
      checkEvent(a, ctx, 'blob', ctx.store.blobPath(a.digest), 'fingerprint matches, trusted', 'fingerprint');
      checkEvent(a, ctx, 'output', target, 'ok: hard link of the blob', 'fingerprint');
    }
    return { target, blob: 'ok', output: 'ok' };
  }
  return observeFully(a, ctx, target, lst);
}

/** The entry wants its own file (a copy or a reflink, or an executable copy): a hard link of the blob is stale. */
const hardLinkUnwanted = (a: Artifact): boolean => a.link === 'copy' || a.link === 'reflink' || a.executable;

/** A `check` event (for --verbose). */
function checkEvent(a: Artifact, ctx: ObserveContext, subject: 'blob' | 'output', p: string, result: string, trusted?: 'fingerprint' | 'hashed'): void {
  ctx.emit({ type: 'check', name: a.name, subject, path: p, result, ...(trusted ? { trusted } : {}) });
}

async function observeFully(a: Artifact, ctx: ObserveContext, target: string, lst: Stats | undefined): Promise<Observed> {
  const check = ctx.checks ? (subject: 'blob' | 'output', p: string, result: string, trusted?: 'fingerprint' | 'hashed') => checkEvent(a, ctx, subject, p, result, trusted) : () => {};

  let blob: BlobState = 'unlocked';
  let blobReason: string | undefined;
  let blobIno: number | null = null;
  let blobTrusted: 'fingerprint' | 'hashed' | undefined;
  if (a.digest && ctx.noStore) blob = 'missing';
  else if (a.digest) {
    const seen = ctx.blobChecks?.get(a.digest);
    const checking = seen && seen.size === a.size ? seen.check : ctx.store.check(a.digest, { verify: ctx.verify === true, size: a.size });
    if (ctx.blobChecks && !seen) ctx.blobChecks.set(a.digest, { size: a.size, check: checking });
    const c = await checking;
    blob = c.state;
    if (c.state === 'ok') {
      blobIno = c.stat.ino;
      blobTrusted = c.rehashed ? 'hashed' : 'fingerprint';
      check('blob', c.path, c.rehashed ? 're-hashed, digest matches' : 'fingerprint matches, trusted', c.rehashed ? 'hashed' : 'fingerprint');
    } else if (c.state === 'corrupt') {
      blobReason = c.reason;
      blobIno = c.stat?.ino ?? null;
      check('blob', c.path, `corrupt: ${c.reason}`);
    } else check('blob', c.path, 'missing');
  }

  const result = (output: OutputState, reason?: string, outputFp?: Fingerprint, trusted?: 'fingerprint' | 'hashed'): Observed => {
    if (ctx.checks) check('output', target, reason ? `${output}: ${reason}` : output, trusted);
    const o: Observed = { target, blob, output };
    if (blobReason) o.blobReason = blobReason;
    if (reason) o.outputReason = reason;
    if (outputFp) o.outputFp = outputFp;
    return o;
  };
  if (ctx.outputRoot === null) return { target, blob, output: 'ok', ...(blobReason ? { blobReason } : {}) };
  if (!lst) return result('missing');
  if (!lst.isFile()) return result('foreign', lst.isSymbolicLink() ? 'a symbolic link' : lst.isDirectory() ? 'a folder' : 'not a regular file');
  const modeOk = ((lst.mode & 0o111) !== 0) === a.executable;

  if (blobIno !== null && lst.ino === blobIno) {
    // A hard link of the blob: its content is the blob's.
    if (blob !== 'ok') return result('stale', 'a hard link of a corrupt blob');
    if (hardLinkUnwanted(a)) return result('stale', `a hard link where ${a.executable ? 'an executable copy' : `link "${a.link}"`} is wanted`);
    return result('ok', 'hard link of the blob', undefined, blobTrusted);
  }
  const record = ctx.state.outputs.get(target);
  const fp = fileFingerprint(lst);
  if (!a.digest) {
    const r = result('unknown', 'the entry has no digest yet');
    return record?.fp === fp ? { ...r, ours: true } : r;
  }

  // What the file holds: known from the record when unchanged; otherwise read it, unless its
  // size alone rules out both the wanted digest and the one hoard wrote there.
  const recordSize = record ? Number(record.fp.slice(0, record.fp.indexOf(':'))) : null;
  let content: Digest | null;
  if (record && record.fp === fp && !ctx.verify) content = record.digest;
  else if (a.size !== undefined && lst.size !== a.size && lst.size !== recordSize) content = null;
  else content = (await hashFile(target)).digest;

  if (content === a.digest) {
    if (!modeOk) return result('stale', a.executable ? 'not executable' : 'executable');
    const trusted = record?.fp === fp && !ctx.verify;
    return result('ok', trusted ? 'fingerprint matches' : 're-hashed, digest matches', trusted ? undefined : fp, trusted ? 'fingerprint' : 'hashed');
  }
  if (record && (record.fp === fp || content === record.digest)) return result('stale', `hoard's file from ${record.digest.slice(0, 19)}…`);
  // hoard made this file a hard link of the blob (it still has that inode): what it holds is
  // the blob's bytes, damaged in place, not someone's data. The blob is gone or was replaced.
  if (record?.blobInode !== undefined && record.blobInode === inodeId(lst)) return result('stale', "hoard's hard link of a blob that was damaged or removed");
  if (record) return result('foreign', 'changed since hoard wrote it (kept: it may be data, --force replaces it)');
  return result('foreign', 'a file hoard did not put there, with other content');
}
