// How help is laid out: its width, and examples that never break a word across lines.
import cliui, { type Line, type UI } from 'cliui';
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

const patched = Symbol('hoard: renderInline keeps words apart');

/**
 * cliui (which lays out yargs' help) puts an option's "[boolean] [default: false]" on the last
 * line of its description when it fits, and joins them with no space when that line ends just
 * where it starts ("stdout[boolean]"): such a line keeps it on a line of its own, as a line
 * too short for it does. (Its other cases are left to it.) Once per process.
 */
export function keepHelpWordsApart(): void {
  const proto = Object.getPrototypeOf(cliui()) as UI & { [patched]?: true };
  if (proto[patched]) return;
  const renderInline = proto.renderInline;
  proto.renderInline = function (this: UI, source: string, previousLine: Line): string {
    const leading = /^ */.exec(source)![0].length;
    if (previousLine.span && leading > 0 && leading === previousLine.text.trimEnd().length) return source;
    return renderInline.call(this, source, previousLine);
  };
  proto[patched] = true;
}
