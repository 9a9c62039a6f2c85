// How the executable starts: a code cache of its own making, kept in the user's cache folder
// (scripts/bin-loader.cjs). On every Node, a V8 code cache of the CLI bundle that hoard writes
// after the first command's run (so it holds what that run compiled); on Node >= 22.1 also
// Node's own compile cache (module.enableCompileCache()) for the bundles loaded later.
import assert from 'node:assert/strict';
import { existsSync, promises as fs } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { hoard, listTree, tmpDir } from '../helpers.ts';

test('the first command leaves a code cache in $XDG_CACHE_HOME/hoard-compile-cache, the next one uses it; --help and --version leave none; never in the store', async (t) => {
  if (process.env.NODE_V8_COVERAGE) {
    // Under c8 (npm test) the CLI runs its bundle without a cache (scripts/bin-loader.cjs), so
    // that coverage maps to the source; `npm run test:plain` (CI's Node 24 run) tests the cache.
    t.skip('the compile cache is off under coverage; run npm run test:plain');
    return;
  }
  const dir = tmpDir(t);
  const cache = path.join(dir, 'xdg-cache');
  const env = { XDG_CACHE_HOME: cache, NODE_COMPILE_CACHE: undefined, NODE_DISABLE_COMPILE_CACHE: undefined, HOARD_STORE: path.join(dir, 'store') };
  const v8Files = async () => (await listTree(path.join(cache, 'hoard-compile-cache')).catch(() => [])).filter((f) => f.endsWith('.v8'));

  // The help and the version compile little of what a command runs: no cache from them.
  for (const args of [['--version'], ['--help'], ['sync', '--help']]) {
    const r = await hoard(args, { cwd: dir, env });
    assert.equal(r.code, 0, r.stderr);
  }
  assert.deepEqual(await v8Files(), []);

  const first = await hoard(['store', 'path'], { cwd: dir, env });
  assert.equal(first.code, 0, first.stderr);
  const files = await v8Files();
  assert.equal(files.length, 1, 'one code cache was written');
  assert.ok(!existsSync(path.join(cache, 'hoard')), 'no store folder is made for it');
  // One file, named by the bundle and the Node version, accepted as it is next time.
  assert.match(files[0]!, new RegExp(`^hoard-main-[0-9a-f]{16}-${process.version}-${process.arch}\\.v8$`));
  const file = path.join(cache, 'hoard-compile-cache', files[0]!);
  const before = await fs.stat(file);
  const second = await hoard(['store', 'path'], { cwd: dir, env });
  assert.equal(second.code, 0, second.stderr);
  assert.equal((await fs.stat(file)).mtimeMs, before.mtimeMs, 'a cache V8 accepted is not written again');

  // A cache V8 rejects (another V8, damaged) is no error: hoard runs, and writes a good one.
  await fs.writeFile(file, Buffer.alloc(before.size, 7));
  const third = await hoard(['store', 'path'], { cwd: dir, env });
  assert.equal(third.code, 0, third.stderr);
  assert.equal(third.stdout.trim(), path.join(dir, 'store'));
  assert.notDeepEqual(await fs.readFile(file), Buffer.alloc(before.size, 7), 'the rejected cache was replaced');
  const help = await hoard(['--help'], { cwd: dir, env });
  assert.match(help.stdout, /hoard sync/);

  // An older build's cache goes when this build writes its own; this build's for another Node stays.
  const old = path.join(cache, 'hoard-compile-cache', `hoard-main-${'0'.repeat(16)}-${process.version}-${process.arch}.v8`);
  const otherNode = path.join(cache, 'hoard-compile-cache', files[0]!.replace(process.version, 'v99.0.0'));
  await fs.writeFile(old, 'old');
  await fs.writeFile(otherNode, 'other');
  await fs.rm(file);
  const fourth = await hoard(['store', 'path'], { cwd: dir, env });
  assert.equal(fourth.code, 0, fourth.stderr);
  assert.deepEqual((await v8Files()).sort(), [files[0]!, path.basename(otherNode)].sort());
});

test('NODE_DISABLE_COMPILE_CACHE=1 writes no cache; a cache folder that cannot be made is no error', async (t) => {
  const dir = tmpDir(t);
  const cache = path.join(dir, 'xdg-cache');
  const off = await hoard(['--version'], { cwd: dir, env: { XDG_CACHE_HOME: cache, NODE_COMPILE_CACHE: undefined, NODE_DISABLE_COMPILE_CACHE: '1' } });
  assert.equal(off.code, 0, off.stderr);
  assert.ok(!existsSync(path.join(cache, 'hoard-compile-cache')));

  // XDG_CACHE_HOME is a file: the cache cannot be made there, and the command works anyway.
  const blocked = path.join(dir, 'not-a-folder');
  await fs.writeFile(blocked, '');
  const r = await hoard(['--help'], { cwd: dir, env: { XDG_CACHE_HOME: blocked, NODE_COMPILE_CACHE: undefined, NODE_DISABLE_COMPILE_CACHE: undefined } });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stderr, '');
  assert.match(r.stdout, /hoard sync/);
});
