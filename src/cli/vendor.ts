// Commands for vendor sources (Arista first): `hoard add arista:…`, `hoard add --from-clab`,
// `hoard outdated`, `hoard update`, `hoard versions`. Each builds one Sources for the command (one
// Arista session for all of it) and hands new entries to the same sync that `hoard add <url>` uses.
import path from 'node:path';
import { HoardError } from '../core/errors.ts';
import { checkManifest, loadManifest } from '../manifest/load.ts';
import type { ArtifactEntry, LinkMode, Manifest, ManifestDoc } from '../manifest/types.ts';
import {
  branchOf, compareVersions, findFormat, latestOf, parseFileName, parseSpec, releaseTypeOf, resolveSpec, sidecarOf, versionsOf,
  type ReleaseType, type Resolution, type TreeFile,
} from '../sources/arista-catalog.ts';
import type { AristaClient } from '../sources/arista.ts';
import { createSources, isVendorUrl, type Sources } from '../sources/index.ts';
import { sync, type NetworkOptions } from '../sync/sync.ts';
import type { EngineChoice } from '../engine/types.ts';
import { imageSupport } from './images.ts';
import type { GlobalOptions } from './commands.ts';
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

export function vendorSources(g: GlobalOptions, printer: Printer, env: Env, signal: AbortSignal, tokenEnv?: string): Sources {
  return createSources({
    env, storeRoot: g.noStore ? null : path.resolve(g.store), signal,
    ...(tokenEnv ? { tokenEnv } : {}),
    ...(g.verbose ? { onRequest: (what: string) => printer.note(what) } : {}),
  });
}

export function releaseTypeOption(v: unknown): ReleaseType | undefined {
  if (v === undefined) return undefined;
  const t = String(v).toUpperCase();
  if (t === 'F' || t === 'M') return t;
  throw new HoardError('E_USAGE', `--release-type must be F (feature) or M (maintenance), not ${String(v)}`);
}

/** A valid artifact name made from a file name. */
function nameFromFile(file: string): string {
  return file.replace(/[^A-Za-z0-9._-]+/g, '-').replace(/^[^A-Za-z0-9]+/, '').slice(0, 128) || 'artifact';
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
async function syncEntries(g: GlobalOptions, printer: Printer, env: Env, signal: AbortSignal, manifest: Manifest, doc: ManifestDoc, names: string[], sources: Sources, o: VendorOptions) {
  checkManifest(manifest.file, doc);
  const pending: Manifest = { ...manifest, doc };
  const { summary } = await sync({
    manifest: pending, storeRoot: g.store, noStore: g.noStore ?? false, names, mode: 'sync', env, signal, sources,
    ...(o.network ? { network: o.network } : {}),
    ...(o.images ? { images: imageSupport(o.engine, env) } : {}),
    ...(o.output ? { output: o.output } : {}),
    ...(g.defaultLink ? { defaultLink: g.defaultLink } : {}),
    emit: (e) => printer.event(e),
  });
  return summary.failed > 0 || summary.conflicts > 0 ? 1 : 0;
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
