// End-to-end: hoard sync with container images against a real docker daemon (a private dockerd,
// test/fixtures/dockerd.ts), the cases images.test.ts runs against podman: import with the
// digest label, a stale tag, --force, load of a `docker save` archive and the record that binds
// a loaded image to its artifact. A recording shim on PATH logs every docker command.
// (A hung or missing engine stays in images.test.ts: a real daemon cannot be made to hang.)
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, promises as fs, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { startDockerd } from '../fixtures/dockerd.ts';
import { hoard, jsonLines, project, sha256, startServer, tmpDir } from '../helpers.ts';

const daemon = await startDockerd();
const skip = daemon.skip;
const env = { ...process.env, ...daemon.env };

const docker = (...args: string[]) => execFileSync('docker', args, { encoding: 'utf8', env }).trim();
const inspectId = (ref: string) => docker('image', 'inspect', '--format', '{{.Id}}', ref);
const label = (ref: string) => docker('image', 'inspect', '--format', '{{index .Config.Labels "io.hoard.digest"}}', ref);

function imageName(t: TestContext, tag = '4.32.1F'): string {
  const name = `hoard-e2e-${randomBytes(4).toString('hex')}/ceos`;
  t.after(() => {
    try {
      const ids = docker('images', '--filter', `reference=${name}`, '-q');
      if (ids) execFileSync('docker', ['rmi', '-f', ...new Set(ids.split('\n'))], { stdio: 'ignore', env });
    } catch {}
  });
  return `${name}:${tag}`;
}

function rootfsTarXz(dir: string, marker: string): Buffer {
  const root = path.join(dir, `rootfs-${marker}`);
  execFileSync('mkdir', ['-p', path.join(root, 'etc'), path.join(root, 'usr', 'bin')]);
  writeFileSync(path.join(root, 'etc', 'Eos-release'), `Arista Networks EOS ${marker}\n`);
  const tar = path.join(dir, `rootfs-${marker}.tar`);
  execFileSync('tar', ['-C', root, '-cf', tar, '.']);
  execFileSync('xz', ['-f', '-T1', tar]);
  return readFileSync(`${tar}.xz`);
}

/** A PATH whose `docker` logs its arguments and runs the real one. */
function recordingPath(t: TestContext): { PATH: string; calls: () => string[][] } {
  const dir = tmpDir(t, 'hoard-shim-');
  const log = path.join(dir, 'calls.log');
  const real = execFileSync('sh', ['-c', 'command -v docker'], { encoding: 'utf8' }).trim();
  writeFileSync(path.join(dir, 'docker'), `#!/bin/sh\nprintf '%s\\n' "$*" >> ${JSON.stringify(log)}\nexec ${real} "$@"\n`);
  chmodSync(path.join(dir, 'docker'), 0o755);
  return {
    PATH: `${dir}:${process.env.PATH}`,
    calls: () => (existsSync(log) ? readFileSync(log, 'utf8').trim().split('\n').filter(Boolean).map((l) => l.split(' ')) : []),
  };
}

async function imageProject(t: TestContext, files: Record<string, Buffer>, artifacts: (url: (p: string) => string) => Record<string, unknown>) {
  const srv = await startServer(t, files);
  const p = await project(t, { version: 1, artifacts: artifacts(srv.url) });
  const shim = recordingPath(t);
  const run = (...args: string[]) => hoard([...args, '--engine', 'docker'], { cwd: p.dir, store: p.store, env: { PATH: shim.PATH, ...daemon.env } });
  return { srv, p, shim, run };
}

test('real docker: a cEOS-like rootfs .tar.xz is imported with its digest; the second sync runs no import', { skip }, async (t) => {
  const work = tmpDir(t);
  const data = rootfsTarXz(work, 'a');
  const ref = imageName(t);
  const { shim, run, srv } = await imageProject(t, { '/cEOS-lab.tar.xz': data }, (url) => ({ ceos: { url: url('/cEOS-lab.tar.xz'), image: ref } }));
  const first = await run('sync');
  assert.equal(first.code, 0, first.stderr);
  assert.match(first.stdout, /imported as/);
  assert.equal(label(ref), `sha256:${sha256(data)}`);
  const id = inspectId(ref);
  assert.ok(shim.calls().some((c) => c[0] === 'import'), 'first sync imports');

  const before = shim.calls().length;
  const second = await run('sync', '--json');
  assert.equal(second.code, 0, second.stderr);
  assert.deepEqual(shim.calls().slice(before).map((c) => c.slice(0, 2).join(' ')), ['image inspect'], 'one query, no import');
  assert.equal(inspectId(ref), id, 'same image');
  const summary = jsonLines(second.stdout).at(-1)!;
  assert.equal(summary.imagesPresent, 1);
  assert.equal(summary.imagesImported, 0);
  assert.equal(srv.total(), 1);
});

test('real docker: same tag, new digest: status exit 3 (stale tag), sync re-imports with the new label; --force re-imports', { skip }, async (t) => {
  const work = tmpDir(t);
  const v1 = rootfsTarXz(work, 'v1');
  const v2 = rootfsTarXz(work, 'v2');
  const ref = imageName(t);
  const { p, shim, run } = await imageProject(t, { '/v1.tar.xz': v1, '/v2.tar.xz': v2 }, (url) => ({ ceos: { url: url('/v1.tar.xz'), image: ref } }));
  assert.equal((await run('sync')).code, 0);
  assert.equal(label(ref), `sha256:${sha256(v1)}`);

  const m = JSON.parse(await fs.readFile(p.manifestPath, 'utf8'));
  m.artifacts.ceos = { url: m.artifacts.ceos.url.replace('/v1.', '/v2.'), digest: `sha256:${sha256(v2)}`, size: v2.length, image: ref };
  await fs.writeFile(p.manifestPath, JSON.stringify(m));
  const status = await run('status');
  assert.equal(status.code, 3, status.stdout + status.stderr);
  // The most serious state is named (the blob is missing); the plan still knows the tag is stale.
  assert.match(status.stdout, /^ceos  not downloaded  /m);
  const plan = (await run('status', '--json')).stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l)).find((e) => e.type === 'plan');
  assert.equal(plan.image, 'reimport', JSON.stringify(plan));

  const r = await run('sync');
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /re-imported/);
  assert.equal(label(ref), `sha256:${sha256(v2)}`);
  assert.equal((await run('status')).code, 0);

  const before = shim.calls().length;
  const forced = await run('sync', '--force');
  assert.equal(forced.code, 0, forced.stderr);
  assert.ok(shim.calls().slice(before).some((c) => c[0] === 'import'), '--force imports again');
  assert.equal(label(ref), `sha256:${sha256(v2)}`);
});

test('real docker: a `docker save` archive is loaded (not imported) under the manifest\'s tag; the record binds it, so the next sync only asks', { skip }, async (t) => {
  const work = tmpDir(t);
  const rootfs = path.join(work, 'rootfs.tar.xz');
  writeFileSync(rootfs, rootfsTarXz(work, 'saved'));
  const source = imageName(t, 'source');
  docker('import', rootfs, source);
  const sourceId = inspectId(source);
  docker('save', '-o', path.join(work, 'saved.tar'), source);
  execFileSync('xz', ['-T1', path.join(work, 'saved.tar')]);
  docker('rmi', '-f', source);
  const ref = imageName(t, 'lab');
  const { shim, run } = await imageProject(t, { '/saved.tar.xz': readFileSync(path.join(work, 'saved.tar.xz')) }, (url) => ({ d: { url: url('/saved.tar.xz'), image: ref } }));
  const r = await run('sync');
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /^d .*loaded as/m);
  const verbs = shim.calls().map((c) => c[0]);
  assert.ok(verbs.includes('load') && verbs.includes('tag'));
  assert.ok(!verbs.includes('import'), 'image archives are loaded, never imported');
  assert.equal(inspectId(ref), sourceId);
  const before = shim.calls().length;
  const again = await run('sync');
  assert.equal(again.code, 0, again.stderr);
  assert.deepEqual(shim.calls().slice(before).map((c) => c[0]), ['image']);
  assert.equal((await run('status')).code, 0);
});
