// End-to-end: hoard sync with container images, against the real engines: podman from
// Debian's packages, and a real docker daemon (a private dockerd, test/fixtures/dockerd.ts)
// when it can start here. The cases that talk to an engine are defined once and run for both
// (`forEachEngine`); a recording shim on PATH logs every engine command and runs the real one,
// so tests can tell what hoard asked the engine to do. The engine-independent cases (no
// engine, a hung one, a bad reference, a file that is not an image archive) run once.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, promises as fs, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { startDockerd } from '../fixtures/dockerd.ts';
import { hoard, jsonLines, podmanSkip, project, ROOT, sha256, startServer, tmpDir } from '../helpers.ts';

const validate = new Ajv2020({ allErrors: true, strict: true }).compile(JSON.parse(readFileSync(path.join(ROOT, 'schemas', 'events.schema.json'), 'utf8')));

/** --json events, each checked against schemas/events.schema.json (oldImage, not-archive included). */
function events(stdout: string): Array<Record<string, unknown>> {
  const all = jsonLines(stdout);
  for (const e of all) if (!validate(e)) assert.fail(`does not match the schema: ${JSON.stringify(e)}\n${JSON.stringify(validate.errors).slice(0, 1000)}`);
  return all;
}

const daemon = await startDockerd();

/** One engine the image cases run against. */
interface EngineUnderTest {
  name: 'podman' | 'docker';
  /** Why its cases cannot run here (false: they run). */
  skip: string | false;
  /** The environment that reaches it (docker: the private daemon's DOCKER_HOST). */
  env: Record<string, string>;
  /** A repository name for a test's images (podman qualifies local names with localhost/). */
  repo: (unique: string) => string;
  /** The archives its `save` writes, which hoard must load (compressed with xz when `xz`). */
  saves: Array<{ label: string; args: (file: string, source: string) => string[]; xz: boolean }>;
}

const ENGINES: EngineUnderTest[] = [
  {
    name: 'podman',
    skip: podmanSkip,
    env: {},
    repo: (u) => `localhost/hoard-e2e-${u}/ceos`,
    saves: [
      { label: 'docker-archive', args: (file, source) => ['save', '--format', 'docker-archive', '-o', file, source], xz: true },
      { label: 'oci-archive', args: (file, source) => ['save', '--format', 'oci-archive', '-o', file, source], xz: false },
    ],
  },
  {
    name: 'docker',
    skip: daemon.skip ? `real docker: ${daemon.skip}` : false,
    env: daemon.env,
    repo: (u) => `hoard-e2e-${u}/ceos`,
    // docker >= 25 writes an OCI layout with docker's manifest.json beside it: loaded as docker's.
    saves: [{ label: 'docker save', args: (file, source) => ['save', '-o', file, source], xz: true }],
  },
];

/** Runs `body` as one test per engine, named `<engine>: <title>`, skipped (saying why) where it cannot run. */
function forEachEngine(title: string, body: (t: TestContext, e: Engine) => Promise<void>): void {
  for (const u of ENGINES) test(`${u.name}: ${title}`, { skip: u.skip }, (t) => body(t, engine(u)));
}

/** The engine's CLI for a test: commands, image names, a recording shim, a project. */
function engine(u: EngineUnderTest) {
  const env = { ...process.env, ...u.env };
  const cli = (...args: string[]) => execFileSync(u.name, args, { encoding: 'utf8', env, stdio: ['ignore', 'pipe', 'pipe'] }).trim();
  /** Image ids as hoard reports them: `sha256:<hex>` (podman prints the bare hex). */
  const idOf = (ref: string) => {
    const id = cli('image', 'inspect', '--format', '{{.Id}}', ref);
    return id.startsWith('sha256:') ? id : `sha256:${id}`;
  };
  const exists = (ref: string) => {
    try {
      cli('image', 'inspect', '--format', '{{.Id}}', ref.replace(/^sha256:/, ''));
      return true;
    } catch {
      return false;
    }
  };
  const e = {
    name: u.name,
    saves: u.saves,
    cli,
    idOf,
    exists,
    label: (ref: string) => cli('image', 'inspect', '--format', '{{index .Config.Labels "io.hoard.digest"}}', ref),
    /** A unique image name; its images (and `alsoRemove`, ids or containers) are removed after the test. */
    imageName(t: TestContext, tag = '4.32.1F'): string {
      const name = u.repo(randomBytes(4).toString('hex'));
      t.after(() => {
        try {
          const ids = cli('images', '--filter', `reference=${name}`, '-q');
          if (ids) execFileSync(u.name, ['rmi', '-f', ...new Set(ids.split('\n'))], { stdio: 'ignore', env });
        } catch {}
      });
      return `${name}:${tag}`;
    },
    /** Removes these containers and images after the test (containers first). */
    cleanup(t: TestContext, things: { containers?: string[]; images?: string[] }): void {
      t.after(() => {
        for (const c of things.containers ?? []) execFileSync(u.name, ['rm', '-f', c], { stdio: 'ignore', env });
        for (const i of things.images ?? []) {
          try {
            execFileSync(u.name, ['rmi', '-f', i.replace(/^sha256:/, '')], { stdio: 'ignore', env });
          } catch {}
        }
      });
    },
    /** A PATH whose engine command logs its arguments to a file and runs the real one (after `delay` for `import`). */
    recordingPath(t: TestContext, opts: { importDelay?: number } = {}): { PATH: string; calls: () => string[][] } {
      const dir = tmpDir(t, 'hoard-shim-');
      const log = path.join(dir, 'calls.log');
      const real = execFileSync('sh', ['-c', `command -v ${u.name}`], { encoding: 'utf8' }).trim();
      const delay = opts.importDelay ? `[ "$1" = import ] && sleep ${opts.importDelay}\n` : '';
      writeFileSync(path.join(dir, u.name), `#!/bin/sh\nprintf '%s\\n' "$*" >> ${JSON.stringify(log)}\n${delay}exec ${real} "$@"\n`);
      chmodSync(path.join(dir, u.name), 0o755);
      return {
        PATH: `${dir}:${process.env.PATH}`,
        calls: () => (existsSync(log) ? readFileSync(log, 'utf8').trim().split('\n').filter(Boolean).map((l) => l.split(' ')) : []),
      };
    },
    /** A project served over HTTP, and `run` for hoard with `--engine <this one>` through the shim. */
    async project(t: TestContext, files: Record<string, Buffer>, artifacts: (url: (p: string) => string) => Record<string, unknown>, opts: { importDelay?: number } = {}) {
      const srv = await startServer(t, files);
      const p = await project(t, { version: 1, artifacts: artifacts(srv.url) });
      const shim = e.recordingPath(t, opts);
      const run = (...args: string[]) => hoard([...args, '--engine', u.name], { cwd: p.dir, store: p.store, env: { PATH: shim.PATH, ...u.env } });
      return { srv, p, shim, run };
    },
  };
  return e;
}
type Engine = ReturnType<typeof engine>;

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

const short = (id: string) => id.replace(/^sha256:/, '').slice(0, 12);

/** Points the entry `name` at `url` with its digest and size (a new release, same tag). */
async function relock(manifestPath: string, name: string, url: string, data: Buffer, image: string): Promise<void> {
  const m = JSON.parse(await fs.readFile(manifestPath, 'utf8'));
  m.artifacts[name] = { url, digest: `sha256:${sha256(data)}`, size: data.length, image };
  await fs.writeFile(manifestPath, JSON.stringify(m));
}

forEachEngine('a cEOS-like rootfs .tar.xz is imported with its digest; the second sync runs no import', async (t, e) => {
  const work = tmpDir(t);
  const data = rootfsTarXz(work, 'a');
  const ref = e.imageName(t);
  const { shim, run, srv } = await e.project(t, { '/cEOS-lab.tar.xz': data }, (url) => ({ ceos: { url: url('/cEOS-lab.tar.xz'), image: ref } }));

  const first = await run('sync');
  assert.equal(first.code, 0, first.stderr);
  assert.match(first.stdout, /imported as/);
  assert.equal(e.label(ref), `sha256:${sha256(data)}`);
  const id = e.idOf(ref);
  assert.ok(shim.calls().some((c) => c[0] === 'import'), 'first sync imports');

  const before = shim.calls().length;
  const second = await run('sync', '--json');
  assert.equal(second.code, 0, second.stderr);
  assert.deepEqual(shim.calls().slice(before).map((c) => c.slice(0, 2).join(' ')), ['image inspect'], 'one query, no import');
  assert.equal(e.idOf(ref), id, 'same image');
  const summary = jsonLines(second.stdout).at(-1)!;
  assert.equal(summary.imagesPresent, 1);
  assert.equal(summary.imagesImported, 0);
  assert.equal(srv.total(), 1);
});

forEachEngine('same tag, new digest: status exit 3 (stale tag), sync re-imports and removes the image it replaced; --force too', async (t, e) => {
  const work = tmpDir(t);
  const v1 = rootfsTarXz(work, 'v1');
  const v2 = rootfsTarXz(work, 'v2');
  const ref = e.imageName(t);
  const { p, shim, run, srv } = await e.project(t, { '/v1.tar.xz': v1, '/v2.tar.xz': v2 }, (url) => ({ ceos: { url: url('/v1.tar.xz'), image: ref } }));
  assert.equal((await run('sync')).code, 0);
  assert.equal(e.label(ref), `sha256:${sha256(v1)}`);
  const id1 = e.idOf(ref);
  e.cleanup(t, { images: [id1] });

  await relock(p.manifestPath, 'ceos', srv.url('/v2.tar.xz'), v2, ref);
  const status = await run('status');
  assert.equal(status.code, 3, status.stdout + status.stderr);
  // The most serious state is named (the blob is missing); the plan still knows the tag is stale.
  assert.match(status.stdout, /^ceos  not downloaded  /m);
  const plan = jsonLines((await run('status', '--json')).stdout).find((ev) => ev.type === 'plan')!;
  assert.equal(plan.image, 'reimport', JSON.stringify(plan));

  const r = await run('sync');
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, new RegExp(`^ceos  .*re-imported ${ref} \\(stale tag\\), removed old image ${short(id1)}  `, 'm'));
  assert.equal(e.label(ref), `sha256:${sha256(v2)}`);
  assert.ok(!e.exists(id1), 'the image hoard built from v1 is gone, not left dangling');
  assert.equal((await run('status')).code, 0);

  const id2 = e.idOf(ref);
  const before = shim.calls().length;
  const forced = await run('sync', '--force', '--json');
  assert.equal(forced.code, 0, forced.stderr);
  assert.ok(shim.calls().slice(before).some((c) => c[0] === 'import'), '--force imports again');
  assert.equal(e.label(ref), `sha256:${sha256(v2)}`);
  const ev = events(forced.stdout).find((x) => x.type === 'artifact')!;
  assert.equal(ev.image, 'reimported');
  assert.deepEqual(ev.oldImage, { id: id2, removed: true });
  assert.notEqual(e.idOf(ref), id2);
  assert.ok(!e.exists(id2), '--force: the image it replaced is gone');
});

forEachEngine('an old image still used is kept, and -v / --json say why: not built by hoard, another tag, a container', async (t, e) => {
  const work = tmpDir(t);
  const v0 = path.join(work, 'v0.tar.xz');
  writeFileSync(v0, rootfsTarXz(work, 'v0'));
  const v1 = rootfsTarXz(work, 'v1');
  const v2 = rootfsTarXz(work, 'v2');
  const ref = e.imageName(t);
  const container = `hoard-e2e-${randomBytes(4).toString('hex')}`;
  const { p, run, srv } = await e.project(t, { '/v1.tar.xz': v1, '/v2.tar.xz': v2 }, (url) => ({ ceos: { url: url('/v1.tar.xz'), image: ref } }));
  const oldImage = async (r: Awaited<ReturnType<typeof run>>) => {
    assert.equal(r.code, 0, r.stdout + r.stderr);
    return events(r.stdout).find((x) => x.type === 'artifact')!.oldImage as { id: string; removed: boolean; reason?: string };
  };

  // Someone's own image at the tag (no hoard label): replaced, never removed.
  e.cli('import', v0, ref);
  const id0 = e.idOf(ref);
  const ids: string[] = [id0];
  e.cleanup(t, { containers: [container], images: ids });
  const first = await oldImage(await run('sync', '--json'));
  assert.deepEqual(first, { id: id0, removed: false, reason: 'not built by hoard' });
  assert.ok(e.exists(id0));

  // hoard's image, tagged once more by someone: kept, and -v says so.
  const id1 = e.idOf(ref);
  ids.push(id1);
  const other = ref.replace(/:[^:]+$/, ':keep');
  e.cli('tag', ref, other);
  await relock(p.manifestPath, 'ceos', srv.url('/v2.tar.xz'), v2, ref);
  const verbose = await run('sync', '-v');
  assert.equal(verbose.code, 0, verbose.stderr);
  assert.match(verbose.stdout, /re-imported/);
  assert.doesNotMatch(verbose.stdout, /removed old image/);
  assert.match(verbose.stdout, new RegExp(`kept old image ${short(id1)} \\(still tagged [^)]*:keep\\)`));
  assert.ok(e.exists(id1));
  const quiet = await run('sync', '--force');
  assert.equal(quiet.code, 0, quiet.stderr);
  assert.doesNotMatch(quiet.stdout, /kept old image/, 'without -v, a kept image is not mentioned');

  // hoard's image, used by a container (stopped): kept.
  const id2 = e.idOf(ref);
  ids.push(id2);
  e.cli('create', '--name', container, ref, '/usr/bin/true');
  const third = await oldImage(await run('sync', '--force', '--json'));
  assert.equal(third.id, id2);
  assert.equal(third.removed, false);
  assert.match(third.reason!, new RegExp(`container ${container}`));
  assert.ok(e.exists(id2));
});

forEachEngine('image archives from `save` are loaded (not imported) under the manifest\'s tag; the record binds them, so the next sync only asks', async (t, e) => {
  const work = tmpDir(t);
  const rootfs = path.join(work, 'rootfs.tar.xz');
  writeFileSync(rootfs, rootfsTarXz(work, 'saved'));
  const source = e.imageName(t, 'source');
  e.cli('import', rootfs, source);
  const sourceId = e.idOf(source);
  const files: Record<string, Buffer> = {};
  const refs: Record<string, string> = {};
  e.saves.forEach((s, i) => {
    const file = path.join(work, `saved-${i}.tar`);
    e.cli(...s.args(file, source));
    if (s.xz) execFileSync('xz', ['-T1', file]); // compressed archives count too
    files[`/saved-${i}.tar${s.xz ? '.xz' : ''}`] = readFileSync(`${file}${s.xz ? '.xz' : ''}`);
    refs[`s${i}`] = e.imageName(t, `from-${s.label.replace(/\W+/g, '-')}`);
  });
  const { shim, run } = await e.project(t, files, (url) =>
    Object.fromEntries(Object.keys(files).map((f, i) => [`s${i}`, { url: url(f), image: refs[`s${i}`] }])),
  );
  const r = await run('sync');
  assert.equal(r.code, 0, r.stdout + r.stderr);
  for (const [i, s] of e.saves.entries()) {
    assert.match(r.stdout, new RegExp(`^s${i} .*loaded as`, 'm'), s.label);
    assert.equal(e.idOf(refs[`s${i}`]!), sourceId, s.label);
  }
  const verbs = shim.calls().map((c) => c[0]);
  assert.ok(verbs.includes('load') && verbs.includes('tag'));
  assert.ok(!verbs.includes('import'), 'image archives are loaded, never imported');
  // Loaded images carry no label: hoard's record binds them, so the next sync is a no-op.
  const before = shim.calls().length;
  const again = await run('sync');
  assert.equal(again.code, 0, again.stderr);
  assert.deepEqual(shim.calls().slice(before).map((c) => c[0]), ['image']);
  assert.equal((await run('status')).code, 0);
});

forEachEngine('--dry-run and status query the engine but never change it', async (t, e) => {
  const work = tmpDir(t);
  const data = rootfsTarXz(work, 'dry');
  const ref = e.imageName(t);
  const { shim, run } = await e.project(t, { '/c.tar.xz': data }, (url) => ({ c: { url: url('/c.tar.xz'), image: ref } }));
  const dry = await run('sync', '--dry-run');
  assert.equal(dry.code, 0, dry.stderr);
  assert.match(dry.stdout, /^c  unlocked  /m);
  const status = await run('status');
  assert.equal(status.code, 3);
  assert.deepEqual([...new Set(shim.calls().map((c) => `${c[0]} ${c[1]}`))], ['image inspect']);
  assert.equal(e.cli('images', '--filter', `reference=${ref}`, '-q'), '');
});

forEachEngine('a slow image import does not hold up downloads: with --jobs 1 the next artifact downloads meanwhile', async (t, e) => {
  const work = tmpDir(t);
  const data = rootfsTarXz(work, 'slow');
  const other = Buffer.from('an installer\n'.repeat(1000));
  const ref = e.imageName(t);
  // An engine whose `import` takes 1.5 s longer.
  const { run } = await e.project(t, { '/a.tar.xz': data, '/b.run': other }, (url) => ({ a: { url: url('/a.tar.xz'), image: ref }, b: { url: url('/b.run') } }), { importDelay: 1.5 });
  const r = await run('sync', '--jobs', '1', '--json');
  assert.equal(r.code, 0, r.stderr);
  const events = jsonLines(r.stdout);
  const at = (type: string, name: string) => events.findIndex((ev) => ev.type === type && ev.name === name);
  assert.ok(at('image', 'a') >= 0, 'a was imported');
  assert.ok(at('download', 'b') < at('artifact', 'a'), 'b waited for a\'s import to finish');
  assert.equal(e.label(ref), `sha256:${sha256(data)}`);
});

// ------------------------------------------------------------ cases that need no engine (or no working one)

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
    // docker with no daemon behind its socket (the real daemon's cases: forEachEngine above).
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


test('a file that is not an image archive (a .vmdk, a text file) is reported as such by status and the plan, not as a pending import; sync runs no import', { skip: podmanSkip }, async (t) => {
  const work = tmpDir(t);
  // A VMware disk (its "KDMV" magic, then sectors) and a text file: neither is a tar, compressed or not.
  const vmdk = Buffer.concat([Buffer.from('KDMV\x01\x00\x00\x00'), randomBytes(64 * 1024)]);
  const notes = Buffer.from('release notes, not a root filesystem\n'.repeat(50));
  const ceos = rootfsTarXz(work, 'good');
  const e = engine(ENGINES[0]!);
  const ref = (tag: string) => e.imageName(t, tag);
  const { p, run, shim } = await e.project(t, { '/disk.vmdk': vmdk, '/notes.txt': notes, '/ceos.tar.xz': ceos }, (url) => ({
    disk: { url: url('/disk.vmdk'), image: ref('disk') },
    notes: { url: url('/notes.txt'), image: ref('notes') },
    ceos: { url: url('/ceos.tar.xz'), image: ref('ceos') },
  }));
  // The files are synced without images first: now the bytes are here, the images are not.
  const files = await hoard(['sync', '--no-images'], { cwd: p.dir, store: p.store });
  assert.equal(files.code, 0, files.stderr);

  const status = await run('status');
  // Failed, as for an engine that cannot be asked: sync cannot make these images (exit 1, not 3).
  assert.equal(status.code, 1, status.stdout + status.stderr);
  assert.match(status.stdout, /^disk   not an image archive  artifacts\/disk\.vmdk  \(disk's file artifacts\/disk\.vmdk is not a tar archive/m);
  assert.match(status.stdout, /^notes  not an image archive  artifacts\/notes\.txt  /m);
  assert.match(status.stdout, /^ceos   image missing         artifacts\/ceos\.tar\.xz  /m, 'a real archive is still a pending import');
  const plans = events((await run('status', '--json')).stdout).filter((ev) => ev.type === 'plan');
  assert.deepEqual(plans.map((x) => [x.name, x.image]).sort(), [['ceos', 'import'], ['disk', 'not-archive'], ['notes', 'not-archive']]);

  const dry = await run('sync', '--dry-run');
  assert.match(dry.stdout, /^disk   not an image archive  /m, 'sync\'s plan says the same');

  // Whatever the engine: the verdict is about the file (here no podman on PATH at all).
  const noEngine = await hoard(['status', '--engine', 'podman'], { cwd: p.dir, store: p.store, env: { PATH: tmpDir(t, 'hoard-nopath-') } });
  assert.match(noEngine.stdout, /^disk   not an image archive  /m);

  const before = shim.calls().length;
  const r = await run('sync', '--json');
  assert.equal(r.code, 1, r.stdout + r.stderr);
  const done = Object.fromEntries(events(r.stdout).filter((ev) => ev.type === 'artifact').map((ev) => [ev.name, ev]));
  assert.equal(done.disk!.image, 'failed');
  assert.match((done.disk!.imageError as { message: string }).message, /disk's file artifacts\/disk\.vmdk is not a tar archive/);
  assert.equal(done.ceos!.image, 'imported');
  const imports = shim.calls().slice(before).filter((c) => c[0] === 'import' || c[0] === 'load');
  assert.equal(imports.length, 1, `only ceos reaches the engine: ${JSON.stringify(imports)}`);
});
