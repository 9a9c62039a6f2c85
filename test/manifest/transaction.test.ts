// hoard.json is written as a transaction (src/manifest/commit.ts): under a lock beside it, read
// again, only this run's changes applied, written. Real CLI processes, a real HTTP server that
// holds its answers until the test lets them go (events, not sleeps).
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import type http from 'node:http';
import path from 'node:path';
import { test } from 'node:test';
import { hoard, jsonLines, project, randomData, sha256, startServer, tmpDir, type Handler } from '../helpers.ts';

/** Answers held until `release()`; `arrived(n)` resolves once n requests are held. */
function gate() {
  const held: Array<() => void> = [];
  const waiters: Array<{ n: number; resolve: () => void }> = [];
  let open = false;
  const handler = (body: Buffer): Handler => (_req: http.IncomingMessage, res: http.ServerResponse) => {
    const send = () => res.writeHead(200, { 'content-length': String(body.length) }).end(body);
    if (open) return send();
    held.push(send);
    for (const w of waiters) if (held.length >= w.n) w.resolve();
  };
  return {
    handler,
    arrived: (n: number) => new Promise<void>((resolve) => (held.length >= n ? resolve() : waiters.push({ n, resolve }))),
    release: () => {
      open = true;
      for (const send of held.splice(0)) send();
    },
  };
}

/** A body sent in two halves: the first at once, the second when the test says. */
function halves(body: Buffer) {
  let first!: () => void;
  const firstSent = new Promise<void>((r) => (first = r));
  let finish!: () => void;
  const rest = new Promise<void>((r) => (finish = r));
  const handler: Handler = (_req, res) => {
    res.writeHead(200, { 'content-length': String(body.length) });
    res.write(body.subarray(0, body.length / 2), () => first());
    void rest.then(() => res.end(body.subarray(body.length / 2)));
  };
  return { handler, firstSent, finish };
}

const readManifest = async (file: string) => JSON.parse(await fs.readFile(file, 'utf8')) as { artifacts: Record<string, Record<string, unknown>> };

test('two `hoard add` at once: both entries survive, each with its digest', async (t) => {
  const a = randomData(30_000);
  const b = randomData(40_000);
  const g = gate();
  const srv = await startServer(t, { '/a.bin': g.handler(a), '/b.bin': g.handler(b) });
  const p = await project(t, { version: 1, artifacts: {} });
  const runs = [p.run('add', srv.url('/a.bin')), p.run('add', srv.url('/b.bin'))] as const;
  await g.arrived(2); // both read hoard.json before either wrote it
  g.release();
  const [ra, rb] = await Promise.all(runs);
  assert.equal(ra.code, 0, ra.stderr);
  assert.equal(rb.code, 0, rb.stderr);
  const m = await readManifest(p.manifestPath);
  assert.deepEqual(Object.keys(m.artifacts).sort(), ['a.bin', 'b.bin']);
  assert.equal(m.artifacts['a.bin']!.digest, `sha256:${sha256(a)}`);
  assert.equal(m.artifacts['b.bin']!.digest, `sha256:${sha256(b)}`);
  await assert.rejects(fs.stat(`${p.manifestPath}.lock`), { code: 'ENOENT' }, 'the lock is released');
});

test('three `hoard sync <name>` at once on unlocked entries: all three digests are locked', async (t) => {
  const bodies = { a: randomData(10_000), b: randomData(20_000), c: randomData(30_000) };
  const g = gate();
  const srv = await startServer(t, { '/a.bin': g.handler(bodies.a), '/b.bin': g.handler(bodies.b), '/c.bin': g.handler(bodies.c) });
  const p = await project(t, {
    version: 1,
    artifacts: { a: { url: srv.url('/a.bin') }, b: { url: srv.url('/b.bin') }, c: { url: srv.url('/c.bin') } },
  });
  const runs = (['a', 'b', 'c'] as const).map((n) => p.run('sync', n, '--no-images'));
  await g.arrived(3);
  g.release();
  for (const r of await Promise.all(runs)) assert.equal(r.code, 0, r.stderr);
  const m = await readManifest(p.manifestPath);
  for (const n of ['a', 'b', 'c'] as const) {
    assert.equal(m.artifacts[n]!.digest, `sha256:${sha256(bodies[n])}`, n);
    assert.equal(m.artifacts[n]!.size, bodies[n].length, n);
  }
});

test('a hand edit made while a download runs survives the lock written after it', async (t) => {
  const body = randomData(64_000);
  const h = halves(body);
  const srv = await startServer(t, { '/big.bin': h.handler });
  const p = await project(t, { version: 1, artifacts: { big: { url: srv.url('/big.bin') }, other: { url: 'http://127.0.0.1:9/other.bin' } } });
  const run = p.run('sync', 'big', '--no-images', '--json');
  await h.firstSent;
  // The person edits hoard.json meanwhile: a new entry, and a change to another one.
  const edited = await readManifest(p.manifestPath);
  edited.artifacts.manual = { url: 'http://127.0.0.1:9/manual.iso' };
  edited.artifacts.other!.link = 'copy';
  await fs.writeFile(p.manifestPath, `${JSON.stringify(edited, null, 2)}\n`);
  h.finish();
  const r = await run;
  assert.equal(r.code, 0, r.stderr);
  const m = await readManifest(p.manifestPath);
  assert.deepEqual(m.artifacts.manual, { url: 'http://127.0.0.1:9/manual.iso' }, 'the new entry is kept');
  assert.equal(m.artifacts.other!.link, 'copy', 'the edit of another entry is kept');
  assert.equal(m.artifacts.big!.digest, `sha256:${sha256(body)}`, 'and the download is locked');
  assert.equal(jsonLines(r.stdout).at(-1)!.manifestUpdated, true);
});

test('an entry whose url changed during its download is not locked to the old bytes: a warning, exit 1', async (t) => {
  const body = randomData(64_000);
  const h = halves(body);
  const srv = await startServer(t, { '/v1.bin': h.handler });
  const p = await project(t, { version: 1, artifacts: { big: { url: srv.url('/v1.bin'), path: 'big.bin' } } });
  const run = p.run('sync', '--no-images', '--json');
  await h.firstSent;
  const edited = await readManifest(p.manifestPath);
  edited.artifacts.big!.url = srv.url('/v2.bin');
  await fs.writeFile(p.manifestPath, `${JSON.stringify(edited, null, 2)}\n`);
  const before = await fs.readFile(p.manifestPath, 'utf8');
  h.finish();
  const r = await run;
  assert.equal(r.code, 1, r.stderr);
  assert.equal(await fs.readFile(p.manifestPath, 'utf8'), before, 'hoard.json is left as the person wrote it');
  const events = jsonLines(r.stdout);
  const warning = events.find((e) => e.type === 'warning' && e.name === 'big');
  assert.ok(warning, r.stdout);
  assert.match(String(warning.message), /url of "big" .* changed while it was downloaded/);
  assert.equal(events.at(-1)!.manifestConflicts, 1);
});

test('a second `hoard add` of the same name during the first: the first one wins, the second says so (exit 1)', async (t) => {
  const a = randomData(10_000);
  const b = randomData(10_000);
  const g = gate();
  const srv = await startServer(t, { '/one/x.bin': g.handler(a), '/two/x.bin': g.handler(b) });
  const p = await project(t, { version: 1, artifacts: {} });
  const first = p.run('add', srv.url('/one/x.bin'));
  await g.arrived(1);
  const second = p.run('add', srv.url('/two/x.bin'));
  await g.arrived(2);
  g.release();
  const results = await Promise.all([first, second]);
  const codes = results.map((r) => r.code).sort();
  assert.deepEqual(codes, [0, 1], results.map((r) => r.stderr).join('\n'));
  const loser = results.find((r) => r.code === 1)!;
  assert.match(loser.stderr, /someone else added an artifact named "x.bin"/);
  const m = await readManifest(p.manifestPath);
  const winner = results[0]!.code === 0 ? a : b;
  assert.equal(m.artifacts['x.bin']!.digest, `sha256:${sha256(winner)}`);
});

test('hoard.json made invalid during a download is not rewritten: exit 2 naming the file', async (t) => {
  const body = randomData(64_000);
  const h = halves(body);
  const srv = await startServer(t, { '/big.bin': h.handler });
  const p = await project(t, { version: 1, artifacts: { big: { url: srv.url('/big.bin') } } });
  const run = p.run('sync', '--no-images');
  await h.firstSent;
  const broken = '{ "version": 1, "artifacts": { "big": { "url": 42 } } }\n';
  await fs.writeFile(p.manifestPath, broken);
  h.finish();
  const r = await run;
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /hoard\.json changed while hoard ran and is no longer a valid manifest/);
  assert.match(r.stderr, /\/artifacts\/big\/url/);
  assert.equal(await fs.readFile(p.manifestPath, 'utf8'), broken);
});

test('a lock left beside hoard.json by a killed hoard is recovered', async (t) => {
  const body = randomData(1000);
  const srv = await startServer(t, { '/x.bin': body });
  const base = tmpDir(t);
  const dir = path.join(base, 'p');
  await fs.mkdir(dir);
  const file = path.join(dir, 'hoard.json');
  await fs.writeFile(file, JSON.stringify({ version: 1, artifacts: { x: { url: srv.url('/x.bin') } } }));
  // A pid that is not running on this host: the holder is gone.
  await fs.writeFile(`${file}.lock`, JSON.stringify({ pid: 2 ** 22 + 12345, host: (await import('node:os')).hostname(), start: null, nonce: 'x' }));
  const r = await hoard(['sync', '--no-images'], { cwd: dir, store: path.join(base, 'store') });
  assert.equal(r.code, 0, r.stderr);
  assert.equal((await readManifest(file)).artifacts.x!.digest, `sha256:${sha256(body)}`);
  await assert.rejects(fs.stat(`${file}.lock`), { code: 'ENOENT' });
});

test("a 'relocate' change moves only that entry's arista.path; a path or url changed meanwhile wins (a conflict); a broken file is not rewritten", async (t) => {
  const { commitManifest } = await import('../../src/manifest/commit.ts');
  const dir = tmpDir(t);
  const file = path.join(dir, 'hoard.json');
  const digest = `sha256:${'a'.repeat(64)}` as const;
  const doc = {
    version: 1,
    artifacts: {
      ceos: { url: 'arista:cEOS-lab-4.32.1F.tar.xz', arista: { path: '/support/download/EOS-USA/old/cEOS-lab-4.32.1F.tar.xz' }, digest, size: 10 },
      other: { url: 'https://example.com/x.bin', digest, size: 10 },
    },
  };
  const text = `${JSON.stringify(doc, null, 2)}\n`;
  await fs.writeFile(file, text);
  const move = { kind: 'relocate' as const, name: 'ceos', url: 'arista:cEOS-lab-4.32.1F.tar.xz', from: '/support/download/EOS-USA/old/cEOS-lab-4.32.1F.tar.xz', to: '/support/download/EOS-USA/new/cEOS-lab-4.32.1F.tar.xz' };

  const r = await commitManifest(file, [move]);
  assert.equal(r.written, true);
  assert.deepEqual(r.conflicts, []);
  assert.equal(await fs.readFile(file, 'utf8'), text.replace('/old/', '/new/'));

  // Someone else moved it elsewhere meanwhile: theirs stays.
  const theirs = text.replace('/old/', '/theirs/');
  await fs.writeFile(file, theirs);
  const c = await commitManifest(file, [move]);
  assert.equal(c.written, false);
  assert.match(c.conflicts[0]!.message, /arista\.path of "ceos" .* changed meanwhile/);
  assert.equal(await fs.readFile(file, 'utf8'), theirs);

  // The url changed (an update): not touched.
  const updated = text.replace(/cEOS-lab-4\.32\.1F\.tar\.xz"/, 'cEOS-lab-4.33.1F.tar.xz"');
  await fs.writeFile(file, updated);
  assert.match((await commitManifest(file, [move])).conflicts[0]!.message, /url of "ceos" .* changed meanwhile/);
  assert.equal(await fs.readFile(file, 'utf8'), updated);

  // A broken manifest is never rewritten.
  await fs.writeFile(file, '{ "version": 1, "artifacts": {');
  await assert.rejects(commitManifest(file, [move]), (err: { code?: string }) => err.code === 'E_MANIFEST');
  assert.equal(await fs.readFile(file, 'utf8'), '{ "version": 1, "artifacts": {');
});
