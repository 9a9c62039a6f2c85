import path from 'node:path';
import { digestHex, type Digest } from '../core/digest.ts';

/** The store's folders (layout v1, see docs/store.md). */
export function storeLayout(root: string) {
  const v1 = path.join(root, 'v1');
  return {
    root,
    v1,
    blobs: path.join(v1, 'blobs', 'sha256'),
    tmp: path.join(v1, 'tmp'),
    locks: path.join(v1, 'locks'),
    state: path.join(v1, 'state'),
    /** Small, short-lived copies of what vendors' APIs said (Arista's folder tree); safe to delete. */
    cache: path.join(v1, 'cache'),
  };
}

/** The one function that maps a digest to where its blob lives. */
export function blobPath(root: string, digest: Digest): string {
  return path.join(root, 'v1', 'blobs', 'sha256', digestHex(digest));
}

/** Whether a file name in the blobs folder is a blob's: 64 lowercase hex digits (a loop: cheaper than a RegExp over 10,000 names). */
export function isHex64(s: string): boolean {
  if (s.length !== 64) return false;
  for (let i = 0; i < 64; i++) {
    const c = s.charCodeAt(i);
    if (!((c >= 48 && c <= 57) || (c >= 97 && c <= 102))) return false;
  }
  return true;
}
