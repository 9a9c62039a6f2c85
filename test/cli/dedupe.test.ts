// One transfer per blob: entries of one manifest that share a digest (or an unlocked URL), and
// several processes syncing the same unlocked URL at once, through the built CLI.
import assert from 'node:assert/strict';
import { existsSync, promises as fs, readFileSync, statSync } from 'node:fs';
import type http from 'node:http';
import path from 'node:path';
import { test } from 'node:test';
import { hoard, jsonLines, randomData, sha256, startServer, tmpDir } from '../helpers.ts';

test('200 entries sharing one digest and 3 unlocked entries of the same URL: one request, every output right', async (t) => {
  const data = randomData(1_000_000);
  const hex = sha256(data);
  const srv = await startServer(t, { '/shared.img': data });
  const base = tmpDir(t);
  const artifacts: Record<string, unknown> = {};
  for (let i = 0; i < 200; i++) artifacts[`n${i}`] = { url: srv.url('/shared.img'), path: `nodes/n${i}.img`, digest: `sha256:${hex}`, size: data.length };
  for (let i = 0; i < 3; i++) artifacts[`u${i}`] = { url: srv.url('/shared.img'), path: `unlocked/u${i}.img` };
  await fs.writeFile(path.join(base, 'hoard.json'), JSON.stringify({ version: 1, artifacts }));
  const r = await hoard(['sync', '--jobs', '4', '--json'], { cwd: base, store: path.join(base, 'store') });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(srv.hits.get('/shared.img'), 1, 'the server saw exactly one request');
  for (let i = 0; i < 200; i++) assert.equal(sha256(readFileSync(path.join(base, 'artifacts', 'nodes', `n${i}.img`))), hex);
  for (let i = 0; i < 3; i++) assert.equal(sha256(readFileSync(path.join(base, 'artifacts', 'unlocked', `u${i}.img`))), hex);
  const doc = JSON.parse(readFileSync(path.join(base, 'hoard.json'), 'utf8')) as { artifacts: Record<string, { digest?: string; size?: number }> };
  for (let i = 0; i < 3; i++) assert.deepEqual([doc.artifacts[`u${i}`]!.digest, doc.artifacts[`u${i}`]!.size], [`sha256:${hex}`, data.length]);
  const evs = jsonLines(r.stdout);
  assert.equal(evs.filter((e) => e.type === 'download').length, 1);
  const summary = evs.find((e) => e.type === 'summary')!;
  assert.equal(summary.misses, 1);
  assert.equal(summary.bytesDownloaded, data.length);
});

test('200 hard links of one blob: the store records its fingerprint once they are made, every output record has the blob as it is then, and the next sync re-hashes nothing', async (t) => {
  const data = randomData(100_000);
  const hex = sha256(data);
  const srv = await startServer(t, { '/shared.img': data });
  const base = tmpDir(t);
  const store = path.join(base, 'store');
  const artifacts: Record<string, unknown> = {};
  for (let i = 0; i < 200; i++) artifacts[`n${i}`] = { url: srv.url('/shared.img'), path: `n${i}.img`, digest: `sha256:${hex}`, size: data.length, link: 'hardlink' };
  await fs.writeFile(path.join(base, 'hoard.json'), JSON.stringify({ version: 1, artifacts }));
  const r = await hoard(['sync', '--jobs', '4'], { cwd: base, store });
  assert.equal(r.code, 0, r.stderr);
  const blob = statSync(path.join(store, 'v1', 'blobs', 'sha256', hex));
  assert.equal(blob.nlink, 201);
  const state = (name: string) => JSON.parse(readFileSync(path.join(store, 'v1', 'state', name), 'utf8')) as Record<string, unknown>;
  assert.equal(state('blobs.json')[hex], `${blob.size}:${blob.ino}:${blob.mtimeMs}:444:${blob.ctimeMs}`);
  const outputs = state('outputs.json') as Record<string, { digest: string; fp: string; blobInode?: string }>;
  for (let i = 0; i < 200; i++) {
    const rec = outputs[path.join(base, 'artifacts', `n${i}.img`)];
    assert.deepEqual(rec && [rec.digest, rec.fp, rec.blobInode?.split('@')[0]], [`sha256:${hex}`, `${blob.size}:${blob.ino}:${blob.mtimeMs}:${blob.ctimeMs}`, String(blob.ino)], `n${i}`);
  }
  const again = await hoard(['sync', '--json', '-v'], { cwd: base, store });
  assert.equal(again.code, 0, again.stderr);
  const checks = jsonLines(again.stdout).filter((e) => e.type === 'check' && e.subject === 'blob');
  assert.equal(checks.length, 200);
  assert.ok(checks.every((e) => e.trusted === 'fingerprint'), 'every look at the blob trusted its fingerprint');
});

test('4 concurrent syncs of the same unlocked URL (4 projects, one store): one full transfer, every project locked', async (t) => {
  const data = randomData(2_000_000);
  const hex = sha256(data);
  const base = tmpDir(t);
  const store = path.join(base, 'store');
  const manifests = path.join(store, 'v1', 'state', 'manifests.json');
  const started = () => (existsSync(manifests) ? Object.keys(JSON.parse(readFileSync(manifests, 'utf8') || '{}') as object).length : 0);
  let full = 0;
  const srv = await startServer(t, {
    '/rootfs.tar': (_req: http.IncomingMessage, res: http.ServerResponse) => {
      full++;
      res.writeHead(200, { 'content-length': String(data.length) });
      res.write(data.subarray(0, 1_000_000));
      // The rest only once every process has started syncing (each records its manifest in
      // the store first): they all overlap with this download.
      const timer = setInterval(() => {
        if (started() < 4) return;
        clearInterval(timer);
        res.end(data.subarray(1_000_000));
      }, 20);
      res.on('close', () => clearInterval(timer));
    },
  });
  const dirs: string[] = [];
  for (let i = 0; i < 4; i++) {
    const dir = path.join(base, `p${i}`);
    await fs.mkdir(dir);
    await fs.writeFile(path.join(dir, 'hoard.json'), JSON.stringify({ version: 1, artifacts: { rootfs: { url: srv.url('/rootfs.tar') } } }));
    dirs.push(dir);
  }
  const runs = await Promise.all(dirs.map((dir) => hoard(['sync', '--retry-delay', '0'], { cwd: dir, store })));
  for (const r of runs) assert.equal(r.code, 0, r.stderr);
  assert.equal(full, 1, 'the server sent the file once');
  for (const dir of dirs) {
    const doc = JSON.parse(readFileSync(path.join(dir, 'hoard.json'), 'utf8')) as { artifacts: { rootfs: { digest: string } } };
    assert.equal(doc.artifacts.rootfs.digest, `sha256:${hex}`);
    assert.equal(sha256(readFileSync(path.join(dir, 'artifacts', 'rootfs.tar'))), hex);
  }
});
