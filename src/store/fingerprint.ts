import type { Stats } from 'node:fs';

/**
 * What a file looked like when its content was last verified. A later check that
 * sees the same fingerprint trusts the content without reading it.
 *
 * Blobs: size, inode, mtime, mode and ctime. ctime is what nobody but root (through the
 * clock) can set back: `touch -r` restores an mtime but moves the ctime. Making or removing
 * a hard link also moves it, so hoard records the new fingerprint after its own link
 * operations (see Store.linking); a link made or removed by someone else costs a re-hash.
 * A blob's mode is part of it: a blob made writable is in doubt.
 * Output copies: size, inode, mtime and ctime (their link count is hoard's alone).
 */
export type Fingerprint = string;

export function blobFingerprint(st: Stats): Fingerprint {
  return `${st.size}:${st.ino}:${st.mtimeMs}:${(st.mode & 0o7777).toString(8)}:${st.ctimeMs}`;
}

export function fileFingerprint(st: Stats): Fingerprint {
  return `${st.size}:${st.ino}:${st.mtimeMs}:${st.ctimeMs}`;
}

/** The ctime a blob fingerprint records (NaN for one recorded before ctime was part of it). */
export function fingerprintCtime(fp: Fingerprint): number {
  const parts = fp.split(':');
  return parts.length >= 5 ? Number(parts[4]) : Number.NaN;
}

/**
 * Whether two stats of one blob differ only in what a hard link made or removed changes
 * (its ctime and link count): same inode, size, mtime and mode.
 */
export function onlyLinksChanged(before: Stats, after: Stats): boolean {
  return before.ino === after.ino && before.size === after.size && before.mtimeMs === after.mtimeMs && before.mode === after.mode;
}

/**
 * Who an inode is: its number and, where the filesystem records it, its birth time, so that
 * an inode number reused by a new file is not mistaken for the old one.
 */
export function inodeId(st: Stats): string {
  return st.birthtimeMs > 0 ? `${st.ino}@${st.birthtimeMs}` : `${st.ino}`;
}
