// Every command, and how one becomes a yargs command: its options from the options table, its
// positionals, examples, epilog and exit statuses from its module.
import type { Argv } from 'yargs';
import { exitText } from '../../core/errors.ts';
import { addExamples } from '../help.ts';
import { optionsFor } from '../options.ts';
import { add, init } from './add.ts';
import type { Args, CommandDef } from './common.ts';
import { fetch } from './fetch.ts';
import { config, mergeDriver, ui } from './misc.ts';
import { gc, store, verify } from './store.ts';
import { push, status, sync } from './sync.ts';
import { outdated, update, versions } from './vendor.ts';

/** Every command, in the order `hoard --help` lists them. */
export const COMMANDS: readonly CommandDef[] = [init, add, sync, status, push, verify, gc, store, ui, fetch, outdated, update, versions, mergeDriver, config];

/** `a, b or c`. */
export const listed = (words: readonly string[], last = 'or'): string =>
  words.length > 1 ? `${words.slice(0, -1).join(', ')} ${last} ${words.at(-1)}` : words.join('');

/** The first word of a command: `sync` of `sync [names..]`. */
export const wordOf = (def: CommandDef): string => def.command.split(' ')[0]!;

/** Adds a command (and its subcommands) to `y`; `handle` runs it with the parsed arguments. */
export function addCommand(y: Argv, def: CommandDef, width: number, handle: (def: CommandDef, args: Args) => Promise<void>): Argv {
  return y.command(
    def.command,
    def.describe,
    (y) => {
      for (const [name, p] of Object.entries(def.positionals ?? {})) y.positional(name, p);
      y.options(optionsFor(def.name));
      for (const sub of def.subcommands ?? []) addCommand(y, sub, width, handle);
      if (def.subcommands) y.demandCommand(1, `name a ${def.name} command: ${listed(def.subcommands.map(wordOf))}`);
      const epilog = [def.epilog, def.exits ? `Exit codes: ${exitText(def.exits)}.` : undefined].filter(Boolean).join('\n');
      return addExamples(y, def.examples ?? [], epilog || undefined, width);
    },
    def.run ? (args: Args) => handle(def, args) : undefined,
  );
}
