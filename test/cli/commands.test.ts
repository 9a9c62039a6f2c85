import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { hoard, jsonLines, randomData, sha256, startServer, tmpDir } from '../helpers.ts';

async function fresh(t: import('node:test').TestContext) {
  const base = tmpDir(t);
  const dir = path.join(base, 'lab');
  const store = path.join(base, 'store');
  await fs.mkdir(dir);
  return { dir, store, run: (...args: string[]) => hoard(args, { cwd: dir, store }) };
}

test('init writes a starter manifest and ignores the output folder; a second init refuses (exit 2)', async (t) => {
  const p = await fresh(t);
  await fs.writeFile(path.join(p.dir, '.gitignore'), 'node_modules');
  const r = await p.run('init');
  assert.equal(r.code, 0, r.stderr);
  const m = JSON.parse(await fs.readFile(path.join(p.dir, 'hoard.json'), 'utf8'));
  assert.deepEqual(m, { version: 1, output: 'artifacts', artifacts: {} });
  assert.equal(await fs.readFile(path.join(p.dir, '.gitignore'), 'utf8'), 'node_modules\n/artifacts/\n');
  const again = await p.run('init');
  assert.equal(again.code, 2);
  assert.equal(await fs.readFile(path.join(p.dir, '.gitignore'), 'utf8'), 'node_modules\n/artifacts/\n');
});

test('add downloads, links and records url, digest, size and image; the following sync is all cache hits', async (t) => {
  const data = randomData(200_000);
  const srv = await startServer(t, { '/cEOS-lab-4.32.1F.tar.xz': data });
  const p = await fresh(t);
  assert.equal((await p.run('init')).code, 0);
  // The image itself is the engine tests' business (test/cli/images.test.ts): files only here.
  const r = await p.run('add', srv.url('/cEOS-lab-4.32.1F.tar.xz'), '--image', 'arista/ceos:4.32.1F', '--no-images');
  assert.equal(r.code, 0, r.stderr);
  const m = JSON.parse(await fs.readFile(path.join(p.dir, 'hoard.json'), 'utf8'));
  assert.deepEqual(m.artifacts['cEOS-lab-4.32.1F.tar.xz'], {
    url: srv.url('/cEOS-lab-4.32.1F.tar.xz'),
    digest: `sha256:${sha256(data)}`,
    size: data.length,
    image: 'arista/ceos:4.32.1F',
  });
  assert.equal(sha256(await fs.readFile(path.join(p.dir, 'artifacts', 'cEOS-lab-4.32.1F.tar.xz'))), sha256(data));

  const s = await p.run('sync', '--json', '--no-images');
  assert.equal(s.code, 0);
  const summary = jsonLines(s.stdout).at(-1)!;
  assert.equal(summary.hits, 1);
  assert.equal(summary.bytesDownloaded, 0);
  assert.equal(srv.total(), 1);
});

test('add --sha256 that does not match: exit 1 and the manifest is unchanged', async (t) => {
  const srv = await startServer(t, { '/x.bin': randomData(1000) });
  const p = await fresh(t);
  await p.run('init');
  const before = await fs.readFile(path.join(p.dir, 'hoard.json'));
  const r = await p.run('add', srv.url('/x.bin'), '--sha256', 'a'.repeat(64));
  assert.equal(r.code, 1);
  assert.match(r.stderr, /digest mismatch/);
  assert.deepEqual(await fs.readFile(path.join(p.dir, 'hoard.json')), before);
});

test('add refuses a name already in the manifest and an invalid image reference (exit 2)', async (t) => {
  const data = randomData(100);
  const srv = await startServer(t, { '/x.bin': data });
  const p = await fresh(t);
  await p.run('init');
  assert.equal((await p.run('add', srv.url('/x.bin'))).code, 0);
  const dup = await p.run('add', srv.url('/x.bin'));
  assert.equal(dup.code, 2);
  assert.match(dup.stderr, /already has an artifact named "x.bin"/);
  const bad = await p.run('add', srv.url('/x.bin'), '--name', 'other', '--image', 'Not A/Valid:ref:');
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--image "Not A\/Valid:ref:": expected a container image reference/);
  assert.equal(srv.total(), 1);
});

test('verify re-hashes every blob, removes a corrupt one (exit 1), and sync fetches it again', async (t) => {
  const data = randomData(50_000);
  const hex = sha256(data);
  const srv = await startServer(t, { '/a.bin': data });
  const p = await fresh(t);
  await p.run('init');
  assert.equal((await p.run('add', srv.url('/a.bin'), '--link', 'copy')).code, 0);
  const ok = await p.run('verify');
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(ok.stdout, /verified 1 blob/);

  const blob = path.join(p.store, 'v1', 'blobs', 'sha256', hex);
  await fs.chmod(blob, 0o644);
  await fs.writeFile(blob, Buffer.concat([data.subarray(0, 100), Buffer.from('X'), data.subarray(101)]));
  await fs.chmod(blob, 0o444);
  const bad = await p.run('verify');
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /content hashes to/);
  assert.equal(await fs.stat(blob).catch(() => null), null, 'corrupt blob removed');

  const s = await p.run('sync');
  assert.equal(s.code, 0, s.stderr);
  assert.equal(sha256(await fs.readFile(blob)), hex);
});

test('verify reports an output that differs from its digest (exit 1) without touching it', async (t) => {
  const data = randomData(10_000);
  const srv = await startServer(t, { '/vm.qcow2': data });
  const p = await fresh(t);
  await p.run('init');
  assert.equal((await p.run('add', srv.url('/vm.qcow2'), '--link', 'copy')).code, 0);
  const out = path.join(p.dir, 'artifacts', 'vm.qcow2');
  await fs.appendFile(out, 'written by the VM');
  const r = await p.run('verify');
  assert.equal(r.code, 1);
  assert.match(r.stderr, /vm\.qcow2/);
  assert.match(await fs.readFile(out, 'utf8'), /written by the VM$/);
});

test('a store given by --store, --cache-dir or HOARD_STORE is the one used', async (t) => {
  const data = randomData(100);
  const srv = await startServer(t, { '/a.bin': data });
  const p = await fresh(t);
  await p.run('init');
  const s1 = path.join(p.store, 'one');
  const s2 = path.join(p.store, 'two');
  assert.equal((await hoard(['add', srv.url('/a.bin'), '--store', s1], { cwd: p.dir })).code, 0);
  assert.ok((await fs.readdir(path.join(s1, 'v1', 'blobs', 'sha256'))).includes(sha256(data)));
  await fs.rm(path.join(p.dir, 'artifacts'), { recursive: true });
  assert.equal((await hoard(['sync', '--cache-dir', s2], { cwd: p.dir })).code, 0);
  assert.ok((await fs.readdir(path.join(s2, 'v1', 'blobs', 'sha256'))).includes(sha256(data)));
  const s3 = path.join(p.store, 'three');
  assert.equal((await hoard(['sync', '--force'], { cwd: p.dir, env: { HOARD_STORE: s3 } })).code, 0);
  assert.ok((await fs.readdir(path.join(s3, 'v1', 'blobs', 'sha256'))).includes(sha256(data)));
});

test('--help lists the commands with examples; errors carry a hint, stacks only with --verbose', async (t) => {
  const p = await fresh(t);
  const help = await p.run('--help');
  assert.equal(help.code, 0);
  for (const c of ['init', 'add', 'sync', 'status', 'verify']) assert.match(help.stdout, new RegExp(`hoard ${c}`));
  const syncHelp = await p.run('sync', '--help');
  assert.match(syncHelp.stdout, /Examples:/);
  const err = await p.run('sync');
  assert.equal(err.code, 2);
  assert.match(err.stderr, /hint: run `hoard init`/);
  assert.doesNotMatch(err.stderr, /at .*\.mjs:\d+/);
  const verbose = await p.run('sync', '--verbose');
  assert.match(verbose.stderr, /at .*:\d+/);
});

test('add -H records a header with its ${VAR} unexpanded and sends it expanded', async (t) => {
  const data = randomData(100);
  const srv = await startServer(t, { '/vendor.tar.xz': data });
  const p = await fresh(t);
  await p.run('init');
  const r = await hoard(['add', srv.url('/vendor.tar.xz'), '-H', 'Authorization: Bearer ${VENDOR_TOKEN}'], { cwd: p.dir, store: p.store, env: { VENDOR_TOKEN: 'tok-123' } });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(srv.log[0]!.headers.authorization, 'Bearer tok-123');
  const m = JSON.parse(await fs.readFile(path.join(p.dir, 'hoard.json'), 'utf8'));
  assert.deepEqual(m.artifacts['vendor.tar.xz'].headers, { Authorization: 'Bearer ${VENDOR_TOKEN}' });
});

test('HOARD_* booleans accept 1/0; other HOARD_* variables are not options', async (t) => {
  const data = randomData(100);
  const srv = await startServer(t, { '/a.bin': data });
  const p = await fresh(t);
  await p.run('init');
  const r = await hoard(['add', srv.url('/a.bin')], { cwd: p.dir, store: p.store, env: { HOARD_JSON: '1', HOARD_SOMETHING_ELSE: 'x' } });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(jsonLines(r.stdout).at(-1)!.type, 'summary');
});

test('a closed pipe on stdout ends hoard quietly (no EPIPE stack)', async (t) => {
  const p = await fresh(t);
  // Far more output than a pipe buffers, so hoard is still writing when `head` exits.
  const artifacts: Record<string, { url: string }> = {};
  for (let i = 0; i < 3000; i++) artifacts[`artifact-${i}`] = { url: `http://127.0.0.1:9/some/long/path/file-${i}.bin` };
  await fs.writeFile(path.join(p.dir, 'hoard.json'), JSON.stringify({ version: 1, artifacts }));
  const { spawn } = await import('node:child_process');
  const { CLI, cliEnv } = await import('../helpers.ts');
  const child = spawn(`node ${JSON.stringify(CLI)} status | head -1 >/dev/null; echo "\${PIPESTATUS[0]}" >&2`, {
    shell: '/bin/bash', cwd: p.dir, env: cliEnv({}, p.store), stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d));
  await new Promise((resolve) => child.on('close', resolve));
  assert.doesNotMatch(stderr, /EPIPE|Error|at /);
  assert.match(stderr.trim(), /^(3|141)$/, 'status exits with its own code (or SIGPIPE), not a crash');
});

test('--frozen never writes hoard.json, even to add a missing size', async (t) => {
  const data = randomData(100);
  const srv = await startServer(t, { '/a.bin': data });
  const p = await fresh(t);
  const doc = { version: 1, artifacts: { a: { url: srv.url('/a.bin'), digest: `sha256:${sha256(data)}` } } };
  await fs.writeFile(path.join(p.dir, 'hoard.json'), JSON.stringify(doc));
  const before = await fs.readFile(path.join(p.dir, 'hoard.json'));
  const r = await p.run('sync', '--frozen');
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(await fs.readFile(path.join(p.dir, 'hoard.json')), before);
  const r2 = await p.run('sync');
  assert.equal(r2.code, 0);
  assert.equal(JSON.parse(await fs.readFile(path.join(p.dir, 'hoard.json'), 'utf8')).artifacts.a.size, 100);
});
