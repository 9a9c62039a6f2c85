import { promises as fs, statSync } from 'node:fs';
import path from 'node:path';
import { parseDigest } from '../core/digest.ts';
import { EXIT, exitCode, HoardError, isErrno } from '../core/errors.ts';
import { formatBytes, formatDuration, formatTime } from '../core/format.ts';
import { describeDuration } from '../core/duration.ts';
import { isInside, writeFileAtomic } from '../core/fsutil.ts';
import { checkManifest, fileNameFromUrl, hasUserInfo, loadManifest, parseManifest, secretQueryKeys, type ManifestProblem } from '../manifest/load.ts';
import { escapePointer } from '../manifest/json.ts';
import { mergeManifests } from '../manifest/merge.ts';
import type { ArtifactEntry, LinkMode, Manifest, ManifestDoc } from '../manifest/types.ts';
import { serializeManifest } from '../manifest/write.ts';
import { expandHeaders } from '../download/headers.ts';
import { fetchUrl } from '../fetch/fetch.ts';
import type { LockWait } from '../store/lock.ts';
import { createSources, isVendorUrl, type Sources } from '../sources/index.ts';
import { openStore } from '../store/store.ts';
import { openFetchedBlobs } from '../store/urls.ts';
import { gc } from '../sync/gc.ts';
import { readKnownManifests } from '../sync/known.ts';
import { openSyncState, type SyncState } from '../sync/state.ts';
import { sync, type NetworkOptions } from '../sync/sync.ts';
import { verify } from '../sync/verify.ts';
import { waitingEvent, type SyncEvent } from '../sync/events.ts';
import type { EngineChoice } from '../engine/types.ts';
import { imageSupport } from './images.ts';
import type { Origin, ResolvedSettings } from './config.ts';
import { SETTING_KEYS } from './options.ts';
import type { Printer } from './print.ts';
import type { Remote } from '../remote/index.ts';
import { pushDownloaded } from './push.ts';

/** --retries and the timeouts, for commands that download. */
export interface NetworkFlags {
  network?: NetworkOptions;
}

/** --images/--no-images and --engine. */
export interface ImageOptions {
  images: boolean;
  engine: EngineChoice;
}

/**
 * The sync() options every command builds the same way: the store and its lock waits, the
 * images, output folder and default link mode, and the printer as the event sink.
 */
export function syncBasics(g: GlobalOptions, printer: Printer, env: Env, o: ImageOptions & { output?: string | undefined }) {
  return {
    storeRoot: g.store,
    lockWait: g.lockWait ?? {},
    noStore: g.noStore ?? false,
    ...(o.images ? { images: imageSupport(o.engine, env) } : {}),
    ...(o.output ? { output: o.output } : {}),
    ...(g.defaultLink ? { defaultLink: g.defaultLink } : {}),
    emit: (e: SyncEvent) => printer.event(e),
  };
}

/** The vendor sources (arista:…) of one command: its token's variable, and -v shows their API requests. */
export function vendorSources(g: GlobalOptions, printer: Printer, env: Env, signal: AbortSignal, tokenEnv?: string): Sources {
  return createSources({
    env, storeRoot: g.noStore ? null : path.resolve(g.store), signal,
    ...(tokenEnv ? { tokenEnv } : {}),
    ...(g.verbose ? { onRequest: (what: string) => printer.note(what) } : {}),
  });
}

export interface GlobalOptions {
  manifest: string;
  store: string;
  /** The store is disabled (--no-store, HOARD_NO_STORE, "enabled": false): nothing is kept. */
  noStore?: boolean;
  /** The configuration file's "link": for artifacts whose entry chooses none. */
  defaultLink?: LinkMode;
  /** How waits for locks end (Ctrl-C, --lock-timeout): handed to the store and every lock. */
  lockWait?: LockWait;
  json: boolean;
  verbose: boolean;
  quiet: boolean;
  color: boolean;
}
type Env = Record<string, string | undefined>;


/**
 * Validates a manifest that has an entry (or a field) made from command-line arguments. A
 * problem in what an argument gave names that argument (E_USAGE), not hoard.json: the file
 * was fine when it was read, and it is not changed.
 */
function checkArguments(
  file: string,
  doc: ManifestDoc,
  args: Record<string, { flag: string; value: string; hint?: string }>,
  unchanged = `${path.relative(process.cwd(), file) || file} was not changed`,
): void {
  try {
    checkManifest(file, doc);
  } catch (err) {
    const problems = err instanceof HoardError && err.code === 'E_MANIFEST' ? (err.details.problems as ManifestProblem[] | undefined) : undefined;
    const mine = (problems ?? []).flatMap((p) => (args[p.pointer] ? [{ p, arg: args[p.pointer]! }] : []));
    if (mine.length === 0) throw err;
    throw new HoardError('E_USAGE', mine.map(({ p, arg }) => `${arg.flag} ${JSON.stringify(arg.value)}: ${p.message}`).join('\n'), {
      hint: `${mine.find((m) => m.arg.hint)?.arg.hint ?? 'give another value'}; ${unchanged}`,
      details: { problems: mine.map((m) => ({ ...m.p, argument: m.arg.flag })) },
    });
  }
}

export async function runInit(g: GlobalOptions, printer: Printer, opts: { output: string }): Promise<number> {
  const file = path.resolve(g.manifest);
  const doc: ManifestDoc = { version: 1, output: opts.output, artifacts: {} };
  checkArguments(file, doc, { '/output': { flag: '--output', value: opts.output, hint: 'give a folder inside the project, such as --output artifacts' } }, 'nothing was written');
  try {
    await fs.writeFile(file, serializeManifest(doc), { flag: 'wx' });
  } catch (err) {
    if (isErrno(err, 'EEXIST')) {
      throw new HoardError('E_USAGE', `${file} already exists`, { hint: 'add artifacts to it with `hoard add <url>`' });
    }
    throw err;
  }
  const dir = path.dirname(file);
  const ignore = path.join(dir, '.gitignore');
  const entry = `/${opts.output.replace(/^\.\//, '')}/`;
  // A .gitignore that is a symbolic link out of the project (a cloned repository's, say) is not
  // written through: hoard.json is made, and the person adds the line where it belongs.
  const leadsOut = await linkLeavesFolder(ignore, dir);
  let ignored = false;
  if (leadsOut !== null) {
    printer.event({
      type: 'warning',
      message: `.gitignore is a symbolic link to ${leadsOut}, outside ${dir}: not changed; add ${entry} to it yourself`,
      hint: 'hoard does not write through a link that leads out of the project',
    });
  } else {
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
    ignored = true;
  }
  // git merges hoard.json by artifact with `hoard merge-driver` once these are set.
  const attributes = path.join(dir, '.gitattributes');
  const attributeLine = `${path.basename(file)} merge=hoard`;
  let wroteAttributes = false;
  try {
    await fs.writeFile(attributes, `${attributeLine}\n`, { flag: 'wx' }); // only when there is none (never through a link)
    wroteAttributes = true;
  } catch (err) {
    if (!isErrno(err, 'EEXIST')) throw err;
  }
  printer.info(`created ${path.relative(process.cwd(), file) || file}${ignored ? `; ${entry} is in .gitignore` : ''}${wroteAttributes ? `; .gitattributes has "${attributeLine}"` : ''}`);
  printer.info(`to let git merge ${path.basename(file)} by artifact name (see \`hoard merge-driver --help\`), run once per clone:`);
  for (const line of MERGE_DRIVER_CONFIG) printer.info(`  ${line}`);
  if (!wroteAttributes) printer.info(`  and add "${attributeLine}" to .gitattributes`);
  printer.info('next: hoard add <url>');
  return EXIT.ok;
}

/** Where `file` leads when it is a symbolic link whose target is outside `dir` (or missing); null otherwise. */
async function linkLeavesFolder(file: string, dir: string): Promise<string | null> {
  const st = await fs.lstat(file).catch(() => null);
  if (!st?.isSymbolicLink()) return null;
  const target = (await fs.realpath(file).catch(() => null)) ?? path.resolve(dir, await fs.readlink(file));
  return isInside(await fs.realpath(dir), target) ? null : target;
}

/** A valid artifact name made from a file name. */
export function nameFromFile(file: string): string {
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
  if (hasUserInfo(o.url)) {
    throw new HoardError('E_USAGE', `the URL has a user name or password in it ("user:pass@"): it would be committed with hoard.json`, {
      hint: `send it as a header from an environment variable instead (only the name is recorded): ` +
        `hoard add '${o.url.replace(/^([a-zA-Z][a-zA-Z0-9+.-]*:\/\/)[^/?#]*@/, '$1')}' -H 'Authorization: Basic \${VENDOR_BASIC}' with VENDOR_BASIC=$(printf %s 'user:pass' | base64)`,
    });
  }
  const manifest = await loadManifest(g.manifest);
  const secrets = secretQueryKeys(o.url);
  if (secrets.length > 0) {
    printer.event({
      type: 'warning',
      message: `the URL's query has ${secrets.map((k) => `"${k}"`).join(', ')}, which looks like a secret: it will be committed with ${path.basename(manifest.file)}`,
      hint: 'if it is one, use a header from an environment variable instead: -H \'Authorization: Bearer ${VENDOR_TOKEN}\'',
    });
  }
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
  // Validate the new entry exactly as if it were in the file (the file itself is not touched yet);
  // a problem is the argument's that gave it.
  const base = `/artifacts/${escapePointer(name)}`;
  const sameUrl = Object.entries(manifest.doc.artifacts).find(([, e]) => e.url === o.url)?.[0];
  const takenBy = Object.entries(manifest.doc.artifacts).find(([, e]) => (e.path ?? fileNameFromUrl(e.url)) === fileName)?.[0];
  checkArguments(manifest.file, doc, {
    [base]: { flag: '--name', value: name, hint: 'pick a name of letters, digits, ".", "_" or "-" with --name' },
    // (An output path taken from the URL is reported at the URL.)
    [`${base}/url`]: o.path === undefined && takenBy !== undefined
      ? {
        flag: "the URL's file name", value: fileName ?? '',
        hint: `${sameUrl ? `${path.basename(manifest.file)} already has this URL as "${sameUrl}". To add it again, give` : 'give'} it another output path with --path and a name with --name`,
      }
      : { flag: '<url>', value: o.url, hint: 'give an http:// or https:// URL (with a file name, or pass --path)' },
    [`${base}/path`]: o.path !== undefined
      ? { flag: '--path', value: o.path, hint: 'give another --path (and a --name)' }
      : {
        flag: "the URL's file name", value: fileName ?? '',
        hint: `${sameUrl ? `${path.basename(manifest.file)} already has this URL as "${sameUrl}". To add it again, give` : 'give'} it another output path with --path and a name with --name`,
      },
    [`${base}/digest`]: { flag: '--sha256', value: o.sha256 ?? '' },
    [`${base}/image`]: { flag: '--image', value: o.image ?? '', hint: 'give a reference such as arista/ceos:4.32.1F (lowercase name)' },
    [`${base}/link`]: { flag: '--link', value: o.link ?? '' },
  });
  const pending: Manifest = { ...manifest, doc };
  const { summary } = await sync({
    ...syncBasics(g, printer, env, o),
    manifest: pending, names: [name], unsaved: [name], mode: 'sync', env, signal, ...(o.network ? { network: o.network } : {}),
  });
  // sync wrote hoard.json only if the entry got its digest and size; keep `manifest` in step.
  return exitCode(summary, 'sync');
}

/**
 * The manifest of a sync or status, and the store's sync state, read once for both: the
 * manifest is only parsed, not checked again, when the store recorded it valid as it is now (a
 * sync records that; see loadManifest). No state with the store disabled or unreadable (then
 * the manifest is checked in full, and the store's error comes from sync).
 */
async function loadProjectManifest(g: GlobalOptions): Promise<{ manifest: Manifest; state?: SyncState }> {
  const file = path.resolve(g.manifest);
  let state: SyncState | undefined;
  let validStamp: string | undefined;
  if (!g.noStore) {
    try {
      state = openSyncState(path.resolve(g.store), g.lockWait ?? {});
      validStamp = state.manifests.get(file)?.valid;
    } catch {
      // unreadable: no state (the manifest is checked in full; the store's error comes from sync)
    }
  }
  return { manifest: await loadManifest(file, { validStamp }), ...(state ? { state } : {}) };
}

export async function runSync(
  g: GlobalOptions,
  printer: Printer,
  env: Env,
  signal: AbortSignal,
  o: { names: string[]; force: boolean; dryRun: boolean; frozen: boolean; output?: string; link?: LinkMode; jobs: number; verify: boolean; maxSize?: number; tokenEnv?: string } & ImageOptions & NetworkFlags & TeamCacheFlags,
): Promise<number> {
  const { manifest, state } = await loadProjectManifest(g);
  const remote = o.teamCache?.(manifest) ?? null;
  try {
    return await runSyncWith(g, printer, env, signal, o, manifest, remote, state);
  } finally {
    await remote?.close();
  }
}

/** The team cache (see src/cli/push.ts): which one applies to a manifest, and sync --push. */
export interface TeamCacheFlags {
  teamCache?: (manifest: Manifest) => Remote | null;
  push?: boolean;
}

async function runSyncWith(
  g: GlobalOptions,
  printer: Printer,
  env: Env,
  signal: AbortSignal,
  o: Parameters<typeof runSync>[4],
  manifest: Manifest,
  remote: Remote | null,
  state: SyncState | undefined,
): Promise<number> {
  const { results, summary } = await sync({
    ...(state ? { state } : {}),
    // Vendor sources (arista:…): their token's variable, and -v shows their API requests.
    sources: vendorSources(g, printer, env, signal, o.tokenEnv),
    ...syncBasics(g, printer, env, o),
    manifest, names: o.names, mode: o.dryRun ? 'dry-run' : 'sync', env, signal,
    ...(remote ? { remote } : {}),
    force: o.force, frozen: o.frozen, verify: o.verify, jobs: o.jobs, checks: g.verbose, ...(o.network ? { network: o.network } : {}),
    ...(o.maxSize !== undefined ? { maxSize: o.maxSize } : {}),
    ...(o.link ? { link: o.link } : {}),
  });
  // (Stopped by a signal: main.ts exits with that signal's status.)
  if (signal.aborted || o.dryRun) return exitCode(summary, o.dryRun ? 'dry-run' : 'sync');
  if (o.push) {
    if (!remote) {
      printer.event({ type: 'warning', message: `--push: no team cache is set for ${manifest.file}, nothing pushed`, hint: 'add "remote": "oci://<registry>/<repository>" to hoard.json, or pass --remote oci://…' });
      return exitCode(summary, 'sync');
    }
    const pushed = await pushDownloaded(remote, g, results, printer, signal, o.jobs);
    return Math.max(pushed, exitCode(summary, 'sync'));
  }
  return exitCode(summary, 'sync');
}

export async function runStatus(
  g: GlobalOptions,
  printer: Printer,
  env: Env,
  o: { names: string[]; output?: string; verify: boolean } & ImageOptions & TeamCacheFlags,
): Promise<number> {
  const { manifest, state } = await loadProjectManifest(g);
  // Only -v asks the team cache (a request per missing blob) what it holds.
  const remote = g.verbose ? (o.teamCache?.(manifest) ?? null) : null;
  const { summary } = await sync({
    ...syncBasics(g, printer, env, o),
    ...(remote ? { remote } : {}),
    ...(state ? { state } : {}),
    manifest, names: o.names, mode: 'status', verify: o.verify, checks: g.verbose,
  }).finally(() => remote?.close());
  // 1 when the state could not be told (the engine did not answer), 3 for drift.
  return exitCode(summary, 'status');
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
    storeRoot: g.store, lockWait: g.lockWait ?? {}, noStore: g.noStore ?? false, ...(manifest ? { manifest } : {}), ...(o.output ? { output: o.output } : {}), ...(g.defaultLink ? { defaultLink: g.defaultLink } : {}),
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
  return exitCode({ failed: summary.corrupt + summary.outputsDiffering }, 'verify');
}

/** `hoard fetch <url>`: a cached download without a manifest; prints the file's path. */
export async function runFetch(
  g: GlobalOptions,
  printer: Printer,
  env: Env,
  signal: AbortSignal,
  o: { url: string; output?: string; sha256?: string; refresh: boolean; force: boolean; link?: LinkMode; executable: boolean; headers?: Record<string, string> } & NetworkFlags,
): Promise<number> {
  const vendor = isVendorUrl(o.url);
  if (!vendor && !/^https?:\/\//i.test(o.url)) {
    throw new HoardError('E_USAGE', `not an http:// or https:// URL: ${o.url}`, { hint: 'for a local file, use it directly (or `hoard store add <file>`); for a vendor file, arista:<file name> or arista:<format>@<version>' });
  }
  const link = o.link ?? g.defaultLink ?? 'auto';
  if (link === 'hardlink' && o.executable) {
    throw new HoardError('E_USAGE', '--executable cannot be a hard link (it shares the read-only blob)', { hint: 'use --link auto or --link copy' });
  }
  // A vendor spec names one file: arista:<file name> as it is, arista:<format>@<version> through the folder tree.
  let url = o.url;
  let arista: { path: string } | undefined;
  const sources = vendor ? vendorSources(g, printer, env, signal) : undefined;
  if (vendor) {
    if (o.headers) throw new HoardError('E_USAGE', `-H does not apply to ${o.url}: Arista's links carry their own authorization`, { hint: 'drop -H; the token comes from ARISTA_TOKEN' });
    const { parseSpec, resolveSpec } = await import('../sources/arista-catalog.ts');
    const spec = parseSpec(o.url);
    if (spec.kind === 'format') {
      const file = resolveSpec(await (await sources!.arista()).tree(), spec).file;
      url = `arista:${file.name}`;
      arista = { path: file.path };
    }
  }
  const name = nameFromFile(o.output ? path.basename(o.output) : vendor ? url.slice(url.indexOf(':') + 1) : fileNameFromUrl(url) ?? 'download');
  const headers = o.headers ? expandHeaders(o.headers, env, name) : {};
  const lazy: { fetcher: Promise<import('../download/http.ts').Fetcher> | null } = { fetcher: null };
  try {
    const r = await fetchUrl({
      url, storeRoot: g.store, lockWait: g.lockWait ?? {}, noStore: g.noStore ?? false, refresh: o.refresh, force: o.force, link, executable: o.executable, headers, name, signal, env,
      ...(arista ? { arista } : {}), ...(sources ? { sources, checksums: async () => (await import('./vendor.ts')).aristaChecksums(sources, url.slice(url.indexOf(':') + 1), arista) } : {}),
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
    return EXIT.ok;
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
  const show = (v: unknown) => (v === undefined || v === null ? 'none' : typeof v === 'object' ? JSON.stringify(v) : String(v));
  for (const key of SETTING_KEYS) rows.push([key, show(r.settings[key]), describeOrigin(r.origins[key])]);
  const w0 = Math.max(...rows.map((x) => x[0].length));
  const w1 = Math.max(...rows.slice(1).map((x) => x[1].length));
  for (const [k, v, o] of rows) printer.info(o ? `${k.padEnd(w0)}  ${v.padEnd(w1)}  ${o}` : `${k.padEnd(w0)}  ${v}`);
  return EXIT.ok;
}

const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

export async function runGc(g: GlobalOptions, printer: Printer, o: { dryRun: boolean; maxSize?: number; fetchRetentionMs?: number }): Promise<number> {
  const s = await gc({
    storeRoot: g.store, lockWait: g.lockWait ?? {},
    dryRun: o.dryRun,
    ...(o.maxSize !== undefined ? { maxSize: o.maxSize } : {}),
    ...(o.fetchRetentionMs !== undefined ? { fetchRetentionMs: o.fetchRetentionMs } : {}),
    emit: (e) => {
      if (g.json) return printer.event(e);
      if (e.type === 'summary') return;
      if (e.type === 'manifest') {
        if (e.state === 'missing') printer.info(`${o.dryRun ? 'would forget' : 'forgot'} ${e.file} (it no longer exists)`);
        else if (g.verbose) printer.info(`manifest ${e.file}: ${plural(e.digests, 'digest')}${e.state === 'ok' ? '' : ` (${e.state})`}`);
        return;
      }
      // Fetched blobs kept for the retention are said when asked (--dry-run, -v), not on every gc.
      if (e.type === 'kept' && e.reason === 'fetched' && !o.dryRun && !g.verbose) return;
      printer.event(e);
    },
  });
  const parts: string[] = [];
  if (s.removed) parts.push(`${plural(s.removed, 'unreferenced blob')} (${formatBytes(s.bytesRemoved)})`);
  if (s.evicted) parts.push(`${plural(s.evicted, 'least recently used blob')} (${formatBytes(s.bytesEvicted)})`);
  if (s.tmpFiles) parts.push(`${plural(s.tmpFiles, 'temp file')} (${formatBytes(s.tmpBytes)})`);
  if (s.locks) parts.push(plural(s.locks, 'stale lock'));
  const what = parts.length
    ? `${o.dryRun ? 'would free' : 'freed'} ${formatBytes(s.bytesFreed)}: ${parts.join(', ')}`
    : 'nothing to remove';
  const after = `${plural(s.blobsAfter, 'blob')}${s.storeBytes !== undefined ? ` (${formatBytes(s.storeBytes)} of ${formatBytes(s.maxSize!)} allowed)` : ''} for ${plural(s.manifests, 'known manifest')}` +
    `${s.fetchedKept ? ` and ${plural(s.fetchedKept, 'fetched blob')} used within ${describeDuration(s.fetchRetentionMs)}` : ''}` +
    `${s.inUse ? `, ${s.inUse} in use left alone` : ''}`;
  printer.info(`gc${o.dryRun ? ' --dry-run' : ''}: ${what}; ${after} ${o.dryRun && parts.length ? '(nothing was removed) ' : ''}in ${formatDuration(s.elapsedMs)}`);
  return s.swept ? EXIT.ok : EXIT.failed;
}

export async function runStorePath(g: GlobalOptions, printer: Printer): Promise<number> {
  const root = openStore(g.store, { lockWait: g.lockWait ?? {} }).root;
  if (g.json) printer.event({ type: 'store', path: root });
  else printer.result(root);
  return EXIT.ok;
}

/** Every blob with what references it, most recently used first. */
export async function runStoreLs(g: GlobalOptions, printer: Printer): Promise<number> {
  const store = openStore(g.store, { lockWait: g.lockWait ?? {} });
  const refs = new Map<string, Array<{ manifest: string; artifacts: string[] }>>();
  for (const m of await readKnownManifests(openSyncState(store.root, store.lockWait))) {
    for (const [d, names] of m.refs) {
      const list = refs.get(d) ?? [];
      list.push({ manifest: m.file, artifacts: names });
      refs.set(d, list);
    }
  }
  const blobs = (await store.blobs()).sort((a, b) => b.lastUsed - a.lastUsed || (a.digest < b.digest ? -1 : 1));
  const fetched = openFetchedBlobs(store.root);
  const width = Math.max(0, ...blobs.map((b) => formatBytes(b.size).length));
  let bytes = 0;
  let unreferenced = 0;
  for (const b of blobs) {
    bytes += b.size;
    const by = refs.get(b.digest) ?? [];
    const fetchedAt = fetched.get(b.digest.slice(7));
    if (by.length === 0 && fetchedAt === undefined) unreferenced++;
    if (g.json) {
      printer.event({
        type: 'blob', digest: b.digest, path: b.path, size: b.size, lastUsed: new Date(b.lastUsed).toISOString(), references: by,
        ...(fetchedAt !== undefined ? { fetched: new Date(fetchedAt).toISOString() } : {}),
      });
      continue;
    }
    const named = [...by.map((r) => `${r.manifest}${r.artifacts.length ? ` (${r.artifacts.join(', ')})` : ''}`), ...(fetchedAt !== undefined ? ['hoard fetch'] : [])].join('; ') || '-';
    printer.result(`${b.digest}  ${formatBytes(b.size).padStart(width)}  ${formatTime(b.lastUsed)}  ${named}`);
  }
  const tmp = await store.tmpFiles();
  if (g.json) printer.event(storeSummary(store.root, blobs.length, bytes, tmp));
  else printer.info(`${plural(blobs.length, 'blob')}, ${formatBytes(bytes)}${unreferenced ? `; ${unreferenced} named by no known manifest (\`hoard gc\` removes them)` : ''}`);
  return EXIT.ok;
}

function storeSummary(root: string, blobs: number, bytes: number, tmp: ReadonlyArray<{ size: number }>) {
  return { type: 'summary', store: root, blobs, bytes, tmpFiles: tmp.length, tmpBytes: tmp.reduce((n, f) => n + f.size, 0) };
}

export async function runStoreDu(g: GlobalOptions, printer: Printer): Promise<number> {
  const store = openStore(g.store, { lockWait: g.lockWait ?? {} });
  const blobs = await store.blobs();
  const tmp = await store.tmpFiles();
  const s = storeSummary(store.root, blobs.length, blobs.reduce((n, b) => n + b.size, 0), tmp);
  if (g.json) printer.event(s);
  else {
    printer.result(
      `blobs       ${formatBytes(s.bytes)} in ${plural(s.blobs, 'blob')} (${s.bytes} bytes)\n` +
        `temp files  ${formatBytes(s.tmpBytes)} in ${plural(s.tmpFiles, 'file')}\n` +
        `store       ${s.store}`,
    );
  }
  return EXIT.ok;
}

export async function runStoreAdd(g: GlobalOptions, printer: Printer, o: { file: string }): Promise<number> {
  const file = path.resolve(o.file);
  const st = await fs.stat(file).catch(() => null);
  if (!st?.isFile()) {
    throw new HoardError('E_USAGE', st ? `${file} is not a regular file` : `no file at ${file}`, { hint: 'give the path of a local file: hoard store add ./cEOS-lab-4.32.1F.tar.xz' });
  }
  const store = openStore(g.store, { lockWait: g.lockWait ?? {} });
  const digest = await store.put(file);
  if (g.json) printer.event({ type: 'added', digest, path: store.blobPath(digest), size: st.size });
  else printer.result(digest);
  return EXIT.ok;
}

export async function runStoreRm(g: GlobalOptions, printer: Printer, o: { digest: string }): Promise<number> {
  const digest = parseDigest(o.digest);
  const store = openStore(g.store, { lockWait: g.lockWait ?? {} });
  const size = statSync(store.blobPath(digest), { throwIfNoEntry: false })?.size ?? 0;
  const lastUsed = store.lastUsed(digest);
  const removed = await store.delete(digest, (info) => printer.event(waitingEvent(digest.slice(7), info)));
  if (!removed) {
    throw new HoardError('E_STORE', `no blob ${digest} in the store at ${store.root}`, {
      hint: 'see `hoard store ls` for the digests it holds',
      details: { digest },
    });
  }
  printer.event({ type: 'removed', subject: 'blob', path: store.blobPath(digest), digest, bytes: size, reason: 'rm', ...(lastUsed !== null ? { lastUsed: new Date(lastUsed).toISOString() } : {}), dryRun: false });
  const named = (await readKnownManifests(openSyncState(store.root, store.lockWait))).filter((m) => m.refs.has(digest));
  for (const m of named) {
    printer.event({
      type: 'warning',
      message: `${m.file} still names it${m.refs.get(digest)!.length ? ` (${m.refs.get(digest)!.join(', ')})` : ''}: the next \`hoard sync\` there downloads it again`,
    });
  }
  return EXIT.ok;
}

/** The two `git config` lines that make git use `hoard merge-driver` (with `<manifest> merge=hoard` in .gitattributes). */
export const MERGE_DRIVER_CONFIG = [
  'git config merge.hoard.name "hoard.json: three-way merge by artifact name"',
  'git config merge.hoard.driver "hoard merge-driver %O %A %B"',
];

/**
 * `hoard merge-driver %O %A %B`: git's merge driver for hoard.json. Writes the merged manifest
 * into %A; exit 0 when clean, 1 when an entry both sides changed differently is left between
 * conflict markers (or the merge is not a valid manifest).
 */
export async function runMergeDriver(printer: Printer, o: { base: string; ours: string; theirs: string; path?: string }): Promise<number> {
  const name = o.path ?? 'hoard.json';
  const [base, ours, theirs] = await Promise.all([o.base, o.ours, o.theirs].map((f) => fs.readFile(f, 'utf8')));
  let docs: [ManifestDoc, ManifestDoc, ManifestDoc];
  try {
    docs = [
      base!.trim() === '' ? { version: 1, artifacts: {} } : parseManifest(o.base, base!), // no common ancestor: both added the file
      parseManifest(o.ours, ours!),
      parseManifest(o.theirs, theirs!),
    ];
  } catch (err) {
    if (!(err instanceof HoardError)) throw err;
    // Not manifests hoard can read (markers of an earlier merge, say): a plain text merge, as git's own.
    printer.note(`hoard merge-driver: a side of ${name} is not a valid manifest; merging it as text (git merge-file)`);
    const { spawnSync } = process.getBuiltinModule('node:child_process'); // (loaded only here: it costs every start ~8 ms)
    const r = spawnSync('git', ['merge-file', '-L', 'ours', '-L', 'base', '-L', 'theirs', o.ours, o.base, o.theirs], { stdio: ['ignore', 'ignore', 'inherit'] });
    return r.status === 0 ? EXIT.ok : EXIT.failed;
  }
  const r = mergeManifests(...docs);
  await writeFileAtomic(o.ours, r.text);
  if (r.conflicts.length > 0) {
    printer.note(
      `hoard merge-driver: ${name}: ${r.conflicts.map((c) => (c.startsWith('/') ? `"${c.slice(1)}"` : `artifact "${c}"`)).join(', ')} changed differently on both sides; ` +
        'resolve the part between <<<<<<< ours and >>>>>>> theirs, then `hoard sync` and `git add`',
    );
    return EXIT.failed;
  }
  try {
    checkManifest(name, r.doc!);
  } catch (err) {
    if (!(err instanceof HoardError)) throw err;
    printer.note(`hoard merge-driver: merged by artifact, but the result is not a valid manifest: ${err.message}`);
    return EXIT.failed;
  }
  return EXIT.ok;
}
