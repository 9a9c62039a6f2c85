// hoard store path|ls|du|add|rm through the built CLI.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, promises as fs, statSync } from 'node:fs';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { hoard, jsonLines, randomData, ROOT, sha256, tmpDir } from '../helpers.ts';

async function setup(t: TestContext) {
  const base = tmpDir(t, 'hoard-store-');
  const store = path.join(base, 'store');
  const dir = path.join(base, 'lab');
  await fs.mkdir(dir);
  return { base, store, dir, run: (...args: string[]) => hoard(args, { cwd: dir, store }) };
}

const blobFile = (store: string, hex: string) => path.join(store, 'v1', 'blobs', 'sha256', hex);

test('store path prints the store folder, from --store, HOARD_STORE or the XDG default', async (t) => {
  const s = await setup(t);
  const r = await s.run('store', 'path');
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, `${s.store}\n`);
  assert.equal((await hoard(['store', 'path', '--store', 'rel/store', '-q'], { cwd: s.dir })).stdout, `${path.join(s.dir, 'rel', 'store')}\n`);
  const xdg = await hoard(['store', 'path'], { cwd: s.dir, env: { XDG_CACHE_HOME: path.join(s.base, 'cache') } });
  assert.equal(xdg.stdout, `${path.join(s.base, 'cache', 'hoard')}\n`);
  assert.deepEqual(jsonLines((await s.run('store', 'path', '--json')).stdout), [{ type: 'store', path: s.store }]);
});

test('store add ingests a local file read-only and prints its digest; a sync that names it needs no network; ls shows who references it', async (t) => {
  const s = await setup(t);
  const data = randomData(70_000);
  const file = path.join(s.base, 'cEOS-lab-4.32.1F.tar.xz');
  await fs.writeFile(file, data);
  const hex = sha256(data);

  const r = await s.run('store', 'add', file);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, `sha256:${hex}\n`, 'only the digest, for $(hoard store add …)');
  const blob = blobFile(s.store, hex);
  assert.equal(sha256(await fs.readFile(blob)), hex);
  assert.equal(statSync(blob).mode & 0o777, 0o444);
  assert.equal((await s.run('store', 'add', file)).stdout, `sha256:${hex}\n`, 'adding it again is fine');

  let ls = await s.run('store', 'ls');
  assert.equal(ls.code, 0, ls.stderr);
  assert.match(ls.stdout, new RegExp(`^sha256:${hex}  68\\.4 KiB  \\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d  -$`, 'm'));
  assert.match(ls.stdout, /1 blob, 68\.4 KiB; 1 named by no known manifest/);

  // A manifest locked to that digest, whose URL nobody answers: the store has it.
  const manifest = path.join(s.dir, 'hoard.json');
  await fs.writeFile(manifest, JSON.stringify({ version: 1, artifacts: { ceos: { url: 'http://127.0.0.1:9/cEOS-lab-4.32.1F.tar.xz', digest: `sha256:${hex}`, size: data.length } } }));
  const sync = await s.run('sync');
  assert.equal(sync.code, 0, sync.stderr);
  assert.match(sync.stdout, /ceos\s+cached, linked/);

  ls = await s.run('store', 'ls');
  assert.match(ls.stdout, new RegExp(`^sha256:${hex}  68\\.4 KiB  .*  ${manifest.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} \\(ceos\\)$`, 'm'));
  const events = jsonLines((await s.run('store', 'ls', '--json')).stdout);
  assert.deepEqual(events[0], {
    type: 'blob', digest: `sha256:${hex}`, path: blobFile(s.store, hex), size: data.length,
    lastUsed: events[0]!.lastUsed, references: [{ manifest, artifacts: ['ceos'] }],
  });
  assert.ok(Math.abs(Date.parse(String(events[0]!.lastUsed)) - Date.now()) < 60_000, 'last used: just now');
  assert.equal(events.at(-1)!.type, 'summary');

  const missing = await s.run('store', 'add', path.join(s.base, 'nope.bin'));
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /no file at .*nope\.bin/);
});

test('store ls lists the most recently used first', async (t) => {
  const s = await setup(t);
  const hexes: string[] = [];
  for (let i = 0; i < 3; i++) {
    const f = path.join(s.base, `f${i}`);
    const data = randomData(1000 + i);
    await fs.writeFile(f, data);
    assert.equal((await s.run('store', 'add', f)).code, 0);
    hexes.push(sha256(data));
    await new Promise((r) => setTimeout(r, 5));
  }
  const listed = jsonLines((await s.run('store', 'ls', '--json')).stdout).filter((e) => e.type === 'blob').map((e) => String(e.digest).slice(7));
  assert.deepEqual(listed, [...hexes].reverse());
});

test('store du counts the bytes and blobs, and temp files', async (t) => {
  const s = await setup(t);
  for (const [name, size] of [['a', 1000], ['b', 2500]] as const) {
    await fs.writeFile(path.join(s.base, name), randomData(size));
    assert.equal((await s.run('store', 'add', path.join(s.base, name))).code, 0);
  }
  await fs.writeFile(path.join(s.store, 'v1', 'tmp', `${process.pid}-abc.part`), Buffer.alloc(300));
  const r = await s.run('store', 'du');
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^blobs {7}3\.4 KiB in 2 blobs \(3500 bytes\)$/m);
  assert.match(r.stdout, /^temp files {2}300 B in 1 file$/m);
  assert.match(r.stdout, new RegExp(`^store {7}${s.store.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`, 'm'));
  assert.deepEqual(jsonLines((await s.run('store', 'du', '--json')).stdout), [
    { type: 'summary', store: s.store, blobs: 2, bytes: 3500, tmpFiles: 1, tmpBytes: 300 },
  ]);
  // An empty, even absent, store is zero.
  const empty = await hoard(['store', 'du', '--json'], { cwd: s.dir, store: path.join(s.base, 'none') });
  assert.equal(jsonLines(empty.stdout)[0]!.blobs, 0);
});

test('store rm takes sha256:<hex> or bare hex, waits for the blob\'s lock, warns when a manifest still names it; unknown → exit 1', async (t) => {
  const s = await setup(t);
  const data = randomData(4096);
  const hex = sha256(data);
  await fs.writeFile(path.join(s.base, 'x'), data);
  assert.equal((await s.run('store', 'add', path.join(s.base, 'x'))).code, 0);
  const manifest = path.join(s.dir, 'hoard.json');
  await fs.writeFile(manifest, JSON.stringify({ version: 1, artifacts: { x: { url: 'http://127.0.0.1:9/x', digest: `sha256:${hex}`, size: data.length } } }));
  assert.equal((await s.run('sync')).code, 0);

  // Another process holds the blob's lock for a while: rm waits for it to let go.
  const log = path.join(s.base, 'holder.log');
  const holder = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'test', 'fixtures', 'lock-child.ts'), 'hold', path.join(s.store, 'v1', 'locks', `${hex}.lock`), log, '1500'], {
    cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'],
  });
  t.after(() => holder.kill());
  await new Promise<void>((resolve) => holder.stdout.on('data', (d: Buffer) => String(d).includes('locked') && resolve()));
  const r = await s.run('store', 'rm', hex);
  assert.equal(r.code, 0, r.stderr);
  assert.match(await fs.readFile(log, 'utf8'), /^end \d+$/m, 'removed only after the holder let go');
  assert.equal(r.stdout.trim().split('\n').at(-1), `removed sha256:${hex}  4.0 KiB  (last used ${r.stdout.match(/last used ([\d-]+ [\d:]+)/)?.[1]})`);
  assert.match(r.stderr, new RegExp(`warning: .*hoard\\.json still names it \\(x\\): the next \`hoard sync\` there downloads it again`));
  assert.ok(!existsSync(blobFile(s.store, hex)));

  const again = await s.run('store', 'rm', `sha256:${hex}`);
  assert.equal(again.code, 1);
  assert.match(again.stderr, new RegExp(`no blob sha256:${hex} in the store at ${s.store.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
  assert.match(again.stderr, /hint: see `hoard store ls`/);
  const bad = await s.run('store', 'rm', 'sha256:xyz');
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /not a SHA-256 digest/);
});

test('store --help and each subcommand\'s --help show examples', async (t) => {
  const s = await setup(t);
  for (const sub of [[], ['path'], ['ls'], ['du'], ['add'], ['rm']]) {
    const r = await s.run('store', ...sub, '--help');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /Examples:\n {2}hoard store/, `hoard store ${sub.join(' ')} --help`);
  }
  const none = await s.run('store');
  assert.equal(none.code, 2);
  assert.match(none.stderr, /name a store command: path, ls, du, add or rm/);
  const gcHelp = await s.run('gc', '--help');
  assert.match(gcHelp.stdout, /hoard gc --max-size 20GB/);
});
