import assert from 'node:assert/strict';
import { promises as fs, statSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { hoard, jsonLines, listTree, project, randomData, sha256, startServer, tmpDir } from '../helpers.ts';

const blobFile = (store: string, hex: string) => path.join(store, 'v1', 'blobs', 'sha256', hex);

test('first sync downloads and locks; the second makes zero requests; a deleted output comes back with zero requests', async (t) => {
  const data = randomData(300_000);
  const srv = await startServer(t, { '/cEOS-lab.tar.xz': data });
  const p = await project(t, { version: 1, artifacts: { ceos: { url: srv.url('/cEOS-lab.tar.xz'), path: 'images/cEOS-lab.tar.xz' } } });

  const first = await p.run('sync');
  assert.equal(first.code, 0, first.stderr);
  assert.match(first.stdout, /ceos\s+downloaded/);
  const out = path.join(p.dir, 'artifacts', 'images', 'cEOS-lab.tar.xz');
  assert.equal(sha256(await fs.readFile(out)), sha256(data));
  const locked = JSON.parse(await fs.readFile(p.manifestPath, 'utf8'));
  assert.equal(locked.artifacts.ceos.digest, `sha256:${sha256(data)}`);
  assert.equal(locked.artifacts.ceos.size, data.length);
  assert.equal(srv.total(), 1);

  const manifestBefore = await fs.readFile(p.manifestPath);
  const second = await p.run('sync');
  assert.equal(second.code, 0, second.stderr);
  assert.equal(srv.total(), 1, 'second sync must not touch the network');
  assert.match(second.stdout, /ceos\s+cached, up to date/);
  assert.match(second.stdout, /1 hit, 0 misses/);
  assert.deepEqual(await fs.readFile(p.manifestPath), manifestBefore);

  await fs.rm(path.join(p.dir, 'artifacts'), { recursive: true });
  const third = await p.run('sync');
  assert.equal(third.code, 0, third.stderr);
  assert.equal(srv.total(), 1, 'relinking must not touch the network');
  assert.match(third.stdout, /ceos\s+cached, linked/);
  // Same filesystem: a hard link of the blob, no copy.
  assert.equal(statSync(out).ino, statSync(blobFile(p.store, sha256(data))).ino);
});

test('a blob taken out of the store by hand (removed, or moved away) while its hard-linked output stays: the next sync sees it gone and restores it from the output, with no request', async (t) => {
  const data = randomData(100_000);
  const hex = sha256(data);
  const srv = await startServer(t, { '/disk.img': data });
  const p = await project(t, { version: 1, artifacts: { disk: { url: srv.url('/disk.img'), digest: `sha256:${hex}`, size: data.length, link: 'hardlink' } } });
  assert.equal((await p.run('sync')).code, 0);
  const blob = blobFile(p.store, hex);
  const out = path.join(p.dir, 'artifacts', 'disk.img');
  for (const how of ['removed', 'moved away'] as const) {
    await fs.rm(path.join(p.dir, 'artifacts'), { recursive: true });
    assert.equal((await p.run('sync')).code, 0);
    assert.equal(statSync(out).ino, statSync(blob).ino, 'the output is a hard link of the blob');
    // The output is still the blob's inode, with the blob's size, mtime and mode.
    if (how === 'removed') await fs.rm(blob);
    else await fs.rename(blob, path.join(p.dir, 'elsewhere'));
    assert.equal(statSync(out).nlink, how === 'removed' ? 1 : 2);
    const r = await p.run('sync', '--json');
    assert.equal(r.code, 0, r.stderr);
    const ev = jsonLines(r.stdout).find((e) => e.type === 'artifact')!;
    assert.equal(ev.blob, 'adopted', `${how}: the blob is missing from the store, whatever the output's stat says`);
    assert.equal(sha256(await fs.readFile(blob)), hex);
    assert.equal(srv.total(), 1, 'no request');
    if (how === 'moved away') await fs.rm(path.join(p.dir, 'elsewhere'));
  }
  const again = await p.run('sync', '--json');
  assert.equal(jsonLines(again.stdout).find((e) => e.type === 'artifact')!.blob, 'cached');
});

test('a blob changed on disk is detected, removed, downloaded again and relinked', async (t) => {
  const data = randomData(100_000);
  const hex = sha256(data);
  const srv = await startServer(t, { '/disk.qcow2': data });
  const p = await project(t, { version: 1, artifacts: { disk: { url: srv.url('/disk.qcow2'), digest: `sha256:${hex}`, size: data.length, link: 'copy' } } });
  assert.equal((await p.run('sync')).code, 0);

  const blob = blobFile(p.store, hex);
  await fs.chmod(blob, 0o644);
  const fh = await fs.open(blob, 'r+');
  await fh.write(Buffer.from([data[500]! ^ 0xff]), 0, 1, 500);
  await fh.close();
  await fs.chmod(blob, 0o444);

  const status = await p.run('status');
  assert.equal(status.code, 3);
  assert.match(status.stdout, /corrupt/);

  const r = await p.run('sync');
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /disk\s+re-downloaded .*corrupt blob/);
  assert.match(r.stderr, /corrupt/);
  assert.equal(srv.total(), 2);
  assert.equal(sha256(await fs.readFile(blob)), hex);
  assert.equal(sha256(await fs.readFile(path.join(p.dir, 'artifacts', 'disk.qcow2'))), hex);
  // The blob is intact now: --force is what fetches it again, and the line says so.
  const forced = await p.run('sync', '--force');
  assert.equal(forced.code, 0, forced.stderr);
  assert.match(forced.stdout, /disk\s+re-downloaded .*\(--force\)/);
  assert.equal(srv.total(), 3);
});

test('a hard-linked output of a corrupted blob is replaced along with the blob', async (t) => {
  const data = randomData(50_000);
  const hex = sha256(data);
  const srv = await startServer(t, { '/f.bin': data });
  const p = await project(t, { version: 1, artifacts: { f: { url: srv.url('/f.bin'), digest: `sha256:${hex}` } } });
  assert.equal((await p.run('sync')).code, 0);
  const out = path.join(p.dir, 'artifacts', 'f.bin');
  await fs.chmod(out, 0o644); // same inode as the blob
  await fs.appendFile(out, 'x');
  const r = await p.run('sync');
  assert.equal(r.code, 0, r.stderr);
  assert.equal(sha256(await fs.readFile(out)), hex);
  assert.equal(sha256(await fs.readFile(blobFile(p.store, hex))), hex);
});

test('a server sending other bytes than the digest: exit 1, no blob, no output, manifest byte-identical', async (t) => {
  const expected = randomData(10_000);
  const served = randomData(10_000);
  const srv = await startServer(t, { '/img.tar': served });
  const p = await project(t, { version: 1, artifacts: { img: { url: srv.url('/img.tar'), digest: `sha256:${sha256(expected)}`, size: expected.length } } });
  const before = await fs.readFile(p.manifestPath);
  const r = await p.run('sync');
  assert.equal(r.code, 1);
  assert.match(r.stderr, /digest mismatch/);
  assert.match(r.stderr, new RegExp(`127\\.0\\.0\\.1:\\d+/img\\.tar`));
  assert.deepEqual(await fs.readFile(p.manifestPath), before);
  assert.deepEqual(await listTree(path.join(p.store, 'v1', 'blobs')), ['sha256']);
  assert.deepEqual(await listTree(path.join(p.store, 'v1', 'tmp')), []);
  assert.equal(await fs.stat(path.join(p.dir, 'artifacts', 'img.tar')).catch(() => null), null);
});

test('a connection dropped mid-body (no retries left) leaves no blob, only the partial file; a later sync succeeds', async (t) => {
  const data = randomData(2_000_000);
  const hex = sha256(data);
  const srv = await startServer(t, { '/big.bin': { body: data, dropAfter: 700_000 } });
  const p = await project(t, { version: 1, artifacts: { big: { url: srv.url('/big.bin'), digest: `sha256:${hex}`, size: data.length } } });
  const r = await p.run('sync', '--retries', '0');
  assert.equal(r.code, 1);
  assert.match(r.stderr, /big\.bin/);
  assert.equal(await fs.stat(blobFile(p.store, hex)).catch(() => null), null);
  // What arrived is kept for the next run, under a name that is never read as a blob.
  assert.deepEqual(await listTree(path.join(p.store, 'v1', 'tmp')), [`${hex}.partial`, `${hex}.partial.json`]);
  assert.deepEqual(await fs.readFile(path.join(p.store, 'v1', 'tmp', `${hex}.partial`)), data.subarray(0, 700_000));

  srv.routes.set('/big.bin', { body: data });
  const again = await p.run('sync');
  assert.equal(again.code, 0, again.stderr);
  assert.equal(sha256(await fs.readFile(path.join(p.dir, 'artifacts', 'big.bin'))), hex);
});

test('an unlocked entry that fails to download is not locked and the manifest is untouched', async (t) => {
  const srv = await startServer(t, {});
  const p = await project(t, { version: 1, artifacts: { gone: { url: srv.url('/gone.iso') } } });
  const before = await fs.readFile(p.manifestPath);
  const r = await p.run('sync');
  assert.equal(r.code, 1);
  assert.match(r.stderr, /gone\.iso: HTTP 404/);
  assert.deepEqual(await fs.readFile(p.manifestPath), before);
});

test('one failing artifact does not stop the others', async (t) => {
  const good = randomData(20_000);
  const srv = await startServer(t, { '/good.bin': good });
  const p = await project(t, { version: 1, artifacts: { a: { url: srv.url('/missing.bin') }, b: { url: srv.url('/good.bin') } } });
  const r = await p.run('sync');
  assert.equal(r.code, 1);
  assert.equal(sha256(await fs.readFile(path.join(p.dir, 'artifacts', 'good.bin'))), sha256(good));
  const m = JSON.parse(await fs.readFile(p.manifestPath, 'utf8'));
  assert.equal(m.artifacts.b.digest, `sha256:${sha256(good)}`);
  assert.equal(m.artifacts.a.digest, undefined);
});

test('someone else\'s file at the output path is a conflict (exit 1, untouched); --force replaces it', async (t) => {
  const data = randomData(5_000);
  const srv = await startServer(t, { '/tool.run': data });
  const p = await project(t, { version: 1, artifacts: { tool: { url: srv.url('/tool.run'), digest: `sha256:${sha256(data)}`, executable: true } } });
  await fs.mkdir(path.join(p.dir, 'artifacts'));
  const out = path.join(p.dir, 'artifacts', 'tool.run');
  await fs.writeFile(out, 'my own notes');
  const r = await p.run('sync');
  assert.equal(r.code, 1);
  assert.match(r.stdout + r.stderr, /conflict/);
  assert.equal(await fs.readFile(out, 'utf8'), 'my own notes');
  assert.equal((await p.run('status')).code, 3);

  const forced = await p.run('sync', '--force');
  assert.equal(forced.code, 0, forced.stderr);
  assert.equal(sha256(await fs.readFile(out)), sha256(data));
  assert.equal(statSync(out).mode & 0o111, 0o111, 'executable bit set');
});

test('an output hoard wrote for an older digest is replaced without --force', async (t) => {
  const v1 = randomData(4_000);
  const v2 = randomData(4_000);
  const srv = await startServer(t, { '/v1/app.bin': v1, '/v2/app.bin': v2 });
  const p = await project(t, { version: 1, artifacts: { app: { url: srv.url('/v1/app.bin'), link: 'copy' } } });
  assert.equal((await p.run('sync')).code, 0);
  const m = JSON.parse(await fs.readFile(p.manifestPath, 'utf8'));
  m.artifacts.app = { url: srv.url('/v2/app.bin'), link: 'copy' };
  await fs.writeFile(p.manifestPath, JSON.stringify(m));
  const r = await p.run('sync');
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.equal(sha256(await fs.readFile(path.join(p.dir, 'artifacts', 'app.bin'))), sha256(v2));
});

test('a modified copy (link: copy) is someone\'s data: conflict, not silently replaced', async (t) => {
  const data = randomData(4_000);
  const srv = await startServer(t, { '/vm.qcow2': data });
  const p = await project(t, { version: 1, artifacts: { vm: { url: srv.url('/vm.qcow2'), link: 'copy' } } });
  assert.equal((await p.run('sync')).code, 0);
  const out = path.join(p.dir, 'artifacts', 'vm.qcow2');
  await fs.appendFile(out, 'the VM wrote here');
  const r = await p.run('sync');
  assert.equal(r.code, 1);
  assert.match(await fs.readFile(out, 'utf8'), /the VM wrote here$/);
});

test('--dry-run on a fresh store creates no file or folder anywhere', async (t) => {
  const data = randomData(1_000);
  const srv = await startServer(t, { '/a.bin': data });
  const p = await project(t, { version: 1, artifacts: { a: { url: srv.url('/a.bin') }, b: { url: srv.url('/a.bin'), path: 'b.bin', digest: `sha256:${sha256(data)}` } } });
  const before = await listTree(path.dirname(p.dir));
  const manifestBefore = await fs.readFile(p.manifestPath);
  const r = await p.run('sync', '--dry-run');
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^a  unlocked        artifacts\/a.bin/m);
  assert.match(r.stdout, /^b  not downloaded  artifacts\/b.bin/m);
  assert.deepEqual(await listTree(path.dirname(p.dir)), before);
  assert.deepEqual(await fs.readFile(p.manifestPath), manifestBefore);
  assert.equal(srv.total(), 0);
});

test('status: exit 3 out of sync, 0 in sync, and it writes nothing', async (t) => {
  const data = randomData(1_000);
  const srv = await startServer(t, { '/a.bin': data });
  const p = await project(t, { version: 1, artifacts: { a: { url: srv.url('/a.bin') } } });
  const before = await listTree(path.dirname(p.dir));
  const s1 = await p.run('status');
  assert.equal(s1.code, 3);
  assert.deepEqual(await listTree(path.dirname(p.dir)), before);
  assert.equal((await p.run('sync')).code, 0);
  const s2 = await p.run('status');
  assert.equal(s2.code, 0, s2.stdout);
  assert.match(s2.stdout, /all in sync/);
});

test('--frozen refuses an unlocked entry with exit 2 and changes nothing', async (t) => {
  const srv = await startServer(t, { '/a.bin': randomData(10) });
  const p = await project(t, { version: 1, artifacts: { a: { url: srv.url('/a.bin') } } });
  const r = await p.run('sync', '--frozen');
  assert.equal(r.code, 2);
  assert.match(r.stderr, /"a"/);
  assert.equal(srv.total(), 0);
});

test('two sync processes on one store and one artifact both succeed; the server saw one download', async (t) => {
  const data = randomData(3_000_000);
  const srv = await startServer(t, { '/shared.bin': { body: data, delay: 400 } });
  const manifest = { version: 1, artifacts: { s: { url: srv.url('/shared.bin'), digest: `sha256:${sha256(data)}`, size: data.length } } };
  const base = tmpDir(t);
  const store = path.join(base, 'store');
  const dirs = ['p1', 'p2'].map((d) => path.join(base, d));
  for (const d of dirs) {
    await fs.mkdir(d);
    await fs.writeFile(path.join(d, 'hoard.json'), JSON.stringify(manifest));
  }
  const [a, b] = await Promise.all(dirs.map((cwd) => hoard(['sync'], { cwd, store })));
  assert.equal(a!.code, 0, a!.stderr);
  assert.equal(b!.code, 0, b!.stderr);
  assert.equal(srv.hits.get('/shared.bin'), 1);
  for (const d of dirs) assert.equal(sha256(await fs.readFile(path.join(d, 'artifacts', 'shared.bin'))), sha256(data));
});

test('paths that escape: "..", absolute, output outside the manifest folder → exit 2, nothing written', async (t) => {
  const srv = await startServer(t, { '/a.bin': randomData(10) });
  for (const [label, doc] of [
    ['dot-dot path', { version: 1, artifacts: { a: { url: srv.url('/a.bin'), path: '../../evil.bin' } } }],
    ['absolute path', { version: 1, artifacts: { a: { url: srv.url('/a.bin'), path: '/tmp/evil.bin' } } }],
    ['escaping output', { version: 1, output: '../outside', artifacts: { a: { url: srv.url('/a.bin') } } }],
  ] as const) {
    const p = await project(t, doc);
    const before = await listTree(path.dirname(p.dir));
    const r = await p.run('sync');
    assert.equal(r.code, 2, `${label}: ${r.stderr}`);
    assert.match(r.stderr, /hoard\.json/, label);
    assert.deepEqual(await listTree(path.dirname(p.dir)), before, label);
  }
  assert.equal(srv.total(), 0);
});

test('broken JSON, schema violations and duplicate keys: exit 2, file and field named, file untouched', async (t) => {
  const cases: Array<[string, string, RegExp]> = [
    ['broken JSON', '{ "version": 1, "artifacts": { "a": { "url": "http://x.example/a" } }', /hoard\.json:1:\d+/],
    ['schema violation', JSON.stringify({ version: 1, artifacts: { a: { url: 'ftp://x/a', size: -1 } } }, null, 2), /\/artifacts\/a\/url[\s\S]*\/artifacts\/a\/size/],
    ['unknown field', JSON.stringify({ version: 1, artifacts: { a: { url: 'http://x.example/a', digets: 'x' } } }, null, 2), /\/artifacts\/a\/digets/],
    ['duplicate key', '{\n  "version": 1,\n  "artifacts": {\n    "a": { "url": "http://x.example/a" },\n    "a": { "url": "http://x.example/b" }\n  }\n}\n', /hoard\.json:5:5.*duplicate key "a"/],
  ];
  for (const [label, text, expected] of cases) {
    const p = await project(t, text);
    const r = await p.run('sync');
    assert.equal(r.code, 2, label);
    assert.match(r.stderr, expected, label);
    assert.equal(await fs.readFile(p.manifestPath, 'utf8'), text, label);
  }
});

test('headers expand ${VAR} at request time and are never written back; a missing variable is named', async (t) => {
  const data = randomData(1_000);
  const srv = await startServer(t, { '/secret.bin': data });
  const p = await project(t, { version: 1, artifacts: { s: { url: srv.url('/secret.bin'), headers: { Authorization: 'Bearer ${HOARD_TEST_TOKEN}' } } } });
  const missing = await p.run('sync');
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /HOARD_TEST_TOKEN/);
  assert.equal(srv.total(), 0);

  const r = await hoard(['sync'], { cwd: p.dir, store: p.store, env: { HOARD_TEST_TOKEN: 's3cret-value' } });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(srv.log[0]!.headers.authorization, 'Bearer s3cret-value');
  const text = await fs.readFile(p.manifestPath, 'utf8');
  assert.match(text, /Bearer \$\{HOARD_TEST_TOKEN\}/);
  assert.doesNotMatch(text + r.stdout + r.stderr, /s3cret-value/);
});

test('--json: every line is a JSON event with a type, the last is the summary', async (t) => {
  const data = randomData(1_000);
  const srv = await startServer(t, { '/a.bin': data });
  const p = await project(t, { version: 1, artifacts: { a: { url: srv.url('/a.bin') } } });
  const r = await p.run('sync', '--json');
  assert.equal(r.code, 0, r.stderr);
  const events = jsonLines(r.stdout);
  assert.ok(events.every((e) => typeof e.type === 'string'));
  const last = events.at(-1)!;
  assert.equal(last.type, 'summary');
  assert.equal(last.misses, 1);
  assert.equal(last.bytesDownloaded, 1_000);
  const art = events.find((e) => e.type === 'artifact')!;
  assert.equal(art.blob, 'downloaded');
  assert.equal(art.output, 'linked');
});

test('exit codes: unknown command and unknown artifact are usage errors (2)', async (t) => {
  const p = await project(t, { version: 1, artifacts: {} });
  assert.equal((await p.run('frobnicate')).code, 2);
  const r = await p.run('sync', 'nope');
  assert.equal(r.code, 2);
  assert.match(r.stderr, /"nope"/);
  const noManifest = await hoard(['sync'], { cwd: tmpDir(t), store: p.store });
  assert.equal(noManifest.code, 2);
  assert.match(noManifest.stderr, /hoard init/);
});
