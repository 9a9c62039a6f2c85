// The user's configuration file and the effective settings. Each setting is the first of:
// a command-line flag, a HOARD_* environment variable, the configuration file, the default.
// Pure functions over values main.ts hands in; the file is read with one synchronous read.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { HoardError, isErrno } from '../core/errors.ts';
import type { EngineChoice } from '../engine/types.ts';
import { escapePointer, JsonSyntaxError, parseJsonFast, type Position } from '../manifest/json.ts';
import { LINK_MODES, type LinkMode } from '../manifest/types.ts';
import { parseSize } from '../core/format.ts';
import { parseDuration } from '../core/duration.ts';
import type { RemoteSettings } from '../remote/ref.ts';

export const ENGINES: readonly EngineChoice[] = ['auto', 'docker', 'podman'];

export interface Settings {
  /** The store folder (used or not: see `enabled`). */
  store: string;
  /** false: download straight to the outputs and keep nothing (--no-store). */
  enabled: boolean;
  /** As written ("5GB", "5GiB", or a number of bytes); parsed where the limit is applied. */
  maxSize: string | undefined;
  /** How long gc keeps a blob `hoard fetch` wanted after its last use, as written ("30d"); parsed where gc applies it. */
  fetchRetention: string;
  jobs: number;
  link: LinkMode;
  engine: EngineChoice;
  /** The team cache (oci://host/repository); false: --no-remote. The manifest's "remote" comes between env and file. */
  remote: string | false | undefined;
  /** sync pushes what it downloaded from elsewhere to the team cache (--push). */
  push: boolean;
  /** Per registry host[:port]: {"insecure": true, "chunkSize": "8MiB", "mountFrom": ["other/repo"]}. */
  remotes: Record<string, RemoteSettings>;
}
export type SettingKey = keyof Settings;
/** In the order `hoard config` shows them. */
export const SETTING_KEYS: readonly SettingKey[] = ['store', 'enabled', 'maxSize', 'fetchRetention', 'jobs', 'link', 'engine', 'remote', 'push', 'remotes'];

/** Where a setting came from: `source` is the flag, the variable, the file, or what the default is made of. */
export interface Origin {
  kind: 'flag' | 'env' | 'file' | 'default';
  source: string;
}

export interface ResolvedSettings {
  settings: Settings;
  origins: Record<SettingKey, Origin>;
  /** The configuration file's path, and whether it exists. */
  file: string;
  fileFound: boolean;
}

/** Values given on the command line (undefined: not given). `store: false` is --no-store. */
export interface FlagValues {
  store?: string | false;
  jobs?: unknown;
  link?: string;
  engine?: string;
  maxSize?: string | number;
  fetchRetention?: string;
  remote?: string | false;
  push?: boolean;
}

type Env = Record<string, string | undefined>;

/** The HOARD_* variables that set these settings; main.ts takes them out of yargs' sight. */
export const SETTING_VARIABLES = ['HOARD_STORE', 'HOARD_CACHE_DIR', 'HOARD_NO_STORE', 'HOARD_MAX_SIZE', 'HOARD_FETCH_RETENTION', 'HOARD_JOBS', 'HOARD_LINK', 'HOARD_ENGINE', 'HOARD_REMOTE', 'HOARD_PUSH'] as const;

/** XDG base directories must be absolute; a relative one is ignored (XDG Base Directory spec). */
function xdg(env: Env, name: 'XDG_CONFIG_HOME' | 'XDG_CACHE_HOME'): string | undefined {
  const v = env[name];
  return v && path.isAbsolute(v) ? v : undefined;
}

/** `$XDG_CONFIG_HOME/hoard/config.json`, else `~/.config/hoard/config.json`. */
export function configPath(env: Env): string {
  return path.join(xdg(env, 'XDG_CONFIG_HOME') ?? path.join(env.HOME ?? '.', '.config'), 'hoard', 'config.json');
}

function defaultStore(env: Env): Origin & { value: string } {
  const cache = xdg(env, 'XDG_CACHE_HOME');
  if (cache) return { kind: 'default', source: '$XDG_CACHE_HOME/hoard', value: path.join(cache, 'hoard') };
  return { kind: 'default', source: '~/.cache/hoard', value: path.join(env.HOME ?? '.', '.cache', 'hoard') };
}

interface Problem {
  pointer: string;
  message: string;
}

function configError(file: string, problems: Array<Problem & { position?: Position }>): HoardError {
  const lines = problems.map((p) => `  ${file}${p.position ? `:${p.position.line}:${p.position.column}` : ''}: ${p.message}`);
  return new HoardError('E_CONFIG', `${file} is not a valid configuration:\n${lines.join('\n')}`, {
    hint: `fix ${file} (keys: ${SETTING_KEYS.join(', ')}; see \`hoard config --help\`), or move it away`,
    details: { file, problems: problems.map((p) => ({ pointer: p.pointer, message: p.message, ...(p.position ?? {}) })) },
  });
}

const quote = (v: unknown) => JSON.stringify(v);
const isWholeNumber = (v: unknown, min: number) => typeof v === 'number' && Number.isInteger(v) && v >= min;

/** Checks one value from the file; the words after the key name when it is wrong. */
function checkFileValue(key: SettingKey, v: unknown, env: Env): { value: Settings[SettingKey] } | { expected: string } {
  switch (key) {
    case 'store': {
      if (typeof v !== 'string' || v === '') return { expected: 'a folder: an absolute path, or one starting with ~/' };
      if (v === '~' || v.startsWith('~/')) return { value: path.join(env.HOME ?? '.', v.slice(1)) };
      if (!path.isAbsolute(v)) return { expected: 'an absolute path, or one starting with ~/ (a relative folder would depend on where hoard runs)' };
      return { value: path.normalize(v) };
    }
    case 'enabled':
      return typeof v === 'boolean' ? { value: v } : { expected: 'true or false' };
    case 'maxSize':
      if (isWholeNumber(v, 0)) return { value: String(v) };
      if (typeof v === 'string' && v.trim() !== '') return { value: v.trim() };
      return { expected: 'a size: a number of bytes, or a string such as "5GB" or "5GiB"' };
    case 'fetchRetention':
      if (isWholeNumber(v, 0)) return { value: String(v) };
      if (typeof v === 'string' && parseDuration(v) !== null) return { value: v.trim() };
      return { expected: 'a duration: "30d", "12h", "30m", or a number of seconds (0: do not keep fetched blobs)' };
    case 'jobs':
      return isWholeNumber(v, 1) ? { value: v as number } : { expected: 'a whole number of at least 1' };
    case 'link':
      return LINK_MODES.includes(v as LinkMode) ? { value: v as LinkMode } : { expected: `one of ${LINK_MODES.map(quote).join(', ')}` };
    case 'engine':
      return ENGINES.includes(v as EngineChoice) ? { value: v as EngineChoice } : { expected: `one of ${ENGINES.map(quote).join(', ')}` };
    case 'remote':
      return typeof v === 'string' && v.startsWith('oci://') ? { value: v } : { expected: 'a team cache address: "oci://<registry host[:port]>/<repository>"' };
    case 'push':
      return typeof v === 'boolean' ? { value: v } : { expected: 'true or false' };
    case 'remotes':
      return checkRemotes(v);
  }
}

/** "remotes": {"<host[:port]>": {"insecure": bool, "chunkSize": size, "mountFrom": [repository, …]}}. */
function checkRemotes(v: unknown): { value: Record<string, RemoteSettings> } | { expected: string } {
  const expected = { expected: 'an object of registry hosts, each {"insecure": true|false, "chunkSize": "8MiB", "mountFrom": ["other/repository"]}' };
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return expected;
  const out: Record<string, RemoteSettings> = {};
  for (const [host, r] of Object.entries(v as Record<string, unknown>)) {
    if (r === null || typeof r !== 'object' || Array.isArray(r)) return expected;
    const o: RemoteSettings = {};
    for (const [k, x] of Object.entries(r as Record<string, unknown>)) {
      if (k === 'insecure' && typeof x === 'boolean') o.insecure = x;
      else if (k === 'chunkSize' && (typeof x === 'string' || typeof x === 'number') && (parseSize(x) ?? 0) > 0) o.chunkSize = parseSize(x)!;
      else if (k === 'mountFrom' && Array.isArray(x) && x.every((f) => typeof f === 'string')) o.mountFrom = x as string[];
      else return expected;
    }
    out[host.toLowerCase()] = o;
  }
  return { value: out };
}

/**
 * Reads and validates the configuration file; null when there is none (one failed open).
 * Every problem is reported at once, each with the line and column of the value.
 */
export function readConfigFile(file: string, env: Env): Partial<Settings> | null {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if (isErrno(err, 'ENOENT', 'ENOTDIR')) return null;
    throw new HoardError('E_CONFIG', `cannot read ${file}: ${(err as Error).message}`, { hint: 'fix its permissions, or move it away', cause: err });
  }
  let parsed: ReturnType<typeof parseJsonFast>;
  try {
    parsed = parseJsonFast(text);
  } catch (err) {
    if (err instanceof JsonSyntaxError) throw configError(file, [{ pointer: err.pointer ?? '', message: `${err.message} (not valid JSON)`, position: err.position }]);
    throw err;
  }
  const doc = parsed.value;
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) {
    throw configError(file, [{ pointer: '', message: 'expected an object such as {"jobs": 8}', position: parsed.positions().get('') }]);
  }
  const values: Partial<Settings> = {};
  const problems: Array<Problem & { position?: Position }> = [];
  for (const [key, v] of Object.entries(doc)) {
    const pointer = `/${escapePointer(key)}`;
    if (!(SETTING_KEYS as readonly string[]).includes(key)) {
      problems.push({ pointer, message: `${quote(key)} is not a setting (known: ${SETTING_KEYS.join(', ')})` });
      continue;
    }
    const r = checkFileValue(key as SettingKey, v, env);
    if ('expected' in r) problems.push({ pointer, message: `${quote(key)} expected ${r.expected}, found ${quote(v)}` });
    else (values as Record<string, unknown>)[key] = r.value;
  }
  if (problems.length > 0) {
    const positions = parsed.positions();
    // Unknown keys point at their value too: the line a person has to change.
    throw configError(file, problems.map((p) => ({ ...p, position: positions.get(p.pointer) })));
  }
  return values;
}

function envError(name: string, value: string, expected: string): HoardError {
  return new HoardError('E_USAGE', `${name}=${value}: expected ${expected}`, { hint: `fix or unset ${name}`, details: { variable: name } });
}

/** A boolean variable as people write them in CI files. */
function envBoolean(name: string, value: string): boolean {
  if (/^(1|true|yes|on)$/i.test(value)) return true;
  if (/^(0|false|no|off)$/i.test(value)) return false;
  throw envError(name, value, 'true or false (or 1/0, yes/no, on/off)');
}

/**
 * The effective settings: flag > HOARD_* variable > configuration file > default.
 * `env` holds the whole environment (HOARD_* and XDG_*, HOME). Reads the file (once).
 */
export function resolveSettings(flags: FlagValues, env: Env): ResolvedSettings {
  const file = configPath(env);
  const fromFile = readConfigFile(file, env);
  const fileOrigin: Origin = { kind: 'file', source: file };
  const origins = {} as Record<SettingKey, Origin>;
  const settings = {} as Settings;
  const set = <K extends SettingKey>(key: K, value: Settings[K], origin: Origin) => {
    settings[key] = value;
    origins[key] = origin;
  };
  const envValue = (name: string) => (env[name] !== undefined && env[name] !== '' ? env[name] : undefined);
  const fromEnv = (name: string, check: (v: string) => unknown) => {
    const v = envValue(name);
    return v === undefined ? undefined : { value: check(v), origin: { kind: 'env', source: name } as Origin };
  };

  // store, and whether it is used at all (--no-store, HOARD_NO_STORE, "enabled")
  const storeEnv = envValue('HOARD_STORE') !== undefined ? 'HOARD_STORE' : envValue('HOARD_CACHE_DIR') !== undefined ? 'HOARD_CACHE_DIR' : undefined;
  if (typeof flags.store === 'string') set('store', flags.store, { kind: 'flag', source: '--store' });
  else if (storeEnv) {
    // The same rule as the file's "store": absolute or ~/ (a relative folder would depend on
    // where hoard runs); a --store flag is a person's choice, resolved where they typed it.
    const r = checkFileValue('store', env[storeEnv], env);
    if ('expected' in r) throw envError(storeEnv, env[storeEnv]!, r.expected);
    set('store', r.value as string, { kind: 'env', source: storeEnv });
  }
  else if (fromFile?.store !== undefined) set('store', fromFile.store, fileOrigin);
  else {
    const d = defaultStore(env);
    set('store', d.value, { kind: d.kind, source: d.source });
  }
  const noStoreEnv = fromEnv('HOARD_NO_STORE', (v) => !envBoolean('HOARD_NO_STORE', v));
  if (flags.store === false) set('enabled', false, { kind: 'flag', source: '--no-store' });
  else if (noStoreEnv) set('enabled', noStoreEnv.value as boolean, noStoreEnv.origin);
  else if (fromFile?.enabled !== undefined) set('enabled', fromFile.enabled, fileOrigin);
  else set('enabled', true, { kind: 'default', source: 'default' });

  const maxEnv = envValue('HOARD_MAX_SIZE');
  if (flags.maxSize !== undefined) set('maxSize', String(flags.maxSize), { kind: 'flag', source: '--max-size' });
  else if (maxEnv !== undefined) set('maxSize', maxEnv, { kind: 'env', source: 'HOARD_MAX_SIZE' });
  else if (fromFile?.maxSize !== undefined) set('maxSize', fromFile.maxSize, fileOrigin);
  else set('maxSize', undefined, { kind: 'default', source: 'default' });

  const retentionEnv = envValue('HOARD_FETCH_RETENTION');
  if (flags.fetchRetention !== undefined) set('fetchRetention', String(flags.fetchRetention), { kind: 'flag', source: '--fetch-retention' });
  else if (retentionEnv !== undefined) set('fetchRetention', retentionEnv, { kind: 'env', source: 'HOARD_FETCH_RETENTION' });
  else if (fromFile?.fetchRetention !== undefined) set('fetchRetention', fromFile.fetchRetention, fileOrigin);
  else set('fetchRetention', '30d', { kind: 'default', source: 'default' });

  const jobsEnv = fromEnv('HOARD_JOBS', (v) => {
    if (!/^\d+$/.test(v) || Number(v) < 1) throw envError('HOARD_JOBS', v, 'a whole number of at least 1');
    return Number(v);
  });
  if (flags.jobs !== undefined) {
    if (!isWholeNumber(flags.jobs, 1)) throw new HoardError('E_USAGE', `--jobs must be a whole number of at least 1, not ${JSON.stringify(String(flags.jobs))}`);
    set('jobs', flags.jobs as number, { kind: 'flag', source: '--jobs' });
  } else if (jobsEnv) set('jobs', jobsEnv.value as number, jobsEnv.origin);
  else if (fromFile?.jobs !== undefined) set('jobs', fromFile.jobs, fileOrigin);
  else set('jobs', 4, { kind: 'default', source: 'default' });

  const choice = <T extends string>(name: string, allowed: readonly T[]) => (v: string) => {
    if (!allowed.includes(v as T)) throw envError(name, v, `one of ${allowed.join(', ')}`);
    return v as T;
  };
  // (yargs has checked the flags' choices already.)
  const linkEnv = fromEnv('HOARD_LINK', choice('HOARD_LINK', LINK_MODES));
  if (flags.link !== undefined) set('link', flags.link as LinkMode, { kind: 'flag', source: '--link' });
  else if (linkEnv) set('link', linkEnv.value as LinkMode, linkEnv.origin);
  else if (fromFile?.link !== undefined) set('link', fromFile.link, fileOrigin);
  else set('link', 'auto', { kind: 'default', source: 'default' });

  const engineEnv = fromEnv('HOARD_ENGINE', choice('HOARD_ENGINE', ENGINES));
  if (flags.engine !== undefined) set('engine', flags.engine as EngineChoice, { kind: 'flag', source: '--engine' });
  else if (engineEnv) set('engine', engineEnv.value as EngineChoice, engineEnv.origin);
  else if (fromFile?.engine !== undefined) set('engine', fromFile.engine, fileOrigin);
  else set('engine', 'auto', { kind: 'default', source: 'default' });

  // The team cache: --remote / --no-remote, HOARD_REMOTE, (the manifest's "remote": see effectiveRemote), the file.
  const remoteEnv = envValue('HOARD_REMOTE');
  if (flags.remote === false) set('remote', false, { kind: 'flag', source: '--no-remote' });
  else if (typeof flags.remote === 'string') set('remote', flags.remote, { kind: 'flag', source: '--remote' });
  else if (remoteEnv !== undefined) set('remote', remoteEnv, { kind: 'env', source: 'HOARD_REMOTE' });
  else if (fromFile?.remote !== undefined) set('remote', fromFile.remote, fileOrigin);
  else set('remote', undefined, { kind: 'default', source: 'default' });

  const pushEnv = fromEnv('HOARD_PUSH', (v) => envBoolean('HOARD_PUSH', v));
  if (flags.push !== undefined) set('push', flags.push, { kind: 'flag', source: flags.push ? '--push' : '--no-push' });
  else if (pushEnv) set('push', pushEnv.value as boolean, pushEnv.origin);
  else if (fromFile?.push !== undefined) set('push', fromFile.push, fileOrigin);
  else set('push', false, { kind: 'default', source: 'default' });

  if (fromFile?.remotes !== undefined) set('remotes', fromFile.remotes, fileOrigin);
  else set('remotes', {}, { kind: 'default', source: 'default' });

  return { settings, origins, file, fileFound: fromFile !== null };
}
