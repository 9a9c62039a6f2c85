// The manifests that have used a store (recorded by each sync in v1/state/manifests.json),
// read back for gc and `hoard store ls`: which digests each one names, and under which names.
import { promises as fs, readFileSync, statSync } from 'node:fs';
import type { Digest } from '../core/digest.ts';
import { HoardError, isErrno } from '../core/errors.ts';
import { manifestStamp as stampOf, parseManifest } from '../manifest/load.ts';
import type { SyncState } from './state.ts';

/**
 * ok: parsed and valid. missing: the file is gone (the project was deleted or moved).
 * invalid: it exists but is not a valid manifest (a merge conflict, an edit in progress):
 * every digest its text mentions counts as referenced. unreadable: it exists but cannot be
 * read (permissions): what it references cannot be known, so gc removes nothing unreferenced.
 */
export type KnownState = 'ok' | 'missing' | 'invalid' | 'unreadable';

export interface KnownManifest {
  file: string;
  state: KnownState;
  /** Digest → the names of the artifacts that have it (no names for an invalid manifest's). */
  refs: Map<Digest, string[]>;
  /** Why it is invalid or unreadable. */
  reason?: string;
  /** What the file looked like when read, to tell whether it changed since. */
  stamp: string | null;
}

const DIGEST_IN_TEXT = /sha256:[0-9a-f]{64}/g;


/** The stamp of a manifest file now: null when it is gone. */
export async function manifestStamp(file: string): Promise<string | null> {
  try {
    return stampOf(await fs.stat(file));
  } catch {
    return null;
  }
}

/**
 * The digests and names of a manifest already found valid with this content (same stamp):
 * only parsed, not validated again. Null when it does not look like one (then it is read in full).
 */
function refsOfValid(text: string): Map<Digest, string[]> | null {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    return null;
  }
  const artifacts = (doc as { artifacts?: unknown } | null)?.artifacts;
  if (!artifacts || typeof artifacts !== 'object') return null;
  const refs = new Map<Digest, string[]>();
  for (const [name, entry] of Object.entries(artifacts)) {
    const digest = (entry as { digest?: unknown } | null)?.digest;
    if (digest === undefined) continue;
    if (typeof digest !== 'string') return null;
    const names = refs.get(digest as Digest);
    if (names) names.push(name);
    else refs.set(digest as Digest, [name]);
  }
  return refs;
}

// Synchronous reads: a hundred small manifests are read faster one after the other than
// through the thread pool (gc over 100 manifests: ~25 ms less).
/**
 * Reads a known manifest. `validStamp`: the stamp it had when last found valid; if it still has
 * it, its content is the same, and it is not validated again (validating 10,000 entries is most
 * of a gc's own time).
 */
export async function readKnownManifest(file: string, validStamp?: string): Promise<KnownManifest> {
  return readKnownManifestSync(file, validStamp);
}

function readKnownManifestSync(file: string, validStamp?: string): KnownManifest {
  let text: string;
  let stamp: string;
  try {
    const st = statSync(file);
    text = readFileSync(file, 'utf8');
    stamp = stampOf(st);
  } catch (err) {
    if (isErrno(err, 'ENOENT', 'ENOTDIR')) return { file, state: 'missing', refs: new Map(), stamp: null };
    return { file, state: 'unreadable', refs: new Map(), reason: (err as Error).message, stamp: null };
  }
  if (validStamp !== undefined && validStamp === stamp) {
    const refs = refsOfValid(text);
    if (refs) return { file, state: 'ok', refs, stamp };
  }
  const refs = new Map<Digest, string[]>();
  try {
    const doc = parseManifest(file, text);
    for (const [name, entry] of Object.entries(doc.artifacts)) {
      if (!entry.digest) continue;
      const names = refs.get(entry.digest);
      if (names) names.push(name);
      else refs.set(entry.digest, [name]);
    }
    return { file, state: 'ok', refs, stamp };
  } catch (err) {
    if (!(err instanceof HoardError && err.code === 'E_MANIFEST')) throw err;
    for (const m of text.matchAll(DIGEST_IN_TEXT)) if (!refs.has(m[0] as Digest)) refs.set(m[0] as Digest, []);
    return { file, state: 'invalid', refs, reason: err.message.split('\n')[1]?.trim() ?? err.message, stamp };
  }
}

/** A known manifest as gc needs it: only which blobs it names (hex digests), not under which names. */
export interface KnownDigests {
  file: string;
  state: KnownState;
  hexes: Set<string>;
  reason?: string;
  stamp: string | null;
}

/**
 * The hex digests in a manifest already found valid with this content, found by scanning its
 * text for JSON strings that start with "sha256:" (its digests are such strings; another one,
 * in a header value say, only keeps one blob more). Null when the text has a \u escape, which
 * could spell a digest the scan would miss: then it is parsed.
 */
function hexesOfValid(text: string): Set<string> | null {
  if (text.includes('\\u')) return null;
  const out = new Set<string>();
  for (let i = text.indexOf('"sha256:'); i !== -1; i = text.indexOf('"sha256:', i + 8)) {
    // (Not checked for hex digits: the manifest was validated, and the set is only looked up
    // with blob names.)
    if (text.charCodeAt(i + 72) === 34 /* " */) out.add(text.slice(i + 8, i + 72));
  }
  return out;
}

/** Reads a known manifest for gc: its hex digests; one still valid with this content is only scanned. */
export function readKnownDigests(file: string, validStamp?: string): KnownDigests {
  if (validStamp !== undefined) {
    try {
      const st = statSync(file);
      if (stampOf(st) === validStamp) {
        const hexes = hexesOfValid(readFileSync(file, 'utf8'));
        // The stamp is taken before the read: a change in between shows at the next read.
        if (hexes) return { file, state: 'ok', hexes, stamp: validStamp };
      }
    } catch {
      // read in full below, which says what is wrong
    }
  }
  return hexesOf(readKnownManifestSync(file, validStamp));
}

const hexesOf = (m: KnownManifest): KnownDigests => ({
  file: m.file, state: m.state, hexes: new Set([...m.refs.keys()].map((d) => d.slice(7))), stamp: m.stamp, ...(m.reason ? { reason: m.reason } : {}),
});

/**
 * Every manifest recorded in the store, for gc: which blobs each names. One found valid is
 * recorded with its stamp, as readKnownManifests does.
 */
export function readKnownDigestsAll(state: SyncState): KnownDigests[] {
  const out: KnownDigests[] = [];
  for (const [file, known] of state.manifests.entries().sort((a, b) => (a[0] < b[0] ? -1 : 1))) {
    const m = readKnownDigests(file, known.valid);
    if (m.state === 'ok' && m.stamp !== known.valid) state.manifests.set(file, { ...known, valid: m.stamp! });
    out.push(m);
  }
  return out;
}

/**
 * Every manifest recorded in the store, read now. One found valid is recorded with its stamp
 * (in manifests.json, written when the caller flushes the state), so the next read of the same
 * content skips validating it.
 */
export async function readKnownManifests(state: SyncState): Promise<KnownManifest[]> {
  const out: KnownManifest[] = [];
  for (const [file, known] of state.manifests.entries().sort((a, b) => (a[0] < b[0] ? -1 : 1))) {
    const m = await readKnownManifest(file, known.valid);
    if (m.state === 'ok' && m.stamp !== known.valid) state.manifests.set(file, { ...known, valid: m.stamp! });
    out.push(m);
  }
  return out;
}
