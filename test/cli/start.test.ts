// How the executable starts: a code cache of its own making, kept in the user's cache folder
// (scripts/bin-loader.cjs). Node >= 22.1 keeps it with module.enableCompileCache(); Node 20,
// which has none, gets a V8 code cache of the CLI bundle that hoard writes after its first run.
import assert from 'node:assert/strict';
import { existsSync, promises as fs } from 'node:fs';
import nodeModule from 'node:module';
import path from 'node:path';
import { test } from 'node:test';
import { hoard, listTree, tmpDir } from '../helpers.ts';

const NODE_HAS_COMPILE_CACHE = typeof (nodeModule as { enableCompileCache?: unknown }).enableCompileCache === 'function';

test('the first run leaves a compile cache in $XDG_CACHE_HOME/hoard-compile-cache, the next one uses it; never in the store', async (t) => {
  if (process.env.NODE_V8_COVERAGE) {
    // Under c8 (npm test) the CLI runs its bundle without a cache (scripts/bin-loader.cjs), so
    // that coverage maps to the source; `npm run test:plain` (CI's Node 24 run) tests the cache.
    t.skip('the compile cache is off under coverage; run npm run test:plain');
    return;
  }
  const dir = tmpDir(t);
  const cache = path.join(dir, 'xdg-cache');
  const env = { XDG_CACHE_HOME: cache, NODE_COMPILE_CACHE: undefined, NODE_DISABLE_COMPILE_CACHE: undefined };
  const first = await hoard(['--version'], { cwd: dir, env });
  assert.equal(first.code, 0, first.stderr);
  const files = await listTree(path.join(cache, 'hoard-compile-cache'));
  assert.ok(files.length > 0, 'a compile cache was written');
  assert.ok(!existsSync(path.join(cache, 'hoard')), 'no store folder is made for it');
  if (NODE_HAS_COMPILE_CACHE) return; // Node's own: its format and reuse are Node's business.

  // Node 20: one file, named by the bundle and the Node version, accepted as it is next time.
  const [v8File] = files;
  assert.match(v8File!, new RegExp(`^hoard-main-[0-9a-f]{16}-${process.version}-${process.arch}\\.v8$`));
  const file = path.join(cache, 'hoard-compile-cache', v8File!);
  const before = await fs.stat(file);
  const second = await hoard(['--version'], { cwd: dir, env });
  assert.equal(second.code, 0, second.stderr);
  assert.equal((await fs.stat(file)).mtimeMs, before.mtimeMs, 'a cache V8 accepted is not written again');

  // A cache V8 rejects (another V8, damaged) is no error: hoard runs, and writes a good one.
  await fs.writeFile(file, Buffer.alloc(before.size, 7));
  const third = await hoard(['--help'], { cwd: dir, env });
  assert.equal(third.code, 0, third.stderr);
  assert.match(third.stdout, /hoard sync/);
  assert.notDeepEqual(await fs.readFile(file), Buffer.alloc(before.size, 7), 'the rejected cache was replaced');
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
