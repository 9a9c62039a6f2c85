// The content-addressed store (src/store/store.ts) on a real temp folder.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { promises as fs, readdirSync, readFileSync, statSync, type Stats } from 'node:fs';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import type { Digest } from '../../src/core/digest.ts';
import { HoardError } from '../../src/core/errors.ts';
import { openStore, type BlobCheck, type Expected, type Store } from '../../src/store/store.ts';
import { listTree, randomData, sha256, tmpDir } from '../helpers.ts';

const digestOf = (data: Uint8Array): Digest => `sha256:${sha256(data)}`;
const hashHex = (alg: string, data: Uint8Array) => createHash(alg).update(data).digest('hex');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function newStore(t: TestContext): { store: Store; root: string } {
  const root = path.join(tmpDir(t), 'store');
  return { store: openStore(root), root };
}

const blobsIn = (root: string) => readdirSync(path.join(root, 'v1', 'blobs', 'sha256'));
const tmpIn = (root: string) => readdirSync(path.join(root, 'v1', 'tmp'));

/** Feeds `data` to a new writer in chunks of `chunk` bytes, honouring back-pressure. */
async function writeAll(store: Store, data: Buffer, chunk: number, algorithms: Parameters<Store['createWriter']>[0] = []) {
  const writer = await store.createWriter(algorithms);
  for (let i = 0; i < data.length; i += chunk) {
    const wait = writer.write(data.subarray(i, i + chunk));
    if (wait) await wait;
  }
  return writer;
}

async function put(store: Store, data: Buffer): Promise<Digest> {
  const writer = await writeAll(store, data, 64 * 1024);
  return writer.commit({ digest: digestOf(data), size: data.length });
}

/** What a person (or a disk) might do to a blob: make it writable, change a byte, make it read-only again. */
async function flipByte(file: string, offset: number): Promise<void> {
  // A few ms first, so that the change gets an mtime of its own even on a kernel with coarse timestamps.
  await sleep(15);
  await fs.chmod(file, 0o644);
  const fh = await fs.open(file, 'r+');
  const b = Buffer.alloc(1);
  await fh.read(b, 0, 1, offset);
  b[0] = b[0]! ^ 0xff;
  await fh.write(b, 0, 1, offset);
  await fh.close();
  await fs.chmod(file, 0o444);
}

function isIntegrity(err: unknown): boolean {
  assert.ok(err instanceof HoardError, `not a HoardError: ${String(err)}`);
  assert.equal(err.code, 'E_INTEGRITY');
  return true;
}

test('writer: 9 MiB in 1 KiB chunks (several batches, more buffers than one writev takes) is stored byte for byte under its digest, 0444', async (t) => {
  const { store, root } = newStore(t);
  const data = randomData(9 * 1024 * 1024 + 123);
  const writer = await writeAll(store, data, 1024);
  assert.equal(writer.bytesWritten, data.length);
  const digest = await writer.commit({ digest: digestOf(data), size: data.length });

  assert.equal(digest, digestOf(data));
  const blob = path.join(root, 'v1', 'blobs', 'sha256', sha256(data));
  assert.equal(store.blobPath(digest), blob);
  assert.ok((await fs.readFile(blob)).equals(data), 'stored bytes differ from the bytes written');
  assert.equal(statSync(blob).mode & 0o7777, 0o444);
  assert.deepEqual(tmpIn(root), []);
  assert.deepEqual(await store.list(), [digest]);
});

test('writer: tiny uneven chunks and an empty chunk still hash and store correctly', async (t) => {
  const { store, root } = newStore(t);
  const data = randomData(50_000);
  const writer = await store.createWriter();
  let i = 0;
  for (let n = 1; i < data.length; n = (n * 7) % 997 + 1) {
    writer.write(data.subarray(i, i + n));
    if (n % 5 === 0) writer.write(new Uint8Array(0));
    i += n;
  }
  const digest = await writer.commit({ digest: digestOf(data), size: data.length });
  assert.ok((await fs.readFile(store.blobPath(digest))).equals(data));
  assert.deepEqual(tmpIn(root), []);
});

test('writer: an empty blob (size 0) is a valid blob', async (t) => {
  const { store } = newStore(t);
  const writer = await store.createWriter();
  const empty = Buffer.alloc(0);
  const digest = await writer.commit({ digest: digestOf(empty), size: 0 });
  assert.equal(digest, digestOf(empty));
  assert.equal(statSync(store.blobPath(digest)).size, 0);
});

test('writer: a blob committed without an expected digest is stored under the digest of its bytes', async (t) => {
  const { store } = newStore(t);
  const data = randomData(3000);
  const digest = await (await writeAll(store, data, 100)).commit({});
  assert.equal(digest, digestOf(data));
  assert.ok((await fs.readFile(store.blobPath(digest))).equals(data));
});

const data = randomData(20_000);
const other = Buffer.from(data);
other[12_345] = other[12_345]! ^ 1;
const badCases: Array<[string, Expected, Buffer]> = [
  ['wrong digest', { digest: digestOf(other), size: data.length }, data],
  ['too short', { digest: digestOf(data), size: data.length }, data.subarray(0, data.length - 1)],
  ['too long', { digest: digestOf(data), size: data.length }, Buffer.concat([data, Buffer.from('x')])],
  ['too long, no digest given', { size: data.length - 10 }, data],
  ['wrong sha512', { digest: digestOf(data), checksums: { sha512: hashHex('sha512', other) } }, data],
  ['wrong md5', { digest: digestOf(data), checksums: { sha512: hashHex('sha512', data), md5: hashHex('md5', other) } }, data],
];
for (const [what, expected, bytes] of badCases) {
  test(`writer: ${what} → E_INTEGRITY, no blob, nothing left in tmp`, async (t) => {
    const { store, root } = newStore(t);
    const writer = await writeAll(store, bytes, 4096, ['sha512', 'md5']);
    await assert.rejects(writer.commit(expected), isIntegrity);
    assert.deepEqual(blobsIn(root), []);
    assert.deepEqual(tmpIn(root), []);
    assert.deepEqual(await store.list(), []);
    await writer.abort(); // what a caller does after a failed commit: must not throw
  });
}

test('writer: E_INTEGRITY details say what was expected and what was found', async (t) => {
  const { store } = newStore(t);
  const writer = await writeAll(store, data, 4096);
  const err = await writer.commit({ digest: digestOf(other), size: data.length }).catch((e: unknown) => e);
  assert.ok(isIntegrity(err) && err instanceof HoardError);
  assert.equal(err.details.expected, digestOf(other));
  assert.equal(err.details.found, digestOf(data));
  const short = await (await writeAll(store, data.subarray(0, 100), 50)).commit({ size: 200 }).catch((e: unknown) => e);
  assert.ok(isIntegrity(short) && short instanceof HoardError);
  assert.equal(short.details.expectedSize, 200);
  assert.equal(short.details.foundSize, 100);
});

test('writer: matching sha512 and md5 checksums are accepted (the checks compare real hashes)', async (t) => {
  const { store } = newStore(t);
  const writer = await writeAll(store, data, 4096, ['sha512', 'md5']);
  const digest = await writer.commit({ digest: digestOf(data), size: data.length, checksums: { sha512: hashHex('sha512', data), md5: hashHex('md5', data) } });
  assert.equal(digest, digestOf(data));
});

test('writer: a checksum the writer was not asked to compute is a mismatch, never silently skipped', async (t) => {
  const { store, root } = newStore(t);
  const writer = await writeAll(store, data, 4096); // no extra algorithms
  await assert.rejects(writer.commit({ digest: digestOf(data), checksums: { md5: hashHex('md5', data) } }), isIntegrity);
  assert.deepEqual(blobsIn(root), []);
});

test('writer: abort() leaves no blob and no temp file, and may be called twice', async (t) => {
  const { store, root } = newStore(t);
  const writer = await writeAll(store, randomData(100_000), 1000);
  assert.deepEqual(tmpIn(root), [path.basename(writer.tmpPath)], 'bytes go to a temp file in v1/tmp');
  await writer.abort();
  await writer.abort();
  assert.deepEqual(tmpIn(root), []);
  assert.deepEqual(blobsIn(root), []);
});

test('writer: committing content whose blob exists keeps the existing file (same inode); {replace: true} puts the new one in place', async (t) => {
  const { store, root } = newStore(t);
  const data = randomData(10_000);
  const digest = await put(store, data);
  const ino = statSync(store.blobPath(digest)).ino;

  assert.equal(await put(store, data), digest);
  assert.equal(statSync(store.blobPath(digest)).ino, ino, 'the existing blob was replaced');
  assert.deepEqual(tmpIn(root), []);

  const again = await writeAll(store, data, 1000);
  assert.equal(await again.commit({ digest }, { replace: true }), digest);
  const st = statSync(store.blobPath(digest));
  assert.notEqual(st.ino, ino, '{replace: true} kept the old file');
  assert.equal(st.mode & 0o7777, 0o444);
  assert.ok((await fs.readFile(store.blobPath(digest))).equals(data));
  assert.deepEqual(tmpIn(root), []);
  assert.deepEqual(blobsIn(root), [sha256(data)]);
});

test('writer: two writers committing the same content at once both succeed and leave one blob', async (t) => {
  const { store, root } = newStore(t);
  const data = randomData(200_000);
  const [a, b] = await Promise.all([put(store, data), put(store, data)]);
  assert.equal(a, digestOf(data));
  assert.equal(b, digestOf(data));
  assert.deepEqual(blobsIn(root), [sha256(data)]);
  assert.deepEqual(tmpIn(root), []);
});

test(
  'writer: committing onto an existing blob whose bytes were damaged replaces it with the verified bytes',
  async (t) => {
    const { store } = newStore(t);
    const data = randomData(10_000);
    const digest = await put(store, data);
    await flipByte(store.blobPath(digest), 10);
    await put(store, data); // the right bytes arrive while the damaged blob is there
    assert.equal(sha256(readFileSync(store.blobPath(digest))), sha256(data), 'the damaged bytes were vouched for');
    assert.equal((await store.check(digest, { verify: true })).state, 'ok');
  },
);

test(
  'writer: a caller reusing its chunk buffer after write() returned does not change what is stored',
  async (t) => {
    const { store } = newStore(t);
    const expected = createHash('sha256');
    const writer = await store.createWriter();
    const buf = Buffer.alloc(1000);
    for (let i = 0; i < 20; i++) {
      buf.fill(i);
      expected.update(buf);
      const wait = writer.write(buf); // write() returned: the chunk is the caller's again
      if (wait) await wait;
    }
    const digest = await writer.commit({});
    assert.equal(digest, `sha256:${expected.digest('hex')}`);
    assert.equal(sha256(await fs.readFile(store.blobPath(digest))), digest.slice(7), 'the blob does not hash to its own name');
  },
);

test('check: a freshly committed blob is ok without a re-hash', async (t) => {
  const { store } = newStore(t);
  const digest = await put(store, randomData(5000));
  const c = await store.check(digest);
  assert.equal(c.state, 'ok');
  assert.equal(c.state === 'ok' && c.rehashed, false);
});

test('check: a blob changed on disk (made writable, one byte flipped, read-only again) is corrupt', async (t) => {
  const { store } = newStore(t);
  const data = randomData(5000);
  const digest = await put(store, data);
  await flipByte(store.blobPath(digest), 2500);
  const c = await store.check(digest);
  assert.equal(c.state, 'corrupt');
  const damaged = await fs.readFile(store.blobPath(digest));
  assert.equal(c.state === 'corrupt' && c.found, digestOf(damaged));
  // And it stays corrupt: a failed check must not record the damaged file as verified.
  assert.equal((await store.check(digest)).state, 'corrupt');
});

test('check: verify: true re-hashes even when the fingerprint matches', async (t) => {
  const { store } = newStore(t);
  const digest = await put(store, randomData(5000));
  const c = await store.check(digest, { verify: true });
  assert.equal(c.state === 'ok' && c.rehashed, true);
});

test('check: a blob made writable (content intact) is re-hashed, found ok and made read-only again', async (t) => {
  const { store } = newStore(t);
  const digest = await put(store, randomData(5000));
  await fs.chmod(store.blobPath(digest), 0o644);
  const c = await store.check(digest);
  assert.equal(c.state === 'ok' && c.rehashed, true, 'a writable blob was trusted without a re-hash');
  assert.equal(statSync(store.blobPath(digest)).mode & 0o7777, 0o444);
  const again = await store.check(digest);
  assert.equal(again.state === 'ok' && again.rehashed, false);
});

test('check: a hard link hoard makes (store.linking) does not force a re-hash; one made by someone else does', async (t) => {
  const { store } = newStore(t);
  const digest = await put(store, randomData(5000));
  await sleep(15);
  await store.linking([digest], () => fs.link(store.blobPath(digest), path.join(path.dirname(store.root), 'output-link')));
  const c = await store.check(digest);
  assert.equal(c.state === 'ok' && c.rehashed, false);
  await sleep(15);
  await fs.link(store.blobPath(digest), path.join(path.dirname(store.root), 'someone-elses-link'));
  const d = await store.check(digest);
  assert.equal(d.state === 'ok' && d.rehashed, true, 'the ctime moved without hoard: re-hashed');
});

test('linking: overlapping operations on one blob share one bracket (a check inside trusts the blob; settled gets its final stat once the last ends)', async (t) => {
  const { store } = newStore(t);
  const digest = await put(store, randomData(5000));
  const blob = store.blobPath(digest);
  const dir = path.dirname(store.root);
  await sleep(15);
  const settled: Array<Array<Stats | null>> = [[], []];
  let open!: () => void;
  const held = new Promise<void>((resolve) => (open = resolve));
  const first = store.linking([digest], async () => {
    await fs.link(blob, path.join(dir, 'a'));
    await held;
  }, (st) => settled[0]!.push(st));
  let inside: BlobCheck | undefined;
  await store.linking([digest], async () => {
    await fs.link(blob, path.join(dir, 'b'));
    inside = await store.check(digest);
  }, (st) => settled[1]!.push(st));
  assert.equal(inside?.state === 'ok' && inside.rehashed, false, 'only hoard\'s links moved the ctime since the bracket began: trusted');
  assert.deepEqual(settled.map((calls) => calls.length), [0, 0], 'settled waits for the last operation on the blob');
  open();
  await first;
  const now = statSync(blob);
  for (const calls of settled) {
    assert.equal(calls.length, 1);
    assert.deepEqual([calls[0]?.ino, calls[0]?.ctimeMs, calls[0]?.nlink], [now.ino, now.ctimeMs, 3], 'the blob as it is after every link');
  }
  const after = await store.check(digest);
  assert.equal(after.state === 'ok' && after.rehashed, false, 'the fingerprint after the bracket was recorded');
});

test('linking: a blob replaced during the bracket: settled gets null and nothing is recorded for it', async (t) => {
  const { store } = newStore(t);
  const data = randomData(5000);
  const digest = await put(store, data);
  const blob = store.blobPath(digest);
  const got: Array<[Stats | null, readonly number[]]> = [];
  const before = statSync(blob).ino;
  await store.linking([digest], async () => {
    // Someone puts another file (with the same bytes) in its place.
    const other = path.join(path.dirname(store.root), 'other');
    await fs.writeFile(other, data, { mode: 0o444 });
    await fs.rename(other, blob);
  }, (st, inodes) => got.push([st, inodes]));
  assert.deepEqual(got, [[null, [before, statSync(blob).ino]]], 'null, and the inodes the name had at the start and at the end');
  const c = await store.check(digest);
  assert.equal(c.state === 'ok' && c.rehashed, true, 'a file hoard did not verify is re-hashed');
});

test('check: a missing blob is missing; a removed blob is missing', async (t) => {
  const { store } = newStore(t);
  assert.equal((await store.check(digestOf(Buffer.from('never stored')))).state, 'missing');
  const digest = await put(store, randomData(100));
  await store.remove(digest);
  assert.equal((await store.check(digest)).state, 'missing');
  assert.deepEqual(await store.list(), []);
});

test('check: a blob of another size than expected is corrupt', async (t) => {
  const { store } = newStore(t);
  const data = randomData(5000);
  const digest = await put(store, data);
  assert.equal((await store.check(digest, { size: data.length + 1 })).state, 'corrupt');
  assert.equal((await store.check(digest, { size: data.length })).state, 'ok');
});

test('check: something other than a regular file at the blob path is corrupt', async (t) => {
  const { store } = newStore(t);
  const digest = digestOf(Buffer.from('a folder'));
  await fs.mkdir(store.blobPath(digest), { recursive: true });
  assert.equal((await store.check(digest)).state, 'corrupt');
});

test('check: fingerprints survive into the next openStore after flush(), and only after it', async (t) => {
  const root = path.join(tmpDir(t), 'store');
  const first = openStore(root);
  const a = await put(first, randomData(5000));
  const unflushed = openStore(root);
  const c0 = await unflushed.check(a);
  assert.equal(c0.state === 'ok' && c0.rehashed, true, 'nothing was flushed, so a new store must re-hash');

  const b = await put(first, randomData(5000));
  await first.flush();
  const second = openStore(root);
  const c1 = await second.check(b);
  assert.equal(c1.state === 'ok' && c1.rehashed, false, 'the flushed fingerprint was not used');

  // A change after the flush is still caught by the next process.
  await flipByte(first.blobPath(b), 0);
  assert.equal((await openStore(root).check(b)).state, 'corrupt');
});

test('ingestFile: copies a local file in, verified, read-only, without touching the original', async (t) => {
  const { store, root } = newStore(t);
  const src = path.join(path.dirname(root), 'local.iso');
  const data = randomData(30_000);
  await fs.writeFile(src, data, { mode: 0o644 });
  const digest = await store.ingestFile(src, { digest: digestOf(data), size: data.length, checksums: { sha512: hashHex('sha512', data) } });
  assert.equal(digest, digestOf(data));
  const blob = statSync(store.blobPath(digest));
  assert.equal(blob.mode & 0o7777, 0o444);
  assert.notEqual(blob.ino, statSync(src).ino, 'the original itself became the blob');
  assert.equal(statSync(src).mode & 0o7777, 0o644, 'the original was made read-only');
  assert.deepEqual(tmpIn(root), []);
  const c = await store.check(digest);
  assert.equal(c.state === 'ok' && c.rehashed, false);
});

for (const [what, expected] of [
  ['digest', { digest: digestOf(Buffer.from('something else')) }],
  ['size', { size: 1 }],
  ['sha512', { checksums: { sha512: hashHex('sha512', Buffer.from('something else')) } }],
] as Array<[string, Expected]>) {
  test(`ingestFile: a local file with the wrong ${what} → E_INTEGRITY, nothing stored`, async (t) => {
    const { store, root } = newStore(t);
    const src = path.join(path.dirname(root), 'local.iso');
    await fs.writeFile(src, randomData(30_000));
    await assert.rejects(store.ingestFile(src, expected), isIntegrity);
    assert.deepEqual(await listTree(path.join(root, 'v1', 'blobs')), ['sha256']);
    assert.deepEqual(tmpIn(root), []);
  });
}

// Resumable writers: what a download continues from after a reset, Ctrl-C or kill -9.

const KEY = 'ab'.repeat(32);

async function feed(writer: Awaited<ReturnType<Store['createWriter']>>, data: Buffer, chunk = 100_000): Promise<void> {
  for (let i = 0; i < data.length; i += chunk) {
    const wait = writer.write(data.subarray(i, i + chunk));
    if (wait) await wait;
  }
}

test('resumable writer: abort({ keep }) leaves the bytes; a new writer continues from them to the right digest', async (t) => {
  const { store, root } = newStore(t);
  const data = randomData(5_000_000);
  const first = await store.createWriter([], { resumeKey: KEY });
  assert.equal(first.bytesWritten, 0);
  assert.equal(first.source, null);
  await first.restart({ url: 'http://x/a', etag: '"1"' });
  await feed(first, data.subarray(0, 3_200_000));
  await first.abort({ keep: true });
  assert.deepEqual(tmpIn(root).sort(), [`${KEY}.partial`, `${KEY}.partial.json`]);
  assert.deepEqual(readFileSync(path.join(root, 'v1', 'tmp', `${KEY}.partial`)), data.subarray(0, 3_200_000));

  const second = await store.createWriter(['md5'], { resumeKey: KEY });
  assert.equal(second.bytesWritten, 3_200_000);
  assert.deepEqual(second.source, { url: 'http://x/a', etag: '"1"' });
  await feed(second, data.subarray(3_200_000));
  const digest = await second.commit({ digest: digestOf(data), size: data.length, checksums: { md5: hashHex('md5', data) } });
  assert.equal(sha256(readFileSync(store.blobPath(digest))), sha256(data));
  assert.deepEqual(tmpIn(root), [], 'the partial file and its source are gone once published');
});

test('resumable writer: restart() mid-way drops every byte so far, also those still being written', async (t) => {
  const { store } = newStore(t);
  const old = randomData(6_000_000);
  const fresh = randomData(2_500_000);
  const writer = await store.createWriter([], { resumeKey: KEY });
  await writer.restart({ url: 'http://x/a' });
  // No waiting on back-pressure: buffers are full and a write is in flight when restart() comes.
  for (let i = 0; i < old.length; i += 1_000_000) void writer.write(old.subarray(i, i + 1_000_000));
  const restarted = writer.restart({ url: 'http://x/a', etag: '"2"' });
  assert.equal(writer.bytesWritten, 0);
  await feed(writer, fresh);
  await restarted;
  const digest = await writer.commit({ size: fresh.length });
  assert.equal(digest, digestOf(fresh));
  assert.deepEqual(readFileSync(store.blobPath(digest)), fresh);
});

test('resumable writer: a partial file without its source file is not trusted: the writer starts empty', async (t) => {
  const { store, root } = newStore(t);
  const writer = await store.createWriter([], { resumeKey: KEY });
  await writer.restart({ url: 'http://x/a' });
  await feed(writer, randomData(300_000));
  await writer.abort({ keep: true });
  await fs.rm(path.join(root, 'v1', 'tmp', `${KEY}.partial.json`));
  const again = await store.createWriter([], { resumeKey: KEY });
  assert.equal(again.bytesWritten, 0);
  assert.equal(statSync(again.tmpPath).size, 0);
  await again.abort();
  assert.deepEqual(tmpIn(root), []);
});

test('resumable writer: abort() without keep, or after a failed verification, removes the partial file', async (t) => {
  const { store, root } = newStore(t);
  const data = randomData(200_000);
  const writer = await store.createWriter([], { resumeKey: KEY });
  await writer.restart({ url: 'http://x/a' });
  await feed(writer, data);
  await assert.rejects(writer.commit({ digest: digestOf(randomData(10)) }), (e: unknown) => e instanceof HoardError && e.code === 'E_INTEGRITY');
  assert.deepEqual(tmpIn(root), []);
  assert.deepEqual(blobsIn(root), []);
});
