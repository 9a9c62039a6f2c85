// The built CLI lays out its help with light stand-ins for string-width and node:assert
// (src/cli/start-up-shims.ts, aliased in by scripts/build.mjs). Every help screen must come out
// exactly as yargs lays it out with the real packages: the CLI run from source (tsx), which
// uses them.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { test } from 'node:test';
import { cliEnv, hoard, ROOT, tmpDir } from '../helpers.ts';
import stringWidth from 'string-width';
import shimWidth from '../../src/cli/start-up-shims.ts';

/** The CLI run from its TypeScript source, with the real string-width and node:assert (in the tests' isolated environment, plus `env`). */
function fromSource(args: string[], cwd: string, env: Record<string, string>): Promise<{ code: number | null; stdout: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', import.meta.resolve('tsx'), path.join(ROOT, 'src/cli/main.ts'), ...args], {
      cwd,
      env: cliEnv(env),
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let stdout = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout }));
  });
}

const SCREENS = [[], ['sync'], ['add'], ['gc'], ['store'], ['fetch'], ['config'], ['ui']];

test('every help screen of the built CLI (start-up shims) is the one yargs lays out with string-width and node:assert', async (t) => {
  const dir = tmpDir(t);
  const env = { COLUMNS: '100' };
  for (const screen of SCREENS) {
    const args = [...screen, '--help'];
    const [built, source] = await Promise.all([hoard(args, { cwd: dir, env }), fromSource(args, dir, env)]);
    assert.equal(built.code, 0, `hoard ${args.join(' ')}: ${built.stderr}`);
    assert.equal(source.code, 0);
    assert.ok(built.stdout.length > 200, `hoard ${args.join(' ')} printed help`);
    assert.equal(built.stdout, source.stdout, `hoard ${args.join(' ')}: the built help differs from the help laid out with the real packages`);
  }
});

test('the string-width stand-in measures as string-width does: ASCII, ANSI colours, wide CJK, emoji, combining marks', () => {
  for (const s of ['hoard sync [names..]', '\x1b[1mbold\x1b[22m text', '日本語のテキスト', 'café', 'cafe\u0301', '📦 blob', '', 'tab\there', 'ｆｕｌｌ']) {
    assert.equal(shimWidth(s), stringWidth(s), JSON.stringify(s));
  }
});

/** Every help screen: hoard, each command, each store command. */
const ALL_SCREENS = [
  [], ['init'], ['add'], ['sync'], ['status'], ['push'], ['verify'], ['gc'], ['store'], ['store', 'path'], ['store', 'ls'], ['store', 'du'],
  ['store', 'add'], ['store', 'rm'], ['ui'], ['fetch'], ['outdated'], ['update'], ['versions'], ['merge-driver'], ['config'],
];
const words = (text: string) => new Set(text.split(/\s+/).filter(Boolean));

test('no help screen splits a word across lines at 60, 80 or 120 columns (COLUMNS, when not a terminal), and every positional is described', async (t) => {
  const dir = tmpDir(t);
  const help = (screen: string[], columns: number) =>
    hoard([...screen, '--help'], { cwd: dir, env: { COLUMNS: String(columns) } });
  for (const screen of ALL_SCREENS) {
    const name = `hoard ${[...screen, '--help'].join(' ')}`;
    // Wide enough that nothing wraps (400 columns; a wider screen outgrows the pipe before yargs exits): every word as it is.
    const wide = await help(screen, 400);
    assert.equal(wide.code, 0, `${name}: ${wide.stderr}`);
    const whole = words(wide.stdout);
    const narrow = await Promise.all([60, 80, 120].map((columns) => help(screen, columns)));
    for (const [i, columns] of [60, 80, 120].entries()) {
      const r = narrow[i]!;
      assert.equal(r.code, 0, `${name} at ${columns}: ${r.stderr}`);
      for (const line of r.stdout.split('\n')) {
        assert.ok(line.length <= columns, `${name} at ${columns} columns: a line of ${line.length}: ${line}`);
        for (const w of line.split(/\s+/).filter(Boolean)) assert.ok(whole.has(w), `${name} at ${columns} columns splits a word: "${w}" in\n${line}`);
      }
    }
    // "Positionals:" lists each as `name  description  [type]`: a description before the type.
    const positionals = wide.stdout.split(/^Positionals:$/m)[1]?.split('\n\n')[0] ?? '';
    // A usage line with <arg> has its Positionals section (else the check below would see none).
    if (/^hoard .*<(?!command>)\w/m.test(wide.stdout.split('\n')[0] ?? '')) assert.notEqual(positionals, '', `${name}: no Positionals section`);
    for (const line of positionals.split('\n').filter(Boolean)) {
      assert.match(line, /^ {2}\S+ {2,}[^[\s]/, `${name}: a positional without a description: ${line}`);
    }
  }
});
