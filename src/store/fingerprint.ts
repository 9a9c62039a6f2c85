import type { Stats } from 'node:fs';

/**
 * What a file looked like when its content was last verified. A later check that
 * sees the same fingerprint trusts the content without reading it.
 *
 * Blobs: size, inode, mtime and mode. Not ctime: making or removing a hard link to a
 * blob changes its ctime, and `rm -rf artifacts` must not force a re-hash of every blob.
 * A blob's mode is part of it: a blob made writable is in doubt.
 * Output copies: size, inode, mtime and ctime (their link count is hoard's alone).
 */
export type Fingerprint = string;

export function blobFingerprint(st: Stats): Fingerprint {
  return `${st.size}:${st.ino}:${st.mtimeMs}:${(st.mode & 0o7777).toString(8)}`;
}

export function fileFingerprint(st: Stats): Fingerprint {
  return `${st.size}:${st.ino}:${st.mtimeMs}:${st.ctimeMs}`;
}
