import { writeFileAtomic } from '../core/fsutil.ts';
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
  lines.push(artifacts.length ? `  "artifacts": {\n${artifacts.join(',\n')}\n  }` : '  "artifacts": {}');
  return `{\n${lines.join(',\n')}\n}\n`;
}

/** Writes the manifest canonically and atomically, only when its bytes change. */
export async function writeManifest(manifest: Manifest, doc: ManifestDoc): Promise<boolean> {
  const text = serializeManifest(doc);
  if (text === manifest.text) return false;
  const written = await writeFileAtomic(manifest.file, text);
  manifest.text = text;
  manifest.doc = doc;
  return written;
}
