// One vocabulary for an artifact's state: `hoard status` and `sync --dry-run` say what
// `hoard ui` shows (not linked, image missing, …), in aligned columns.
import assert from 'node:assert/strict';
import { promises as fs, readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { rowFromPlan } from '../../src/tui/state.ts';
import { rootfs } from '../fixtures/rootfs.ts';
import { podmanSkip, project, randomData, sha256, startServer } from '../helpers.ts';

test('status: the same words as hoard ui, in columns', async (t) => {
  const a = randomData(1000);
  const b = randomData(2000);
  const srv = await startServer(t, { '/a.bin': a, '/b.bin': b });
  const p = await project(t, {
    version: 1,
    artifacts: {
      a: { url: srv.url('/a.bin'), digest: `sha256:${sha256(a)}`, size: a.length },
      'longer-name': { url: srv.url('/b.bin'), digest: `sha256:${sha256(b)}`, size: b.length },
    },
  });
  assert.equal((await p.run('sync')).code, 0);
  await fs.rm(path.join(p.dir, 'artifacts', 'a.bin'));
  const r = await p.run('status');
  assert.equal(r.code, 3, r.stderr);
  const lines = r.stdout.split('\n').filter(Boolean);
  assert.equal(lines[0], 'a            not linked  artifacts/a.bin');
  assert.equal(lines[1], 'longer-name  in sync     artifacts/b.bin');
  // The UI's word for the same plan.
  assert.equal(rowFromPlan({ type: 'plan', name: 'a', path: 'a.bin', inSync: false, blob: 'none', output: 'link', outputReason: 'missing' }).state, 'not linked');
});

test('status with an image the engine lacks says image missing, as hoard ui does', { skip: podmanSkip }, async (t) => {
  // A real root filesystem: random bytes would be 'not an image archive' (test/cli/images.test.ts).
  const data = readFileSync((await rootfs(t)).tar);
  const srv = await startServer(t, { '/c.tar': data });
  const ref = `localhost/hoard-test/states-${process.pid}:1`;
  const p = await project(t, { version: 1, artifacts: { c: { url: srv.url('/c.tar'), digest: `sha256:${sha256(data)}`, size: data.length, image: ref } } });
  assert.equal((await p.run('sync', '--no-images')).code, 0);
  const r = await p.run('status', '--engine', 'podman');
  assert.equal(r.code, 3, r.stderr);
  assert.equal(r.stdout.split('\n')[0], `c  image missing  artifacts/c.tar  (${ref})`);
});

test('a file no engine can take: hoard ui says "not an image archive", the words status prints (test/cli/images.test.ts)', () => {
  const row = rowFromPlan({
    type: 'plan', name: 'disk', path: 'disk.vmdk', inSync: false, blob: 'none', output: 'link', image: 'not-archive', imageRef: 'x/disk:1',
    imageReason: "disk's file artifacts/disk.vmdk is not a tar archive (compressed or not); cannot import it as an image",
  });
  // Named before "not linked": sync links the file, but no sync can make it an image.
  assert.equal(row.state, 'not an image archive');
  assert.match(row.detail!, /not a tar archive/);
});
