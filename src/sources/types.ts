// Where an artifact's bytes come from: an ordered list of candidates, tried one after the other
// by the one download pipeline (src/sync/transfer.ts → src/download/http.ts). Each candidate is asked
// for a URL and headers before EVERY transfer attempt (the first, each retry, each resume), so a
// vendor that hands out short-lived signed links gets to hand out a fresh one each time.
import type { Digest } from '../core/digest.ts';

/** What one transfer attempt requests. */
export interface Resolved {
  url: string;
  /** Already expanded; sent only to the URL's own origin. */
  headers: Record<string, string>;
  /**
   * A vendor found the file under another locator than the one recorded (its recorded path
   * answered Not Found): sync writes `to` back to hoard.json (`arista.path`).
   */
  moved?: { from: string; to: string };
}

export interface Candidate {
  /** Shown to people (events, errors, -v): never a signed link or a token. */
  label: string;
  /**
   * The identity of the bytes behind this candidate, stable across attempts (a partial file
   * resumed by a later attempt or run checks it): the URL for a plain URL, the locator for a vendor.
   */
  key: string;
  /** Called before every attempt (1 is the first); a fresh URL and headers. */
  resolve(attempt: number): Promise<Resolved>;
  /**
   * A 403 from the download host means the link expired: resolve again and resume, instead of
   * failing (a vendor's signed link). Plain URLs leave it unset.
   */
  expiring?: boolean;
  /**
   * The request is conditional (If-None-Match / If-Modified-Since in its headers: `hoard fetch
   * --refresh`): a 304 answer means these bytes, which the store holds, are still current.
   */
  unchanged?: { digest: Digest; size: number; etag?: string; lastModified?: string };
}

/** A plain URL (the artifact's `url` or a mirror): the same URL and headers every time. */
export function urlCandidate(url: string, headers: Record<string, string>): Candidate {
  const resolved: Resolved = { url, headers };
  return { label: url, key: url, resolve: () => Promise.resolve(resolved) };
}
