// How a setting's value is checked, wherever it comes from: a flag, a HOARD_* variable or the
// configuration file. Small pure functions the options table (options.ts) is made of.
import path from 'node:path';
import { HoardError } from '../core/errors.ts';
import { parseSize } from '../core/format.ts';
import type { RemoteSettings } from '../remote/ref.ts';

export type Env = Record<string, string | undefined>;

/** A value, or the words after "expected" when it is wrong. */
export type Checked<T> = { value: T } | { expected: string };

/** A malformed HOARD_* value: exit 2, naming the variable. */
export function envError(name: string, value: string, expected: string): HoardError {
  return new HoardError('E_USAGE', `${name}=${value}: expected ${expected}`, { hint: `fix or unset ${name}`, details: { variable: name } });
}

/** Booleans as people write them in CI files: 1/0, yes/no, on/off, true/false. */
export function checkBoolean(v: string): Checked<boolean> {
  if (/^(1|true|yes|on)$/i.test(v)) return { value: true };
  if (/^(0|false|no|off)$/i.test(v)) return { value: false };
  return { expected: 'true or false (or 1/0, yes/no, on/off)' };
}

export function checkNumber(v: string): Checked<number> {
  const n = Number(v);
  return v.trim() !== '' && Number.isFinite(n) ? { value: n } : { expected: 'a number' };
}

export const isWholeNumber = (v: unknown, min: number): v is number => typeof v === 'number' && Number.isInteger(v) && v >= min;

export function checkChoice<T extends string>(allowed: readonly T[], quoted = false) {
  return (v: unknown): Checked<T> =>
    allowed.includes(v as T) ? { value: v as T } : { expected: `one of ${allowed.map((a) => (quoted ? JSON.stringify(a) : a)).join(', ')}` };
}

/** XDG base directories must be absolute; a relative one is ignored (XDG Base Directory spec). */
export function xdg(env: Env, name: 'XDG_CONFIG_HOME' | 'XDG_CACHE_HOME'): string | undefined {
  const v = env[name];
  return v && path.isAbsolute(v) ? v : undefined;
}

/**
 * A store folder from a variable or the file: absolute or ~/ (a relative folder would depend
 * on where hoard runs); a --store flag is a person's choice, resolved where they typed it.
 */
export function checkStore(v: unknown, env: Env): Checked<string> {
  if (typeof v !== 'string' || v === '') return { expected: 'a folder: an absolute path, or one starting with ~/' };
  if (v === '~' || v.startsWith('~/')) return { value: path.join(env.HOME ?? '.', v.slice(1)) };
  if (!path.isAbsolute(v)) return { expected: 'an absolute path, or one starting with ~/ (a relative folder would depend on where hoard runs)' };
  return { value: path.normalize(v) };
}

/** "remotes": {"<host[:port]>": {"insecure": bool, "chunkSize": size, "mountFrom": [repository, …]}}. */
export function checkRemotes(v: unknown): Checked<Record<string, RemoteSettings>> {
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
