// Hard links recorded at the end of the store's link bracket on their blob (Store.linking):
// when the blob is replaced while the bracket is open, a file someone put at an output meanwhile
// is never recorded as hoard's, and hoard's own link of the old inode is read again before it
// is trusted. The real store, materializer and files; one copy is held back (a promise gate) so
// that the bracket stays open while the blob and an output change.
import assert from 'node:assert/strict';
import { promises as fs, lstatSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import type { Digest } from '../../src/core/digest.ts';
import type { Artifact } from '../../src/manifest/types.ts';
import { createMaterializer } from '../../src/materialize/materialize.ts';
import { fileFingerprint } from '../../src/store/fingerprint.ts';
import { openStore } from '../../src/store/store.ts';
import { apply } from '../../src/sync/apply.ts';
import { observe } from '../../src/sync/observe.ts';
import { plan } from '../../src/sync/plan.ts';
import { openSyncState } from '../../src/sync/state.ts';
import { randomData, sha256, tmpDir } from '../helpers.ts';

test('a blob replaced while its links are being made: a file the user put at an output meanwhile is not taken for hoard\'s; hoard\'s link of the old inode is read before it is trusted', async (t) => {
  const base = tmpDir(t);
  const out = path.join(base, 'proj', 'artifacts');
  await fs.mkdir(out, { recursive: true });
  const store = openStore(path.join(base, 'store'));
  const data = randomData(100_000);
  const digest = `sha256:${sha256(data)}` as Digest;
  const w = await store.createWriter();
  await w.write(data);
  await w.commit({ digest, size: data.length });
  const state = openSyncState(store.root);
  const art = (name: string, link: 'copy' | 'hardlink'): Artifact =>
    ({ name, url: 'http://127.0.0.1:9/x', mirrors: [], path: `${name}.img`, digest, size: data.length, checksums: {}, headers: {}, link, executable: false }) as unknown as Artifact;
  // a: a copy, held back; b and c: hard links, made while a is held.
  const arts = [art('a', 'copy'), art('b', 'hardlink'), art('c', 'hardlink')];
  const ctx = { store, state, outputRoot: out, verify: false as const, emit: () => {}, noStore: false };
  const plans = plan(await Promise.all(arts.map(async (a) => ({ artifact: a, observed: await observe(a, ctx) }))), { force: false });
  const real = createMaterializer();
  let releaseCopy!: () => void;
  const copyHeld = new Promise<void>((resolve) => (releaseCopy = resolve));
  let linksMade = 0;
  let bothLinked!: () => void;
  const linked = new Promise<void>((resolve) => (bothLinked = resolve));
  const materializer = {
    async materialize(req: Parameters<typeof real.materialize>[0]) {
      if (req.relPath === 'a.img') {
        await copyHeld;
        return real.materialize(req);
      }
      const r = await real.materialize(req);
      if (++linksMade === 2) bothLinked();
      return r;
    },
  };
  const running = apply(plans, {
    store, state, materializer, outputRoot: out, env: {}, jobs: 4, force: false, emit: () => {}, onLocked: () => {},
    fetcher: async () => {
      throw new Error('no download is needed');
    },
  } as unknown as Parameters<typeof apply>[1]);
  await linked;
  // Another process puts a new file (the same bytes) under the blob's name: a new inode.
  const blob = store.blobPath(digest);
  const oldInode = lstatSync(blob).ino;
  await fs.writeFile(path.join(base, 'new-blob'), data, { mode: 0o444 });
  await fs.rename(path.join(base, 'new-blob'), blob);
  // The user replaces b.img with their own work; c.img stays hoard's link of the old inode.
  await fs.writeFile(path.join(out, '.mine'), 'my own work, not the artifact\n');
  await fs.rename(path.join(out, '.mine'), path.join(out, 'b.img'));
  releaseCopy();
  const events = await running;
  assert.deepEqual(events.map((e) => [e.name, e.output]), [['a', 'linked'], ['b', 'linked'], ['c', 'linked']]);

  const user = lstatSync(path.join(out, 'b.img'));
  const bRecord = state.outputs.get(path.join(out, 'b.img'));
  assert.notEqual(bRecord?.fp, fileFingerprint(user), "the user's file is not recorded as hoard's");
  const b = await observe(arts[1]!, ctx);
  assert.equal(plan([{ artifact: arts[1]!, observed: b }], { force: false })[0]!.output, 'conflict', "the user's file is kept (a conflict), not taken for the artifact");

  assert.equal(lstatSync(path.join(out, 'c.img')).ino, oldInode);
  const cRecord = state.outputs.get(path.join(out, 'c.img'));
  assert.notEqual(cRecord?.fp, fileFingerprint(lstatSync(path.join(out, 'c.img'))), 'the old inode is not vouched for by a fingerprint');
  const events2: Array<{ subject?: string; trusted?: string }> = [];
  const c = await observe(arts[2]!, { ...ctx, checks: true, emit: (e: unknown) => void events2.push(e as { subject?: string; trusted?: string }) });
  assert.equal(c.output, 'ok');
  assert.equal(events2.find((e) => e.subject === 'output')?.trusted, 'hashed', 'read before it is trusted');
});
