// Downloads on hostile ground: full disks, and (below) servers that misbehave on purpose.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, promises as fs, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { hoard, listTree, project, randomData, sha256, startServer, tmpDir } from '../helpers.ts';

test('a known size larger than the free space fails before any request, saying how much is needed', async (t) => {
  const srv = await startServer(t, { '/huge.img': randomData(10) });
  const p = await project(t, { version: 1, artifacts: { huge: { url: srv.url('/huge.img'), digest: `sha256:${'a'.repeat(64)}`, size: 2 ** 52 } } });
  const r = await p.run('sync');
  assert.equal(r.code, 1);
  assert.match(r.stderr, /not enough space for huge: it needs 4096 TiB/);
  assert.equal(srv.total(), 0);
});

test('ENOSPC while writing: a clear error, the temp file removed, nothing else changed', async (t) => {
  const base = tmpDir(t);
  // The mount point lives outside `base`: it must be unmounted before anything is removed.
  const mnt = mkdtempSync(path.join(os.tmpdir(), 'hoard-tmpfs-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', mnt], { stdio: 'pipe' });
  } catch (err) {
    rmSync(mnt, { recursive: true, force: true });
    t.skip(`cannot mount a tmpfs here (${String((err as { stderr?: Buffer }).stderr ?? err).trim()}); run as root to test ENOSPC`);
    return;
  }
  t.after(() => {
    execFileSync('umount', ['-l', mnt]);
    rmSync(mnt, { recursive: true, force: true });
  });
  const data = randomData(3 * 1024 * 1024);
  const srv = await startServer(t, { '/big.bin': data });
  const dir = path.join(base, 'proj');
  mkdirSync(dir);
  await fs.writeFile(path.join(dir, 'hoard.json'), JSON.stringify({ version: 1, artifacts: { big: { url: srv.url('/big.bin') } } }));
  const before = await fs.readFile(path.join(dir, 'hoard.json'));
  const r = await hoard(['sync'], { cwd: dir, store: mnt });
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /no space left/i);
  assert.deepEqual(await listTree(path.join(mnt, 'v1', 'tmp')), [], 'the temp file is removed');
  assert.deepEqual(await listTree(path.join(mnt, 'v1', 'blobs')), ['sha256']);
  assert.deepEqual(await fs.readFile(path.join(dir, 'hoard.json')), before);
  assert.equal(sha256(data).length, 64);
});
