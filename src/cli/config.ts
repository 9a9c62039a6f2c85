// The user's configuration file and the effective settings. Each setting is the first of:
// a command-line flag, a HOARD_* environment variable, the configuration file, the default.
// Pure functions over values main.ts hands in; the file is read with one synchronous read.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { HoardError, isErrno } from '../core/errors.ts';
import { escapePointer, JsonSyntaxError, parseJsonFast, type Position } from '../manifest/json.ts';
import { SETTING_KEYS, SETTINGS, settingVariables, type FlagValues, type SettingKey, type Settings } from './options.ts';
import { envError, xdg, type Env } from './values.ts';

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

/** The HOARD_* variables that set these settings; main.ts takes them out of yargs' sight. */
export const SETTING_VARIABLES: readonly string[] = SETTING_KEYS.flatMap(settingVariables);

/** `$XDG_CONFIG_HOME/hoard/config.json`, else `~/.config/hoard/config.json`. */
export function configPath(env: Env): string {
  return path.join(xdg(env, 'XDG_CONFIG_HOME') ?? path.join(env.HOME ?? '.', '.config'), 'hoard', 'config.json');
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
const SETTING_OF = new Map(SETTINGS.map((s) => [s.key, s]));

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
    const r = SETTING_OF.get(key as SettingKey)!.file(v, env);
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

/**
 * The effective settings: flag > HOARD_* variable > configuration file > default, each
 * setting as the options table (options.ts) reads it.
 * `env` holds the whole environment (HOARD_* and XDG_*, HOME). Reads the file (once).
 */
export function resolveSettings(flags: FlagValues, env: Env): ResolvedSettings {
  const file = configPath(env);
  const fromFile = readConfigFile(file, env);
  const origins = {} as Record<SettingKey, Origin>;
  const settings = {} as Record<SettingKey, unknown>;
  for (const s of SETTINGS) {
    const set = (value: unknown, origin: Origin) => {
      settings[s.key] = value;
      origins[s.key] = origin;
    };
    // The first of its variables that is set and not empty; a malformed one is an error even
    // when a flag wins over it.
    const variable = s.env && settingVariables(s.key).find((v) => env[v] !== undefined && env[v] !== '');
    const fromEnv = variable ? s.env!(env[variable]!, env) : undefined;
    if (fromEnv && 'expected' in fromEnv) throw envError(variable!, env[variable!]!, fromEnv.expected);
    const flag = s.flag?.(flags);
    if (flag) set(flag.value, { kind: 'flag', source: flag.source });
    else if (fromEnv) set(fromEnv.value, { kind: 'env', source: variable! });
    else if (fromFile?.[s.key] !== undefined) set(fromFile[s.key], { kind: 'file', source: file });
    else {
      const d = s.default(env);
      set(d.value, { kind: 'default', source: d.source });
    }
  }
  return { settings: settings as unknown as Settings, origins, file, fileFound: fromFile !== null };
}
