import { promises as fs } from 'node:fs';
import path from 'node:path';
import { parseDigest } from '../core/digest.ts';
import { HoardError, isErrno } from '../core/errors.ts';
import { formatBytes, formatDuration } from '../core/format.ts';
import { writeFileAtomic } from '../core/fsutil.ts';
import { checkManifest, DEFAULT_OUTPUT, fileNameFromUrl, loadManifest } from '../manifest/load.ts';
import type { ArtifactEntry, LinkMode, Manifest, ManifestDoc } from '../manifest/types.ts';
import { serializeManifest } from '../manifest/write.ts';
import { expandHeaders } from '../download/headers.ts';
import { fetchUrl } from '../fetch/fetch.ts';
import { sync, type NetworkOptions } from '../sync/sync.ts';
import { verify } from '../sync/verify.ts';
import type { EngineChoice } from '../engine/types.ts';
import { imageSupport } from './images.ts';
import type { Origin, ResolvedSettings } from './config.ts';
import { SETTING_KEYS } from './config.ts';
import type { Printer } from './print.ts';

/** --images/--no-images and --engine. */
/** --retries and the timeouts, for commands that download. */
export interface NetworkFlags {
  network?: NetworkOptions;
}

export interface ImageOptions {
  images: boolean;
  engine: EngineChoice;
}

export interface GlobalOptions {
  manifest: string;
  store: string;
  /** The store is disabled (--no-store, HOARD_NO_STORE, "enabled": false): nothing is kept. */
  noStore?: boolean;
  /** The configuration file's "link": for artifacts whose entry chooses none. */
  defaultLink?: LinkMode;
  json: boolean;
  verbose: boolean;
  quiet: boolean;
  color: boolean;
}
type Env = Record<string, string | undefined>;

/** Exit status of a finished sync: 1 when anything failed or is in conflict. */
function syncExit(s: { failed: number; conflicts: number }): number {
  return s.failed > 0 || s.conflicts > 0 ? 1 : 0;
}

export async function runInit(g: GlobalOptions, printer: Printer, opts: { output: string }): Promise<number> {
  const file = path.resolve(g.manifest);
  const doc: ManifestDoc = { version: 1, output: opts.output, artifacts: {} };
  checkManifest(file, doc); // the --output given must be a valid relative folder
  try {
    await fs.writeFile(file, serializeManifest(doc), { flag: 'wx' });
  } catch (err) {
    if (isErrno(err, 'EEXIST')) {
      throw new HoardError('E_USAGE', `${file} already exists`, { hint: 'add artifacts to it with `hoard add <url>`' });
    }
    throw err;
  }
  const ignore = path.join(path.dirname(file), '.gitignore');
  const entry = `/${opts.output.replace(/^\.\//, '')}/`;
  let current = '';
  try {
    current = await fs.readFile(ignore, 'utf8');
  } catch (err) {
    if (!isErrno(err, 'ENOENT')) throw err;
  }
  const lines = current.split('\n').map((l) => l.trim());
  if (!lines.includes(entry) && !lines.includes(entry.slice(1)) && !lines.includes(entry.slice(1, -1))) {
    await writeFileAtomic(ignore, `${current}${current && !current.endsWith('\n') ? '\n' : ''}${entry}\n`);
  }
  printer.info(`created ${path.relative(process.cwd(), file) || file}; ${entry} is in .gitignore`);
  printer.info('next: hoard add <url>');
  return 0;
}

/** A valid artifact name made from a file name. */
function nameFromFile(file: string): string {
  const name = file.replace(/[^A-Za-z0-9._-]+/g, '-').replace(/^[^A-Za-z0-9]+/, '').slice(0, 128);
  return name || 'artifact';
}

export async function runAdd(
  g: GlobalOptions,
  printer: Printer,
  env: Env,
  signal: AbortSignal,
  o: {
    url: string; name?: string; path?: string; image?: string; sha256?: string; output?: string; link?: LinkMode; executable?: boolean;
    headers?: Record<string, string>;
    checksumUrl?: string;
  } & ImageOptions & NetworkFlags,
): Promise<number> {
  const manifest = await loadManifest(g.manifest);
  const fileName = fileNameFromUrl(o.url);
  const name = o.name ?? nameFromFile(o.path ? path.posix.basename(o.path) : fileName ?? '');
  if (manifest.doc.artifacts[name]) {
    throw new HoardError('E_USAGE', `${manifest.file} already has an artifact named "${name}"`, {
      hint: 'pick another with --name, or edit the entry and run `hoard sync`',
    });
  }
  const entry: ArtifactEntry = { url: o.url };
  if (o.path) entry.path = o.path;
  if (o.sha256) entry.digest = parseDigest(o.sha256);
  if (o.image) entry.image = o.image;
  if (o.link) entry.link = o.link;
  if (o.executable) entry.executable = true;
  if (o.headers) entry.headers = o.headers;
  if (o.checksumUrl) {
    // The published checksum is verified in the same pass as the download, and recorded.
    const { fetchText, parseChecksumFile } = await import('../download/checksum.ts');
    const { expandHeaders } = await import('../download/headers.ts');
    const sameOrigin = new URL(o.checksumUrl).origin === new URL(o.url).origin;
    const text = await fetchText(o.checksumUrl, sameOrigin && o.headers ? expandHeaders(o.headers, env, name) : {}, { ...o.network, env });
    const fileOf = o.path ? path.posix.basename(o.path) : fileName ?? name;
    const { algorithm, hex } = parseChecksumFile(text, fileOf, o.checksumUrl);
    if (algorithm === 'sha256') {
      if (entry.digest && entry.digest !== `sha256:${hex}`) {
        throw new HoardError('E_INTEGRITY', `--sha256 and ${o.checksumUrl} disagree`, { details: { sha256: entry.digest, published: hex } });
      }
      entry.digest = `sha256:${hex}`;
    } else entry.checksums = { [algorithm]: hex };
  }
  const doc: ManifestDoc = { ...manifest.doc, artifacts: { ...manifest.doc.artifacts, [name]: entry } };
  // Validate the new entry exactly as if it were in the file (the file itself is not touched yet).
  checkManifest(manifest.file, doc);
  const pending: Manifest = { ...manifest, doc };
  const { summary } = await sync({
    manifest: pending, storeRoot: g.store, noStore: g.noStore ?? false, names: [name], mode: 'sync', env, signal, ...(o.network ? { network: o.network } : {}),
    ...(o.images ? { images: imageSupport(o.engine, env) } : {}),
    ...(o.output ? { output: o.output } : {}),
    ...(g.defaultLink ? { defaultLink: g.defaultLink } : {}),
    emit: (e) => printer.event(e),
  });
  // sync wrote hoard.json only if the entry got its digest and size; keep `manifest` in step.
  return syncExit(summary);
}

export async function runSync(
  g: GlobalOptions,
  printer: Printer,
  env: Env,
  signal: AbortSignal,
  o: { names: string[]; force: boolean; dryRun: boolean; frozen: boolean; output?: string; link?: LinkMode; jobs: number; verify: boolean } & ImageOptions & NetworkFlags,
): Promise<number> {
  const manifest = await loadManifest(g.manifest);
  const { summary } = await sync({
    manifest, storeRoot: g.store, noStore: g.noStore ?? false, names: o.names, mode: o.dryRun ? 'dry-run' : 'sync', env, signal,
    force: o.force, frozen: o.frozen, verify: o.verify, jobs: o.jobs, checks: g.verbose, ...(o.network ? { network: o.network } : {}),
    ...(o.images ? { images: imageSupport(o.engine, env) } : {}),
    ...(o.output ? { output: o.output } : {}),
    ...(o.link ? { link: o.link } : {}),
    ...(g.defaultLink ? { defaultLink: g.defaultLink } : {}),
    emit: (e) => printer.event(e),
  });
  if (signal.aborted) return 130;
  return o.dryRun ? (summary.failed > 0 ? 1 : 0) : syncExit(summary);
}

export async function runStatus(
  g: GlobalOptions,
  printer: Printer,
  env: Env,
  o: { names: string[]; output?: string; verify: boolean } & ImageOptions,
): Promise<number> {
  const manifest = await loadManifest(g.manifest);
  const { summary } = await sync({
    manifest, storeRoot: g.store, noStore: g.noStore ?? false, names: o.names, mode: 'status', verify: o.verify, checks: g.verbose,
    ...(o.images ? { images: imageSupport(o.engine, env) } : {}),
    ...(o.output ? { output: o.output } : {}),
    ...(g.defaultLink ? { defaultLink: g.defaultLink } : {}),
    emit: (e) => printer.event(e),
  });
  // 1 when the state could not be told (the engine did not answer), 3 for drift.
  return summary.failed > 0 ? 1 : (summary.outOfSync ?? 0) > 0 ? 3 : 0;
}

export async function runVerify(g: GlobalOptions, printer: Printer, o: { output?: string }): Promise<number> {
  let manifest: Manifest | undefined;
  try {
    manifest = await loadManifest(g.manifest);
  } catch (err) {
    // No manifest here: verify the store alone. A broken one is still an error.
    if (!(err instanceof HoardError && err.code === 'E_MANIFEST' && String(err.message).startsWith('no manifest'))) throw err;
  }
  const summary = await verify({
    storeRoot: g.store, noStore: g.noStore ?? false, ...(manifest ? { manifest } : {}), ...(o.output ? { output: o.output } : {}), ...(g.defaultLink ? { defaultLink: g.defaultLink } : {}),
    emit: (e) => {
      if (g.json) return printer.event(e);
      if (e.type === 'verified') {
        if (!e.ok) printer.event({ type: 'warning', message: `${e.subject} ${e.path}: ${e.reason}${e.action ? ` (${e.action})` : ''}` });
        else if (g.verbose) printer.info(`ok  ${e.path}`);
      }
    },
  });
  printer.info(
    (g.noStore ? 'no store' : `verified ${summary.blobs} blob${summary.blobs === 1 ? '' : 's'} (${formatBytes(summary.bytes)})`) +
      `${summary.corrupt ? `, removed ${summary.corrupt} corrupt (run \`hoard sync\` to fetch again)` : ''}` +
      `${manifest ? `; ${summary.outputs} output${summary.outputs === 1 ? '' : 's'}${summary.outputsDiffering ? `, ${summary.outputsDiffering} differ (run \`hoard sync\`)` : ' ok'}` : ''}` +
      ` in ${formatDuration(summary.elapsedMs)}`,
  );
  return summary.corrupt > 0 || summary.outputsDiffering > 0 ? 1 : 0;
}

export { DEFAULT_OUTPUT };

/** `hoard fetch <url>`: a cached download without a manifest; prints the file's path. */
export async function runFetch(
  g: GlobalOptions,
  printer: Printer,
  env: Env,
  signal: AbortSignal,
  o: { url: string; output?: string; sha256?: string; refresh: boolean; force: boolean; link?: LinkMode; executable: boolean; headers?: Record<string, string> } & NetworkFlags,
): Promise<number> {
  if (!/^https?:\/\//i.test(o.url)) {
    throw new HoardError('E_USAGE', `not an http:// or https:// URL: ${o.url}`, { hint: 'for a local file, use it directly (or `hoard store add <file>`)' });
  }
  const link = o.link ?? g.defaultLink ?? 'auto';
  if (link === 'hardlink' && o.executable) {
    throw new HoardError('E_USAGE', '--executable cannot be a hard link (it shares the read-only blob)', { hint: 'use --link auto or --link copy' });
  }
  const name = nameFromFile(o.output ? path.basename(o.output) : fileNameFromUrl(o.url) ?? 'download');
  const headers = o.headers ? expandHeaders(o.headers, env, name) : {};
  const lazy: { fetcher: Promise<import('../download/http.ts').Fetcher> | null } = { fetcher: null };
  try {
    const r = await fetchUrl({
      url: o.url, storeRoot: g.store, noStore: g.noStore ?? false, refresh: o.refresh, force: o.force, link, executable: o.executable, headers, name, signal,
      ...(o.output !== undefined ? { output: path.resolve(o.output) } : {}),
      ...(o.sha256 ? { sha256: parseDigest(o.sha256) } : {}),
      fetcher: () => (lazy.fetcher ??= import('../download/http.ts').then((m) => m.createFetcher({ ...o.network, env }))),
      emit: (e) => {
        if (g.json || e.type !== 'download') printer.event(e);
        // The request line goes to stderr: stdout is for the path.
        else if (g.verbose) printer.note(`GET ${e.url} (${e.reason})`);
        else printer.event(e); // starts the progress line on a terminal
      },
    });
    printer.event(r);
    const what = r.result === 'cached' ? 'cached, no request' : r.result === 'not-modified' ? 'not modified (304), cached copy' : `downloaded ${formatBytes(r.bytesDownloaded)}`;
    const out = r.output === 'present' ? ', up to date' : r.output === 'written' ? ', written (no store)' : r.output ? `, ${r.output}${r.method ? ` (${r.method})` : ''}` : '';
    printer.note(`${name}  ${what}${out}`);
    printer.result(r.path);
    return 0;
  } finally {
    if (lazy.fetcher) await (await lazy.fetcher).close().catch(() => {});
  }
}

/** Where a setting came from, in words: `flag --jobs`, `env HOARD_JOBS`, `config file <path>`, `default`. */
export function describeOrigin(o: Origin): string {
  if (o.kind === 'flag') return `flag ${o.source}`;
  if (o.kind === 'env') return `env ${o.source}`;
  if (o.kind === 'file') return `config file ${o.source}`;
  return o.source === 'default' ? 'default' : `default (${o.source})`;
}

/** `hoard config`: the effective settings and where each came from. */
export function runConfig(printer: Printer, r: ResolvedSettings): number {
  const settings: Record<string, { value: unknown; origin: Origin['kind']; source: string }> = {};
  for (const key of SETTING_KEYS) {
    const o = r.origins[key];
    settings[key] = { value: r.settings[key] ?? null, origin: o.kind, source: o.source };
  }
  printer.event({ type: 'config', file: r.file, fileFound: r.fileFound, settings });
  const rows: Array<[string, string, string]> = [['config file', `${r.file}${r.fileFound ? '' : ' (none)'}`, '']];
  for (const key of SETTING_KEYS) rows.push([key, String(r.settings[key] ?? 'none'), describeOrigin(r.origins[key])]);
  const w0 = Math.max(...rows.map((x) => x[0].length));
  const w1 = Math.max(...rows.slice(1).map((x) => x[1].length));
  for (const [k, v, o] of rows) printer.info(o ? `${k.padEnd(w0)}  ${v.padEnd(w1)}  ${o}` : `${k.padEnd(w0)}  ${v}`);
  return 0;
}
