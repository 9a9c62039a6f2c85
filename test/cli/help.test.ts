// The built CLI lays out its help with light stand-ins for string-width and node:assert
// (src/cli/start-up-shims.ts, aliased in by scripts/build.mjs). Every help screen must come out
// exactly as yargs lays it out with the real packages: the CLI run from source (tsx), which
// uses them.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { test } from 'node:test';
import { hoard, NO_CONFIG, ROOT, tmpDir } from '../helpers.ts';
import stringWidth from 'string-width';
import shimWidth from '../../src/cli/start-up-shims.ts';

/** The CLI run from its TypeScript source, with the real string-width and node:assert. */
function fromSource(args: string[], cwd: string, env: Record<string, string>): Promise<{ code: number | null; stdout: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', import.meta.resolve('tsx'), path.join(ROOT, 'src/cli/main.ts'), ...args], {
      cwd,
      env: { ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('HOARD_'))), ...env },
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
  const env = { NO_COLOR: '1', XDG_CONFIG_HOME: NO_CONFIG, COLUMNS: '100' };
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
