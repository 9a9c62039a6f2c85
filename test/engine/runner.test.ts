// The real Runner (src/engine/runner.ts): real child processes, including a "hanging engine"
// (a script that sleeps 30 s in a child of its own) to show that a timeout ends it and its child.
import assert from 'node:assert/strict';
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { execaRunner } from '../../src/engine/runner.ts';
import { tmpDir } from '../helpers.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Gone, or a zombie nobody reaped yet (a container's PID 1 may not reap orphans). */
function isGone(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return true;
  }
  const stat = `/proc/${pid}/stat`;
  return existsSync(stat) && / Z /.test(readFileSync(stat, 'utf8'));
}

test('resolves with the exit code and both outputs, whatever the exit code', async () => {
  const r = await execaRunner('sh', ['-c', 'echo out; echo err >&2; exit 3'], {});
  assert.deepEqual(r, { exitCode: 3, stdout: 'out', stderr: 'err' });
});

test('passes arguments as an array, never through a shell', async () => {
  const r = await execaRunner('printf', ['%s|', 'a b', '$(echo no)', ';', '*'], {});
  assert.equal(r.stdout, 'a b|$(echo no)|;|*|');
});

test('uses the given environment, and stdin is not inherited (cat ends at once)', async () => {
  const r = await execaRunner('sh', ['-c', 'echo "$HOARD_TEST_VALUE"; cat'], { env: { ...process.env, HOARD_TEST_VALUE: 'set' }, timeoutMs: 5000 });
  assert.deepEqual(r, { exitCode: 0, stdout: 'set', stderr: '' });
});

test('a missing binary rejects with code ENOENT', async () => {
  await assert.rejects(execaRunner('hoard-no-such-engine', ['version'], {}), (err: NodeJS.ErrnoException) => {
    assert.equal(err.code, 'ENOENT');
    return true;
  });
});

test('a timeout kills a hanging command and its children, and rejects with timedOut', async (t) => {
  const dir = tmpDir(t);
  const script = path.join(dir, 'hanging-engine');
  const pidFile = path.join(dir, 'child.pid');
  // The child `sleep` holds the output pipes: killing only the script would leave hoard
  // waiting for them to close for 30 s.
  writeFileSync(script, '#!/bin/sh\necho starting\nsleep 30 &\necho $! > "$1"\nwait\n');
  chmodSync(script, 0o755);
  const started = Date.now();
  await assert.rejects(execaRunner(script, [pidFile], { timeoutMs: 500 }), (err: { timedOut?: boolean }) => {
    assert.equal(err.timedOut, true);
    return true;
  });
  const elapsed = Date.now() - started;
  assert.ok(elapsed < 10_000, `the runner waited ${elapsed} ms for a command with a 500 ms timeout`);
  const child = Number(readFileSync(pidFile, 'utf8'));
  for (let i = 0; i < 50 && !isGone(child); i++) await sleep(50);
  assert.ok(isGone(child), `the script's child (pid ${child}) is still running`);
});
