// The options table (src/cli/options.ts) and what is made of it must not drift apart: every
// flag a command's --help lists is the table's, each has a HOARD_* variable (but -H), and that
// variable reaches the command (yargs' own parser, built as main.ts builds it, in-process), or
// the settings (config.ts). Help text never splits a word across lines, at any width.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import yargs from 'yargs';
import { addCommand, COMMANDS } from '../../src/cli/commands/index.ts';
import type { Args, CommandDef } from '../../src/cli/commands/common.ts';
import { resolveSettings } from '../../src/cli/config.ts';
import { COMMAND_NAMES, OPTIONS, optionsFor, variablesForYargs, variablesOf } from '../../src/cli/options.ts';
import { hoard, NO_CONFIG, tmpDir } from '../helpers.ts';

/** Every command and store subcommand, with the words that run it. */
const ALL: Array<{ words: string[]; def: CommandDef; top: CommandDef }> = COMMANDS.flatMap((def) => [
  { words: [def.command.split(' ')[0]!], def, top: def },
  ...(def.subcommands ?? []).map((sub) => ({ words: [def.command.split(' ')[0]!, sub.command.split(' ')[0]!], def: sub, top: def })),
]);
/** Options yargs adds itself, and the one that has no variable on purpose (headers may hold secrets). */
const NO_VARIABLE = new Set(['help', 'version', 'header']);
const camel = (s: string) => s.replace(/-(.)/g, (_, c: string) => c.toUpperCase());

/** The long flags of a help screen (first column only: `-m, --manifest`, `--store, --cache-dir`). */
function flagsOf(help: string): string[] {
  const options = help.split(/^Options:$/m)[1]!.split(/\n\n/)[0]!;
  return [...options.matchAll(/^ {2}(?:-\w, )? *--([\w-]+)/gm)].map((m) => m[1]!);
}

test('the options table names the commands there are, and each command\'s options are its own', () => {
  assert.deepEqual([...COMMAND_NAMES].sort(), COMMANDS.map((c) => c.command.split(' ')[0]!).sort());
  for (const [name, def] of Object.entries(OPTIONS)) {
    if (def.commands === 'global') continue;
    for (const c of Object.keys(def.commands)) assert.ok((COMMAND_NAMES as readonly string[]).includes(c), `--${name}: no command ${c}`);
  }
});

test('every flag of every --help is in the options table for that command, with a HOARD_* variable', async (t) => {
  const dir = tmpDir(t);
  const env = { NO_COLOR: '1', XDG_CONFIG_HOME: NO_CONFIG, COLUMNS: '300' };
  const screens = await Promise.all(ALL.map(({ words }) => hoard([...words, '--help'], { cwd: dir, env })));
  for (const [i, { words, def }] of ALL.entries()) {
    const r = screens[i]!;
    assert.equal(r.code, 0, `${words.join(' ')} --help: ${r.stderr}`);
    const listedFlags = flagsOf(r.stdout);
    const table = new Set([...Object.keys(optionsFor('global')), ...Object.keys(optionsFor(def.name))]);
    for (const flag of listedFlags) {
      if (flag === 'help' || flag === 'version') continue;
      assert.ok(table.has(flag), `hoard ${words.join(' ')} --help lists --${flag}, which the options table does not give ${def.name}`);
      if (!NO_VARIABLE.has(flag)) assert.ok(variablesOf(flag).length > 0, `--${flag} has no HOARD_* variable`);
    }
    for (const flag of table) assert.ok(listedFlags.includes(flag), `the table gives ${def.name} --${flag}, which its --help does not list`);
  }
});

/** A value for a variable, and what the option's value must then be. */
function sample(name: string): { raw: string; value: unknown } {
  const spec = { ...OPTIONS[name]!.spec };
  if (spec.choices) {
    const last = (spec.choices as readonly string[]).at(-1)!;
    return { raw: last, value: last };
  }
  if (spec.type === 'boolean') return spec.default === true ? { raw: 'no', value: false } : { raw: 'yes', value: true };
  if (spec.type === 'number') return { raw: '7', value: 7 };
  return { raw: '/somewhere/x', value: '/somewhere/x' };
}

test('each HOARD_* variable of a command reaches it: yargs sees the command\'s own, config.ts the settings; another command\'s is ignored', async () => {
  const saved = { ...process.env };
  try {
    for (const { words, def, top } of ALL) {
      if (!def.run) continue;
      // Placeholders for the required positionals (fetch <url>, merge-driver <base> <ours> <theirs>, …).
      const positionals = [...def.command.matchAll(/<[^>]+>/g)].map((_, i) => `p${i}`);
      const names = [...Object.keys(optionsFor('global')), ...Object.keys(optionsFor(def.name))];
      for (const name of names) {
        for (const variable of variablesOf(name)) {
          const { raw, value } = sample(name);
          const setting = OPTIONS[name]!.setting;
          if (setting) {
            const r = resolveSettings({}, { HOME: '/nowhere', XDG_CONFIG_HOME: NO_CONFIG, [variable]: setting.key === 'store' ? '/somewhere/x' : raw });
            assert.deepEqual(r.origins[setting.key], { kind: 'env', source: variable }, `${variable} sets ${setting.key}`);
            continue;
          }
          const found = variablesForYargs({ [variable]: raw }, words[0]);
          assert.equal(found.error, null);
          for (const k of Object.keys(process.env)) if (k.startsWith('HOARD_')) delete process.env[k];
          Object.assign(process.env, found.values);
          let seen: Args | null = null;
          const y = yargs([...words, ...positionals]).env('HOARD').options(optionsFor('global')).strict().exitProcess(false)
            .fail((msg, err) => {
              throw err ?? new Error(msg);
            });
          addCommand(y, top, 100, async (d, args) => {
            if (d === def) seen = args;
          });
          await y.parseAsync();
          assert.ok(seen, `hoard ${words.join(' ')} ran`);
          assert.deepEqual((seen as Args)[camel(name)], value, `${variable}=${raw} gives hoard ${words.join(' ')} --${name} ${JSON.stringify(value)}`);
        }
      }
    }
    // A variable of an option the command lacks is left out (strict mode would refuse it).
    assert.deepEqual(variablesForYargs({ HOARD_FROZEN: '1', HOARD_QUIET: '1' }, 'status').values, { HOARD_QUIET: 'true' });
  } finally {
    for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
    Object.assign(process.env, saved);
  }
});

test('a malformed HOARD_* value is exit 2 naming the variable, whichever command runs', async (t) => {
  const dir = tmpDir(t);
  for (const [variable, value, expected] of [
    ['HOARD_FROZEN', 'maybe', /HOARD_FROZEN=maybe: expected true or false/],
    ['HOARD_RETRIES', 'many', /HOARD_RETRIES=many: expected a number/],
    ['HOARD_JOBS', 'x', /HOARD_JOBS=x: expected a whole number of at least 1/],
  ] as const) {
    const r = await hoard(['store', 'path'], { cwd: dir, env: { [variable]: value, XDG_CONFIG_HOME: NO_CONFIG } });
    assert.equal(r.code, 2, `${variable}=${value}: ${r.stderr}`);
    assert.match(r.stderr, expected);
    assert.match(r.stderr, new RegExp(`hint: fix or unset ${variable}`));
  }
  // Well-formed, for an option `store path` does not have: ignored.
  const r = await hoard(['store', 'path'], { cwd: dir, env: { HOARD_FROZEN: '1', HOARD_RETRIES: '3', XDG_CONFIG_HOME: NO_CONFIG } });
  assert.equal(r.code, 0, r.stderr);
});
