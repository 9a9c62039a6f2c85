import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import { test } from 'node:test';
import { ERROR_CODES, errorInfo, exitCode, exitCodeFor, HoardError, signalExit } from '../../src/core/errors.ts';
import { escapeControl, escapeStrings, jsonLine } from '../../src/core/terminal.ts';

/** A raw errno error as node:fs makes them. */
function errno(code: string, syscall = 'open', path = '/x/y'): NodeJS.ErrnoException {
  return Object.assign(new Error(`${code}: something, ${syscall} '${path}'`), { code, syscall, path, errno: -1 });
}

test('raw errnos map to documented codes, named with the path; never a bare errno as the code', () => {
  const cases: Array<[string, string]> = [
    ['EROFS', 'E_READONLY'], ['EACCES', 'E_PERMISSION'], ['EPERM', 'E_PERMISSION'], ['ENOSPC', 'E_NOSPACE'], ['EDQUOT', 'E_NOSPACE'],
    ['EMFILE', 'E_LIMIT'], ['ENFILE', 'E_LIMIT'], ['ENOTDIR', 'E_NOTDIR'], ['EIO', 'E_IO'],
  ];
  for (const [raw, code] of cases) {
    const info = errorInfo(errno(raw));
    assert.equal(info.code, code, raw);
    assert.equal(info.errno, raw);
    assert.match(info.message, new RegExp(`/x/y.*\\(${raw}\\)`));
    assert.ok(info.hint, `${raw} has a hint`);
    assert.equal(exitCodeFor(errno(raw)), 1);
  }
});

test('a real EISDIR from node:fs is E_IO; an unknown error is E_INTERNAL (a bug), a stack overflow is named', async () => {
  const err = await fs.readFile('/').catch((e: unknown) => e);
  assert.equal(errorInfo(err).code, 'E_IO');
  assert.equal(errorInfo(new TypeError('x is undefined')).code, 'E_INTERNAL');
  assert.equal(errorInfo(new RangeError('Maximum call stack size exceeded')).message, 'input nested too deeply');
});

test('every code has an exit status, a meaning and a fix; usage-like codes exit 2', () => {
  for (const [code, info] of Object.entries(ERROR_CODES)) {
    assert.ok(info.means && info.fix, code);
    assert.equal(exitCodeFor(new HoardError(code as keyof typeof ERROR_CODES, 'x')), info.exit);
  }
  for (const c of ['E_USAGE', 'E_MANIFEST', 'E_CONFIG', 'E_PATH', 'E_FROZEN', 'E_ENV', 'E_TTY'] as const) assert.equal(ERROR_CODES[c].exit, 2);
  assert.equal(ERROR_CODES.E_LOCKED.exit, 1);
});

test('exitCode(summary, mode): the one rule', () => {
  assert.equal(exitCode({ failed: 0, conflicts: 0 }, 'sync'), 0);
  assert.equal(exitCode({ failed: 1, conflicts: 0 }, 'sync'), 1);
  assert.equal(exitCode({ failed: 0, conflicts: 1 }, 'sync'), 1);
  assert.equal(exitCode({ failed: 0, conflicts: 0, manifestError: { code: 'E_NOSPACE' } }, 'sync'), 1);
  assert.equal(exitCode({ failed: 0, conflicts: 1 }, 'dry-run'), 0);
  assert.equal(exitCode({ failed: 0, outOfSync: 2 }, 'status'), 3);
  assert.equal(exitCode({ failed: 1, outOfSync: 2 }, 'status'), 1);
  assert.equal(exitCode({ failed: 0 }, 'verify'), 0);
  assert.deepEqual(['SIGINT', 'SIGTERM', 'SIGHUP'].map(signalExit), [130, 143, 129]);
});

test('control characters are escaped as \\xHH (C0 but LF and TAB, DEL, C1); JSON lines escape DEL and C1 too', () => {
  assert.equal(escapeControl('a\x1b[31mb\x07\r\x7f\x9b\tc\nd'), 'a\\x1b[31mb\\x07\\x0d\\x7f\\x9b\tc\nd');
  assert.equal(escapeControl('plain – ünïcode ✓'), 'plain – ünïcode ✓');
  const ev = { type: 'artifact', name: 'x\x1b', nested: { list: ['ok', 'y\x9b'] }, n: 1 };
  assert.deepEqual(escapeStrings(ev), { type: 'artifact', name: 'x\\x1b', nested: { list: ['ok', 'y\\x9b'] }, n: 1 });
  const clean = { a: 'b', c: [1, 'd'] };
  assert.equal(escapeStrings(clean), clean, 'nothing copied when nothing needs it');
  const line = jsonLine({ s: 'a\x1b\x7f\x9b' });
  assert.ok(!/[\x1b\x7f\x9b]/.test(line));
  assert.deepEqual(JSON.parse(line), { s: 'a\x1b\x7f\x9b' });
});

test('docs/errors.md lists every error code with its exit status', async () => {
  const { readFileSync } = await import('node:fs');
  const { ROOT } = await import('../helpers.ts');
  const doc = readFileSync(`${ROOT}/docs/errors.md`, 'utf8');
  for (const [code, info] of Object.entries(ERROR_CODES)) assert.match(doc, new RegExp(`\\| \`${code}\` \\| ${info.exit} \\|`), code);
});
