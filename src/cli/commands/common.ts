// What every command module has: its definition (the options come from the options table),
// the context its handler runs in, and the readers of parsed arguments.
import type { PositionalOptions } from 'yargs';
import type { ExitStatus } from '../../core/errors.ts';
import { HoardError } from '../../core/errors.ts';
import { parseSize } from '../../core/format.ts';
import type { LinkMode } from '../../manifest/types.ts';
import type { NetworkOptions } from '../../sync/sync.ts';
import type { GlobalOptions } from '../commands.ts';
import type { ResolvedSettings } from '../config.ts';
import type { CommandName, Settings } from '../options.ts';
import type { Printer } from '../print.ts';
import type { Env } from '../values.ts';

/** yargs' parsed arguments (camelCase and kebab-case keys), checked against the options table. */
export type Args = Record<string, unknown>;

export interface Context {
  g: GlobalOptions;
  printer: Printer;
  /** A copy of the whole environment (header values may use any variable). */
  env: Env;
  settings: Settings;
  resolved: ResolvedSettings;
  /** Aborted by Ctrl-C, SIGTERM or SIGHUP. */
  signal: AbortSignal;
  /** The command line, as typed (after `hoard`). */
  argv: readonly string[];
}

export interface CommandDef {
  /** Its options are the options table's for this name. */
  name: CommandName;
  /** yargs' command string: `sync [names..]`. */
  command: string;
  describe: string;
  positionals?: Record<string, PositionalOptions & { describe: string }>;
  examples?: ReadonlyArray<readonly [string, string]>;
  epilog?: string;
  /** The exit statuses it uses, in its words (docs/errors.md has the table). */
  exits?: Partial<Record<ExitStatus, string>>;
  subcommands?: readonly CommandDef[];
  run?: (args: Args, c: Context) => Promise<number> | number;
}

export const str = (v: unknown): string | undefined => (v === undefined ? undefined : String(v));
export const names = (args: Args): string[] => (args.names as string[] | undefined) ?? [];
export const linkOf = (args: Args): LinkMode | undefined => (args.link ? (args.link as LinkMode) : undefined);

/** What was typed for a flag that yargs turned into a number (`--jobs abc` is NaN to yargs). */
export function typed(argv: readonly string[], flags: readonly string[], parsed: unknown): unknown {
  if (!(typeof parsed === 'number' && Number.isNaN(parsed))) return parsed;
  for (let i = argv.length - 1; i >= 0; i--) {
    const a = argv[i]!;
    for (const f of flags) {
      if (a === f) return argv[i + 1] ?? '';
      if (a.startsWith(`${f}=`)) return a.slice(f.length + 1);
    }
  }
  return parsed;
}

/** The network flags as the engine takes them; a bad value is a usage error naming the flag. */
export function networkOptions(args: Args, argv: readonly string[]): NetworkOptions {
  const num = (flag: string, key: string, min: number, integer = false): number => {
    const v = Number(args[key]);
    if (!Number.isFinite(v) || v < min || (integer && !Number.isInteger(v))) {
      const given = typed(argv, [`--${flag}`], args[key]);
      throw new HoardError('E_USAGE', `--${flag} must be ${integer ? 'a whole number' : 'a number'} of at least ${min}, not ${JSON.stringify(String(given))}`);
    }
    return v;
  };
  const ms = (flag: string, key: string) => Math.round(num(flag, key, 0.001) * 1000);
  return {
    retries: num('retries', 'retries', 0, true),
    retryDelayMs: Math.round(num('retry-delay', 'retryDelay', 0) * 1000),
    connectTimeoutMs: ms('connect-timeout', 'connectTimeout'),
    headersTimeoutMs: ms('response-timeout', 'responseTimeout'),
    stallTimeoutMs: ms('stall-timeout', 'stallTimeout'),
  };
}

export function jobsOption(args: Args): number {
  const jobs = Number(args.jobs);
  if (!Number.isInteger(jobs) || jobs < 1) throw new HoardError('E_USAGE', `--jobs must be a whole number of at least 1, not ${String(args.jobs)}`);
  return jobs;
}

/** --max-size (or HOARD_MAX_SIZE, or the file's maxSize) in bytes; undefined when not given. */
export function maxSizeOf(value: unknown): number | undefined {
  if (value === undefined || value === '') return undefined;
  const bytes = parseSize(String(value));
  if (bytes === null) {
    throw new HoardError('E_USAGE', `--max-size ${JSON.stringify(String(value))} is not a size`, {
      hint: 'give bytes (5000000000) or a number with a unit: KB, MB, GB, TB (powers of 1000) or KiB, MiB, GiB, TiB (powers of 1024), e.g. --max-size 5GB (also HOARD_MAX_SIZE)',
    });
  }
  return bytes;
}

export function parseHeaders(values: string[]): Record<string, string> | undefined {
  if (values.length === 0) return undefined;
  const headers: Record<string, string> = {};
  for (const v of values) {
    const i = v.indexOf(':');
    if (i <= 0) throw new HoardError('E_USAGE', `--header ${JSON.stringify(v)} is not "Name: value"`, { hint: "for example -H 'Authorization: Bearer ${TOKEN}'" });
    headers[v.slice(0, i).trim()] = v.slice(i + 1).trim();
  }
  return headers;
}
