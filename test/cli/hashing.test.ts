// End-to-end: downloads, resumes, `store add` and `verify` big enough (> INLINE_BYTES) that the
// built CLI hashes them in its worker threads, checked against node:crypto in this process.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { promises as fs, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { INLINE_BYTES } from '../../src/core/hash-pool.ts';
import { hoard, jsonLines, project, randomData, serveRoute, sha256, startServer, tmpDir } from '../helpers.ts';

const SIZE = INLINE_BYTES + 2 * 1024 * 1024 + 12_345;
const hex = (alg: string, data: Uint8Array) => createHash(alg).update(data).digest('hex');

test('hoard add of an unlocked artifact (size unknown: hashed in a worker) records node:crypto\'s digest and size', async (t) => {
  const data = randomData(SIZE);
  const srv = await startServer(t, { '/big.bin': data });
  const p = await project(t, { version: 1, artifacts: {} });
  const r = await p.run('add', srv.url('/big.bin'));
  assert.equal(r.code, 0, r.stderr);
  const m = JSON.parse(readFileSync(p.manifestPath, 'utf8'));
  assert.equal(m.artifacts['big.bin'].digest, `sha256:${sha256(data)}`);
  assert.equal(m.artifacts['big.bin'].size, SIZE);
  assert.deepEqual(readFileSync(path.join(p.store, 'v1', 'blobs', 'sha256', sha256(data))), data);
});

test('sync with extra checksums (sha512, md5, sha1) verifies them all; one wrong md5 fails with E_INTEGRITY and stores nothing', async (t) => {
  const data = randomData(SIZE);
  const srv = await startServer(t, { '/a.bin': data, '/b.bin': data });
  const checksums = { sha512: hex('sha512', data), md5: hex('md5', data), sha1: hex('sha1', data) };
  const good = await project(t, { version: 1, artifacts: { a: { url: srv.url('/a.bin'), digest: `sha256:${sha256(data)}`, size: SIZE, checksums } } });
  const ok = await good.run('sync', '--json');
  assert.equal(ok.code, 0, ok.stderr);
  assert.deepEqual(readFileSync(path.join(good.dir, 'artifacts', 'a.bin')), data);

  const wrong = { ...checksums, md5: hex('md5', Buffer.from('other')) };
  const bad = await project(t, { version: 1, artifacts: { b: { url: srv.url('/b.bin'), digest: `sha256:${sha256(data)}`, size: SIZE, checksums: wrong } } });
  const r = await bad.run('sync', '--json');
  assert.equal(r.code, 1);
  const failed = jsonLines(r.stdout).find((e) => e.type === 'artifact' && e.name === 'b');
  assert.equal((failed?.error as { code?: string } | undefined)?.code, 'E_INTEGRITY', r.stdout);
  assert.match(JSON.stringify(failed), /md5 mismatch/);
  await assert.rejects(fs.stat(path.join(bad.store, 'v1', 'blobs', 'sha256', sha256(data))), { code: 'ENOENT' });
});

test('a download cut off after 5 MiB resumes: the worker re-hashes the partial prefix, the blob has the right digest', async (t) => {
  const data = randomData(SIZE);
  const ranges: Array<string | undefined> = [];
  const srv = await startServer(t, {
    '/r.bin': (req, res, hit) => {
      ranges.push(req.headers.range);
      serveRoute(req, res, { body: data, ranges: true, headers: { etag: '"r"' }, ...(hit === 1 ? { dropAfter: 5 * 1024 * 1024 } : {}) });
    },
  });
  const p = await project(t, { version: 1, artifacts: { r: { url: srv.url('/r.bin'), digest: `sha256:${sha256(data)}`, size: SIZE } } });
  const r = await p.run('sync', '--retry-delay', '0');
  assert.equal(r.code, 0, r.stderr);
  assert.equal(ranges.length, 2);
  assert.match(ranges[1] ?? '', /^bytes=\d+-$/, 'the second request resumes');
  assert.deepEqual(readFileSync(path.join(p.dir, 'artifacts', 'r.bin')), data);
});

test('hoard store add of a big local file, then hoard verify finds a flipped byte in it and removes the blob', async (t) => {
  const dir = tmpDir(t);
  const data = randomData(SIZE);
  const file = path.join(dir, 'local.bin');
  writeFileSync(file, data);
  const store = path.join(dir, 'store');
  const add = await hoard(['store', 'add', file], { cwd: dir, store });
  assert.equal(add.code, 0, add.stderr);
  assert.match(add.stdout, new RegExp(sha256(data)));
  const blob = path.join(store, 'v1', 'blobs', 'sha256', sha256(data));

  const clean = await hoard(['verify', '--json'], { cwd: dir, store });
  assert.equal(clean.code, 0, clean.stderr);
  assert.equal(jsonLines(clean.stdout).at(-1)?.corrupt, 0);

  await fs.chmod(blob, 0o644);
  const fh = await fs.open(blob, 'r+');
  await fh.write(Buffer.from([data[SIZE - 10]! ^ 0xff]), 0, 1, SIZE - 10);
  await fh.close();
  const r = await hoard(['verify', '--json'], { cwd: dir, store });
  assert.equal(r.code, 1, r.stdout + r.stderr);
  assert.equal(jsonLines(r.stdout).at(-1)?.corrupt, 1);
  await assert.rejects(fs.stat(blob), { code: 'ENOENT' });
});
