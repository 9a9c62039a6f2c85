// The materializer (src/materialize/materialize.ts) on real filesystems: the temp folder's,
// /dev/shm (tmpfs) as a second device, and a loop-mounted XFS image for reflinks.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { constants, copyFileSync, existsSync, promises as fs, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { HoardError, type ErrorCode } from '../../src/core/errors.ts';
import { createMaterializer, type MaterializeRequest } from '../../src/materialize/materialize.ts';
import { openStore } from '../../src/store/store.ts';
import { listTree, randomData, sha256, tmpDir } from '../helpers.ts';

/** Stores `data` in a store at `root` and returns the blob's path. */
async function blobIn(root: string, data: Buffer): Promise<string> {
  const store = openStore(root);
  const writer = await store.createWriter();
  await writer.write(data);
  return store.blobPath(await writer.commit({ size: data.length }));
}

async function setup(t: TestContext, size = 64 * 1024) {
  const base = tmpDir(t);
  const data = randomData(size);
  const blob = await blobIn(path.join(base, 'store'), data);
  const outputRoot = path.join(base, 'out');
  await fs.mkdir(outputRoot);
  const req = (relPath: string, extra: Partial<MaterializeRequest> = {}): MaterializeRequest => ({
    blob, outputRoot, relPath, link: 'auto', executable: false, ...extra,
  });
  return { base, data, blob, outputRoot, req };
}

const mode = (p: string) => statSync(p).mode & 0o7777;
const hoardTemps = (dir: string) => readdirSync(dir).filter((n) => n.includes('.hoard-'));

function hasCode(code: ErrorCode) {
  return (err: unknown) => {
    assert.ok(err instanceof HoardError, `not a HoardError: ${String(err)}`);
    assert.equal(err.code, code);
    return true;
  };
}

/** A folder on /dev/shm, when that is another device than the temp folder; null otherwise. */
function otherDevice(t: TestContext): string | null {
  if (!existsSync('/dev/shm') || statSync('/dev/shm').dev === statSync(os.tmpdir()).dev) return null;
  const dir = mkdtempSync('/dev/shm/hoard-test-');
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Whether `dir`'s filesystem can clone files (then "reflink fails here" cannot be tested there). */
function canReflink(dir: string): boolean {
  const a = path.join(dir, '.probe-a');
  const b = path.join(dir, '.probe-b');
  writeFileSync(a, 'probe');
  try {
    copyFileSync(a, b, constants.COPYFILE_FICLONE_FORCE);
    return true;
  } catch {
    return false;
  } finally {
    rmSync(a, { force: true });
    rmSync(b, { force: true });
  }
}

test('auto on one filesystem without reflink: a hard link of the blob (same inode), no temp file left', async (t) => {
  const { blob, data, outputRoot, req } = await setup(t);
  if (canReflink(outputRoot)) return t.skip(`${os.tmpdir()} supports reflinks; auto would (rightly) clone`);
  const { method, target } = await createMaterializer().materialize(req('images/a.bin'));
  assert.equal(method, 'hardlink');
  assert.equal(target, path.join(outputRoot, 'images', 'a.bin'));
  assert.equal(statSync(target).ino, statSync(blob).ino);
  assert.ok((await fs.readFile(target)).equals(data));
  assert.deepEqual(hoardTemps(path.dirname(target)), []);
});

test('copy: its own inode, the same bytes, mode 0644; with executable 0755; the blob stays 0444', async (t) => {
  const { blob, data, req } = await setup(t);
  const m = createMaterializer();
  const plain = await m.materialize(req('a.bin', { link: 'copy' }));
  assert.equal(plain.method, 'copy');
  assert.notEqual(statSync(plain.target).ino, statSync(blob).ino);
  assert.ok((await fs.readFile(plain.target)).equals(data));
  assert.equal(mode(plain.target), 0o644);

  const exe = await m.materialize(req('tool.run', { link: 'copy', executable: true }));
  assert.equal(exe.method, 'copy');
  assert.equal(mode(exe.target), 0o755);
  assert.equal(mode(blob), 0o444);
});

test('auto + executable never hard-links (that would share, or chmod, the read-only blob)', async (t) => {
  const { blob, data, req } = await setup(t);
  const { method, target } = await createMaterializer().materialize(req('tool.run', { executable: true }));
  assert.notEqual(method, 'hardlink');
  assert.notEqual(statSync(target).ino, statSync(blob).ino);
  assert.equal(mode(target), 0o755);
  assert.equal(mode(blob), 0o444, 'the blob was made executable');
  assert.ok((await fs.readFile(target)).equals(data));
});

test('explicit hardlink across filesystems → E_LINK, nothing written', async (t) => {
  const { req } = await setup(t);
  const shm = otherDevice(t);
  if (!shm) return t.skip(`/dev/shm is missing or on the same device as ${os.tmpdir()}: no second filesystem to link across`);
  const outputRoot = path.join(shm, 'out');
  await assert.rejects(createMaterializer().materialize({ ...req('a.bin'), outputRoot, link: 'hardlink' }), hasCode('E_LINK'));
  assert.deepEqual(await listTree(outputRoot), []);
});

test('auto across filesystems falls back to a copy (and keeps doing so for the next file)', async (t) => {
  const { blob, data, req } = await setup(t);
  const shm = otherDevice(t);
  if (!shm) return t.skip(`/dev/shm is missing or on the same device as ${os.tmpdir()}: no second filesystem to copy across`);
  const outputRoot = path.join(shm, 'out');
  const m = createMaterializer();
  for (const name of ['a.bin', 'b.bin']) {
    const { method, target } = await m.materialize({ ...req(name), outputRoot });
    assert.equal(method, 'copy');
    assert.ok((await fs.readFile(target)).equals(data));
    assert.equal(mode(target), 0o644);
  }
  assert.equal(mode(blob), 0o444);
  assert.deepEqual(await listTree(outputRoot), ['a.bin', 'b.bin']);
});

test('explicit reflink where the filesystem cannot clone → E_LINK, nothing written', async (t) => {
  const { outputRoot, req } = await setup(t);
  if (canReflink(outputRoot)) return t.skip(`${os.tmpdir()} supports reflinks; nothing to refuse`);
  await assert.rejects(createMaterializer().materialize(req('a.bin', { link: 'reflink' })), hasCode('E_LINK'));
  assert.deepEqual(await listTree(outputRoot), []);
});

test('replacing an existing file is atomic: the path never goes missing, an open reader keeps the old bytes, no temp files left', async (t) => {
  const { base, blob, outputRoot, req } = await setup(t);
  const other = randomData(64 * 1024);
  const otherBlob = await blobIn(path.join(base, 'store'), other);
  const target = path.join(outputRoot, 'disk.qcow2');
  await fs.writeFile(target, 'old content');
  const reader = await fs.open(target, 'r');
  t.after(() => reader.close());

  let missing = 0;
  let polling = true;
  const poll = () => {
    if (!existsSync(target)) missing++;
    if (polling) setImmediate(poll);
  };
  poll();
  const m = createMaterializer();
  try {
    for (let i = 0; i < 30; i++) {
      for (const link of ['copy', 'auto'] as const) await m.materialize({ ...req('disk.qcow2', { link }), blob: i % 2 ? otherBlob : blob });
    }
  } finally {
    polling = false;
  }
  assert.equal(missing, 0, 'the target was missing while being replaced');
  assert.equal((await reader.readFile()).toString(), 'old content', 'the old file was written in place, not replaced');
  assert.equal(sha256(await fs.readFile(target)), sha256(other));
  assert.deepEqual(hoardTemps(outputRoot), []);
});

test('materializing a hard link onto the same hard link again succeeds and leaves no temp file', async (t) => {
  const { blob, outputRoot, req } = await setup(t);
  const m = createMaterializer();
  const first = await m.materialize(req('a.bin', { link: 'hardlink' }));
  const second = await m.materialize(req('a.bin', { link: 'hardlink' }));
  assert.equal(second.method, 'hardlink');
  assert.equal(statSync(first.target).ino, statSync(blob).ino);
  assert.deepEqual(readdirSync(outputRoot), ['a.bin']);
});

const escapes: Array<[string, (base: string) => string]> = [
  ['"../escape.bin"', () => '../escape.bin'],
  ['"../new-folder/escape.bin" (a folder to create outside)', () => '../new-folder/escape.bin'],
  ['"images/../../escape.bin"', () => 'images/../../escape.bin'],
  ['absolute, into a new folder', (base) => path.join(base, 'abs', 'escape.bin')],
  ['"" (the output folder itself)', () => ''],
  ['"."', () => '.'],
];
for (const [what, relPathIn] of escapes) {
  test(`relPath ${what} → E_PATH, nothing written anywhere`, async (t) => {
    const { base, req } = await setup(t);
    const before = await listTree(base);
    await assert.rejects(createMaterializer().materialize(req(relPathIn(base))), hasCode('E_PATH'));
    assert.deepEqual(await listTree(base), before);
  });
}

test('a symlinked folder in relPath pointing outside the output → E_PATH, nothing written outside', async (t) => {
  const { base, outputRoot, req } = await setup(t);
  const outside = path.join(base, 'outside');
  await fs.mkdir(outside);
  await fs.symlink(outside, path.join(outputRoot, 'images'));
  await assert.rejects(createMaterializer().materialize(req('images/a.bin')), hasCode('E_PATH'));
  assert.deepEqual(await listTree(outside), []);
});

test(
  'a symlinked folder pointing outside, with folders below it to create → E_PATH, and no folder created outside',
  async (t) => {
    const { base, outputRoot, req } = await setup(t);
    const outside = path.join(base, 'outside');
    await fs.mkdir(outside);
    await fs.symlink(outside, path.join(outputRoot, 'images'));
    await assert.rejects(createMaterializer().materialize(req('images/arista/ceos/a.bin')), hasCode('E_PATH'));
    assert.deepEqual(await listTree(outside), []);
  },
);

test('with a boundary (the project folder): an output folder that is itself a symlink out of it → E_PATH naming it, nothing created outside', async (t) => {
  // The check where outputs are made, not only sync's check before it: a link swapped in after sync looked.
  const { base, blob } = await setup(t);
  const projectDir = path.join(base, 'project');
  const outside = path.join(base, 'outside');
  await fs.mkdir(projectDir);
  await fs.mkdir(outside);
  await fs.symlink(outside, path.join(projectDir, 'artifacts'));
  const req: MaterializeRequest = { blob, outputRoot: path.join(projectDir, 'artifacts', 'sub'), boundary: projectDir, relPath: 'a.bin', link: 'copy', executable: false };
  await assert.rejects(createMaterializer().materialize(req), (err: unknown) => {
    assert.ok(err instanceof HoardError && err.code === 'E_PATH', String(err));
    assert.match(err.message, /artifacts is a symbolic link to/);
    return true;
  });
  assert.deepEqual(await listTree(outside), []);
  // Without a boundary (an output folder chosen with --output), the same path is used as it is.
  const { boundary: _, ...chosen } = req;
  await createMaterializer().materialize(chosen);
  assert.deepEqual(await listTree(outside), ['sub', 'sub/a.bin']);
});

test('a symlink at the target itself is replaced by the file; the file it pointed to is untouched', async (t) => {
  const { base, data, outputRoot, req } = await setup(t);
  const victim = path.join(base, 'victim.txt');
  await fs.writeFile(victim, 'precious');
  await fs.symlink(victim, path.join(outputRoot, 'a.bin'));
  const { target } = await createMaterializer().materialize(req('a.bin', { link: 'copy' }));
  assert.equal((await fs.lstat(target)).isFile(), true);
  assert.ok((await fs.readFile(target)).equals(data));
  assert.equal(await fs.readFile(victim, 'utf8'), 'precious');
  assert.equal(mode(victim), 0o644);
});

for (const link of ['auto', 'copy', 'hardlink'] as const) {
  test(`a folder at the target (${link}) → E_CONFLICT, the folder and its content untouched, no temp file`, async (t) => {
    const { outputRoot, req } = await setup(t);
    await fs.mkdir(path.join(outputRoot, 'a.bin'));
    await fs.writeFile(path.join(outputRoot, 'a.bin', 'notes.txt'), 'mine');
    await assert.rejects(createMaterializer().materialize(req('a.bin', { link })), hasCode('E_CONFLICT'));
    assert.deepEqual(await listTree(outputRoot), ['a.bin', path.join('a.bin', 'notes.txt')]);
  });
}

// ---- Reflinks on a real XFS filesystem (loop-mounted image) ----

const MKFS_XFS = ['/sbin/mkfs.xfs', '/usr/sbin/mkfs.xfs'].find((p) => existsSync(p));

/** Mounts a fresh XFS image with reflink=1; returns its mount point, or a reason it cannot. */
function mountXfs(t: TestContext): string | { skip: string } {
  if (process.getuid?.() !== 0) return { skip: 'needs root to loop-mount an XFS image' };
  if (!MKFS_XFS) return { skip: 'mkfs.xfs not found (Debian package xfsprogs)' };
  const base = mkdtempSync(path.join(os.tmpdir(), 'hoard-xfs-'));
  const img = path.join(base, 'xfs.img');
  const mnt = path.join(base, 'mnt');
  let mounted = false;
  t.after(() => {
    if (mounted) {
      try {
        execFileSync('umount', [mnt], { stdio: 'pipe' });
      } catch {
        execFileSync('umount', ['-l', mnt], { stdio: 'pipe' });
      }
    }
    rmSync(base, { recursive: true, force: true });
  });
  try {
    writeFileSync(img, '');
    execFileSync('truncate', ['-s', '512M', img], { stdio: 'pipe' });
    execFileSync(MKFS_XFS, ['-q', '-m', 'reflink=1', img], { stdio: 'pipe' });
    execFileSync('mkdir', [mnt]);
    execFileSync('mount', ['-o', 'loop', img, mnt], { stdio: 'pipe' });
    mounted = true;
  } catch (err) {
    const stderr = (err as { stderr?: Buffer }).stderr?.toString().trim();
    return { skip: `cannot create and loop-mount an XFS image (no loop device, or not allowed here): ${stderr || (err as Error).message}` };
  }
  return mnt;
}

/** Physical start of each extent of `file`, from `filefrag -v`; null when filefrag is not installed. */
function extents(file: string): { starts: string[]; shared: boolean } | null {
  let out: string;
  try {
    out = execFileSync('filefrag', ['-v', file], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  } catch {
    return null;
  }
  const rows = [...out.matchAll(/^\s*\d+:\s+\d+\.\.\s*\d+:\s+(\d+)\.\.\s*\d+:.*$/gm)];
  return { starts: rows.map((r) => r[1]!), shared: rows.length > 0 && rows.every((r) => /shared/.test(r[0])) };
}

test('reflink on XFS: auto clones (own inode, same bytes, shared extents), executable too; across devices it cannot', async (t) => {
  const mnt = mountXfs(t);
  if (typeof mnt !== 'string') return t.skip(mnt.skip);
  const data = randomData(1024 * 1024 + 17);
  const blob = await blobIn(path.join(mnt, 'store'), data);
  const outputRoot = path.join(mnt, 'out');
  await fs.mkdir(outputRoot);

  await t.test('auto → reflink: a new inode with the blob\'s bytes, mode 0644, sharing the blob\'s extents', async () => {
    const { method, target } = await createMaterializer().materialize({ blob, outputRoot, relPath: 'images/a.bin', link: 'auto', executable: false });
    assert.equal(method, 'reflink');
    assert.notEqual(statSync(target).ino, statSync(blob).ino);
    assert.ok((await fs.readFile(target)).equals(data));
    assert.equal(mode(target), 0o644);
    assert.equal(mode(blob), 0o444);
    const [b, o] = [extents(blob), extents(target)];
    if (b && o) {
      assert.ok(o.shared, 'filefrag does not show the output\'s extents as shared');
      assert.deepEqual(o.starts, b.starts, 'the output does not use the blob\'s blocks');
    }
  });

  await t.test('auto + executable → reflink with mode 0755, the blob stays 0444', async () => {
    const { method, target } = await createMaterializer().materialize({ blob, outputRoot, relPath: 'tool.run', link: 'auto', executable: true });
    assert.equal(method, 'reflink');
    assert.equal(mode(target), 0o755);
    assert.equal(mode(blob), 0o444);
    assert.ok((await fs.readFile(target)).equals(data));
  });

  await t.test('explicit reflink works, and replaces an existing output atomically', async () => {
    await fs.writeFile(path.join(outputRoot, 'r.bin'), 'old');
    const { method, target } = await createMaterializer().materialize({ blob, outputRoot, relPath: 'r.bin', link: 'reflink', executable: false });
    assert.equal(method, 'reflink');
    assert.ok((await fs.readFile(target)).equals(data));
    assert.deepEqual(hoardTemps(outputRoot), []);
  });

  await t.test('a blob on another filesystem: explicit reflink → E_LINK, auto → copy', async (st) => {
    const ext = tmpDir(st);
    const foreign = await blobIn(path.join(ext, 'store'), data);
    if (statSync(foreign).dev === statSync(blob).dev) return st.skip('the temp folder is on the XFS image');
    const m = createMaterializer();
    await assert.rejects(m.materialize({ blob: foreign, outputRoot, relPath: 'x/r.bin', link: 'reflink', executable: false }), hasCode('E_LINK'));
    assert.equal(existsSync(path.join(outputRoot, 'x', 'r.bin')), false);
    const { method, target } = await createMaterializer().materialize({ blob: foreign, outputRoot, relPath: 'x/a.bin', link: 'auto', executable: false });
    assert.equal(method, 'copy');
    assert.ok((await fs.readFile(target)).equals(data));
  });
});
