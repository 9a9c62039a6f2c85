// Hashing off the main thread (src/core/hash-pool.ts): real worker threads, real files.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import type { Worker } from 'node:worker_threads';
import { HoardError } from '../../src/core/errors.ts';
import { createHashPool, hashFileBytes, INLINE_BYTES, inlineHasher, sharedBuffer, sharedPool, type Hasher } from '../../src/core/hash-pool.ts';
import { hashFile } from '../../src/core/hashfile.ts';
import { openStore } from '../../src/store/store.ts';
import { tmpDir } from '../helpers.ts';

const hex = (alg: string, data: Uint8Array) => createHash(alg).update(data).digest('hex');
const KiB = 1024;
const MiB = 1024 * KiB;

/** Feeds `data` as a writer does: copied into a few shared buffers of `bufSize`, each reused once its hash is done. */
async function feed(h: Hasher, data: Buffer, bufSize: number): Promise<void> {
  const free = [sharedBuffer(bufSize), sharedBuffer(bufSize)];
  const inFlight: Array<Promise<void>> = [];
  for (let at = 0; at < data.length; at += bufSize) {
    while (free.length === 0) await inFlight.shift();
    const buf = free.pop()!;
    const n = data.copy(buf, 0, at, Math.min(at + bufSize, data.length));
    const done = h.update(buf.subarray(0, n));
    // The buffer is refilled only after the hasher is done with it: a reuse too early would change the digest.
    inFlight.push(Promise.resolve(done).then(() => void free.push(buf)));
  }
}

/**
 * Stops `workers` as if they crashed. The loop is held until their exits are seen: a reply still
 * on its way when the thread stops lets the pool unref the worker, and nothing else would keep
 * this test's loop alive until the exit.
 */
async function crash(workers: readonly Worker[]): Promise<void> {
  const hold = setInterval(() => {}, 60_000);
  try {
    await Promise.all(workers.map((w) => w.terminate()));
  } finally {
    clearInterval(hold);
  }
}

const SIZES = [0, 1, 64 * KiB - 1, 64 * KiB, 64 * KiB + 1, MiB, MiB + 1, 3 * MiB + 12345];

test('pool hasher: SHA-256 equals node:crypto for sizes 0, 1, around buffer boundaries and a few MiB, fed through reused shared buffers', async (t) => {
  const pool = createHashPool({ size: 2 });
  t.after(() => pool.close());
  for (const size of SIZES) {
    const data = randomBytes(size);
    for (const bufSize of [64 * KiB, MiB]) {
      const h = pool.hasher();
      await feed(h, data, bufSize);
      assert.equal(h.size, size);
      const r = await h.digest();
      assert.equal(r.digest, `sha256:${hex('sha256', data)}`, `size ${size}, buffers of ${bufSize}`);
      assert.equal(r.size, size);
    }
  }
});

test('pool hasher: a buffer that is not shared is copied once and hashed the same; the caller may change it at once', async (t) => {
  const pool = createHashPool({ size: 1 });
  t.after(() => pool.close());
  const data = randomBytes(2 * MiB + 7);
  const h = pool.hasher();
  const chunk = Buffer.alloc(100 * KiB);
  const pending: Array<Promise<void> | void> = [];
  for (let at = 0; at < data.length; at += chunk.length) {
    const n = data.copy(chunk, 0, at);
    pending.push(h.update(chunk.subarray(0, n)));
    chunk.fill(0xee); // reused before the worker got to it
  }
  await Promise.all(pending);
  assert.equal((await h.digest()).digest, `sha256:${hex('sha256', data)}`);
});

test('pool hasher: extra checksums (sha512, md5, sha1) equal node:crypto, beside SHA-256', async (t) => {
  const pool = createHashPool({ size: 2 });
  t.after(() => pool.close());
  const data = randomBytes(MiB + 333);
  const h = pool.hasher(['sha512', 'md5', 'sha1']);
  await feed(h, data, 256 * KiB);
  const r = await h.digest();
  assert.deepEqual(r.checksums, { sha256: hex('sha256', data), sha512: hex('sha512', data), md5: hex('md5', data), sha1: hex('sha1', data) });
});

test('pool hasher: eight hashers at once on two workers each get their own digest', async (t) => {
  const pool = createHashPool({ size: 2 });
  t.after(() => pool.close());
  const inputs = Array.from({ length: 8 }, (_, i) => randomBytes(256 * KiB * (i + 1) + i));
  const results = await Promise.all(
    inputs.map(async (data, i) => {
      const h = pool.hasher(i % 2 ? ['md5'] : []);
      await feed(h, data, 64 * KiB);
      return h.digest();
    }),
  );
  assert.ok(pool.threads().length <= 2, 'no more workers than the pool size');
  results.forEach((r, i) => assert.equal(r.digest, `sha256:${hex('sha256', inputs[i]!)}`, `hasher ${i}`));
});

test('pool and inline hashers: a file range, then buffers, hash in order (the prefix of a resumed download)', async (t) => {
  const dir = tmpDir(t);
  const data = randomBytes(9 * MiB + 5); // more than two of the worker's 4 MiB reads
  const file = path.join(dir, 'partial');
  writeFileSync(file, data.subarray(0, 9 * MiB));
  const pool = createHashPool({ size: 1 });
  t.after(() => pool.close());
  for (const h of [pool.hasher(['md5']), inlineHasher(['md5'])]) {
    const reading = h.updateFile(file, 0, 9 * MiB); // not awaited: the buffers queue behind it
    assert.equal(h.size, 9 * MiB);
    await Promise.all([reading, h.update(sharedBuffer(5).fill(0).map((_, i) => data[9 * MiB + i]!))]);
    const r = await h.digest();
    assert.equal(r.digest, `sha256:${hex('sha256', data)}`);
    assert.equal(r.checksums.md5, hex('md5', data));
    assert.equal(r.size, data.length);
  }
});

test('pool and inline hashers: a file shorter than the range asked for is an error naming it', async (t) => {
  const dir = tmpDir(t);
  const file = path.join(dir, 'short');
  writeFileSync(file, randomBytes(1000));
  const pool = createHashPool({ size: 1 });
  t.after(() => pool.close());
  for (const h of [pool.hasher(), inlineHasher()]) {
    await assert.rejects(h.updateFile(file, 0, 2000), /short ended after 1000 of 2000 bytes/);
    h.dispose();
  }
});

test('hashFile: small files inline and big ones in a worker give node:crypto\'s digests, size and checksums', async (t) => {
  const dir = tmpDir(t);
  for (const size of [0, 1, INLINE_BYTES - 1, INLINE_BYTES, INLINE_BYTES + 4 * MiB + 1]) {
    const data = randomBytes(size);
    const file = path.join(dir, `f${size}`);
    writeFileSync(file, data);
    const r = await hashFile(file, ['sha512']);
    assert.equal(r.digest, `sha256:${hex('sha256', data)}`, `size ${size}`);
    assert.equal(r.checksums.sha512, hex('sha512', data));
    assert.equal(r.size, size);
  }
  await assert.rejects(hashFileBytes(path.join(dir, 'nope')), { code: 'ENOENT' });
});

test('a hash worker that dies fails its hashers with a clear E_STORE error (no hang); the pool starts a new one', async (t) => {
  const pool = createHashPool({ size: 1 });
  t.after(() => pool.close());
  const h = pool.hasher();
  await h.update(sharedBuffer(1024));
  const [worker] = pool.threads();
  assert.ok(worker);
  const pending = h.update(sharedBuffer(8 * MiB));
  await crash([worker]); // as if the thread crashed (out of memory, a bug in it)
  for (const p of [Promise.resolve(pending), h.digest()]) {
    await assert.rejects(p, (err: unknown) => {
      assert.ok(err instanceof HoardError);
      assert.equal(err.code, 'E_STORE');
      assert.match(err.message, /hashing thread stopped/);
      assert.ok(err.hint);
      return true;
    });
  }
  const again = pool.hasher();
  const data = randomBytes(1000);
  await again.update(data);
  assert.equal((await again.digest()).digest, `sha256:${hex('sha256', data)}`);
  assert.notEqual(pool.threads()[0], worker);
});

test('an idle pool does not keep the process alive; a busy one does until its digest is in', async (t) => {
  const dir = tmpDir(t);
  const script = path.join(dir, 'child.mts');
  const poolModule = path.resolve('src/core/hash-pool.ts');
  writeFileSync(
    script,
    `import { createHashPool } from ${JSON.stringify(poolModule)};
const pool = createHashPool({ size: 1 });
const h = pool.hasher();
h.update(new Uint8Array(3 * 1024 * 1024)).then(() => h.digest()).then((r) => console.log(r.digest));
pool.hasher(); // another, never used: must not hold the process
`,
  );
  const out = execFileSync(process.execPath, ['--import', 'tsx', script], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(out.trim(), `sha256:${hex('sha256', new Uint8Array(3 * MiB))}`);
});

test('a hasher made and disposed before any byte (a download that failed before its first byte) does not keep the process alive', async (t) => {
  const dir = tmpDir(t);
  const script = path.join(dir, 'child.mts');
  writeFileSync(
    script,
    `import { createHashPool } from ${JSON.stringify(path.resolve('src/core/hash-pool.ts'))};
createHashPool({ size: 1 }).hasher().dispose();
console.log('done');
`,
  );
  // Before the fix the worker's port was ref'd again by its 'message' listener: this never exited.
  const out = execFileSync(process.execPath, ['--import', 'tsx', script], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(out.trim(), 'done');
});

test('store writer: its hash worker dying mid-download fails commit() with the E_STORE error, leaves no blob and no temp file', async (t) => {
  const root = path.join(tmpDir(t), 'store');
  const store = openStore(root);
  const data = randomBytes(INLINE_BYTES + MiB);
  const writer = await store.createWriter([], { sizeHint: data.length }); // big: hashed in a worker
  const chunk = 64 * KiB;
  for (let at = 0; at < 2 * MiB; at += chunk) await writer.write(data.subarray(at, at + chunk));
  await crash(sharedPool().threads());
  const rest = (async () => {
    for (let at = 2 * MiB; at < data.length; at += chunk) await writer.write(data.subarray(at, at + chunk));
    return writer.commit({ digest: `sha256:${hex('sha256', data)}`, size: data.length });
  })();
  await assert.rejects(rest, (err: unknown) => {
    assert.ok(err instanceof HoardError, String(err));
    assert.equal(err.code, 'E_STORE');
    assert.match(err.message, /hashing thread stopped/);
    return true;
  });
  await writer.abort();
  assert.deepEqual(readdirSync(path.join(root, 'v1', 'blobs', 'sha256')), []);
  assert.deepEqual(readdirSync(path.join(root, 'v1', 'tmp')), []);
});
