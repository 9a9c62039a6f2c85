import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { parseChecksumFile } from '../../src/download/checksum.ts';
import { HoardError } from '../../src/core/errors.ts';
import { hoard, randomData, startServer, tmpDir } from '../helpers.ts';

const hash = (alg: string, data: Uint8Array) => createHash(alg).update(data).digest('hex');

test('parseChecksumFile: coreutils lines pick the named file; bare hex; BSD style; algorithm by length', () => {
  const a = 'a'.repeat(128);
  const b = 'b'.repeat(128);
  assert.deepEqual(parseChecksumFile(`${a}  other.iso\n${b} *cEOS.tar.xz\n`, 'cEOS.tar.xz', 'https://x.example/SHA512SUMS'), { algorithm: 'sha512', hex: b });
  assert.deepEqual(parseChecksumFile(`${'C'.repeat(64)}\n`, 'f', 'https://x.example/f.sha256'), { algorithm: 'sha256', hex: 'c'.repeat(64) });
  assert.deepEqual(parseChecksumFile(`MD5 (f.bin) = ${'d'.repeat(32)}\n`, 'f.bin', 'https://x.example/f.md5'), { algorithm: 'md5', hex: 'd'.repeat(32) });
  assert.deepEqual(parseChecksumFile(`${'e'.repeat(40)}  dir/f.bin\n`, 'f.bin', 'https://x.example/f.sha1'), { algorithm: 'sha1', hex: 'e'.repeat(40) });
});

test('parseChecksumFile: no line for the file, or a hex of the wrong length for the file name → E_INTEGRITY', () => {
  const code = (fn: () => unknown) => {
    try {
      fn();
    } catch (err) {
      return (err as HoardError).code;
    }
    return 'no error';
  };
  assert.equal(code(() => parseChecksumFile(`${'a'.repeat(64)}  a.iso\n${'b'.repeat(64)}  b.iso\n`, 'c.iso', 'https://x.example/SHA256SUMS')), 'E_INTEGRITY');
  assert.equal(code(() => parseChecksumFile(`${'a'.repeat(64)}\n`, 'f', 'https://x.example/f.sha512sum')), 'E_INTEGRITY');
  assert.equal(code(() => parseChecksumFile('not a checksum\n', 'f', 'https://x.example/f.md5')), 'E_INTEGRITY');
});

test('add --checksum-url: sha512sum, sha256 and md5 files are verified and recorded; a mismatch is exit 1 and nothing recorded', async (t) => {
  const data = randomData(30_000);
  const name = 'vEOS-lab-4.32.1F.qcow2';
  const srv = await startServer(t, {
    [`/${name}`]: data,
    [`/${name}.sha512sum`]: Buffer.from(`${hash('sha512', data)}  ${name}\n`),
    [`/${name}.sha256`]: Buffer.from(`${hash('sha256', data)}\n`),
    [`/${name}.md5`]: Buffer.from(`${hash('md5', data)} *${name}\n`),
    '/bad.md5': Buffer.from(`${'0'.repeat(32)}  ${name}\n`),
  });
  const cases: Array<[string, (m: Record<string, unknown>) => void]> = [
    [`/${name}.sha512sum`, (e) => assert.deepEqual(e.checksums, { sha512: hash('sha512', data) })],
    [`/${name}.sha256`, (e) => assert.equal(e.digest, `sha256:${hash('sha256', data)}`)],
    [`/${name}.md5`, (e) => assert.deepEqual(e.checksums, { md5: hash('md5', data) })],
  ];
  for (const [sums, check] of cases) {
    const dir = tmpDir(t);
    const store = path.join(dir, 'store');
    assert.equal((await hoard(['init'], { cwd: dir, store })).code, 0);
    const r = await hoard(['add', srv.url(`/${name}`), '--checksum-url', srv.url(sums)], { cwd: dir, store });
    assert.equal(r.code, 0, `${sums}: ${r.stderr}`);
    const entry = JSON.parse(await fs.readFile(path.join(dir, 'hoard.json'), 'utf8')).artifacts[name];
    check(entry);
    assert.equal(entry.digest, `sha256:${hash('sha256', data)}`);
  }
  const dir = tmpDir(t);
  const store = path.join(dir, 'store');
  await hoard(['init'], { cwd: dir, store });
  const before = await fs.readFile(path.join(dir, 'hoard.json'));
  const bad = await hoard(['add', srv.url(`/${name}`), '--checksum-url', srv.url('/bad.md5')], { cwd: dir, store });
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /md5 mismatch/);
  assert.deepEqual(await fs.readFile(path.join(dir, 'hoard.json')), before);
});
