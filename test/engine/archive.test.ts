// Archive classification (src/engine/archive.ts) on real files: root filesystems made by GNU
// tar and compressed by gzip, xz, zstd and bzip2 (the real tools), and image-archive layouts
// built byte by byte (test/engine/tar.ts) for the header forms tar does not make on request.
// Archives made by `podman save` are classified in podman.test.ts, where podman makes them.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { promises as fs, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { gzipSync } from 'node:zlib';
import { HoardError } from '../../src/core/errors.ts';
import { classifyArchive, inspectArchive } from '../../src/engine/archive.ts';
import { randomData, tmpDir } from '../helpers.ts';
import { HEX, hasCommand, longName, pax, tar } from './tar.ts';

const HAVE_ZSTD = hasCommand('zstd');

/** A folder with `etc/hello` (and whatever `extra` adds), tarred by GNU tar as `tar -C root -cf out <what…>`. */
async function rootfsTar(t: TestContext, what: string[] = ['etc'], extra?: (root: string) => Promise<void>): Promise<{ dir: string; file: string }> {
  const dir = tmpDir(t);
  const root = path.join(dir, 'root');
  await fs.mkdir(path.join(root, 'etc'), { recursive: true });
  await fs.writeFile(path.join(root, 'etc', 'hello'), 'hello from a root filesystem\n');
  await extra?.(root);
  const file = path.join(dir, 'rootfs.tar');
  execFileSync('tar', ['-C', root, '-cf', file, ...what]);
  return { dir, file };
}

/** `tool -k file` next to it, e.g. rootfs.tar.xz; returns the new path. */
function compress(file: string, tool: 'gzip' | 'xz' | 'zstd' | 'bzip2'): string {
  const ext = { gzip: 'gz', xz: 'xz', zstd: 'zst', bzip2: 'bz2' }[tool];
  execFileSync(tool, ['-k', '-f', '-q', file]);
  return `${file}.${ext}`;
}

function isEngineError(pattern: RegExp) {
  return (err: unknown) => {
    assert.ok(err instanceof HoardError, `not a HoardError: ${String(err)}`);
    assert.equal(err.code, 'E_ENGINE');
    assert.match(err.message, pattern);
    return true;
  };
}

test('a root filesystem tarball is rootfs: plain, gzip, xz, bzip2 and zstd', async (t) => {
  const { file } = await rootfsTar(t);
  assert.equal(await classifyArchive(file), 'rootfs');
  assert.equal(await classifyArchive(compress(file, 'gzip')), 'rootfs');
  assert.equal(await classifyArchive(compress(file, 'xz')), 'rootfs');
  assert.equal(await classifyArchive(compress(file, 'bzip2')), 'rootfs');
  if (HAVE_ZSTD) assert.equal(await classifyArchive(compress(file, 'zstd')), 'rootfs');
  else t.diagnostic('zstd is not installed: the .tar.zst case was skipped (apt-get install zstd)');
});

test('a root filesystem tarred as `.` (./, ./etc/…, as cEOS-lab ships it) is rootfs', async (t) => {
  const { file } = await rootfsTar(t, ['.']);
  assert.match(execFileSync('tar', ['-tf', file], { encoding: 'utf8' }), /^\.\/\n\.\/etc\//);
  assert.equal(await classifyArchive(compress(file, 'xz')), 'rootfs');
});

test('a root filesystem is decided at its first entry: a 256 MiB .tar.xz is not decompressed', async (t) => {
  // etc/ comes first, then 256 MiB of zeros (a few hundred KiB once compressed): reading the
  // whole archive would pass 256 MiB through xz; deciding at etc/ reads one block or two.
  const { file } = await rootfsTar(t, ['etc', 'big.bin'], async (root) => {
    const handle = await fs.open(path.join(root, 'big.bin'), 'w');
    await handle.truncate(256 * 1024 * 1024);
    await handle.close();
  });
  const xz = path.join(path.dirname(file), 'big.tar.xz');
  execFileSync('sh', ['-c', 'xz -0 -T0 -c "$1" > "$2"', 'sh', file, xz]);
  await fs.rm(file);
  const result = await inspectArchive(xz);
  assert.equal(result.kind, 'rootfs');
  assert.ok(result.bytesRead <= 4096, `read ${result.bytesRead} bytes to decide`);
  // The same in-process (gzip), and for a plain tar, where nothing is decompressed at all.
  const gz = path.join(path.dirname(file), 'big.tar.gz');
  writeFileSync(gz, gzipSync(tar([{ name: 'etc/', type: '5' }, { name: 'etc/big', data: Buffer.alloc(64 * 1024 * 1024) }])));
  assert.deepEqual(await inspectArchive(gz), { kind: 'rootfs', bytesRead: 512 });
});

test('a docker save archive is decided at its first entry; an OCI layout is read to its end', async (t) => {
  const dir = tmpDir(t);
  const layer = Buffer.alloc(16 * 1024 * 1024);
  // Classic docker save (and podman's docker-archive): <id>/ or <id>.tar comes first, and only
  // docker save writes those: the 16 MiB layer after it is not read.
  const classic = path.join(dir, 'classic.tar.gz');
  writeFileSync(classic, gzipSync(tar([
    { name: `${HEX}/`, type: '5' },
    { name: `${HEX}/layer.tar`, data: layer },
    { name: `${HEX}.json`, data: '{}' },
    { name: 'manifest.json', data: '[]' },
    { name: 'repositories', data: '{}' },
  ])));
  assert.deepEqual(await inspectArchive(classic), { kind: 'docker-archive', bytesRead: 512 });
  // An OCI layout (and docker >= 25) puts blobs/ first and index.json, oci-layout (and
  // manifest.json) last: stopping in the blobs would decide wrongly or not at all.
  const oci = path.join(dir, 'oci.tar.gz');
  writeFileSync(oci, gzipSync(tar([
    { name: 'blobs/', type: '5' },
    { name: `blobs/sha256/${HEX}`, data: layer },
    { name: 'index.json', data: '{}' },
    { name: 'oci-layout', data: '{"imageLayoutVersion":"1.0.0"}' },
  ])));
  const result = await inspectArchive(oci);
  assert.equal(result.kind, 'oci-archive');
  assert.ok(result.bytesRead > layer.length, `read only ${result.bytesRead} bytes`);
});

test('docker save layouts, old and new, are docker-archive; an OCI layout is oci-archive', async (t) => {
  const dir = tmpDir(t);
  const write = (name: string, data: Buffer) => {
    const file = path.join(dir, name);
    writeFileSync(file, data);
    return file;
  };
  // docker < 25: <id>/layer.tar, <id>.json, manifest.json, repositories
  const old = write('old.tar', tar([
    { name: `${HEX}/`, type: '5' },
    { name: `${HEX}/VERSION`, data: '1.0' },
    { name: `${HEX}/layer.tar`, data: randomData(3000) },
    { name: `${HEX}.json`, data: '{}' },
    { name: 'manifest.json', data: '[]' },
    { name: 'repositories', data: '{}' },
  ]));
  // docker >= 25: an OCI layout that also has manifest.json: `docker load` handles it.
  const both = write('both.tar', tar([
    { name: 'blobs/', type: '5' },
    { name: 'blobs/sha256/', type: '5' },
    { name: `blobs/sha256/${HEX}`, data: randomData(1000) },
    { name: 'index.json', data: '{}' },
    { name: 'manifest.json', data: '[]' },
    { name: 'oci-layout', data: '{"imageLayoutVersion":"1.0.0"}' },
    { name: 'repositories', data: '{}' },
  ]));
  const oci = write('oci.tar', tar([
    { name: 'blobs/', type: '5' },
    { name: `blobs/sha256/${HEX}`, data: randomData(1000) },
    { name: 'index.json', data: '{}' },
    { name: 'oci-layout', data: '{"imageLayoutVersion":"1.0.0"}' },
  ]));
  // index.json and blobs/ without oci-layout: not a layout anyone loads.
  const incomplete = write('incomplete.tar', tar([{ name: 'index.json', data: '{}' }, { name: `blobs/sha256/${HEX}`, data: 'x' }]));
  assert.equal(await classifyArchive(old), 'docker-archive');
  assert.equal(await classifyArchive(both), 'docker-archive');
  assert.equal(await classifyArchive(oci), 'oci-archive');
  assert.equal(await classifyArchive(compress(oci, 'xz')), 'oci-archive');
  assert.equal(await classifyArchive(compress(old, 'bzip2')), 'docker-archive');
  assert.equal(await classifyArchive(incomplete), 'rootfs');
});

test('long names: the ustar prefix, GNU long names and PAX paths are the names classified', async (t) => {
  const dir = tmpDir(t);
  const cases: Array<[string, Buffer, string]> = [
    // Read without its prefix, the entry's root would be `aaa…` (not image vocabulary): rootfs.
    ['prefix', tar([
      { name: 'a'.repeat(100), prefix: 'blobs/sha256', data: 'x' },
      { name: 'index.json', data: '{}' },
      { name: 'oci-layout', data: '{}' },
    ]), 'oci-archive'],
    // The header's own name is a truncated stand-in; the long name says manifest.json.
    ['gnu', tar([longName('manifest.json'), { name: 'zzzz-truncated', data: '[]' }]), 'docker-archive'],
    ['pax', tar([pax({ path: 'manifest.json', mtime: '1.5' }), { name: 'zzzz-truncated', data: '[]' }]), 'docker-archive'],
    // And the other way round: a long name that is a root filesystem's.
    ['gnu-rootfs', tar([longName(`etc/${'n'.repeat(120)}`), { name: 'manifest.json', data: 'x' }]), 'rootfs'],
    // A base-256 size field: misread, the next header would be looked for in the wrong place.
    ['base256', tar([{ name: `blobs/sha256/${HEX}`, data: randomData(1500), base256: true }, { name: 'manifest.json', data: '[]' }]), 'docker-archive'],
    // PAX size overrides the header's size field (0 here, as for files of 8 GiB and more).
    ['pax-size', tar([pax({ size: '1500' }), { name: `blobs/sha256/${HEX}`, data: randomData(1500), sizeField: 0 }, { name: 'manifest.json', data: '[]' }]), 'docker-archive'],
    // A folder has no data, whatever its size field says.
    ['folder-size', tar([{ name: 'blobs/', type: '5', sizeField: 1024 }, { name: 'manifest.json', data: '[]' }]), 'docker-archive'],
  ];
  for (const [name, data, kind] of cases) {
    const file = path.join(dir, `${name}.tar`);
    writeFileSync(file, data);
    assert.equal(await classifyArchive(file), kind, name);
  }
});

test('a file that is not a tar is refused with a clear E_ENGINE error, compressed or not', async (t) => {
  const dir = tmpDir(t);
  const notTar = /is not a tar archive \(compressed or not\); cannot import it as an image/;
  const random = path.join(dir, 'random.bin');
  writeFileSync(random, randomData(4096));
  await assert.rejects(classifyArchive(random), isEngineError(notTar));
  await assert.rejects(classifyArchive(compress(random, 'xz')), isEngineError(notTar));
  const gz = path.join(dir, 'text.gz');
  writeFileSync(gz, gzipSync('just some text\n'));
  await assert.rejects(classifyArchive(gz), isEngineError(notTar));
  const empty = path.join(dir, 'empty');
  writeFileSync(empty, '');
  await assert.rejects(classifyArchive(empty), isEngineError(notTar));
});

test('a damaged archive is an E_ENGINE error naming the problem, not a guess', async (t) => {
  const dir = tmpDir(t);
  // A bad checksum in the second header (index.json does not decide, so reading goes on).
  const data = tar([{ name: 'index.json', data: '{}' }, { name: 'manifest.json', data: '[]' }]);
  data[1024 + 10] = data[1024 + 10]! ^ 0xff;
  const bad = path.join(dir, 'bad.tar');
  writeFileSync(bad, data);
  await assert.rejects(classifyArchive(bad), isEngineError(/damaged tar archive: bad header checksum at byte 1024/));
  // A .xz cut in the middle of a blob: xz's own complaint is the message, not "truncated tar".
  const image = path.join(dir, 'image.tar');
  writeFileSync(image, tar([{ name: `blobs/sha256/${HEX}`, data: randomData(256 * 1024) }, { name: 'index.json', data: '{}' }, { name: 'oci-layout', data: '{}' }]));
  const xz = compress(image, 'xz');
  const whole = await fs.readFile(xz);
  await fs.writeFile(xz, whole.subarray(0, whole.length >> 1));
  await assert.rejects(classifyArchive(xz), isEngineError(/^xz could not decompress .*: .*(Unexpected end of input|corrupt)/i));
});

test('a missing decompressor is an E_ENGINE error naming the package to install', async (t) => {
  const { file } = await rootfsTar(t);
  const xz = compress(file, 'xz');
  const emptyPath = tmpDir(t);
  const saved = process.env.PATH;
  process.env.PATH = emptyPath; // spawn looks xz up in this PATH: nothing there
  try {
    await assert.rejects(classifyArchive(xz), (err) => {
      assert.ok(err instanceof HoardError);
      assert.equal(err.code, 'E_ENGINE');
      assert.match(err.message, /^xz is not installed/);
      assert.match(err.hint ?? '', /apt-get install xz-utils/);
      return true;
    });
  } finally {
    process.env.PATH = saved;
  }
});
