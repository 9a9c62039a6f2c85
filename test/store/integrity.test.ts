// Damage the store cannot see in a stat, and damage to a partial download, on real temp folders:
// the blob fingerprint includes ctime, a copy checks every byte it copies, and a resumed
// download keeps only the bytes its checkpoints prove.
import assert from 'node:assert/strict';
import { promises as fs, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import type { Digest } from '../../src/core/digest.ts';
import { HoardError } from '../../src/core/errors.ts';
import { INLINE_BYTES, sharedPool } from '../../src/core/hash-pool.ts';
import { createMaterializer } from '../../src/materialize/materialize.ts';
import { openStore, type Store } from '../../src/store/store.ts';
import { damageInPlace } from '../fixtures/damage.ts';
import { randomData, sha256, tmpDir } from '../helpers.ts';

const digestOf = (data: Uint8Array): Digest => `sha256:${sha256(data)}`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function newStore(t: TestContext): { store: Store; root: string } {
  const root = path.join(tmpDir(t), 'store');
  return { store: openStore(root), root };
}

test('check: a blob damaged in place, its mtime and mode put back, is re-hashed and found corrupt', async (t) => {
  const { store } = newStore(t);
  const data = randomData(100_000);
  const digest = await store.put(data);
  const before = statSync(store.blobPath(digest));
  await sleep(15);
  await damageInPlace(store.blobPath(digest), 5000, Buffer.from('XXXX'));
  const after = statSync(store.blobPath(digest));
  assert.equal(after.mtimeMs, before.mtimeMs, 'the mtime is the old one');
  assert.equal(after.size, before.size);
  // A new process (a fresh openStore) reads the recorded fingerprint from the state file.
  const c = await openStore(store.root).check(digest);
  assert.equal(c.state, 'corrupt');
});

test('a copy hashes what it copies: a damaged blob is refused and no output file is left', async (t) => {
  const { store } = newStore(t);
  const data = randomData(3 * 1024 * 1024 + 17);
  const digest = await store.put(data);
  await damageInPlace(store.blobPath(digest), 2 * 1024 * 1024, Buffer.from('damage'));
  const out = path.join(tmpDir(t), 'out');
  await assert.rejects(
    createMaterializer().materialize({ blob: store.blobPath(digest), outputRoot: out, relPath: 'disk.qcow2', link: 'copy', executable: false, digest }),
    (err: unknown) => err instanceof HoardError && err.code === 'E_INTEGRITY' && err.details.corruptBlob === true,
  );
  assert.deepEqual(await fs.readdir(out), [], 'no output, and no temp file');
  // An intact blob is copied, byte for byte.
  const good = randomData(1_500_000);
  const d2 = await store.put(good);
  const r = await createMaterializer().materialize({ blob: store.blobPath(d2), outputRoot: out, relPath: 'ok.bin', link: 'copy', executable: false, digest: d2 });
  assert.equal(r.method, 'copy');
  assert.deepEqual(await fs.readFile(path.join(out, 'ok.bin')), good);
});

test('a copy of a big blob is hashed by the hash workers as it is copied: damage is refused, an intact blob arrives byte for byte', async (t) => {
  const { store } = newStore(t);
  const size = INLINE_BYTES + 4 * 1024 * 1024 + 5; // big enough for the worker pool (smaller ones are hashed inline)
  const data = randomData(size);
  const digest = await store.put(data);
  const good = await store.put(randomData(size));
  await damageInPlace(store.blobPath(digest), INLINE_BYTES + 1000, Buffer.from('damage'));
  const out = path.join(tmpDir(t), 'out');
  // The workers' replies during the copies: none would come if the main thread hashed.
  let replies = 0;
  const count = () => void replies++;
  const watched = sharedPool().threads();
  assert.ok(watched.length > 0, 'store.put of a big blob started the pool');
  for (const w of watched) w.on('message', count);
  t.after(() => {
    for (const w of watched) w.off('message', count);
  });
  await assert.rejects(
    createMaterializer().materialize({ blob: store.blobPath(digest), outputRoot: out, relPath: 'disk.qcow2', link: 'copy', executable: false, digest }),
    (err: unknown) => err instanceof HoardError && err.code === 'E_INTEGRITY' && err.details.corruptBlob === true,
  );
  assert.deepEqual(await fs.readdir(out), [], 'no output, and no temp file');
  assert.ok(replies > 0, 'the hash workers hashed the copy');
  const r = await createMaterializer().materialize({ blob: store.blobPath(good), outputRoot: out, relPath: 'ok.bin', link: 'copy', executable: false, digest: good });
  assert.equal(r.method, 'copy');
  assert.equal(sha256(await fs.readFile(path.join(out, 'ok.bin'))), good.slice(7));
});

/** Writes `data` into a resumable writer and leaves it as an interrupted download would. */
async function interrupted(store: Store, key: string, data: Buffer): Promise<void> {
  const w = await store.createWriter([], { resumeKey: key });
  await w.restart({ url: 'http://127.0.0.1/x', etag: '"v1"' });
  for (let i = 0; i < data.length; i += 100_000) {
    const wait = w.write(data.subarray(i, i + 100_000));
    if (wait) await wait;
  }
  await w.abort({ keep: true });
}

test('a resumed partial with a damaged page keeps only the prefix its checkpoints prove, and ends with the right digest', async (t) => {
  const { store, root } = newStore(t);
  const data = randomData(6 * 1024 * 1024 + 123);
  const key = sha256(Buffer.from('some url'));
  await interrupted(store, key, data.subarray(0, 5 * 1024 * 1024));
  const partial = path.join(root, 'v1', 'tmp', `${key}.partial`);
  const meta = JSON.parse(readFileSync(`${partial}.json`, 'utf8')) as { checkpoints: Array<[number, string]> };
  assert.ok(meta.checkpoints.length > 1, 'checkpoints were recorded');
  // A damaged page in the middle of the partial file.
  const fh = await fs.open(partial, 'r+');
  await fh.write(Buffer.alloc(4096, 0xee), 0, 4096, 3 * 1024 * 1024);
  await fh.close();

  const w = await store.createWriter([], { resumeKey: key });
  assert.ok(w.bytesWritten > 0 && w.bytesWritten <= 3 * 1024 * 1024, `kept ${w.bytesWritten} bytes: only what is before the damage`);
  assert.equal(w.source?.etag, '"v1"');
  assert.deepEqual(readFileSync(partial), data.subarray(0, w.bytesWritten), 'the file was cut where the proof ends');
  const wait = w.write(data.subarray(w.bytesWritten));
  if (wait) await wait;
  assert.equal(await w.commit({}), digestOf(data));
});

test('a partial whose meta file has no checkpoints (an older hoard, or torn) starts from zero', async (t) => {
  const { store, root } = newStore(t);
  const key = sha256(Buffer.from('another url'));
  const partial = path.join(root, 'v1', 'tmp', `${key}.partial`);
  await fs.mkdir(path.dirname(partial), { recursive: true });
  writeFileSync(partial, randomData(50_000));
  writeFileSync(`${partial}.json`, JSON.stringify({ url: 'http://127.0.0.1/x', etag: '"v1"' }));
  const w = await store.createWriter([], { resumeKey: key });
  assert.equal(w.bytesWritten, 0);
  assert.equal(statSync(partial).size, 0);
  await w.abort();
});

test('a partial file shorter than its last checkpoint keeps the checkpoints it still covers', async (t) => {
  const { store, root } = newStore(t);
  const data = randomData(4 * 1024 * 1024);
  const key = sha256(Buffer.from('a third url'));
  await interrupted(store, key, data);
  const partial = path.join(root, 'v1', 'tmp', `${key}.partial`);
  await fs.truncate(partial, 2 * 1024 * 1024 + 5);
  const w = await store.createWriter([], { resumeKey: key });
  assert.ok(w.bytesWritten > 0 && w.bytesWritten <= 2 * 1024 * 1024 + 5);
  const wait = w.write(data.subarray(w.bytesWritten));
  if (wait) await wait;
  assert.equal(await w.commit({}), digestOf(data));
});
