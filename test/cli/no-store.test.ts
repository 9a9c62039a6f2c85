// The store disabled (--no-store, HOARD_NO_STORE, "enabled": false in the configuration):
// artifacts go straight to their outputs, verified and atomic, and nothing is kept.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, promises as fs, statSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { hoard, jsonLines, listTree, project, randomData, sha256, startServer, tmpDir } from '../helpers.ts';

test('--no-store: downloads go straight to the outputs, verified; no store folder, no blob; an unlocked entry is locked', async (t) => {
  const a = randomData(300_000);
  const b = randomData(2_000);
  const srv = await startServer(t, { '/a.bin': a, '/tool.run': b });
  const p = await project(t, {
    version: 1,
    artifacts: {
      a: { url: srv.url('/a.bin'), path: 'images/a.bin', digest: `sha256:${sha256(a)}`, size: a.length, checksums: { md5: createHash('md5').update(a).digest('hex') } },
      tool: { url: srv.url('/tool.run'), executable: true },
    },
  });

  const r = await p.run('sync', '--no-store', '--json');
  assert.equal(r.code, 0, r.stderr);
  const events = jsonLines(r.stdout);
  assert.equal(events[0]!.noStore, true);
  const done = Object.fromEntries(events.filter((e) => e.type === 'artifact').map((e) => [e.name, e]));
  assert.equal(done.a!.blob, 'downloaded');
  assert.equal(done.a!.output, 'written');
  assert.equal(done.tool!.output, 'written');
  assert.equal(existsSync(p.store), false, 'the store folder was not even created');
  assert.deepEqual(await fs.readFile(path.join(p.dir, 'artifacts', 'images', 'a.bin')), a);
  assert.deepEqual(await fs.readFile(path.join(p.dir, 'artifacts', 'tool.run')), b);
  assert.equal(statSync(path.join(p.dir, 'artifacts', 'tool.run')).mode & 0o777, 0o755);
  assert.equal(statSync(path.join(p.dir, 'artifacts', 'images', 'a.bin')).mode & 0o777, 0o644);
  assert.deepEqual(await listTree(path.join(p.dir, 'artifacts')), ['images', 'images/a.bin', 'tool.run'], 'no temp file left behind');
  // The unlocked entry got its digest and size in hoard.json.
  const m = JSON.parse(await fs.readFile(p.manifestPath, 'utf8'));
  assert.equal(m.artifacts.tool.digest, `sha256:${sha256(b)}`);
  assert.equal(m.artifacts.tool.size, b.length);

  // Again: the outputs are right (re-hashed: there is no record to trust), no request.
  const again = await p.run('sync', '--no-store');
  assert.equal(again.code, 0, again.stderr);
  assert.match(again.stdout, /^a {2}up to date \(no store\)/m);
  assert.equal(srv.total(), 2);
  // status agrees (with the store, it would want to copy the outputs into it: exit 3).
  assert.equal((await p.run('status', '--no-store')).code, 0);
  assert.equal((await p.run('status')).code, 3);
  assert.equal(existsSync(p.store), false);

  // A deleted output is downloaded again, since nothing was kept.
  await fs.rm(path.join(p.dir, 'artifacts', 'images', 'a.bin'));
  assert.equal((await p.run('sync', '--no-store')).code, 0);
  assert.deepEqual(await fs.readFile(path.join(p.dir, 'artifacts', 'images', 'a.bin')), a);
  assert.equal(srv.hits.get('/a.bin'), 2);
  assert.equal(existsSync(p.store), false);
});

test('--no-store still verifies: wrong bytes, a wrong checksum or a short body is exit 1 with no output file, and an existing output is untouched', async (t) => {
  const good = randomData(100_000);
  const bad = Buffer.from(good);
  bad[500] = bad[500]! ^ 0xff;
  const srv = await startServer(t, {
    '/wrong.bin': bad,
    '/md5.bin': good,
    '/short.bin': { body: good, dropAfter: 40_000 },
  });
  const digest = `sha256:${sha256(good)}`;
  const p = await project(t, {
    version: 1,
    artifacts: {
      wrong: { url: srv.url('/wrong.bin'), digest, size: good.length },
      md5: { url: srv.url('/md5.bin'), checksums: { md5: '0'.repeat(32) } },
      short: { url: srv.url('/short.bin'), digest, size: good.length },
    },
  });
  const before = await fs.readFile(p.manifestPath, 'utf8');
  const r = await p.run('sync', '--no-store', '--json');
  assert.equal(r.code, 1, r.stderr);
  const done = Object.fromEntries(jsonLines(r.stdout).filter((e) => e.type === 'artifact').map((e) => [e.name, e as { blob: string; output: string; error: { code: string; message: string } }]));
  assert.equal(done.wrong!.blob, 'failed');
  assert.equal(done.wrong!.error.code, 'E_INTEGRITY');
  assert.match(done.wrong!.error.message, /digest mismatch/);
  assert.equal(done.md5!.error.code, 'E_INTEGRITY');
  assert.match(done.md5!.error.message, /md5 mismatch/);
  assert.equal(done.short!.blob, 'failed');
  // No output, not even a temp file; no store; hoard.json not locked with the unverified bytes.
  assert.deepEqual(await listTree(path.join(p.dir, 'artifacts')), []);
  assert.equal(existsSync(p.store), false);
  assert.equal(await fs.readFile(p.manifestPath, 'utf8'), before);

  // An output already there is replaced only by verified bytes: with --force and wrong bytes, it stays.
  await fs.mkdir(path.join(p.dir, 'artifacts'), { recursive: true });
  await fs.writeFile(path.join(p.dir, 'artifacts', 'wrong.bin'), 'my own file');
  const forced = await p.run('sync', 'wrong', '--no-store', '--force');
  assert.equal(forced.code, 1);
  assert.equal(await fs.readFile(path.join(p.dir, 'artifacts', 'wrong.bin'), 'utf8'), 'my own file');
  assert.deepEqual(await listTree(path.join(p.dir, 'artifacts')), ['wrong.bin']);
});

test('--no-store never overwrites someone else\'s file without --force', async (t) => {
  const data = randomData(10_000);
  const srv = await startServer(t, { '/x.bin': data });
  const p = await project(t, { version: 1, artifacts: { x: { url: srv.url('/x.bin'), digest: `sha256:${sha256(data)}`, size: data.length } } });
  await fs.mkdir(path.join(p.dir, 'artifacts'));
  await fs.writeFile(path.join(p.dir, 'artifacts', 'x.bin'), 'precious');
  const r = await p.run('sync', '--no-store');
  assert.equal(r.code, 1);
  assert.match(r.stdout, /^x {2}not downloaded, conflict/m);
  assert.match(r.stderr, /hint: move the file away, or run `hoard sync --force`/);
  assert.equal(srv.total(), 0, 'nothing downloaded for a file that cannot be written');
  assert.equal(await fs.readFile(path.join(p.dir, 'artifacts', 'x.bin'), 'utf8'), 'precious');
  const forced = await p.run('sync', '--no-store', '--force');
  assert.equal(forced.code, 0, forced.stderr);
  assert.deepEqual(await fs.readFile(path.join(p.dir, 'artifacts', 'x.bin')), data);
  assert.equal(existsSync(p.store), false);
});

test('the store is disabled the same way by "enabled": false in the configuration and by HOARD_NO_STORE; add too', async (t) => {
  const data = randomData(5_000);
  const srv = await startServer(t, { '/x.bin': data, '/y.bin': data });
  const base = tmpDir(t);
  const dir = path.join(base, 'project');
  const store = path.join(base, 'store');
  const config = path.join(base, 'config');
  await fs.mkdir(dir);
  await fs.mkdir(path.join(config, 'hoard'), { recursive: true });
  await fs.writeFile(path.join(config, 'hoard', 'config.json'), JSON.stringify({ enabled: false }));
  await fs.writeFile(path.join(dir, 'hoard.json'), JSON.stringify({ version: 1, artifacts: { x: { url: srv.url('/x.bin') } } }));
  const run = (args: string[], env: Record<string, string> = {}) => hoard(args, { cwd: dir, store, env: { XDG_CONFIG_HOME: config, ...env } });

  const fromFile = await run(['sync']);
  assert.equal(fromFile.code, 0, fromFile.stderr);
  assert.match(fromFile.stdout, /written \(no store\)/);
  assert.equal(existsSync(store), false);

  const added = await run(['add', srv.url('/y.bin')]);
  assert.equal(added.code, 0, added.stderr);
  assert.deepEqual(await fs.readFile(path.join(dir, 'artifacts', 'y.bin')), data);
  assert.equal(JSON.parse(await fs.readFile(path.join(dir, 'hoard.json'), 'utf8')).artifacts['y.bin'].digest, `sha256:${sha256(data)}`);
  assert.equal(existsSync(store), false);

  // HOARD_NO_STORE=0 beats the file: this sync uses the store (the outputs go into it, no download).
  const on = await run(['sync'], { HOARD_NO_STORE: '0' });
  assert.equal(on.code, 0, on.stderr);
  assert.ok(existsSync(path.join(store, 'v1', 'blobs', 'sha256', sha256(data))));
  assert.equal(srv.total(), 2);

  // HOARD_NO_STORE=1 disables it without a configuration file.
  await fs.rm(path.join(dir, 'artifacts'), { recursive: true });
  const off = await hoard(['sync', '--json'], { cwd: dir, store: path.join(base, 'other'), env: { HOARD_NO_STORE: '1' } });
  assert.equal(off.code, 0, off.stderr);
  assert.equal(jsonLines(off.stdout)[0]!.noStore, true);
  assert.equal(existsSync(path.join(base, 'other')), false);
  assert.equal(srv.total(), 4);
});
