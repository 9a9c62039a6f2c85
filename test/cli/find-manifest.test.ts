// A command run in a subfolder of a project uses the project's hoard.json, as git and npm find
// theirs: the closest one above, never past the repository's root; -m still names one.
import assert from 'node:assert/strict';
import { existsSync, promises as fs } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { hoard, project, randomData, startServer } from '../helpers.ts';

test('in a subfolder, sync and status use the hoard.json above and say which', async (t) => {
  const srv = await startServer(t, { '/a.bin': randomData(1000) });
  const p = await project(t, { version: 1, artifacts: { a: { url: srv.url('/a.bin') } } });
  const deep = path.join(p.dir, 'docs', 'notes');
  await fs.mkdir(deep, { recursive: true });
  const sync = await hoard(['sync'], { cwd: deep, store: p.store });
  assert.equal(sync.code, 0, sync.stderr);
  assert.match(sync.stderr, /^using \.\.\/\.\.\/hoard\.json$/m);
  assert.ok(existsSync(path.join(p.dir, 'artifacts', 'a.bin')), 'the output is beside the manifest');
  assert.ok(!existsSync(path.join(deep, 'artifacts')));
  const status = await hoard(['status'], { cwd: deep, store: p.store });
  assert.equal(status.code, 0, status.stderr);
  assert.match(status.stdout, /a {2}in sync/);
  // In the manifest's own folder, nothing is said about it.
  const here = await p.run('status');
  assert.doesNotMatch(here.stderr, /using/);
});

test('the search stops at the repository root (.git); -m names a manifest; init writes here', async (t) => {
  const p = await project(t, { version: 1, artifacts: {} });
  const repo = path.join(p.dir, 'repo');
  const sub = path.join(repo, 'sub');
  await fs.mkdir(path.join(repo, '.git'), { recursive: true });
  await fs.mkdir(sub);
  const r = await hoard(['status'], { cwd: sub, store: p.store });
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /no manifest at .*repo\/sub\/hoard\.json/);
  const named = await hoard(['status', '-m', '../../hoard.json'], { cwd: sub, store: p.store });
  assert.equal(named.code, 0, named.stderr);
  assert.doesNotMatch(named.stderr, /using/);
  const init = await hoard(['init'], { cwd: sub, store: p.store });
  assert.equal(init.code, 0, init.stderr);
  assert.ok(existsSync(path.join(sub, 'hoard.json')));
});
