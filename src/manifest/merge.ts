// A three-way merge of hoard.json by artifact name, for `hoard merge-driver %O %A %B` (a git
// merge driver). Two branches that add artifacts next to each other conflict in a plain text
// merge; here they are a union. Only an entry both sides changed differently conflicts, and
// only that entry gets conflict markers.
import type { ManifestDoc } from './types.ts';
import { serializeManifest } from './write.ts';

export interface MergeResult {
  /** The merged manifest: canonical JSON, or with conflict markers around each conflicting entry. */
  text: string;
  /** The merged document, when nothing conflicts. */
  doc: ManifestDoc | null;
  /** Artifact names (or top-level keys, as "/output") both sides changed differently. */
  conflicts: string[];
}

type TopKey = '$schema' | 'version' | 'output';
const TOP_KEYS: readonly TopKey[] = ['$schema', 'version', 'output'];

/** One artifact's canonical lines (4-space indented, no trailing comma), or undefined when absent. */
function entryText(doc: ManifestDoc, name: string): string | undefined {
  const e = doc.artifacts[name];
  if (e === undefined) return undefined;
  const text = serializeManifest({ version: 1, artifacts: { [name]: e } });
  // The artifact's block, as serializeManifest writes it inside "artifacts": { … }.
  return text.slice(text.indexOf('\n    "') + 1, text.lastIndexOf('\n  }'));
}

/** The three-way rule: the same on both sides, or the side that changed, else a conflict. */
function pick<T>(base: T, ours: T, theirs: T): { value: T } | 'conflict' {
  if (ours === theirs) return { value: ours };
  if (ours === base) return { value: theirs };
  if (theirs === base) return { value: ours };
  return 'conflict';
}

export function mergeManifests(base: ManifestDoc, ours: ManifestDoc, theirs: ManifestDoc): MergeResult {
  const conflicts: string[] = [];
  const merged: ManifestDoc = { version: 1, artifacts: {} };
  const topLines: string[] = [];
  const json = (v: unknown) => (v === undefined ? undefined : JSON.stringify(v));
  for (const key of TOP_KEYS) {
    const r = pick(json(base[key]), json(ours[key]), json(theirs[key]));
    const line = (v: string | undefined) => (v === undefined ? [] : [`  ${JSON.stringify(key)}: ${v}`]);
    if (r === 'conflict') {
      conflicts.push(`/${key}`);
      topLines.push(['<<<<<<< ours', ...line(json(ours[key])), '=======', ...line(json(theirs[key])), '>>>>>>> theirs'].join('\n'));
      continue;
    }
    if (r.value !== undefined) (merged as unknown as Record<string, unknown>)[key] = JSON.parse(r.value);
    topLines.push(...line(r.value));
  }

  const names = [...new Set([...Object.keys(base.artifacts), ...Object.keys(ours.artifacts), ...Object.keys(theirs.artifacts)])].sort();
  type Item = { ok: string } | { ours: string | undefined; theirs: string | undefined };
  const items: Item[] = [];
  for (const name of names) {
    const o = entryText(ours, name);
    const t = entryText(theirs, name);
    const r = pick(entryText(base, name), o, t);
    if (r === 'conflict') {
      conflicts.push(name);
      items.push({ ours: o, theirs: t });
    } else if (r.value !== undefined) {
      merged.artifacts[name] = structuredClone((r.value === o ? ours : theirs).artifacts[name]!);
      items.push({ ok: r.value });
    }
  }
  if (conflicts.length === 0) return { text: serializeManifest(merged), doc: merged, conflicts };

  // Canonical layout, with markers around what conflicts (commas as if each side were taken).
  const body = items.map((item, i) => {
    const comma = i < items.length - 1 ? ',' : '';
    if ('ok' in item) return `${item.ok}${comma}`;
    const side = (s: string | undefined) => (s === undefined ? [] : [`${s}${comma}`]);
    return ['<<<<<<< ours', ...side(item.ours), '=======', ...side(item.theirs), '>>>>>>> theirs'].join('\n');
  });
  const artifacts = body.length ? `  "artifacts": {\n${body.join('\n')}\n  }` : '  "artifacts": {}';
  // Top-level lines keep their commas outside the markers' reach: each ends with one.
  const top = topLines.map((l) => l.split('\n').map((x) => (x.startsWith('  "') ? `${x},` : x)).join('\n'));
  return { text: `{\n${[...top, artifacts].join('\n')}\n}\n`, doc: null, conflicts };
}
