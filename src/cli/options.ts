// The one table of hoard's options: each flag, its type, the commands that take it (and what
// their help says of it), its HOARD_* variables, how a variable's value is checked, and, for
// the settings the configuration file can also hold, its key, its default and how each source
// is read. The yargs builders, the environment lookup and `hoard config` are made from it.
import path from 'node:path';
import type { Options } from 'yargs';
import type { EngineChoice } from '../engine/types.ts';
import { LINK_MODES, type LinkMode } from '../manifest/types.ts';
import type { RemoteSettings } from '../remote/ref.ts';
import { parseDuration } from '../core/duration.ts';
import { HoardError } from '../core/errors.ts';
import {
  checkBoolean, checkChoice, checkNumber, checkRemotes, checkStore, envError, isWholeNumber, xdg, type Checked, type Env,
} from './values.ts';

export const ENGINES: readonly EngineChoice[] = ['auto', 'docker', 'podman'];

export const COMMAND_NAMES = [
  'init', 'add', 'sync', 'status', 'push', 'verify', 'gc', 'store', 'ui', 'fetch', 'outdated', 'update', 'versions', 'merge-driver', 'config',
] as const;
export type CommandName = (typeof COMMAND_NAMES)[number];

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

/** A value and what it came from (the flag as typed, or what a default is made of). */
export interface Sourced<T> {
  value: T;
  source: string;
}

/** A setting the configuration file can hold; resolved by config.ts: flag > HOARD_* > file > default. */
export interface SettingDef<K extends SettingKey = SettingKey> {
  key: K;
  /** The value given on the command line, if any (a bad one throws, naming the flag). */
  flag?: (flags: FlagValues) => Sourced<Settings[K]> | undefined;
  /** A HOARD_* value (not empty); wrong: the words after "expected". */
  env?: (raw: string, env: Env) => Checked<Settings[K]>;
  /** A value of the file. */
  file: (v: unknown, env: Env) => Checked<Settings[K]>;
  default: (env: Env) => Sourced<Settings[K]>;
  /** The default as help shows it. */
  defaultDescription: string;
}

export interface OptionDef {
  /** What yargs needs: type or choices, alias, default, describe… (per command: `commands`). */
  spec?: Options;
  /** 'global': every command; else the commands that take it, each with what differs in its help. */
  commands: 'global' | { readonly [C in CommandName]?: Options };
  /** Its HOARD_* variables, the first the usual one (default: HOARD_<FLAG>); false: none. */
  env?: readonly string[] | false;
  /** A setting of the configuration file, read by config.ts (yargs never sees its variables). */
  setting?: SettingDef;
}

const setting = <K extends SettingKey>(s: SettingDef<K>): SettingDef => s as unknown as SettingDef;
const fromFlag = <T>(key: keyof FlagValues, flag: string, to: (v: unknown) => T) => (f: FlagValues): Sourced<T> | undefined =>
  f[key] === undefined ? undefined : { value: to(f[key]), source: flag };
const whenBoolean = (v: unknown): Checked<boolean> => (typeof v === 'boolean' ? { value: v } : { expected: 'true or false' });

const OUTPUT_OVERRIDE = 'output folder (overrides the manifest\'s "output")';
const TOKEN_ENV = 'the variable holding your Arista API token [default: ARISTA_TOKEN]';
const NETWORK = { add: {}, sync: {}, push: {}, ui: {}, fetch: {}, update: {} } as const;
const IMAGES = { add: {}, sync: {}, status: {}, ui: {}, update: {} } as const;
const REMOTE = { sync: {}, status: {}, push: {}, ui: {} } as const;

/**
 * Every option, in the order help lists them. The settings are in the order `hoard config`
 * shows them (`enabled` is --no-store's; `remotes` has no flag: the file only).
 */
export const OPTIONS: Readonly<Record<string, OptionDef>> = {
  // Global options.
  manifest: {
    spec: {
      alias: 'm', type: 'string', default: 'hoard.json', requiresArg: true, describe: 'manifest file',
      defaultDescription: 'hoard.json here, else in the closest folder above (up to the repository root)',
    },
    commands: 'global',
  },
  store: {
    spec: {
      alias: 'cache-dir', type: 'string', requiresArg: true,
      describe: 'store folder [default: $XDG_CACHE_HOME/hoard or ~/.cache/hoard]; --no-store: keep nothing, download straight to the outputs',
    },
    commands: 'global',
    env: ['HOARD_STORE', 'HOARD_CACHE_DIR'],
    setting: setting({
      key: 'store',
      flag: (f) => (typeof f.store === 'string' ? { value: f.store, source: '--store' } : undefined),
      env: checkStore,
      file: checkStore,
      default: (env) => {
        const cache = xdg(env, 'XDG_CACHE_HOME');
        if (cache) return { value: path.join(cache, 'hoard'), source: '$XDG_CACHE_HOME/hoard' };
        return { value: path.join(env.HOME ?? '.', '.cache', 'hoard'), source: '~/.cache/hoard' };
      },
      defaultDescription: '$XDG_CACHE_HOME/hoard or ~/.cache/hoard',
    }),
  },
  // --no-store's setting: no flag of its own (yargs reads --no-store as store: false).
  enabled: {
    commands: {},
    env: ['HOARD_NO_STORE'],
    setting: setting({
      key: 'enabled',
      flag: (f) => (f.store === false ? { value: false, source: '--no-store' } : undefined),
      env: (raw) => {
        const r = checkBoolean(raw);
        return 'value' in r ? { value: !r.value } : r;
      },
      file: whenBoolean,
      default: () => ({ value: true, source: 'default' }),
      defaultDescription: 'true',
    }),
  },
  json: { spec: { type: 'boolean', default: false, describe: 'one JSON event per line on stdout' }, commands: 'global' },
  verbose: { spec: { alias: 'v', type: 'boolean', default: false, describe: 'show each cache check, request and stack traces' }, commands: 'global' },
  quiet: { spec: { alias: 'q', type: 'boolean', default: false, describe: 'only errors' }, commands: 'global' },
  color: { spec: { type: 'boolean', default: true, describe: 'colour output (--no-color, or NO_COLOR)' }, commands: 'global' },
  'lock-timeout': {
    spec: {
      type: 'string', requiresArg: true, default: '5m',
      describe: 'how long to wait for a lock another hoard holds (30s, 5m, 1h; 0: forever), then fail naming it (E_LOCKED)',
    },
    commands: 'global',
  },

  // Command options.
  'from-clab': {
    spec: { type: 'string', requiresArg: true, describe: 'add every Arista image a containerlab topology uses (kinds.*.image, nodes.*.image)' },
    commands: { add: {} },
  },
  name: { spec: { type: 'string', describe: 'artifact name [default: the URL\'s file name]' }, commands: { add: {} } },
  path: { spec: { type: 'string', describe: 'file path inside the output folder [default: the URL\'s file name]' }, commands: { add: {} } },
  image: {
    spec: { type: 'string', describe: 'container image reference to import it as (name[:tag]); for arista:cEOS… given without a value: arista/ceos:<version>' },
    commands: { add: {} },
  },
  sha256: {
    spec: { type: 'string' },
    commands: {
      add: { describe: 'expected SHA-256 (hex); the download must match' },
      fetch: { requiresArg: true, describe: 'expected SHA-256 (hex): the download must match; with a blob of that digest in the store, no request at all' },
    },
  },
  'output-file': {
    spec: {
      alias: 'o', type: 'string', requiresArg: true,
      describe: 'put the file here too (made from the blob like sync\'s outputs, atomically) and print this path instead of the blob\'s',
    },
    commands: { fetch: {} },
  },
  output: {
    spec: { type: 'string', describe: OUTPUT_OVERRIDE },
    commands: {
      init: { default: 'artifacts', describe: 'output folder to record' },
      add: {},
      sync: { alias: 'o' },
      status: { alias: 'o' },
      verify: { alias: 'o', describe: 'output folder' },
      ui: { alias: 'o' },
      update: { alias: 'o' },
    },
  },
  refresh: {
    spec: { type: 'boolean', default: false, describe: 'ask the server whether the URL changed since it was fetched (ETag / Last-Modified); download only if so' },
    commands: { fetch: {} },
  },
  force: {
    spec: { type: 'boolean', default: false },
    commands: {
      sync: { describe: 're-download and replace outputs, even someone else\'s files' },
      fetch: { describe: 'replace a file at -o that hoard did not write, or that was changed since' },
    },
  },
  'dry-run': {
    spec: { alias: 'n', type: 'boolean', default: false },
    commands: {
      sync: { describe: 'print the plan; change nothing anywhere' },
      gc: { describe: 'list what would be removed, and how many bytes; remove nothing' },
    },
  },
  frozen: { spec: { type: 'boolean', default: false, describe: 'fail (exit 2) if an entry has no digest; never write hoard.json' }, commands: { sync: {} } },
  'max-size': {
    spec: { type: 'string', requiresArg: true, describe: 'size limit for the store: evict least recently used blobs until it fits (5GB, 500MB, 2GiB, or bytes)' },
    commands: { sync: {}, gc: {}, config: { describe: 'as for sync and gc' } },
    setting: setting({
      key: 'maxSize',
      // Parsed where the limit is applied (maxSizeOf), which names the flag and HOARD_MAX_SIZE.
      flag: fromFlag('maxSize', '--max-size', (v) => String(v)),
      env: (v) => ({ value: v }),
      file: (v) => {
        if (isWholeNumber(v, 0)) return { value: String(v) };
        if (typeof v === 'string' && v.trim() !== '') return { value: v.trim() };
        return { expected: 'a size: a number of bytes, or a string such as "5GB" or "5GiB"' };
      },
      default: () => ({ value: undefined, source: 'default' }),
      defaultDescription: 'none',
    }),
  },
  'fetch-retention': {
    spec: {
      type: 'string', requiresArg: true,
      describe: 'keep blobs `hoard fetch` wanted while used within this long (7d, 12h, 30m; 0: do not keep them) [default: 30d]',
    },
    commands: { gc: {} },
    setting: setting({
      key: 'fetchRetention',
      // Parsed where gc applies it, which names the flag, the variable or the file.
      flag: fromFlag('fetchRetention', '--fetch-retention', (v) => String(v)),
      env: (v) => ({ value: v }),
      file: (v) => {
        if (isWholeNumber(v, 0)) return { value: String(v) };
        if (typeof v === 'string' && parseDuration(v) !== null) return { value: v.trim() };
        return { expected: 'a duration: "30d", "12h", "30m", or a number of seconds (0: do not keep fetched blobs)' };
      },
      default: () => ({ value: '30d', source: 'default' }),
      defaultDescription: '30d',
    }),
  },
  jobs: {
    spec: { alias: 'j', type: 'number' },
    commands: {
      sync: { defaultDescription: '4', describe: 'parallel downloads' },
      push: { defaultDescription: '4', describe: 'parallel uploads' },
      ui: { defaultDescription: '4', describe: 'parallel downloads' },
      config: { describe: 'as for sync' },
    },
    setting: setting({
      key: 'jobs',
      flag: (f) => {
        if (f.jobs === undefined) return undefined;
        if (!isWholeNumber(f.jobs, 1)) throw new HoardError('E_USAGE', `--jobs must be a whole number of at least 1, not ${JSON.stringify(String(f.jobs))}`);
        return { value: f.jobs, source: '--jobs' };
      },
      env: (v) => (/^\d+$/.test(v) && Number(v) >= 1 ? { value: Number(v) } : { expected: 'a whole number of at least 1' }),
      file: (v) => (isWholeNumber(v, 1) ? { value: v } : { expected: 'a whole number of at least 1' }),
      default: () => ({ value: 4, source: 'default' }),
      defaultDescription: '4',
    }),
  },
  link: {
    spec: { choices: LINK_MODES },
    commands: {
      add: { describe: 'how the output is made from the blob' },
      sync: { describe: 'link mode for every artifact' },
      fetch: { defaultDescription: '"link" of the config file, else auto', describe: 'how the -o file is made from the blob' },
      config: { describe: 'as for sync' },
    },
    setting: setting({
      key: 'link',
      // (yargs has checked the flag's choices already.)
      flag: fromFlag('link', '--link', (v) => v as LinkMode),
      env: checkChoice(LINK_MODES),
      file: checkChoice(LINK_MODES, true),
      default: () => ({ value: 'auto', source: 'default' }),
      defaultDescription: 'auto',
    }),
  },
  executable: {
    spec: { type: 'boolean' },
    commands: {
      add: { describe: 'set the executable bit on the output' },
      fetch: { default: false, describe: 'make the -o file executable (a copy or reflink of its own)' },
    },
  },
  verify: {
    spec: { type: 'boolean', default: false },
    commands: {
      sync: { describe: 're-hash blobs and outputs instead of trusting fingerprints' },
      status: { describe: 're-hash instead of trusting fingerprints' },
    },
  },
  engine: {
    spec: { choices: ENGINES },
    commands: {
      ...Object.fromEntries(Object.keys(IMAGES).map((c) => [c, { defaultDescription: 'auto', describe: 'container engine; auto: docker when its daemon answers, else podman' }])),
      config: { describe: 'as for sync' },
    },
    setting: setting({
      key: 'engine',
      flag: fromFlag('engine', '--engine', (v) => v as EngineChoice),
      env: checkChoice(ENGINES),
      file: checkChoice(ENGINES, true),
      default: () => ({ value: 'auto', source: 'default' }),
      defaultDescription: 'auto',
    }),
  },
  remote: {
    spec: {
      type: 'string', requiresArg: true,
      describe: 'team cache: oci://<registry>/<repository> [default: HOARD_REMOTE, hoard.json\'s "remote", the config file]; --no-remote: none',
    },
    commands: REMOTE,
    setting: setting({
      key: 'remote',
      // The manifest's "remote" comes between the variable and the file (push.ts: effectiveRemote).
      flag: (f) => (f.remote === false ? { value: false, source: '--no-remote' } : typeof f.remote === 'string' ? { value: f.remote, source: '--remote' } : undefined),
      env: (v) => ({ value: v }),
      file: (v) => (typeof v === 'string' && v.startsWith('oci://') ? { value: v } : { expected: 'a team cache address: "oci://<registry host[:port]>/<repository>"' }),
      default: () => ({ value: undefined, source: 'default' }),
      defaultDescription: 'none',
    }),
  },
  push: {
    spec: { type: 'boolean', describe: 'push what this sync downloaded from elsewhere to the team cache (HOARD_PUSH=1, config "push": true; for CI)' },
    commands: { sync: {} },
    setting: setting({
      key: 'push',
      flag: (f) => (f.push === undefined ? undefined : { value: f.push, source: f.push ? '--push' : '--no-push' }),
      env: checkBoolean,
      file: whenBoolean,
      default: () => ({ value: false, source: 'default' }),
      defaultDescription: 'false',
    }),
  },
  // The file's per-registry settings: no flag, no variable.
  remotes: {
    commands: {},
    env: false,
    setting: setting({
      key: 'remotes',
      file: checkRemotes,
      default: () => ({ value: {}, source: 'default' }),
      defaultDescription: '{}',
    }),
  },
  latest: {
    spec: { type: 'boolean', default: false, describe: 'the newest release overall (Active Releases, same release type), not just of the branch' },
    commands: { update: {} },
  },
  branch: { spec: { type: 'string', requiresArg: true, describe: 'only this branch (4.32)' }, commands: { versions: {} } },
  images: {
    spec: { type: 'boolean', default: true, describe: 'import or load container images (--no-images skips the engine entirely)' },
    commands: IMAGES,
  },
  retries: {
    spec: { type: 'number', default: 5, describe: 'retries after a network error, a stall, 408, 429 or 5xx (a try that brought new bytes does not count)' },
    commands: NETWORK,
  },
  'retry-delay': {
    spec: { type: 'number', default: 1, describe: 'seconds before the first retry; doubles each time (max 30 s), with jitter; Retry-After wins' },
    commands: NETWORK,
  },
  'connect-timeout': { spec: { type: 'number', default: 30, describe: 'seconds to wait for a connection' }, commands: NETWORK },
  'response-timeout': { spec: { type: 'number', default: 60, describe: 'seconds to wait for the response headers' }, commands: NETWORK },
  'stall-timeout': {
    spec: { type: 'number', default: 60, describe: 'seconds without a byte before a transfer counts as stalled (then retried)' },
    commands: NETWORK,
  },
  'release-type': {
    spec: { type: 'string', requiresArg: true },
    commands: {
      add: { describe: 'arista: with @latest or a branch, F (feature, default) or M (maintenance)' },
      versions: { describe: 'only F (feature) or M (maintenance) releases' },
    },
  },
  'token-env': {
    spec: { type: 'string', requiresArg: true, describe: TOKEN_ENV },
    commands: {
      add: { describe: 'arista: the variable holding your API token [default: ARISTA_TOKEN]' },
      sync: { describe: 'the variable holding your Arista API token, for arista: artifacts [default: ARISTA_TOKEN]' },
      outdated: {},
      update: {},
      versions: {},
    },
  },
  'checksum-url': {
    spec: {
      type: 'string', requiresArg: true,
      describe: 'published checksum file (coreutils "<hex>  <file>", BSD, or bare hex; sha512/sha256/sha1/md5): verified and recorded',
    },
    commands: { add: {} },
  },
  // Request headers may hold secrets and are many: the command line only.
  header: {
    spec: { alias: 'H', type: 'string', array: true, requiresArg: true },
    commands: {
      add: { describe: 'request header "Name: value", recorded in hoard.json; write secrets as ${VAR}, expanded at request time' },
      fetch: { describe: 'request header "Name: value"; write secrets as ${VAR}, expanded from the environment (never stored)' },
    },
    env: false,
  },
};

/** HOARD_<FLAG>: HOARD_DRY_RUN for --dry-run. */
export const variableOf = (flag: string): string => `HOARD_${flag.toUpperCase().replace(/-/g, '_')}`;

/** An option's HOARD_* variables. */
export function variablesOf(name: string): readonly string[] {
  const env = OPTIONS[name]!.env;
  return env === false ? [] : (env ?? [variableOf(name)]);
}

const takes = (def: OptionDef, command: string): boolean => def.commands === 'global' || command in def.commands;

/** yargs' options of a command (the global ones are declared once, on the top level). */
export function optionsFor(command: CommandName | 'global'): Record<string, Options> {
  const out: Record<string, Options> = {};
  for (const [name, def] of Object.entries(OPTIONS)) {
    if (!def.spec) continue;
    if (command === 'global' ? def.commands !== 'global' : def.commands === 'global' || !(command in def.commands)) continue;
    out[name] = { ...def.spec, ...(def.commands === 'global' ? {} : def.commands[command as CommandName]) };
  }
  return out;
}

/** The settings, in the order `hoard config` shows them. */
export const SETTINGS: readonly SettingDef[] = Object.values(OPTIONS).flatMap((d) => (d.setting ? [d.setting] : []));
export const SETTING_KEYS: readonly SettingKey[] = SETTINGS.map((s) => s.key);

/** The HOARD_* variables of a setting (config.ts reads them; yargs never sees them). */
export function settingVariables(key: SettingKey): readonly string[] {
  const name = Object.keys(OPTIONS).find((n) => OPTIONS[n]!.setting?.key === key)!;
  return variablesOf(name);
}

/**
 * The HOARD_* variables for yargs to read, as yargs reads them: a variable of an option the
 * running command lacks is left out (yargs' strict mode would reject it: `HOARD_MAX_SIZE=5GB`
 * exported in a shell must not break `hoard status`), and so are the settings' (config.ts
 * resolves them) and any HOARD_* variable that is no option's (the user's own, a token say).
 * A malformed value of an option's variable is an error naming it, whichever command runs.
 * `command`: the command typed (undefined, or not a command: every option's variables).
 */
export function variablesForYargs(env: Env, command: string | undefined): { values: Record<string, string>; error: HoardError | null } {
  const known = (COMMAND_NAMES as readonly string[]).includes(command ?? '');
  const values: Record<string, string> = {};
  let error: HoardError | null = null;
  for (const [name, def] of Object.entries(OPTIONS)) {
    const type = def.spec?.type;
    for (const variable of variablesOf(name)) {
      const raw = env[variable];
      if (raw === undefined) continue;
      if (def.setting) continue;
      if (raw !== '' && (type === 'boolean' || type === 'number')) {
        const r = type === 'boolean' ? checkBoolean(raw) : checkNumber(raw);
        if ('expected' in r) {
          error ??= envError(variable, raw, r.expected);
          continue;
        }
        if (type === 'boolean') {
          if (!known || takes(def, command!)) values[variable] = String(r.value);
          continue;
        }
      }
      if (!known || takes(def, command!)) values[variable] = raw;
    }
  }
  return { values, error };
}
