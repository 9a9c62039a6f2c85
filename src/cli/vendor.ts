// Commands for vendor sources (Arista first): `hoard add arista:…`, `hoard add --from-clab`,
// `hoard outdated`, `hoard update`, `hoard versions`. Each builds one Sources for the command (one
// Arista session for all of it) and hands new entries to the same sync that `hoard add <url>` uses.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { Checksums } from '../core/digest.ts';
import { EXIT, exitCode, HoardError } from '../core/errors.ts';
import { checkManifest, loadManifest } from '../manifest/load.ts';
import type { ArtifactEntry, LinkMode, Manifest, ManifestDoc } from '../manifest/types.ts';
import {
  branchOf, compareVersions, findFile, findFormat, latestOf, parseFileName, parseSpec, releaseTypeOf, resolveSpec, sidecarOf, versionsOf,
  type ReleaseType, type Resolution, type TreeFile,
} from '../sources/arista-catalog.ts';
import type { AristaClient } from '../sources/arista.ts';
import { isVendorUrl, type Sources } from '../sources/index.ts';
import { sync, type NetworkOptions } from '../sync/sync.ts';
import type { EngineChoice } from '../engine/types.ts';
import { nameFromFile, syncBasics, vendorSources, type GlobalOptions } from './commands.ts';
import type { Printer } from './print.ts';

type Env = Record<string, string | undefined>;

export interface VendorOptions {
  /** The variable holding Arista's API token (--token-env); default ARISTA_TOKEN. */
  tokenEnv?: string;
  network?: NetworkOptions;
  images: boolean;
  engine: EngineChoice;
  output?: string;
}

export function releaseTypeOption(v: unknown): ReleaseType | undefined {
  if (v === undefined) return undefined;
  const t = String(v).toUpperCase();
  if (t === 'F' || t === 'M') return t;
  throw new HoardError('E_USAGE', `--release-type must be F (feature) or M (maintenance), not ${String(v)}`);
}

/** The entry of a resolved Arista file: its locator, and the sha512 (or md5) Arista publishes beside it. */
async function aristaEntry(client: AristaClient, files: readonly TreeFile[], r: Resolution): Promise<ArtifactEntry> {
  const entry: ArtifactEntry = { url: `arista:${r.file.name}`, arista: { path: r.file.path } };
  const side = sidecarOf(files, r.file);
  if (side) {
    const { parseChecksumFile } = await import('../download/checksum.ts');
    const { algorithm, hex } = parseChecksumFile(await client.text(side.file.path), r.file.name, side.file.name);
    entry.checksums = { [algorithm]: hex };
  }
  return entry;
}

/**
 * Arista's published checksum of the file `name` (its .sha512sum or .md5 sidecar): what
 * `hoard fetch arista:<file>` verifies in the same pass; none when the tree has no such file
 * (the download source then says so).
 */
export async function aristaChecksums(sources: Sources, name: string, known?: { path: string }): Promise<Checksums> {
  const client = await sources.arista();
  const files = await client.tree();
  const file = (known && files.find((f) => f.path === known.path)) || findFile(files, name);
  return file ? ((await aristaEntry(client, files, { file })).checksums ?? {}) : {};
}

/** `--image` without a value: arista/ceos:<version> for cEOS formats (eos-downloader's default). */
function imageFor(image: string | undefined, r: Resolution): string | undefined {
  if (image === undefined) return undefined;
  if (image !== '') return image;
  if (r.format?.ceos && r.version) return `arista/ceos:${r.version}`;
  throw new HoardError('E_USAGE', `--image needs a value for ${r.file.name}: only cEOS formats have a default (arista/ceos:<version>)`, {
    hint: 'give one: --image NAME:TAG',
  });
}

/** Syncs the named (new or changed) entries of `doc`; sync writes hoard.json once they are locked. */
async function syncEntries(
  g: GlobalOptions, printer: Printer, env: Env, signal: AbortSignal, manifest: Manifest, doc: ManifestDoc, names: string[], sources: Sources, o: VendorOptions,
  replacing?: Record<string, string>,
) {
  checkManifest(manifest.file, doc);
  const pending: Manifest = { ...manifest, doc };
  const { summary } = await sync({
    ...syncBasics(g, printer, env, o),
    manifest: pending, names, mode: 'sync', env, signal, sources,
    // New entries are added; an updated one replaces the file's entry if its url is still the one read.
    ...(replacing ? { replacing } : { unsaved: names }),
    ...(o.network ? { network: o.network } : {}),
  });
  return exitCode(summary, 'sync');
}

/** `hoard add arista:<format>@<version|latest|branch>` or `hoard add arista:<file name>`. */
export async function runAddArista(
  g: GlobalOptions,
  printer: Printer,
  env: Env,
  signal: AbortSignal,
  o: { spec: string; name?: string; path?: string; image?: string; link?: LinkMode; executable?: boolean; releaseType?: ReleaseType } & VendorOptions,
): Promise<number> {
  const spec = parseSpec(o.spec);
  const manifest = await loadManifest(g.manifest);
  const sources = vendorSources(g, printer, env, signal, o.tokenEnv);
  const client = await sources.arista();
  const files = await client.tree();
  const r = resolveSpec(files, spec, o.releaseType);
  const name = o.name ?? (spec.kind === 'format' ? spec.format.name : nameFromFile(r.file.name));
  const url = `arista:${r.file.name}`;
  if (manifest.doc.artifacts[name]) {
    const same = manifest.doc.artifacts[name]!.url === url;
    throw new HoardError('E_USAGE', `${manifest.file} already has an artifact named "${name}"${same ? ` (${r.file.name})` : ''}`, {
      hint: same ? 'run `hoard sync` to fetch it' : `pick another with --name, or move it to another version with \`hoard update ${name}\``,
    });
  }
  const entry = await aristaEntry(client, files, r);
  if (o.path) entry.path = o.path;
  const image = imageFor(o.image, r);
  if (image) entry.image = image;
  if (o.link) entry.link = o.link;
  if (o.executable) entry.executable = true;
  printer.event({ type: 'resolved', name, spec: o.spec, file: r.file.name, ...(r.version ? { version: r.version } : {}), folder: r.file.dirs.join('/') });
  printer.info(`${o.spec} → ${r.file.name}${r.version ? ` (${r.version}, ${r.file.dirs[1] ?? r.file.dirs[0]})` : ''}`);
  return syncEntries(g, printer, env, signal, manifest, { ...manifest.doc, artifacts: { ...manifest.doc.artifacts, [name]: entry } }, [name], sources, o);
}

/** The manifest's vendor-sourced artifacts (all, or those named); an unknown or non-vendor name is a usage error. */
function vendorArtifacts(manifest: Manifest, names: string[]): Array<[string, ArtifactEntry]> {
  const all = Object.entries(manifest.doc.artifacts).sort(([a], [b]) => (a < b ? -1 : 1));
  for (const n of names) {
    const e = manifest.doc.artifacts[n];
    if (!e) throw new HoardError('E_USAGE', `no artifact named "${n}" in ${manifest.file}`, { hint: `known artifacts: ${all.map(([k]) => k).join(', ') || 'none'}` });
    if (!isVendorUrl(e.url)) throw new HoardError('E_USAGE', `"${n}" is not from a vendor source (its url is ${e.url})`, { hint: 'outdated and update know arista:… artifacts' });
  }
  return all.filter(([n, e]) => isVendorUrl(e.url) && (names.length === 0 || names.includes(n)));
}

interface Standing {
  name: string;
  file: string;
  current: string | null;
  /** The newest of its branch (same release type), and the newest under Active Releases. */
  branch: VersionSummary | null;
  latest: VersionSummary | null;
}
type VersionSummary = { version: string; file: TreeFile };

function standingOf(files: readonly TreeFile[], name: string, e: ArtifactEntry): Standing {
  const file = e.url.replace(/^arista:/, '');
  const parsed = parseFileName(file);
  if (!parsed) return { name, file, current: null, branch: null, latest: null };
  const type = releaseTypeOf(parsed.version) ?? undefined;
  const o = type ? { releaseType: type } : {};
  const pick = (v: ReturnType<typeof latestOf>) => (v ? { version: v.version, file: v.file } : null);
  return {
    name, file, current: parsed.version,
    branch: pick(latestOf(files, parsed.format, { ...o, branch: branchOf(parsed.version) })),
    latest: pick(latestOf(files, parsed.format, o)),
  };
}
const newer = (v: VersionSummary | null, than: string | null) => v !== null && than !== null && compareVersions(v.version, than) > 0;

/** `hoard outdated`: each vendor artifact's version, the newest of its branch and the newest overall; exit 3 when one is behind. */
export async function runOutdated(g: GlobalOptions, printer: Printer, env: Env, signal: AbortSignal, o: { names: string[]; tokenEnv?: string }): Promise<number> {
  const manifest = await loadManifest(g.manifest);
  const entries = vendorArtifacts(manifest, o.names);
  if (entries.length === 0) {
    printer.info('no artifacts from a vendor source (arista:…) in this manifest');
    return EXIT.ok;
  }
  const files = await (await vendorSources(g, printer, env, signal, o.tokenEnv).arista()).tree();
  const rows: string[][] = [['NAME', 'CURRENT', 'BRANCH', 'LATEST', '']];
  let behind = 0;
  for (const [name, e] of entries) {
    const s = standingOf(files, name, e);
    const out = newer(s.branch, s.current) || newer(s.latest, s.current);
    if (out) behind++;
    printer.event({ type: 'outdated', name, file: s.file, current: s.current, branch: s.branch?.version ?? null, latest: s.latest?.version ?? null, outdated: out });
    rows.push([name, s.current ?? '?', s.branch?.version ?? '-', s.latest?.version ?? '-', out ? 'outdated' : s.current ? 'up to date' : 'unknown version']);
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  for (const r of rows) printer.result(r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd());
  if (behind) printer.note(`${behind} outdated: \`hoard update\` moves to the newest of each branch, \`hoard update --latest\` to the newest release`);
  return behind ? EXIT.drift : EXIT.ok;
}

/** `hoard update [names..]`: moves vendor artifacts to the newest of their branch (or --latest), downloads, locks and records them. */
export async function runUpdate(
  g: GlobalOptions,
  printer: Printer,
  env: Env,
  signal: AbortSignal,
  o: { names: string[]; latest: boolean } & VendorOptions,
): Promise<number> {
  const manifest = await loadManifest(g.manifest);
  const entries = vendorArtifacts(manifest, o.names);
  const sources = vendorSources(g, printer, env, signal, o.tokenEnv);
  const client = await sources.arista();
  const files = entries.length ? await client.tree() : [];
  let code: number = EXIT.ok;
  let moved = 0;
  for (const [name, e] of entries) {
    const s = standingOf(files, name, e);
    const target = o.latest ? s.latest : s.branch;
    if (!target || !newer(target, s.current)) {
      printer.info(`${name}: ${s.current ?? s.file} is the newest${o.latest ? '' : ` of branch ${s.current ? branchOf(s.current) : '?'}`}`);
      continue;
    }
    const entry: ArtifactEntry = { ...e, ...(await aristaEntry(client, files, { file: target.file })) };
    delete entry.digest;
    delete entry.size;
    if (!entry.checksums) delete entry.checksums;
    const from = s.current!;
    if (e.path?.includes(from)) entry.path = e.path.split(from).join(target.version);
    if (e.image && /:[^/:@]+$/.test(e.image) && e.image.slice(e.image.lastIndexOf(':') + 1).includes(from)) {
      entry.image = e.image.slice(0, e.image.lastIndexOf(':') + 1) + e.image.slice(e.image.lastIndexOf(':') + 1).split(from).join(target.version);
    }
    printer.event({ type: 'resolved', name, spec: e.url, file: target.file.name, version: target.version, folder: target.file.dirs.join('/'), from });
    printer.info(`${name}: ${from} → ${target.version}${entry.image && entry.image !== e.image ? ` (image ${entry.image})` : ''}`);
    // One entry at a time, each from the manifest as it is now: an update that fails leaves its entry as it was.
    const now = await loadManifest(g.manifest);
    const r = await syncEntries(g, printer, env, signal, now, { ...now.doc, artifacts: { ...now.doc.artifacts, [name]: entry } }, [name], sources, o, { [name]: e.url });
    if (r !== 0) code = r;
    else moved++;
  }
  if (entries.length && moved === 0 && code === 0) printer.info('everything is up to date');
  return code;
}

/** `hoard versions arista:<format>`: what exists, newest first. */
export async function runVersions(
  g: GlobalOptions,
  printer: Printer,
  env: Env,
  signal: AbortSignal,
  o: { spec: string; branch?: string; releaseType?: ReleaseType; tokenEnv?: string },
): Promise<number> {
  const body = o.spec.replace(/^arista:/i, '').replace(/@.*$/, '');
  const format = findFormat(body);
  if (!/^arista:/i.test(o.spec) || !format) {
    throw new HoardError('E_USAGE', `${o.spec} is not arista:<format>`, { hint: 'for example: hoard versions arista:cEOS --branch 4.32' });
  }
  if (o.branch !== undefined && !/^\d+\.\d+$/.test(o.branch)) throw new HoardError('E_USAGE', `--branch ${o.branch} is not a branch`, { hint: 'for example --branch 4.32' });
  const files = await (await vendorSources(g, printer, env, signal, o.tokenEnv).arista()).tree();
  const latest = latestOf(files, format, o.releaseType ? { releaseType: o.releaseType } : {});
  const list = versionsOf(files, format)
    .filter((v) => (!o.branch || branchOf(v.version) === o.branch) && (!o.releaseType || releaseTypeOf(v.version) === o.releaseType))
    .reverse();
  const width = Math.max(0, ...list.map((v) => v.version.length));
  const fileWidth = Math.max(0, ...list.map((v) => v.file.name.length));
  for (const v of list) {
    printer.event({ type: 'version', format: format.format, version: v.version, section: v.section, file: v.file.name, latest: v.version === latest?.version });
    printer.result(`${v.version.padEnd(width)}  ${v.file.name.padEnd(fileWidth)}  ${v.section}${v.version === latest?.version ? '  (latest)' : ''}`);
  }
  if (list.length === 0) printer.note(`no ${format.format} versions${o.branch ? ` in branch ${o.branch}` : ''}${o.releaseType ? ` of type ${o.releaseType}` : ''}`);
  return EXIT.ok;
}

/** `${VAR}`, `${VAR:-default}` and `${VAR:=default}` in a containerlab file, from the environment. */
export function expandClabVars(s: string, env: Env): string {
  return s.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?[-=]([^}]*))?\}/g, (_all, name: string, dflt: string | undefined) => {
    const v = env[name];
    return v !== undefined && v !== '' ? v : (dflt ?? '');
  });
}

/** The Arista download an image reference names, by eos-downloader's and containerlab's conventions (`ceos:4.32.1F`, `arista/ceos:4.32.1F`). */
export function aristaImage(image: string): { format: string; version: string } | null {
  const m = /^(?:[^@]*\/)?([^/:@]+):([^/:@]+)$/.exec(image);
  if (!m) return null;
  const repo = m[1]!.toLowerCase();
  const format = /^ceos(?:-?lab)?(?:image)?$/.test(repo) ? 'cEOS' : /^ceos64(?:-?lab)?$/.test(repo) ? 'cEOS64' : /^ceosarm(?:-?lab)?$/.test(repo) ? 'cEOSarm' : null;
  return format && /^\d+\.\d+\.\d+(?:\.\d+)?[FM]$/.test(m[2]!) ? { format, version: m[2]! } : null;
}

/** `hoard add --from-clab lab.clab.yml`: one artifact per distinct Arista image of the topology, tagged as the topology names it. */
export async function runAddFromClab(g: GlobalOptions, printer: Printer, env: Env, signal: AbortSignal, o: { file: string } & VendorOptions): Promise<number> {
  const { parse } = await import('yaml');
  let text: string;
  try {
    text = await fs.readFile(o.file, 'utf8');
  } catch (err) {
    throw new HoardError('E_USAGE', `cannot read ${o.file}: ${(err as Error).message}`, { hint: 'give the path of a containerlab topology file (*.clab.yml)' });
  }
  let doc: unknown;
  try {
    doc = parse(text);
  } catch (err) {
    throw new HoardError('E_USAGE', `${o.file} is not valid YAML: ${(err as Error).message.split('\n')[0]}`, { hint: 'containerlab itself would refuse it: fix the file' });
  }
  const topology = (doc as { topology?: Record<string, unknown> } | null)?.topology;
  if (!topology || typeof topology !== 'object') throw new HoardError('E_USAGE', `${o.file} has no "topology"`, { hint: 'is it a containerlab topology file?' });
  // Where each image is used: kinds.<kind>.image, nodes.<node>.image (and defaults.image).
  const uses = new Map<string, string[]>();
  const note = (image: unknown, where: string) => {
    if (typeof image !== 'string' || !image.trim()) return;
    const ref = expandClabVars(image.trim(), env);
    uses.set(ref, [...(uses.get(ref) ?? []), where]);
  };
  const defaults = topology.defaults as { image?: unknown } | undefined;
  note(defaults?.image, 'defaults');
  for (const [k, v] of Object.entries((topology.kinds ?? {}) as Record<string, { image?: unknown } | null>)) note(v?.image, `kinds.${k}`);
  for (const [n, v] of Object.entries((topology.nodes ?? {}) as Record<string, { image?: unknown } | null>)) note(v?.image, `nodes.${n}`);

  const mapped: Array<{ image: string; format: string; version: string }> = [];
  const unmapped: string[] = [];
  for (const image of uses.keys()) {
    const a = aristaImage(image);
    if (a) mapped.push({ image, ...a });
    else unmapped.push(image);
  }
  for (const image of unmapped) {
    printer.event({ type: 'warning', message: `${image} (${uses.get(image)!.join(', ')}): not an Arista image hoard can map; left out` });
  }
  if (mapped.length === 0) {
    printer.info(`${o.file}: no Arista image to add (images look like ceos:4.32.1F or arista/ceos:4.32.1F)`);
    return EXIT.ok;
  }
  const sources = vendorSources(g, printer, env, signal, o.tokenEnv);
  const client = await sources.arista();
  const files = await client.tree();
  let code: number = EXIT.ok;
  for (const m of mapped) {
    const now = await loadManifest(g.manifest);
    const have = Object.entries(now.doc.artifacts).find(([, e]) => e.image === m.image);
    if (have) {
      printer.info(`${m.image}: already in ${path.basename(now.file)} as "${have[0]}"`);
      continue;
    }
    const spec = `arista:${m.format}@${m.version}`;
    const r = resolveSpec(files, parseSpec(spec));
    const name = `${r.format?.name ?? m.format}-${m.version}`;
    if (now.doc.artifacts[name]) {
      printer.event({ type: 'warning', message: `${m.image}: an artifact named "${name}" is already there with another image; left out (add it with hoard add ${spec} --name … --image ${m.image})` });
      code = EXIT.failed;
      continue;
    }
    const entry: ArtifactEntry = { ...(await aristaEntry(client, files, r)), image: m.image };
    printer.event({ type: 'resolved', name, spec, file: r.file.name, version: m.version, folder: r.file.dirs.join('/'), image: m.image });
    printer.info(`${m.image} (${uses.get(m.image)!.join(', ')}) → ${spec} → ${r.file.name}`);
    const rc = await syncEntries(g, printer, env, signal, now, { ...now.doc, artifacts: { ...now.doc.artifacts, [name]: entry } }, [name], sources, o);
    if (rc !== EXIT.ok) code = rc;
  }
  return code;
}
