// Arista as a vendor source, end to end: the built CLI against a fake arista.com on 127.0.0.1
// (test/fixtures/arista-server.ts; the real one cannot be reached from tests).
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import os from 'node:os';
import { hoard, jsonLines, listTree, podmanSkip, project, ROOT, type RunResult } from '../helpers.ts';

const p0 = () => os.tmpdir();
import { EXPIRED_TOKEN, GOOD_TOKEN, startFakeArista, type FakeArista } from '../fixtures/arista-server.ts';

const EMPTY = { $schema: './schemas/manifest.schema.json', version: 1, output: 'artifacts', artifacts: {} };

async function setup(t: import('node:test').TestContext, init: Parameters<typeof startFakeArista>[1] = {}) {
  const fake = await startFakeArista(t, init);
  const p = await project(t, EMPTY);
  const env = { HOARD_ARISTA_URL: fake.url, ARISTA_TOKEN: GOOD_TOKEN };
  const run = (args: string[], extra: Record<string, string | undefined> = {}, store = p.store) => hoard(args, { cwd: p.dir, store, env: { ...env, ...extra } });
  const manifest = async () => JSON.parse(await fs.readFile(p.manifestPath, 'utf8')) as { artifacts: Record<string, Record<string, unknown>> };
  return { fake, p, run, manifest };
}

/** Nothing from the token, a session code or a signed link in this text. */
function assertNoSecrets(fake: FakeArista, text: string, where: string) {
  for (const s of [GOOD_TOKEN, Buffer.from(GOOD_TOKEN).toString('base64'), 'Signature=', 'Key-Pair-Id', 'Expires=', ...fake.sessions, ...fake.links.map((l) => new URL(l).searchParams.get('Signature')!)]) {
    assert.ok(!text.includes(s), `${where} contains ${s.slice(0, 12)}…`);
  }
}

async function allText(dir: string): Promise<string> {
  let out = '';
  for (const f of await listTree(dir)) {
    const st = await fs.stat(path.join(dir, f));
    if (st.isFile() && st.size < 4 * 1024 * 1024) out += await fs.readFile(path.join(dir, f), 'latin1');
  }
  return out;
}

const ok = (r: RunResult) => assert.equal(r.code, 0, `exit ${r.code}\n${r.stdout}\n${r.stderr}`);

test('add arista:cEOS@4.32.1F: finds the file, verifies Arista\'s sha512 in the same pass, records a stable locator', async (t) => {
  const { fake, p, run, manifest } = await setup(t);
  const r = await run(['add', 'arista:cEOS@4.32.1F', '--no-images']);
  ok(r);
  const name = 'cEOS-lab-4.32.1F.tar.xz';
  const body = fake.body(name);
  const entry = (await manifest()).artifacts.cEOS!;
  assert.deepEqual(Object.keys(entry), ['url', 'arista', 'digest', 'size', 'checksums']);
  assert.equal(entry.url, `arista:${name}`);
  assert.deepEqual(entry.arista, { path: `/support/download/EOS-USA/Active Releases/4.32/EOS-4.32.1F/cEOS-lab/${name}` });
  assert.equal(entry.digest, `sha256:${createHash('sha256').update(body).digest('hex')}`);
  assert.equal(entry.size, body.length);
  assert.deepEqual(entry.checksums, { sha512: fake.sha512(name) });
  assert.deepEqual(await fs.readFile(path.join(p.dir, 'artifacts', name)), body);
  // One session for the whole command; a browser-like User-Agent on every request, API and file.
  assert.equal(fake.calls.session, 1);
  assert.ok(fake.userAgents.length >= 4 && fake.userAgents.every((ua) => /^Mozilla\/5\.0 /.test(ua)), fake.userAgents.join('\n'));
  assertNoSecrets(fake, r.stdout + r.stderr, 'output');
  assertNoSecrets(fake, await allText(p.dir), 'the project folder');
});

test('add by exact file name; --image without a value is arista/ceos:<version> only for cEOS', async (t) => {
  const { run, manifest } = await setup(t);
  ok(await run(['add', 'arista:EOS64-4.31.4M.swi', '--no-images']));
  const m = await manifest();
  assert.equal(m.artifacts['EOS64-4.31.4M.swi']!.url, 'arista:EOS64-4.31.4M.swi');
  assert.match(String((m.artifacts['EOS64-4.31.4M.swi']!.checksums as Record<string, string>).sha512), /^[0-9a-f]{128}$/);

  // --image with no value: the tag eos-downloader would use (written before the file name, so the
  // flag's value is empty, not the spec).
  ok(await run(['add', '--no-images', 'arista:cEOS64@4.32.2F', '--image']));
  assert.equal((await manifest()).artifacts.cEOS64!.image, 'arista/ceos:4.32.2F');
  ok(await run(['add', 'arista:cEOS@4.32.9F', '--image', 'ceos:lab', '--no-images']));
  assert.equal((await manifest()).artifacts.cEOS!.image, 'ceos:lab');

  const before = await manifest();
  const r = await run(['add', 'arista:vEOS-lab@4.32.1F', '--no-images', '--image']);
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /--image needs a value/);
  assert.deepEqual(await manifest(), before);
});

test('latest, branch and M: numeric order, Active Releases only for latest, hotfixes count', async (t) => {
  const { run, manifest } = await setup(t);
  ok(await run(['add', 'arista:cEOS@latest', '--no-images', '--name', 'latest']));
  ok(await run(['add', 'arista:cEOS@4.32', '--no-images', '--name', 'branch']));
  ok(await run(['add', 'arista:cEOS@latest', '--release-type', 'M', '--no-images', '--name', 'maint']));
  ok(await run(['add', 'arista:vEOS-lab@4.30', '--release-type', 'M', '--no-images', '--name', 'old']));
  const m = (await manifest()).artifacts;
  // 4.34.0F is under EFT, not Active Releases; 4.32.10F > 4.32.9F > 4.32.2.1F > 4.32.2F.
  assert.equal(m.latest!.url, 'arista:cEOS-lab-4.33.1F.tar.xz');
  assert.equal(m.branch!.url, 'arista:cEOS-lab-4.32.10F.tar.xz');
  assert.equal(m.maint!.url, 'arista:cEOS-lab-4.31.5M.tar.xz');
  assert.equal(m.old!.url, 'arista:vEOS-lab-4.30.6M.vmdk');

  const r = await run(['add', 'arista:cEOS@4.29', '--no-images']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /no cEOS F release in branch 4\.29/);
  assert.match(r.stderr, /hint: see what exists: hoard versions arista:cEOS --branch 4\.29/);
});

test('a missing, invalid or expired token: exit 1 with Arista\'s message and where to make a token; nothing written', async (t) => {
  const { fake, p, run } = await setup(t);
  const before = await fs.readFile(p.manifestPath, 'utf8');
  const cases: Array<[Record<string, string | undefined>, string[], RegExp]> = [
    [{ ARISTA_TOKEN: undefined }, [], /no Arista API token: ARISTA_TOKEN is not set/],
    [{ ARISTA_TOKEN: 'nope' }, [], /Arista refused the token in ARISTA_TOKEN: Invalid access token/],
    [{ ARISTA_TOKEN: undefined, MY_TOKEN: EXPIRED_TOKEN }, ['--token-env', 'MY_TOKEN'], /Arista refused the token in MY_TOKEN: Access token expired/],
  ];
  for (const [env, flags, message] of cases) {
    const r = await run(['add', 'arista:cEOS@latest', '--no-images', ...flags], env);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, message);
    assert.match(r.stderr, /hint: create an API token on your arista\.com profile page/);
    const j = await run(['add', 'arista:cEOS@latest', '--no-images', '--json', ...flags], env);
    assert.equal(jsonLines(j.stdout).at(-1)!.code, 'E_AUTH');
  }
  assert.equal(await fs.readFile(p.manifestPath, 'utf8'), before);
  assert.deepEqual(await listTree(path.join(p.dir)), ['hoard.json']);
  assert.equal(fake.calls.tree, 0);
});

test('a sha512 that does not match: exit 1, nothing stored, hoard.json unchanged', async (t) => {
  const name = 'cEOS-lab-4.32.2F.tar.xz';
  const { p, run } = await setup(t, { wrongSha512: new Set([name]) });
  const before = await fs.readFile(p.manifestPath, 'utf8');
  const r = await run(['add', 'arista:cEOS@4.32.2F', '--no-images']);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /sha512/);
  assert.equal(await fs.readFile(p.manifestPath, 'utf8'), before);
  assert.deepEqual(await listTree(path.join(p.store, 'v1', 'blobs', 'sha256')), []);
  assert.deepEqual(await listTree(path.join(p.dir, 'artifacts')), []);
});

test('a link that expires in the middle of a throttled download: a new link, and a Range resume from where it was', async (t) => {
  const name = 'cEOS-lab-4.33.0F.tar.xz';
  const size = 512 * 1024;
  // Links live 1.5 s; the file comes slowly; the first transfer is cut after 200 KiB once its
  // link has expired; the second link is handed out already expired (a 403 from the file host).
  const { fake, run, manifest } = await setup(t, {
    linkTtlMs: 1500, sizes: { [name]: size }, throttle: { chunk: 32 * 1024, delayMs: 50 }, dropAfterExpiry: 200 * 1024, expiredLinks: new Set([3]),
  });
  const r = await run(['add', 'arista:cEOS@4.33.0F', '--no-images', '--retry-delay', '0', '-v']);
  ok(r);
  const gets = fake.fileRequests.filter((q) => q.name === name);
  assert.deepEqual(gets.map((q) => q.status), [200, 403, 206], JSON.stringify(gets));
  assert.equal(gets[0]!.range, undefined);
  assert.equal(gets[2]!.range, `bytes=${200 * 1024}-`);
  assert.equal((await manifest()).artifacts.cEOS!.size, size);
  // One link for the sidecar, one per attempt of the file.
  assert.equal(fake.calls.link, 4);
  assertNoSecrets(fake, r.stdout + r.stderr, 'the -v output');
});

test('a fresh store syncs a committed Arista entry (new session, new link); the folder tree is fetched only when needed', async (t) => {
  const { fake, p, run } = await setup(t);
  ok(await run(['add', 'arista:cEOS@4.32.1F', '--no-images']));
  assert.equal(fake.calls.tree, 1);
  const committed = await fs.readFile(p.manifestPath, 'utf8');

  // A teammate: the same hoard.json, an empty store, their own token.
  const other = await project(t, committed);
  const r = await hoard(['sync', '--no-images', '--json'], { cwd: other.dir, store: other.store, env: { HOARD_ARISTA_URL: fake.url, ARISTA_TOKEN: GOOD_TOKEN } });
  ok(r);
  assert.equal(fake.calls.tree, 1, 'the locked path is asked for a link directly: no folder tree');
  const art = jsonLines(r.stdout).find((e) => e.type === 'artifact')!;
  assert.equal(art.blob, 'downloaded');
  assert.deepEqual(await fs.readFile(path.join(other.dir, 'artifacts', 'cEOS-lab-4.32.1F.tar.xz')), fake.body('cEOS-lab-4.32.1F.tar.xz'));
  assert.equal(await fs.readFile(other.manifestPath, 'utf8'), committed, 'hoard.json is not rewritten');
  assertNoSecrets(fake, r.stdout + r.stderr, 'sync --json');

  // The path moved (Not Found): the tree is fetched, the file found by name.
  const third = await project(t, committed);
  fake.opts.gone.add(JSON.parse(committed).artifacts.cEOS.arista.path);
  fake.files.push({ ...fake.files.find((f) => f.name === 'cEOS-lab-4.32.1F.tar.xz')!, path: '/support/download/EOS-USA/Moved/cEOS-lab-4.32.1F.tar.xz' });
  ok(await hoard(['sync', '--no-images'], { cwd: third.dir, store: third.store, env: { HOARD_ARISTA_URL: fake.url, ARISTA_TOKEN: GOOD_TOKEN } }));
  assert.equal(fake.calls.tree, 2);

  // --no-store: the same source, straight into the output (verified), nothing kept, no tree cache.
  const direct = await project(t, committed);
  const n = await hoard(['sync', '--no-images', '--no-store'], { cwd: direct.dir, store: direct.store, env: { HOARD_ARISTA_URL: fake.url, ARISTA_TOKEN: GOOD_TOKEN } });
  ok(n);
  assert.deepEqual(await fs.readFile(path.join(direct.dir, 'artifacts', 'cEOS-lab-4.32.1F.tar.xz')), fake.body('cEOS-lab-4.32.1F.tar.xz'));
  assert.deepEqual(await listTree(direct.store), []);

  // Nothing to download: no request to Arista at all, not even without a token.
  const calls = { ...fake.calls };
  ok(await hoard(['sync', '--no-images'], { cwd: other.dir, store: other.store, env: { HOARD_ARISTA_URL: fake.url } }));
  assert.deepEqual(fake.calls, calls);
});

test('outdated (exit 3 when behind), update to the newest of the branch and --latest, versions', async (t) => {
  const { fake, p, run, manifest } = await setup(t);
  ok(await run(['add', 'arista:cEOS@4.32.2F', '--no-images', '--image', 'arista/ceos:4.32.2F', '--path', 'images/ceos-4.32.2F.tar.xz']));
  ok(await run(['add', 'arista:vEOS-lab@4.31.5M', '--no-images']));

  let r = await run(['outdated']);
  assert.equal(r.code, 3, r.stderr);
  assert.match(r.stdout, /^cEOS\s+4\.32\.2F\s+4\.32\.10F\s+4\.33\.1F\s+outdated$/m);
  assert.match(r.stdout, /^vEOS-lab\s+4\.31\.5M\s+4\.31\.5M\s+4\.31\.5M\s+up to date$/m);
  r = await run(['outdated', '--json']);
  assert.deepEqual(jsonLines(r.stdout).find((e) => e.name === 'cEOS'), {
    type: 'outdated', name: 'cEOS', file: 'cEOS-lab-4.32.2F.tar.xz', current: '4.32.2F', branch: '4.32.10F', latest: '4.33.1F', outdated: true,
  });

  r = await run(['update', '--no-images']);
  ok(r);
  assert.match(r.stdout, /cEOS: 4\.32\.2F → 4\.32\.10F \(image arista\/ceos:4\.32\.10F\)/);
  let e = (await manifest()).artifacts.cEOS!;
  assert.equal(e.url, 'arista:cEOS-lab-4.32.10F.tar.xz');
  assert.equal(e.path, 'images/ceos-4.32.10F.tar.xz');
  assert.equal(e.image, 'arista/ceos:4.32.10F');
  assert.equal(e.size, fake.body('cEOS-lab-4.32.10F.tar.xz').length);
  assert.deepEqual(e.checksums, { sha512: fake.sha512('cEOS-lab-4.32.10F.tar.xz') });
  assert.match(String((e.arista as { path: string }).path), /\/EOS-4\.32\.10F\/cEOS-lab\/cEOS-lab-4\.32\.10F\.tar\.xz$/);
  assert.deepEqual(await fs.readFile(path.join(p.dir, 'artifacts', 'images', 'ceos-4.32.10F.tar.xz')), fake.body('cEOS-lab-4.32.10F.tar.xz'));

  // An update that fails (a wrong sha512) leaves its entry as it was.
  fake.opts.wrongSha512.add('cEOS-lab-4.33.1F.tar.xz');
  const before = await fs.readFile(p.manifestPath, 'utf8');
  r = await run(['update', 'cEOS', '--latest', '--no-images']);
  assert.equal(r.code, 1);
  assert.equal(await fs.readFile(p.manifestPath, 'utf8'), before);
  fake.opts.wrongSha512.clear();
  ok(await run(['update', 'cEOS', '--latest', '--no-images']));
  e = (await manifest()).artifacts.cEOS!;
  assert.equal(e.url, 'arista:cEOS-lab-4.33.1F.tar.xz');
  assert.equal((await run(['outdated'])).code, 0);

  r = await run(['versions', 'arista:cEOS', '--branch', '4.32']);
  ok(r);
  assert.deepEqual(r.stdout.trim().split('\n').map((l) => l.split(/\s+/)[0]), ['4.32.10F', '4.32.9F', '4.32.2.1F', '4.32.2F', '4.32.1F']);
  r = await run(['versions', 'arista:cEOS', '--release-type', 'M', '--json']);
  assert.deepEqual(jsonLines(r.stdout).map((v) => [v.version, v.section, v.latest]), [
    ['4.31.5M', 'Active Releases', true], ['4.31.4M', 'Active Releases', false], ['4.30.6M', 'Support Only Releases', false],
  ]);
  // The folder tree came from the store's cache after the first command.
  assert.equal(fake.calls.tree, 1);
});

test('add --from-clab: kinds and nodes images (with ${VAR:-default}) mapped to Arista downloads under their exact tags; others reported', async (t) => {
  const { p, run, manifest } = await setup(t);
  await fs.writeFile(path.join(p.dir, 'lab.clab.yml'), [
    'name: lab',
    'topology:',
    '  kinds:',
    '    ceos:',
    '      image: ${CEOS_IMAGE:-ceos:4.32.1F}',
    '    linux:',
    '      image: alpine:3.20',
    '  nodes:',
    '    spine1: { kind: ceos }',
    '    leaf1:',
    '      kind: ceos',
    '      image: arista/ceos:4.31.4M',
    '    leaf2:',
    '      kind: ceos',
    '      image: arista/ceos:4.31.4M',
    '    host: { kind: linux }',
    '    vr: { kind: vr-veos, image: vrnetlab/vr-veos:4.32.1F }',
    '',
  ].join('\n'));
  const r = await run(['add', '--from-clab', 'lab.clab.yml', '--no-images']);
  ok(r);
  const m = (await manifest()).artifacts;
  assert.deepEqual(Object.keys(m).sort(), ['cEOS-4.31.4M', 'cEOS-4.32.1F']);
  assert.equal(m['cEOS-4.32.1F']!.url, 'arista:cEOS-lab-4.32.1F.tar.xz');
  assert.equal(m['cEOS-4.32.1F']!.image, 'ceos:4.32.1F');
  assert.equal(m['cEOS-4.31.4M']!.image, 'arista/ceos:4.31.4M');
  assert.match(String(m['cEOS-4.31.4M']!.digest), /^sha256:/);
  assert.match(r.stderr, /warning: alpine:3\.20 \(kinds\.linux\): not an Arista image/);
  assert.match(r.stderr, /warning: vrnetlab\/vr-veos:4\.32\.1F \(nodes\.vr\): not an Arista image/);

  // Run again with the variable set: the new image is added, the others are already there.
  const again = await run(['add', '--from-clab', 'lab.clab.yml', '--no-images'], { CEOS_IMAGE: 'ceos:4.33.1F' });
  ok(again);
  assert.match(again.stdout, /arista\/ceos:4\.31\.4M: already in hoard\.json as "cEOS-4\.31\.4M"/);
  assert.equal((await manifest()).artifacts['cEOS-4.33.1F']!.image, 'ceos:4.33.1F');
});

test('every --json line of the vendor commands matches schemas/events.schema.json; every new command has --help with examples', async (t) => {
  const { Ajv2020 } = await import('ajv/dist/2020.js');
  const schema = JSON.parse(await fs.readFile(path.join(ROOT, 'schemas', 'events.schema.json'), 'utf8'));
  const validate = new Ajv2020({ allErrors: true, strict: true }).compile(schema);
  const { run } = await setup(t);
  const seen = new Set<string>();
  for (const args of [
    ['add', 'arista:cEOS@4.32.1F', '--no-images', '--image', 'arista/ceos:4.32.1F'],
    ['outdated'],
    ['versions', 'arista:cEOS', '--branch', '4.33'],
    ['update', '--no-images'],
    ['add', 'arista:cEOS@4.99.1F', '--no-images'],
  ]) {
    const r = await run([...args, '--json']);
    for (const e of jsonLines(r.stdout)) {
      if (!validate(e)) assert.fail(`${args.join(' ')}: ${JSON.stringify(e)} does not match: ${JSON.stringify(validate.errors).slice(0, 800)}`);
      seen.add(String(e.type));
    }
  }
  for (const type of ['resolved', 'outdated', 'version', 'artifact', 'summary', 'error']) assert.ok(seen.has(type), `no "${type}" event seen`);
  for (const cmd of ['outdated', 'update', 'versions', 'add']) {
    const h = await run([cmd, '--help']);
    ok(h);
    assert.match(h.stdout, /Examples:/);
  }
});

test('done when: add arista:cEOS@latest --image imports arista/ceos:<v> with podman; a teammate\'s sync on a fresh store fetches, verifies and imports it', { skip: podmanSkip }, async (t) => {
  const { execFileSync } = await import('node:child_process');
  const podman = (...args: string[]) => execFileSync('podman', args, { encoding: 'utf8' }).trim();
  const ref = 'arista/ceos:4.33.1F';
  const rmi = () => {
    try {
      execFileSync('podman', ['rmi', '-f', ref], { stdio: 'ignore' });
    } catch {}
  };
  rmi();
  t.after(rmi);
  // A tiny root filesystem, like cEOS-lab's, as the 4.33.1F file.
  const work = await fs.mkdtemp(path.join(p0(), 'hoard-rootfs-'));
  t.after(() => fs.rm(work, { recursive: true, force: true }));
  await fs.mkdir(path.join(work, 'root', 'etc'), { recursive: true });
  await fs.writeFile(path.join(work, 'root', 'etc', 'Eos-release'), 'Arista Networks EOS 4.33.1F\n');
  execFileSync('tar', ['-C', path.join(work, 'root'), '-cf', path.join(work, 'r.tar'), '.']);
  execFileSync('xz', ['-f', '-T1', path.join(work, 'r.tar')]);
  const rootfs = await fs.readFile(path.join(work, 'r.tar.xz'));
  const { fake, p, run, manifest } = await setup(t, { bodies: { 'cEOS-lab-4.33.1F.tar.xz': rootfs } });

  const r = await run(['add', 'arista:cEOS@latest', '--engine', 'podman', '--image']);
  ok(r);
  assert.match(r.stdout, /imported as arista\/ceos:4\.33\.1F/);
  const entry = (await manifest()).artifacts.cEOS!;
  assert.equal(entry.image, ref);
  assert.equal(podman('image', 'inspect', '--format', '{{index .Config.Labels "io.hoard.digest"}}', ref), entry.digest);

  rmi();
  const mate = await project(t, await fs.readFile(p.manifestPath, 'utf8'));
  const s = await hoard(['sync', '--engine', 'podman'], { cwd: mate.dir, store: mate.store, env: { HOARD_ARISTA_URL: fake.url, ARISTA_TOKEN: GOOD_TOKEN } });
  ok(s);
  assert.match(s.stdout, /cEOS {2}downloaded .*imported as arista\/ceos:4\.33\.1F/);
  assert.equal(podman('image', 'inspect', '--format', '{{index .Config.Labels "io.hoard.digest"}}', ref), entry.digest);
});

test('one session for a whole sync of several Arista artifacts; a folder tree older than its expiry is fetched again', async (t) => {
  const { fake, p, run } = await setup(t);
  ok(await run(['add', 'arista:cEOS@4.32.1F', '--no-images']));
  ok(await run(['add', 'arista:vEOS-lab@4.31.5M', '--no-images']));
  const mate = await project(t, await fs.readFile(p.manifestPath, 'utf8'));
  const before = { ...fake.calls };
  ok(await hoard(['sync', '--no-images'], { cwd: mate.dir, store: mate.store, env: { HOARD_ARISTA_URL: fake.url, ARISTA_TOKEN: GOOD_TOKEN } }));
  assert.deepEqual({ session: fake.calls.session - before.session, tree: fake.calls.tree - before.tree, link: fake.calls.link - before.link }, { session: 1, tree: 0, link: 2 });

  // The cached tree (v1/cache/arista-tree-*.json) is used for 10 minutes, then fetched again.
  const trees = fake.calls.tree;
  ok(await run(['versions', 'arista:cEOS']));
  assert.equal(fake.calls.tree, trees);
  const cacheDir = path.join(p.store, 'v1', 'cache');
  const [file] = await fs.readdir(cacheDir);
  const cached = JSON.parse(await fs.readFile(path.join(cacheDir, file!), 'utf8'));
  await fs.writeFile(path.join(cacheDir, file!), JSON.stringify({ ...cached, fetchedAt: Date.now() - 11 * 60_000 }));
  ok(await run(['versions', 'arista:cEOS']));
  assert.equal(fake.calls.tree, trees + 1);
  assertNoSecrets(fake, await allText(p.store), 'the store');
});

test('a session code that expires during a run is replaced once, and the download goes on', async (t) => {
  // The sidecar's link is the first; the session expires before the file's link is asked for.
  const { fake, run, manifest } = await setup(t, { revokeSessionsAfterLinks: 1 });
  const r = await run(['add', 'arista:cEOS@4.32.1F', '--no-images']);
  ok(r);
  assert.equal(fake.calls.session, 2);
  assert.equal((await manifest()).artifacts.cEOS!.size, fake.body('cEOS-lab-4.32.1F.tar.xz').length);
});

test('a locked arista.path that answers Not Found: sync finds the file by name and writes the new path back to hoard.json, touching nothing else', async (t) => {
  const { fake, p, run } = await setup(t);
  ok(await run(['add', 'arista:cEOS@4.32.1F', '--no-images']));
  ok(await run(['add', 'arista:vEOS-lab@4.31.5M', '--no-images']));
  const committed = await fs.readFile(p.manifestPath, 'utf8');
  const oldPath = JSON.parse(committed).artifacts.cEOS.arista.path as string;
  // Arista moves the file: the old path answers Not Found, the tree lists it elsewhere.
  const newPath = '/support/download/EOS-USA/Active Releases/4.32/EOS-4.32.1F/cEOS-lab-moved/cEOS-lab-4.32.1F.tar.xz';
  fake.opts.gone.add(oldPath);
  fake.files.find((f) => f.path === oldPath)!.path = newPath;
  const env = { HOARD_ARISTA_URL: fake.url, ARISTA_TOKEN: GOOD_TOKEN };

  // --frozen never writes hoard.json: the download works, the file is left as it was.
  const frozen = await project(t, committed);
  ok(await hoard(['sync', '--no-images', '--frozen'], { cwd: frozen.dir, store: frozen.store, env }));
  assert.equal(await fs.readFile(frozen.manifestPath, 'utf8'), committed);

  const mate = await project(t, committed);
  const r = await hoard(['sync', '--no-images'], { cwd: mate.dir, store: mate.store, env });
  ok(r);
  // Only that entry's arista.path changed, byte for byte.
  assert.equal(await fs.readFile(mate.manifestPath, 'utf8'), committed.replace(oldPath, newPath));
  assert.match(r.stdout, /moved: the recorded arista\.path answered Not Found; found at \/support\/download\/EOS-USA\/Active Releases\/4\.32\/EOS-4\.32\.1F\/cEOS-lab-moved\//);
  assert.match(r.stderr, /warning: cEOS: Arista no longer has cEOS-lab-4\.32\.1F\.tar\.xz at its recorded path; hoard\.json now records arista\.path \/support\/download\/EOS-USA\/Active Releases\/4\.32\/EOS-4\.32\.1F\/cEOS-lab-moved\//);
  assert.match(r.stderr, /hint: commit hoard\.json/);
  assertNoSecrets(fake, r.stdout + r.stderr, 'sync output');
  // The next sync from the recorded path needs no folder tree.
  const trees = fake.calls.tree;
  const next = await project(t, await fs.readFile(mate.manifestPath, 'utf8'));
  ok(await hoard(['sync', '--no-images'], { cwd: next.dir, store: next.store, env }));
  assert.equal(fake.calls.tree, trees);

  // --json: the artifact event says where it moved; --no-store records it too.
  const direct = await project(t, committed);
  const j = await hoard(['sync', '--no-images', '--no-store', '--json'], { cwd: direct.dir, store: direct.store, env });
  ok(j);
  const art = jsonLines(j.stdout).find((e) => e.type === 'artifact' && e.name === 'cEOS')!;
  assert.deepEqual(art.moved, { from: oldPath, to: newPath });
  assert.equal(jsonLines(j.stdout).find((e) => e.type === 'artifact' && e.name === 'vEOS-lab')!.moved, undefined);
  assert.equal(await fs.readFile(direct.manifestPath, 'utf8'), committed.replace(oldPath, newPath));
});

test('hoard fetch arista:<file> and arista:<format>@<version>: the same vendor source (fresh links), cached by the store, no secrets', async (t) => {
  const { fake, p, run } = await setup(t);
  const name = 'cEOS-lab-4.32.1F.tar.xz';
  const r = await run(['fetch', `arista:${name}`, '-o', 'x.tar.xz']);
  ok(r);
  assert.equal(r.stdout, `${path.join(p.dir, 'x.tar.xz')}\n`);
  assert.deepEqual(await fs.readFile(path.join(p.dir, 'x.tar.xz')), fake.body(name));
  assert.match(r.stderr, /x\.tar\.xz {2}downloaded 64\.0 KiB, linked/);
  assertNoSecrets(fake, r.stdout + r.stderr, 'fetch output');
  assertNoSecrets(fake, await allText(p.store), 'the store');
  const gets = fake.fileRequests.length;
  const links = fake.calls.link;

  // The second fetch: from the store's URL index, no request at all.
  const again = await run(['fetch', `arista:${name}`, '--json']);
  ok(again);
  assert.equal(jsonLines(again.stdout).at(-1)!.result, 'cached');
  assert.equal(fake.fileRequests.length, gets);
  assert.equal(fake.calls.link, links);

  // A format and version, resolved through the folder tree; --no-store straight into the file.
  const direct = await run(['fetch', 'arista:vEOS-lab@4.31.5M', '--no-store', '-o', 'veos.vmdk', '--json']);
  ok(direct);
  const f = jsonLines(direct.stdout).at(-1)!;
  assert.equal(f.result, 'downloaded');
  assert.equal(f.output, 'written');
  assert.deepEqual(await fs.readFile(path.join(p.dir, 'veos.vmdk')), fake.body('vEOS-lab-4.31.5M.vmdk'));

  // Arista's published sha512 is checked in the same pass: a mismatch keeps nothing.
  const blobs = await listTree(path.join(p.store, 'v1', 'blobs'));
  fake.opts.wrongSha512.add('EOS64-4.31.4M.swi');
  const bad = await run(['fetch', 'arista:EOS64-4.31.4M.swi', '-o', 'eos.swi']);
  assert.equal(bad.code, 1, bad.stderr);
  assert.match(bad.stderr, /sha512/);
  assert.equal(bad.stdout, '');
  assert.deepEqual(await listTree(path.join(p.store, 'v1', 'blobs')), blobs, 'no blob');
  assert.deepEqual((await fs.readdir(p.dir)).filter((n) => n.startsWith('eos')), [], 'no output, no temp file');

  // A file Arista does not list: exit 1, Arista's words, no mirror to suggest.
  const missing = await run(['fetch', 'arista:cEOS-lab-9.99.9F.tar.xz', '-o', 'nope.tar.xz']);
  assert.equal(missing.code, 1, missing.stderr);
  assert.match(missing.stderr, /Arista lists no cEOS-lab-9\.99\.9F\.tar\.xz/);
  assert.doesNotMatch(missing.stderr, /mirror/);
});
