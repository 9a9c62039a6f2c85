// Text from a manifest or a server reaches the terminal with its control characters escaped
// (ESC → the four characters \x1b), in a pipe too; --json stays JSON.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { jsonLines, project, startServer } from '../helpers.ts';

const ESC = '\x1b';

test('a file name from a URL with ESC, BEL and C1 in it (percent-decoded) never reaches the terminal raw, in a pipe', async (t) => {
  const srv = await startServer(t, {});
  const p = await project(t, { version: 1, artifacts: {} });
  // %1B]0;pwned%07 sets a terminal's title; %1B[2J clears the screen; %C2%9B is a C1 CSI.
  const url = srv.url('/%1B%5D0%3Bpwned%07%1B%5B2J%C2%9B31mimage.bin');
  const r = await p.run('add', url);
  assert.notEqual(r.code, 0, r.stderr);
  const all = r.stdout + r.stderr;
  assert.ok(!all.includes(ESC), `a raw ESC reached the terminal:\n${JSON.stringify(all)}`);
  assert.ok(!all.includes('\x07') && !all.includes('\x9b'), 'no BEL, no C1 CSI');
  assert.match(all, /\\x1b|\\u001b/, 'ESC is shown escaped');
  // --json: still one JSON value per line, with no raw ESC or C1 either.
  const j = await p.run('add', url, '--json');
  assert.ok(!j.stdout.includes(ESC) && !j.stdout.includes('\x9b'));
  assert.ok(jsonLines(j.stdout).length > 0);
});

test('an artifact name with ESC in hoard.json: the fatal error escapes it', async (t) => {
  const p = await project(t, `{"version": 1, "artifacts": {"a${'\\u001b'}[31mred": {"url": "http://127.0.0.1:9/a.bin"}}}`);
  const r = await p.run('status');
  assert.equal(r.code, 2, r.stderr);
  assert.ok(!(r.stdout + r.stderr).includes(ESC), JSON.stringify(r.stderr));
  assert.match(r.stderr, /a\\x1b\[31mred/);
});

test('hoard ui: events and errors reach the TUI with control characters escaped', async (t) => {
  const { createUiEngine } = await import('../../src/cli/ui.ts');
  const p = await project(t, `{"version": 1, "artifacts": {"a${'\\u001b'}]0;x${'\\u0007'}": {"url": "http://127.0.0.1:9/a.bin"}}}`);
  const g = { manifest: p.manifestPath, store: p.store, json: false, verbose: false, quiet: false, color: false };
  const engine = createUiEngine(g, {}, { jobs: 1, images: false, engine: 'auto' }, p.manifestPath);
  const seen: unknown[] = [];
  const r = await engine.status((e) => seen.push(e));
  assert.equal(r.code, 2);
  const text = JSON.stringify([r.error, seen]);
  assert.ok(!/\\u001b|\\u0007/.test(text), text);
  assert.match(r.error!.message, /a\\x1b\]0;x\\x07/);
});
