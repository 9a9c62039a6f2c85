// A manifest found valid is not checked again while it stays as it was: a sync records its
// stamp (inode, size, mtime, ctime, and the rules that checked it) in the store's
// manifests.json, and the next sync or status only parses it. Any change — even one that keeps
// the size and sets the mtime back — moves the ctime, and the file is checked in full again.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { project, randomData, sha256, startServer } from '../helpers.ts';

test('a sync records hoard.json valid with its stamp; the next sync only parses it; an edit that keeps size and mtime is checked again', async (t) => {
  const a = randomData(5_000);
  const srv = await startServer(t, { '/a.bin': a });
  const p = await project(t, { version: 1, artifacts: { a: { url: srv.url('/a.bin'), digest: `sha256:${sha256(a)}`, size: a.length } } });
  const stateFile = path.join(p.store, 'v1', 'state', 'manifests.json');
  const recorded = async () => (JSON.parse(await fs.readFile(stateFile, 'utf8'))[p.manifestPath] as { valid?: string }).valid;
  /** The stamp's file part (everything after the rules id) as the file is now. */
  const fileStamp = async () => {
    const st = await fs.stat(p.manifestPath);
    return `${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}`;
  };

  assert.equal((await p.run('sync')).code, 0, 'first sync');
  const valid = await recorded();
  assert.ok(valid, 'the sync records the stamp the manifest was valid with');
  const rules = valid.slice(0, valid.indexOf(':'));
  assert.match(rules, /^[0-9a-f]{12}$/, 'the stamp names the rules of the build that checked it');
  assert.equal(valid, `${rules}:${await fileStamp()}`);

  // An invalid edit of the same size, its mtime set back: the ctime moved, so it is checked.
  const text = await fs.readFile(p.manifestPath, 'utf8');
  const before = await fs.stat(p.manifestPath);
  const ref = path.join(p.dir, 'mtime-ref');
  execFileSync('touch', ['-r', p.manifestPath, ref]); // (touch -r keeps the nanoseconds; utimes would round them)
  await fs.writeFile(p.manifestPath, text.replace('"version": 1', '"version": 9'));
  execFileSync('touch', ['-r', ref, p.manifestPath]);
  const after = await fs.stat(p.manifestPath);
  assert.equal(after.size, before.size);
  assert.equal(after.mtimeMs, before.mtimeMs);
  for (const cmd of ['sync', 'status']) {
    const r = await p.run(cmd);
    assert.equal(r.code, 2, `${cmd} of the edited manifest: ${r.stderr}`);
    assert.match(r.stderr, /version/, `${cmd} names the problem`);
  }
  assert.equal(await recorded(), valid, 'an invalid manifest is not recorded');

  // The record is what spares the check: with this content's stamp recorded as valid, sync and
  // status take the file as it is (the version is not looked at again).
  const known = JSON.parse(await fs.readFile(stateFile, 'utf8'));
  known[p.manifestPath].valid = `${rules}:${await fileStamp()}`;
  await fs.writeFile(stateFile, JSON.stringify(known));
  assert.equal((await p.run('status')).code, 0, 'status of a manifest recorded valid');
  assert.equal((await p.run('sync')).code, 0, 'sync of a manifest recorded valid');

  // A stamp recorded by other rules (another build of hoard) is not trusted.
  known[p.manifestPath].valid = `000000000000:${await fileStamp()}`;
  await fs.writeFile(stateFile, JSON.stringify(known));
  assert.equal((await p.run('sync')).code, 2, "another build's record is checked again");
});
