import path from 'node:path';
import { crypto } from '../core/builtins.ts';
import type { Digest } from '../core/digest.ts';
import { storeLayout } from './paths.ts';
import type { LockWait } from './lock.ts';
import { StateFile } from './state-file.ts';

/** What the index remembers of a URL: what it served last, and how to ask whether that changed. */
export interface UrlRecord {
  /** Redacted (no credentials, no query string): for people. The key is the full URL's SHA-256. */
  url: string;
  digest: Digest;
  size: number;
  etag?: string;
  lastModified?: string;
  /** When it was last downloaded or confirmed unchanged (ISO 8601). */
  checked: string;
}

/**
 * The URL → digest index (state/urls.json): `hoard fetch` answers from it, and a sync that
 * waited for another process's download of an unlocked URL takes that download's result.
 * Keyed by the SHA-256 of the URL: a token in a query string stays out of the file.
 */
export function openUrlIndex(storeRoot: string, wait: LockWait = {}) {
  const { state, locks } = storeLayout(path.resolve(storeRoot));
  return new StateFile<UrlRecord>(path.join(state, 'urls.json'), path.join(locks, 'state-urls.lock'), undefined, wait);
}

export const urlKey = (url: string) => crypto().createHash('sha256').update(url).digest('hex');

/**
 * The blobs `hoard fetch` wanted (state/fetched.json: hex digest → when it was last fetched,
 * ms since the epoch). gc keeps such a blob while its last use (used.json) is within the fetch
 * retention, though no manifest names it. Two processes that both record keep the later time.
 */
export function openFetchedBlobs(storeRoot: string, wait: LockWait = {}) {
  const { state, locks } = storeLayout(path.resolve(storeRoot));
  return new StateFile<number>(path.join(state, 'fetched.json'), path.join(locks, 'state-fetched.lock'), (inFile, mine) =>
    typeof inFile === 'number' && inFile > mine ? inFile : mine,
  wait);
}
