import { promises as fs } from 'node:fs';
import { HoardError } from '../core/errors.ts';
import { writeFileAtomic } from '../core/fsutil.ts';
import { acquireLock, type LockWait } from '../store/lock.ts';
import type { ArtifactEntry, Manifest, ManifestDoc } from './types.ts';

const ARTIFACT_KEYS: ReadonlyArray<keyof ArtifactEntry> = [
  'url', 'arista', 'mirrors', 'path', 'digest', 'size', 'checksums', 'image', 'headers', 'link', 'executable',
];
const CHECKSUM_KEYS = ['sha512', 'sha256', 'sha1', 'md5'] as const;

/**
 * The one canonical text of a manifest: fixed key order, artifacts sorted by name,
 * 2-space indent, one trailing newline. Each artifact spans its own lines, so two
 * people adding different artifacts touch different hunks.
 */
export function serializeManifest(doc: ManifestDoc): string {
  // Written by hand: a JS object would put integer-like names ("9", "10") first.
  const artifacts: string[] = [];
  for (const name of Object.keys(doc.artifacts).sort()) {
    const entry = doc.artifacts[name]!;
    const out: Record<string, unknown> = {};
    for (const key of ARTIFACT_KEYS) {
      const v = entry[key];
      if (v === undefined) continue;
      if (key === 'checksums') {
        const sums: Record<string, string> = {};
        for (const a of CHECKSUM_KEYS) if (entry.checksums?.[a]) sums[a] = entry.checksums[a]!;
        out[key] = sums;
      } else out[key] = v;
    }
    artifacts.push(`    ${JSON.stringify(name)}: ${JSON.stringify(out, null, 2).replace(/\n/g, '\n    ')}`);
  }
  const lines: string[] = [];
  if (doc.$schema !== undefined) lines.push(`  "$schema": ${JSON.stringify(doc.$schema)}`);
  lines.push(`  "version": ${JSON.stringify(doc.version)}`);
  if (doc.output !== undefined) lines.push(`  "output": ${JSON.stringify(doc.output)}`);
  if (doc.remote !== undefined) lines.push(`  "remote": ${JSON.stringify(doc.remote)}`);
  lines.push(artifacts.length ? `  "artifacts": {\n${artifacts.join(',\n')}\n  }` : '  "artifacts": {}');
  return `{\n${lines.join(',\n')}\n}\n`;
}

/** The lock that serialises writers of one manifest: beside the real file (a symlinked manifest shares it). */
export function manifestLockPath(realFile: string): string {
  return `${realFile}.lock`;
}

/**
 * Writes the manifest canonically and atomically, only when its bytes change, under the
 * manifest's lock, and only if the file is still what `manifest.text` says was read: a file
 * changed by someone else meanwhile is not overwritten (E_MANIFEST). To apply changes to the
 * file as it is now, use commitManifest (src/manifest/commit.ts).
 */
export async function writeManifest(manifest: Manifest, doc: ManifestDoc, wait: LockWait = {}): Promise<boolean> {
  const text = serializeManifest(doc);
  if (text === manifest.text) return false;
  const real = await fs.realpath(manifest.file);
  const release = await acquireLock(manifestLockPath(real), wait);
  try {
    const now = await fs.readFile(real, 'utf8');
    if (now !== manifest.text) {
      throw new HoardError('E_MANIFEST', `${manifest.file} changed since it was read; it was not overwritten`, {
        hint: 'load it again and apply the change to what is there now',
        details: { file: manifest.file },
      });
    }
    const written = await writeFileAtomic(real, text);
    manifest.text = text;
    manifest.doc = doc;
    return written;
  } finally {
    await release();
  }
}
