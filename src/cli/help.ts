// How help is laid out: its width, and examples that never break a word across lines.
import type { Argv } from 'yargs';
import type { Env } from './values.ts';

/**
 * The help's width: the terminal's (at most 100 columns, for reading), else $COLUMNS as given
 * (a pipe, CI), else 100.
 */
export function helpWidth(env: Env, stdout: { isTTY?: boolean; columns?: number }): number {
  if (stdout.isTTY && stdout.columns) return Math.min(100, stdout.columns);
  const columns = Number(env.COLUMNS);
  return Number.isInteger(columns) && columns >= 40 ? columns : 100;
}

const longestWord = (s: string) => Math.max(0, ...s.split(/\s+/).map((w) => w.length));

/**
 * Adds examples to a help screen. yargs lays them out in two columns, the command's at most
 * half the width, and splits a word that does not fit its column (a long URL) mid-word; when
 * one would not fit, every example of the screen is laid out on lines of its own instead: the
 * command, then its description indented below it.
 */
export function addExamples(y: Argv, examples: ReadonlyArray<readonly [string, string]>, epilog: string | undefined, width: number): Argv {
  const commandWidth = Math.min(Math.max(0, ...examples.map(([cmd]) => cmd.length)), Math.floor(width / 2));
  // yargs: the command column is commandWidth plus 4 of padding; the description takes the rest.
  const fits = examples.every(([cmd, text]) => longestWord(cmd) <= commandWidth && longestWord(text) < width - commandWidth - 4);
  if (fits) {
    for (const [cmd, text] of examples) y.example(cmd, text);
    return epilog ? y.epilog(epilog) : y;
  }
  // As an epilog, each line's leading spaces are kept as its indentation, and words wrap whole.
  const stacked = examples.map(([cmd, text]) => `  ${cmd}${text ? `\n      ${text}` : ''}`).join('\n');
  return y.epilog(`Examples:\n${stacked}${epilog ? `\n\n${epilog}` : ''}`);
}
