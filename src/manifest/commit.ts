// Writing hoard.json is a transaction: under a lock beside the file, the manifest is read
// again, only this run's changes are applied to what is there now, and the result is written
// atomically. Two `hoard add` at once, three `hoard sync <name>` at once, or a hand edit made
// while a download ran all survive; a change someone else made to the same entry meanwhile
// wins, and this run reports it instead of overwriting it.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { Digest } from '../core/digest.ts';
import { HoardError, isErrno } from '../core/errors.ts';
import { writeFileAtomic } from '../core/fsutil.ts';
import { acquireLock, type LockWait, type LockWaitInfo } from '../store/lock.ts';
import { checkManifest, parseManifest, problemLines, type ManifestProblem } from './load.ts';
import type { ArtifactEntry, ManifestDoc } from './types.ts';
import { manifestLockPath, serializeManifest } from './write.ts';

/** One change a run makes to hoard.json. */
export type ManifestChange =
  /** A new entry (`hoard add`), complete with its digest and size. */
  | { kind: 'add'; name: string; entry: ArtifactEntry }
  /** An entry moved to another source (`hoard update`: a newer vendor release), complete with its digest and size; `from` is the url it had. */
  | { kind: 'replace'; name: string; from: string; entry: ArtifactEntry }
  /** An entry got its digest and size from the bytes downloaded from `url`. */
  | { kind: 'lock'; name: string; url: string; digest: Digest; size: number }
  /** A vendor file was found under a new locator: `arista.path` moves from `from` to `to` (its url, digest and all else unchanged). */
  | { kind: 'relocate'; name: string; url: string; from: string; to: string };

/** A change not applied because someone else changed the same entry meanwhile. */
export interface ManifestConflict {
  name: string;
  change: ManifestChange;
  message: string;
}

export interface CommitResult {
  /** Whether the file's bytes changed. */
  written: boolean;
  /** The manifest as it is on disk now. */
  doc: ManifestDoc;
  text: string;
  applied: ManifestChange[];
  conflicts: ManifestConflict[];
}

/** A URL as it may be shown: no user info, no query (it may hold a token). */
function shown(url: string): string {
  return url.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^/?#@]*@/i, '$1').replace(/[?#].*$/, '');
}

/** Applies one change to `doc` in place; the reason it cannot, or null. */
function applyChange(doc: ManifestDoc, c: ManifestChange, rel: string): string | null {
  const current = doc.artifacts[c.name];
  if (c.kind === 'add') {
    if (current) {
      const same = serializeManifest({ version: 1, artifacts: { x: current } }) === serializeManifest({ version: 1, artifacts: { x: c.entry } });
      return same ? null : `someone else added an artifact named "${c.name}" to ${rel} meanwhile; this one was not recorded`;
    }
    doc.artifacts[c.name] = structuredClone(c.entry);
    return null;
  }
  if (!current) return `"${c.name}" was removed from ${rel} while it was downloaded; its digest was not recorded`;
  if (c.kind === 'relocate') {
    if (current.url !== c.url) return `the url of "${c.name}" in ${rel} changed meanwhile (now ${shown(current.url)}); its new arista.path was not recorded`;
    if (current.arista?.path === c.to) return null;
    if (current.arista?.path !== c.from) return `the arista.path of "${c.name}" in ${rel} changed meanwhile; the path it was found at (${c.to}) was not recorded`;
    current.arista = { path: c.to };
    return null;
  }
  if (c.kind === 'replace') {
    if (current.url !== c.from) return `the url of "${c.name}" in ${rel} changed meanwhile (now ${shown(current.url)}); the update to ${shown(c.entry.url)} was not recorded`;
    doc.artifacts[c.name] = structuredClone(c.entry);
    return null;
  }
  if (current.url !== c.url) {
    return `the url of "${c.name}" in ${rel} changed while it was downloaded (now ${shown(current.url)}); the digest of ${shown(c.url)} was not recorded`;
  }
  if (current.digest && current.digest !== c.digest) {
    return `"${c.name}" was locked to ${current.digest} in ${rel} meanwhile; this run downloaded ${c.digest}, which was not recorded`;
  }
  if (current.digest === c.digest && current.size !== undefined && current.size !== c.size) {
    return `"${c.name}" has size ${current.size} in ${rel}, but its bytes are ${c.size}; the entry was left as it is`;
  }
  current.digest = c.digest;
  current.size = c.size;
  return null;
}

/**
 * Applies `changes` to the manifest at `file` as it is now, under its lock, and writes it
 * (canonically, atomically, only when its bytes change). A file that became invalid meanwhile
 * is not rewritten: an E_MANIFEST error naming it.
 */
export async function commitManifest(
  file: string,
  changes: readonly ManifestChange[],
  opts: { onWait?: (info: LockWaitInfo) => void } & LockWait = {},
): Promise<CommitResult> {
  const abs = path.resolve(file);
  const rel = path.relative(process.cwd(), abs) || abs;
  let real: string;
  try {
    real = await fs.realpath(abs);
  } catch (err) {
    if (isErrno(err, 'ENOENT')) throw removed(abs, rel);
    throw err;
  }
  const release = await acquireLock(manifestLockPath(real), opts);
  try {
    let text: string;
    try {
      text = await fs.readFile(real, 'utf8');
    } catch (err) {
      if (isErrno(err, 'ENOENT')) throw removed(abs, rel);
      throw err;
    }
    let base: ManifestDoc;
    try {
      base = parseManifest(abs, text);
    } catch (err) {
      if (!(err instanceof HoardError)) throw err;
      const problems = (err.details.problems as ManifestProblem[] | undefined) ?? [];
      throw new HoardError('E_MANIFEST', `${rel} changed while hoard ran and is no longer a valid manifest:\n${problemLines(abs, problems)}`, {
        hint: `${rel} was not rewritten and what this run locked is not recorded: fix the file, then run \`hoard sync\` again`,
        details: { ...err.details, file: abs },
        cause: err,
      });
    }

    // All at once (the usual case); when the result is not valid, one at a time, keeping those that are.
    const conflicts: ManifestConflict[] = [];
    let applied: ManifestChange[] = [];
    let doc = structuredClone(base);
    for (const c of changes) {
      const why = applyChange(doc, c, rel);
      if (why) conflicts.push({ name: c.name, change: c, message: why });
      else applied.push(c);
    }
    try {
      checkManifest(abs, doc);
    } catch (err) {
      if (!(err instanceof HoardError)) throw err;
      doc = structuredClone(base);
      const valid: ManifestChange[] = [];
      for (const c of applied) {
        const next = structuredClone(doc);
        applyChange(next, c, rel);
        try {
          checkManifest(abs, next);
          doc = next;
          valid.push(c);
        } catch (e) {
          if (!(e instanceof HoardError)) throw e;
          const problems = (e.details.problems as ManifestProblem[] | undefined) ?? [];
          const what = problems.map((p) => `${p.pointer} ${p.message}`).join('; ') || e.message;
          conflicts.push({ name: c.name, change: c, message: `"${c.name}" does not fit ${rel} as it is now (${what}); it was not recorded` });
        }
      }
      applied = valid;
    }

    if (applied.length === 0) return { written: false, doc: base, text, applied, conflicts };
    const next = serializeManifest(doc);
    const written = next !== text && (await writeFileAtomic(real, next));
    return { written, doc, text: next, applied, conflicts };
  } finally {
    await release();
  }
}

function removed(abs: string, rel: string): HoardError {
  return new HoardError('E_MANIFEST', `${rel} was removed while hoard ran; what this run locked is not recorded`, {
    hint: 'restore it (git checkout hoard.json) and run `hoard sync` again',
    details: { file: abs },
  });
}
