// End-to-end: hoard sync with container images, against the real podman from Debian's
// packages (.ci/run installs it). A recording shim on PATH logs every podman command and
// runs the real one, so tests can tell what hoard asked the engine to do.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, promises as fs, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { hoard, jsonLines, podmanSkip, project, sha256, startServer, tmpDir } from '../helpers.ts';

const skip = podmanSkip;

const podman = (...args: string[]) => execFileSync('podman', args, { encoding: 'utf8' }).trim();
const inspectId = (ref: string) => `sha256:${podman('image', 'inspect', '--format', '{{.Id}}', ref)}`;
const label = (ref: string) => podman('image', 'inspect', '--format', '{{index .Config.Labels "io.hoard.digest"}}', ref);

/** A unique image name, removed after the test. */
function imageName(t: TestContext, tag = '4.32.1F'): string {
  const name = `localhost/hoard-e2e-${randomBytes(4).toString('hex')}/ceos`;
  t.after(() => {
    try {
      const ids = podman('images', '--filter', `reference=${name}`, '-q');
      if (ids) execFileSync('podman', ['rmi', '-f', ...new Set(ids.split('\n'))], { stdio: 'ignore' });
    } catch {}
  });
  return `${name}:${tag}`;
}

/** A tiny root filesystem tarball, like cEOS-lab's, compressed with xz. */
function rootfsTarXz(dir: string, marker: string): Buffer {
  const root = path.join(dir, `rootfs-${marker}`);
  execFileSync('mkdir', ['-p', path.join(root, 'etc'), path.join(root, 'usr', 'bin')]);
  writeFileSync(path.join(root, 'etc', 'Eos-release'), `Arista Networks EOS ${marker}\n`);
  const tar = path.join(dir, `rootfs-${marker}.tar`);
  execFileSync('tar', ['-C', root, '-cf', tar, '.']);
  execFileSync('xz', ['-f', '-T1', tar]);
  return readFileSync(`${tar}.xz`);
}

/** A PATH whose `podman` logs its arguments to `log` and runs the real one. */
function recordingPath(t: TestContext): { PATH: string; log: string; calls: () => string[][] } {
  const dir = tmpDir(t, 'hoard-shim-');
  const log = path.join(dir, 'calls.log');
  const real = execFileSync('sh', ['-c', 'command -v podman'], { encoding: 'utf8' }).trim();
  writeFileSync(path.join(dir, 'podman'), `#!/bin/sh\nprintf '%s\\n' "$*" >> ${JSON.stringify(log)}\nexec ${real} "$@"\n`);
  chmodSync(path.join(dir, 'podman'), 0o755);
  return {
    PATH: `${dir}:${process.env.PATH}`,
    log,
    calls: () => (existsSync(log) ? readFileSync(log, 'utf8').trim().split('\n').filter(Boolean).map((l) => l.split(' ')) : []),
  };
}

async function imageProject(t: TestContext, files: Record<string, Buffer>, artifacts: (url: (p: string) => string) => Record<string, unknown>) {
  const srv = await startServer(t, files);
  const p = await project(t, { version: 1, artifacts: artifacts(srv.url) });
  const shim = recordingPath(t);
  const run = (...args: string[]) => hoard([...args, '--engine', 'podman'], { cwd: p.dir, store: p.store, env: { PATH: shim.PATH } });
  return { srv, p, shim, run };
}

test('a cEOS-like rootfs .tar.xz is imported with its digest; the second sync runs no import', { skip }, async (t) => {
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
  const calls = shim.calls().slice(before);
  assert.deepEqual(calls.map((c) => c.slice(0, 2).join(' ')), ['image inspect'], 'one query, no import');
  assert.equal(inspectId(ref), id, 'same image');
  const summary = jsonLines(second.stdout).at(-1)!;
  assert.equal(summary.imagesPresent, 1);
  assert.equal(summary.imagesImported, 0);
  assert.equal(srv.total(), 1);
});

test('same tag, new artifact digest: status exit 3, sync re-imports, the image records the new digest; --force re-imports', { skip }, async (t) => {
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
  assert.match(status.stdout, /stale tag/);

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

test('docker-archive and OCI archives are loaded (not imported) and carry the manifest\'s tag', { skip }, async (t) => {
  const work = tmpDir(t);
  const rootfs = path.join(work, 'rootfs.tar.xz');
  writeFileSync(rootfs, rootfsTarXz(work, 'saved'));
  const source = imageName(t, 'source');
  podman('import', rootfs, source);
  const sourceId = inspectId(source);
  podman('save', '--format', 'docker-archive', '-o', path.join(work, 'docker.tar'), source);
  podman('save', '--format', 'oci-archive', '-o', path.join(work, 'oci.tar'), source);
  execFileSync('xz', ['-T1', path.join(work, 'docker.tar')]); // docker.tar.xz: compressed archives count too
  const dockerRef = imageName(t, 'from-docker-archive');
  const ociRef = imageName(t, 'from-oci-archive');
  const { shim, run } = await imageProject(
    t,
    { '/docker.tar.xz': readFileSync(path.join(work, 'docker.tar.xz')), '/oci.tar': readFileSync(path.join(work, 'oci.tar')) },
    (url) => ({ d: { url: url('/docker.tar.xz'), image: dockerRef }, o: { url: url('/oci.tar'), image: ociRef } }),
  );
  const r = await run('sync');
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /^d .*loaded as/m);
  assert.match(r.stdout, /^o .*loaded as/m);
  const verbs = shim.calls().map((c) => c[0]);
  assert.ok(verbs.includes('load') && verbs.includes('tag'));
  assert.ok(!verbs.includes('import'), 'image archives are loaded, never imported');
  assert.equal(inspectId(dockerRef), sourceId);
  assert.equal(inspectId(ociRef), sourceId);
  // Loaded images carry no label: hoard's record binds them, so the next sync is a no-op.
  const before = shim.calls().length;
  const again = await run('sync');
  assert.equal(again.code, 0, again.stderr);
  assert.deepEqual(shim.calls().slice(before).map((c) => c[0]), ['image']);
});

test('--dry-run and status query the engine but never change it', { skip }, async (t) => {
  const work = tmpDir(t);
  const data = rootfsTarXz(work, 'dry');
  const ref = imageName(t);
  const { shim, run } = await imageProject(t, { '/c.tar.xz': data }, (url) => ({ c: { url: url('/c.tar.xz'), image: ref } }));
  const dry = await run('sync', '--dry-run');
  assert.equal(dry.code, 0, dry.stderr);
  assert.match(dry.stdout, /import image/);
  const status = await run('status');
  assert.equal(status.code, 3);
  assert.deepEqual([...new Set(shim.calls().map((c) => `${c[0]} ${c[1]}`))], ['image inspect']);
  assert.equal(podman('images', '--filter', `reference=${ref}`, '-q'), '');
});

test('--no-images never runs the engine; the files are synced', async (t) => {
  const data = Buffer.from('not even an archive');
  const srv = await startServer(t, { '/x.bin': data });
  const p = await project(t, { version: 1, artifacts: { x: { url: srv.url('/x.bin'), image: 'localhost/never/used:1' } } });
  const empty = tmpDir(t, 'hoard-nopath-');
  const r = await hoard(['sync', '--no-images'], { cwd: p.dir, store: p.store, env: { PATH: empty } });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(sha256(readFileSync(path.join(p.dir, 'artifacts', 'x.bin'))), sha256(data));
});

test('engine missing, not answering, or hanging: exit 1 naming it; files synced; other artifacts unaffected', async (t) => {
  const data = Buffer.from('rootfs bytes');
  const other = Buffer.from('a plain file');
  const srv = await startServer(t, { '/img.tar': data, '/plain.bin': other });
  const manifest = { version: 1, artifacts: { img: { url: srv.url('/img.tar'), image: 'localhost/x/y:1' }, plain: { url: srv.url('/plain.bin') } } };

  const bin = tmpDir(t, 'hoard-fakebin-');
  writeFileSync(path.join(bin, 'podman'), '#!/bin/sh\nsleep 30\n');
  chmodSync(path.join(bin, 'podman'), 0o755);
  const empty = tmpDir(t, 'hoard-nopath-');
  const cases: Array<[string, string[], Record<string, string>, RegExp]> = [
    ['missing', ['--engine', 'podman'], { PATH: empty }, /podman/],
    ['hanging', ['--engine', 'podman'], { PATH: `${bin}:/usr/bin:/bin` }, /podman[\s\S]*(5 ?s|time)/i],
    // docker with no daemon behind its socket (the real daemon's cases: images-docker.test.ts).
    ['no daemon', ['--engine', 'docker'], { PATH: process.env.PATH!, DOCKER_HOST: 'unix:///nonexistent/hoard-test-docker.sock' }, /docker/i],
  ];
  for (const [label, flags, env, expected] of cases) {
    const p = await project(t, manifest);
    const started = Date.now();
    const r = await hoard(['sync', ...flags], { cwd: p.dir, store: p.store, env });
    assert.equal(r.code, 1, `${label}: ${r.stdout}${r.stderr}`);
    assert.match(r.stderr, expected, label);
    assert.match(r.stderr, /--no-images/, `${label}: the hint names the way out`);
    assert.ok(Date.now() - started < 15_000, `${label}: the engine query must time out (took ${Date.now() - started} ms)`);
    assert.equal(sha256(readFileSync(path.join(p.dir, 'artifacts', 'img.tar'))), sha256(data), `${label}: file synced`);
    assert.equal(sha256(readFileSync(path.join(p.dir, 'artifacts', 'plain.bin'))), sha256(other), `${label}: other artifact synced`);
  }
});

test('an invalid image reference is a manifest error (exit 2) before anything runs', async (t) => {
  const srv = await startServer(t, { '/a.bin': Buffer.from('x') });
  const p = await project(t, { version: 1, artifacts: { a: { url: srv.url('/a.bin'), image: 'Arista/CEOS:4.32.1F' } } });
  const r = await p.run('sync');
  assert.equal(r.code, 2);
  assert.match(r.stderr, /\/artifacts\/a\/image/);
  assert.equal(srv.total(), 0);
});

test('a slow image import does not hold up downloads: with --jobs 1 the next artifact downloads meanwhile', { skip }, async (t) => {
  const work = tmpDir(t);
  const data = rootfsTarXz(work, 'slow');
  const other = Buffer.from('an installer\n'.repeat(1000));
  const ref = imageName(t);
  const srv = await startServer(t, { '/a.tar.xz': data, '/b.run': other });
  const p = await project(t, { version: 1, artifacts: { a: { url: srv.url('/a.tar.xz'), image: ref }, b: { url: srv.url('/b.run') } } });
  // A podman whose `import` takes 1.5 s longer.
  const dir = tmpDir(t, 'hoard-shim-');
  const real = execFileSync('sh', ['-c', 'command -v podman'], { encoding: 'utf8' }).trim();
  writeFileSync(path.join(dir, 'podman'), `#!/bin/sh\n[ "$1" = import ] && sleep 1.5\nexec ${real} "$@"\n`);
  chmodSync(path.join(dir, 'podman'), 0o755);
  const r = await hoard(['sync', '--jobs', '1', '--json', '--engine', 'podman'], { cwd: p.dir, store: p.store, env: { PATH: `${dir}:${process.env.PATH}` } });
  assert.equal(r.code, 0, r.stderr);
  const events = jsonLines(r.stdout);
  const at = (type: string, name: string) => events.findIndex((e) => e.type === type && e.name === name);
  assert.ok(at('image', 'a') >= 0, 'a was imported');
  assert.ok(at('download', 'b') < at('artifact', 'a'), 'b waited for a\'s import to finish');
  assert.equal(label(ref), `sha256:${sha256(data)}`);
});
