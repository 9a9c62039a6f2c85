// Errors that blame the right thing: an argument is named as the argument (exit 2), not as a
// bad hoard.json; typos are quoted; hints are commands that apply to the command that failed.
import assert from 'node:assert/strict';
import { existsSync, promises as fs } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { hoard, jsonLines, podmanSkip, project, randomData, startServer, tmpDir } from '../helpers.ts';

test('init --output ../x names --output (exit 2) and writes nothing', async (t) => {
  const dir = tmpDir(t);
  const r = await hoard(['init', '--output', '../x'], { cwd: dir, store: path.join(dir, 'store') });
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /--output "\.\.\/x": expected a relative path/);
  assert.doesNotMatch(r.stderr, /not a valid manifest/);
  assert.ok(!existsSync(path.join(dir, 'hoard.json')));
});

test('add notaurl names the <url> argument (exit 2); hoard.json is unchanged', async (t) => {
  const p = await project(t, { version: 1, artifacts: {} });
  const before = await fs.readFile(p.manifestPath, 'utf8');
  const r = await p.run('add', 'notaurl');
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /<url> "notaurl": expected an http:\/\/ or https:\/\/ URL/);
  assert.doesNotMatch(r.stderr, /not a valid manifest/);
  assert.equal(await fs.readFile(p.manifestPath, 'utf8'), before);
});

test('adding the same URL twice without --name: exit 2, says it is there and suggests --path and --name', async (t) => {
  const srv = await startServer(t, { '/tool.run': randomData(1000) });
  const p = await project(t, { version: 1, artifacts: {} });
  assert.equal((await p.run('add', srv.url('/tool.run'), '--name', 'tool')).code, 0);
  const before = await fs.readFile(p.manifestPath, 'utf8');
  const r = await p.run('add', srv.url('/tool.run'));
  assert.equal(r.code, 2, r.stderr);
  assert.doesNotMatch(r.stderr, /not a valid manifest/);
  assert.match(r.stderr, /the URL's file name "tool.run": is the same output path as .*tool/);
  assert.match(r.stderr, /hint: hoard\.json already has this URL as "tool".*--path.*--name/);
  assert.equal(await fs.readFile(p.manifestPath, 'utf8'), before);
});

test('`hoard` alone lists every command, fetch and config included', async (t) => {
  const r = await hoard([], { cwd: tmpDir(t) });
  assert.equal(r.code, 2);
  for (const c of ['init', 'add', 'sync', 'status', 'verify', 'fetch', 'gc', 'store', 'config', 'merge-driver', 'ui']) assert.match(r.stderr, new RegExp(`\\b${c}\\b`), c);
});

test('a mistyped command or store command is quoted; --jobs abc says what was given', async (t) => {
  const cwd = tmpDir(t);
  const snyc = await hoard(['snyc'], { cwd });
  assert.equal(snyc.code, 2);
  assert.match(snyc.stderr, /unknown command "snyc"; did you mean sync\?/);
  const store = await hoard(['store', 'foo'], { cwd });
  assert.equal(store.code, 2);
  assert.match(store.stderr, /unknown store command "foo"/);
  assert.match(store.stderr, /hoard store ls/);
  const jobs = await hoard(['sync', '--jobs', 'abc'], { cwd });
  assert.equal(jobs.code, 2);
  assert.match(jobs.stderr, /--jobs must be a whole number of at least 1, not "abc"/);
  const retries = await hoard(['sync', '--retries=many'], { cwd });
  assert.equal(retries.code, 2);
  assert.match(retries.stderr, /not "many"/);
});

test('hoard fetch of a 404 does not suggest a mirror (fetch has no manifest to add one to)', async (t) => {
  const srv = await startServer(t, {});
  const dir = tmpDir(t);
  const r = await hoard(['fetch', srv.url('/gone.tar')], { cwd: dir, store: path.join(dir, 'store') });
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /HTTP 404/);
  assert.match(r.stderr, /hint:/);
  assert.doesNotMatch(r.stderr, /mirror/);
});

test('a download that breaks off counts the bytes that came, and the summary has a hint', async (t) => {
  const data = randomData(300_000);
  const srv = await startServer(t, { '/big.bin': { body: data, dropAfter: 200_000 } });
  const p = await project(t, { version: 1, artifacts: { big: { url: srv.url('/big.bin') } } });
  const r = await p.run('sync', '--retries', '0');
  assert.equal(r.code, 1, r.stderr);
  assert.doesNotMatch(r.stdout, / 0 B downloaded/);
  assert.match(r.stderr, /hint: .*run the same command again/);
  const j = await p.run('sync', '--retries', '0', '--json');
  const summary = jsonLines(j.stdout).find((e) => e.type === 'summary')!;
  assert.ok((summary.bytesDownloaded as number) > 0, JSON.stringify(summary));
});

test('an image artifact that is not an archive: the error names the artifact and its file, not a blob path', { skip: podmanSkip }, async (t) => {
  const srv = await startServer(t, { '/notes.txt': Buffer.from('not a tar archive at all\n'.repeat(100)) });
  const p = await project(t, { version: 1, artifacts: { notes: { url: srv.url('/notes.txt'), image: 'localhost/hoard-test/notes:1' } } });
  const r = await p.run('sync', '--engine', 'podman');
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /notes's file artifacts\/notes\.txt is not a tar archive/);
  assert.doesNotMatch(r.stderr, /blobs\/sha256/);
});

test('status --help describes its positional', async (t) => {
  const r = await hoard(['status', '--help'], { cwd: tmpDir(t) });
  assert.equal(r.code, 0);
  assert.match(r.stdout, /names\s+only these artifacts/);
});
