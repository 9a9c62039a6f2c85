// hoard fetch <url>: a cached download without a manifest. Requests are counted at the
// loopback server: the second fetch of a URL makes none, --refresh makes a conditional one.
import assert from 'node:assert/strict';
import { existsSync, promises as fs, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { hoard, jsonLines, listTree, randomData, serveRoute, sha256, startHoard, startServer, tmpDir } from '../helpers.ts';

async function fresh(t: TestContext) {
  const base = tmpDir(t);
  const dir = path.join(base, 'work');
  const store = path.join(base, 'store');
  await fs.mkdir(dir);
  const run = (args: string[], env: Record<string, string> = {}) => hoard(['fetch', ...args], { cwd: dir, store, env });
  const blob = (data: Buffer) => path.join(store, 'v1', 'blobs', 'sha256', sha256(data));
  return { base, dir, store, run, blob };
}

function fetched(stdout: string) {
  const events = jsonLines(stdout);
  const last = events.at(-1)!;
  assert.equal(last.type, 'fetched');
  return last as { result: string; path: string; digest: string; size: number; output?: string; bytesDownloaded: number };
}

test('fetch twice = one request: it prints the blob\'s path; -o puts the same bytes into a file, without a request', async (t) => {
  const data = randomData(250_000);
  const srv = await startServer(t, { '/tool-1.2.tar.gz': data });
  const f = await fresh(t);

  const first = await f.run([srv.url('/tool-1.2.tar.gz')]);
  assert.equal(first.code, 0, first.stderr);
  assert.equal(first.stdout, `${f.blob(data)}\n`, 'stdout is only the path');
  assert.deepEqual(readFileSync(f.blob(data)), data);
  assert.match(first.stderr, /tool-1\.2\.tar\.gz {2}downloaded 244 KiB/);
  assert.equal(srv.total(), 1);

  const second = await f.run([srv.url('/tool-1.2.tar.gz')]);
  assert.equal(second.code, 0, second.stderr);
  assert.equal(second.stdout, `${f.blob(data)}\n`);
  assert.match(second.stderr, /cached, no request/);
  assert.equal(srv.total(), 1, 'no request the second time');

  const out = await f.run([srv.url('/tool-1.2.tar.gz'), '-o', 'sub/tool.tgz', '--json']);
  assert.equal(out.code, 0, out.stderr);
  const r = fetched(out.stdout);
  assert.equal(r.result, 'cached');
  assert.equal(r.output, 'linked');
  assert.equal(r.path, path.join(f.dir, 'sub', 'tool.tgz'));
  assert.deepEqual(readFileSync(path.join(f.dir, 'sub', 'tool.tgz')), data);
  const again = await f.run([srv.url('/tool-1.2.tar.gz'), '-o', 'sub/tool.tgz', '-q']);
  assert.equal(again.code, 0);
  assert.equal(again.stdout, `${path.join(f.dir, 'sub', 'tool.tgz')}\n`, '-q still prints the path');
  assert.equal(again.stderr, '');
  assert.deepEqual(await listTree(path.join(f.dir, 'sub')), ['tool.tgz'], 'no temp file left');
  assert.equal(srv.total(), 1);
  // The index holds what the URL served.
  const index = JSON.parse(readFileSync(path.join(f.store, 'v1', 'state', 'urls.json'), 'utf8'));
  assert.deepEqual(Object.values(index).map((v) => (v as { digest: string }).digest), [`sha256:${sha256(data)}`]);
});

test('a URL a sync downloaded for locked entries is in the index (written with the rest of the sync\'s state): a fetch of each makes no request', async (t) => {
  const files = [randomData(40_000), randomData(50_000), randomData(60_000)];
  const srv = await startServer(t, Object.fromEntries(files.map((d, i) => [`/f${i}.bin`, d])));
  const f = await fresh(t);
  const proj = path.join(f.base, 'proj');
  await fs.mkdir(proj);
  const artifacts = Object.fromEntries(files.map((d, i) => [`f${i}`, { url: srv.url(`/f${i}.bin`), digest: `sha256:${sha256(d)}`, size: d.length }]));
  await fs.writeFile(path.join(proj, 'hoard.json'), JSON.stringify({ version: 1, artifacts }));
  const sync = await hoard(['sync', '--jobs', '3'], { cwd: proj, store: f.store });
  assert.equal(sync.code, 0, sync.stderr);
  assert.equal(srv.total(), 3);
  for (const [i, d] of files.entries()) {
    const r = await f.run([srv.url(`/f${i}.bin`)]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, `${f.blob(d)}\n`);
    assert.match(r.stderr, /cached, no request/);
  }
  assert.equal(srv.total(), 3, 'no request from the fetches');
});

test('--refresh asks the server with the ETag: 304 keeps the cached copy; a changed file is downloaded and replaces hoard\'s -o file', async (t) => {
  const v1 = randomData(40_000);
  const v2 = randomData(41_000);
  const srv = await startServer(t, { '/latest.iso': { body: v1, headers: { etag: '"v1"' } } });
  const f = await fresh(t);
  const url = srv.url('/latest.iso');
  const out = path.join(f.dir, 'latest.iso');

  assert.equal((await f.run([url, '-o', 'latest.iso'])).code, 0);
  assert.equal(srv.log[0]!.headers['if-none-match'], undefined);

  // Unchanged: a conditional request, answered 304; nothing downloaded.
  const same = await f.run([url, '--refresh', '-o', 'latest.iso', '--json']);
  assert.equal(same.code, 0, same.stderr);
  assert.equal(srv.total(), 2);
  assert.equal(srv.log[1]!.headers['if-none-match'], '"v1"');
  const r1 = fetched(same.stdout);
  assert.equal(r1.result, 'not-modified');
  assert.equal(r1.bytesDownloaded, 0);
  assert.equal(r1.output, 'present');
  assert.deepEqual(readFileSync(out), v1);

  // The server has a new file. Without --refresh: the cached one, no request.
  srv.routes.set('/latest.iso', { body: v2, headers: { etag: '"v2"' } });
  const stale = await f.run([url, '-o', 'latest.iso']);
  assert.equal(stale.code, 0);
  assert.equal(srv.total(), 2);
  assert.deepEqual(readFileSync(out), v1);

  // Another link to the blob (a project syncing the same file) changes a hard link's ctime: the
  // output is still hoard's, since it holds what hoard wrote.
  await fs.link(f.blob(v1), path.join(f.base, 'elsewhere.iso'));

  // With --refresh: the server says it changed (200), the new bytes are stored and replace the output.
  const changed = await f.run([url, '--refresh', '-o', 'latest.iso', '--json']);
  assert.equal(changed.code, 0, changed.stderr);
  assert.equal(srv.total(), 3);
  assert.equal(srv.log[2]!.headers['if-none-match'], '"v1"');
  const r2 = fetched(changed.stdout);
  assert.equal(r2.result, 'downloaded');
  assert.equal(r2.output, 'relinked');
  assert.deepEqual(readFileSync(out), v2);
  assert.ok(existsSync(f.blob(v2)));

  // And the new ETag is the one asked about next time.
  const after = await f.run([url, '--refresh']);
  assert.equal(after.code, 0);
  assert.equal(srv.log[3]!.headers['if-none-match'], '"v2"');
  assert.equal(after.stdout, `${f.blob(v2)}\n`);
});

test('--refresh with Last-Modified only: If-Modified-Since, and 304', async (t) => {
  const data = randomData(10_000);
  const stamp = 'Tue, 03 Jun 2025 10:00:00 GMT';
  const srv = await startServer(t, { '/nightly.tar': { body: data, headers: { 'last-modified': stamp } } });
  const f = await fresh(t);
  assert.equal((await f.run([srv.url('/nightly.tar')])).code, 0);
  const r = await f.run([srv.url('/nightly.tar'), '--refresh']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /not modified \(304\)/);
  assert.equal(srv.log[1]!.headers['if-modified-since'], stamp);
  assert.equal(srv.total(), 2);
});

test('--sha256: a blob with that digest means no request at all; a mismatch is exit 1 with no blob and no output', async (t) => {
  const data = randomData(30_000);
  const other = randomData(30_000);
  const srv = await startServer(t, { '/a.bin': data, '/mirror/a.bin': data, '/wrong.bin': other });
  const f = await fresh(t);
  assert.equal((await f.run([srv.url('/a.bin')])).code, 0);

  // Another URL, the same digest: the store has it.
  const hit = await f.run([srv.url('/mirror/a.bin'), '--sha256', sha256(data), '-o', 'a.bin']);
  assert.equal(hit.code, 0, hit.stderr);
  assert.equal(srv.hits.get('/mirror/a.bin'), undefined, 'no request');
  assert.deepEqual(readFileSync(path.join(f.dir, 'a.bin')), data);

  // A server that sends other bytes than the digest asked for (one the store does not have).
  const bad = await f.run([srv.url('/wrong.bin'), '--sha256', sha256(randomData(100)), '-o', 'wrong.bin']);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /sent other bytes than expected: digest mismatch/);
  assert.equal(bad.stdout, '');
  assert.equal(existsSync(f.blob(other)), false, 'no blob of the wrong bytes');
  assert.equal(existsSync(path.join(f.dir, 'wrong.bin')), false, 'no output');
  assert.deepEqual(await fs.readdir(path.join(f.store, 'v1', 'tmp')), [], 'no temp file');
  // A URL that served wrong bytes is not recorded either: the next fetch asks again.
  assert.equal((await f.run([srv.url('/wrong.bin')])).code, 0);
  assert.equal(srv.hits.get('/wrong.bin'), 2);
  // (And with --sha256 of a blob the store has, the URL does not matter: no request.)
  assert.equal((await f.run([srv.url('/wrong.bin'), '--sha256', sha256(data)])).code, 0);
  assert.equal(srv.hits.get('/wrong.bin'), 2);

  const usage = await f.run([srv.url('/a.bin'), '--sha256', 'xyz']);
  assert.equal(usage.code, 2);
});

test('-o never overwrites someone else\'s file without --force; --executable makes a private executable copy', async (t) => {
  const data = randomData(8_000);
  const srv = await startServer(t, { '/tool.run': data });
  const f = await fresh(t);
  await fs.writeFile(path.join(f.dir, 'tool.run'), 'my notes');

  const refused = await f.run([srv.url('/tool.run'), '-o', 'tool.run']);
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /tool\.run already exists and has other content/);
  assert.match(refused.stderr, /hint: .*--force/);
  assert.equal(readFileSync(path.join(f.dir, 'tool.run'), 'utf8'), 'my notes');
  assert.ok(existsSync(f.blob(data)), 'the download is kept in the store all the same');

  const forced = await f.run([srv.url('/tool.run'), '-o', 'tool.run', '--force', '--executable']);
  assert.equal(forced.code, 0, forced.stderr);
  const st = statSync(path.join(f.dir, 'tool.run'));
  assert.deepEqual(readFileSync(path.join(f.dir, 'tool.run')), data);
  assert.equal(st.mode & 0o777, 0o755);
  assert.notEqual(st.ino, statSync(f.blob(data)).ino, 'not the read-only blob itself');
  assert.equal(statSync(f.blob(data)).mode & 0o777, 0o444);
  assert.equal(srv.total(), 1);

  const folder = await f.run([srv.url('/tool.run'), '-o', '.']);
  assert.equal(folder.code, 1);
  assert.match(folder.stderr, /is a folder/);
});

test('--no-store: -o is required; the file is written straight, verified, and nothing is kept', async (t) => {
  const data = randomData(20_000);
  const srv = await startServer(t, { '/x.bin': data });
  const f = await fresh(t);

  const noFile = await f.run([srv.url('/x.bin'), '--no-store']);
  assert.equal(noFile.code, 2);
  assert.match(noFile.stderr, /give -o FILE/);

  const wrong = await f.run([srv.url('/x.bin'), '--no-store', '-o', 'x.bin', '--sha256', 'b'.repeat(64)]);
  assert.equal(wrong.code, 1);
  assert.match(wrong.stderr, /digest mismatch/);
  assert.deepEqual(await listTree(f.dir), [], 'no output, no temp file');

  const ok = await f.run([srv.url('/x.bin'), '--no-store', '-o', 'x.bin', '--sha256', sha256(data)]);
  assert.equal(ok.code, 0, ok.stderr);
  assert.equal(ok.stdout, `${path.join(f.dir, 'x.bin')}\n`);
  assert.deepEqual(readFileSync(path.join(f.dir, 'x.bin')), data);
  assert.equal(existsSync(f.store), false);
  assert.equal(srv.total(), 2);

  // The file already has the digest asked for: no request.
  assert.equal((await f.run([srv.url('/x.bin'), '--no-store', '-o', 'x.bin', '--sha256', sha256(data)])).code, 0);
  assert.equal(srv.total(), 2);
});

test('-H headers: ${VAR} expanded at request time, never stored; a token in the URL stays out of the index', async (t) => {
  const data = randomData(1_000);
  const srv = await startServer(t, { '/private.bin': data });
  const f = await fresh(t);
  const url = `${srv.url('/private.bin')}?token=sekrit-in-url`;

  const missing = await f.run([url, '-H', 'Authorization: Bearer ${VENDOR_TOKEN}']);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /VENDOR_TOKEN is not set/);
  assert.equal(srv.total(), 0);

  const r = await f.run([url, '-H', 'Authorization: Bearer ${VENDOR_TOKEN}'], { VENDOR_TOKEN: 'sekrit-token' });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(srv.log[0]!.headers.authorization, 'Bearer sekrit-token');
  const state = await fs.readdir(path.join(f.store, 'v1', 'state'));
  for (const file of state) {
    const text = readFileSync(path.join(f.store, 'v1', 'state', file), 'utf8');
    assert.doesNotMatch(text, /sekrit/, `${file} holds a secret`);
  }
  // The same URL (query string included) is found again in the index.
  assert.equal((await f.run([url], { VENDOR_TOKEN: 'sekrit-token' })).code, 0);
  assert.equal(srv.total(), 1);
});

test('an interrupted fetch is resumed by the next one (Range with If-Range), like curl -C -', async (t) => {
  const data = randomData(3_000_000);
  const ranges: Array<string | undefined> = [];
  const srv = await startServer(t, {
    '/tool.tar.gz': (req, res, hit) => {
      ranges.push(req.headers.range);
      serveRoute(req, res, { body: data, ranges: true, headers: { etag: '"t1"' }, ...(hit === 1 ? { dropAfter: 2_000_000 } : {}) });
    },
  });
  const f = await fresh(t);
  const first = await f.run([srv.url('/tool.tar.gz'), '--retries', '0']);
  assert.equal(first.code, 1);
  assert.equal(existsSync(f.blob(data)), false);
  const second = await f.run([srv.url('/tool.tar.gz')]);
  assert.equal(second.code, 0, second.stderr);
  assert.deepEqual(ranges, [undefined, 'bytes=2000000-']);
  assert.equal(second.stdout.trim(), f.blob(data));
  assert.equal(sha256(readFileSync(f.blob(data))), sha256(data));
  assert.deepEqual(await listTree(path.join(f.store, 'v1', 'tmp')), []);
});

test('a 404: exit 1, E_HTTP with a hint to check the URL, never "add a mirror" (fetch has no manifest), with the store or without; nothing left behind', async (t) => {
  const srv = await startServer(t, {});
  const f = await fresh(t);
  for (const flags of [[], ['--no-store', '-o', 'gone.tar']]) {
    const r = await f.run([srv.url('/gone.tar'), ...flags]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /HTTP 404/);
    assert.match(r.stderr, /hint: the URL does not exist/);
    assert.doesNotMatch(r.stderr, /mirror/i);
    const j = await f.run([srv.url('/gone.tar'), ...flags, '--json']);
    assert.equal(j.code, 1, j.stderr);
    const err = jsonLines(j.stdout).at(-1)!;
    assert.equal(err.type, 'error');
    assert.equal(err.code, 'E_HTTP');
    assert.match(String(err.hint), /the URL does not exist/);
    assert.doesNotMatch(String(err.hint), /mirror/i);
  }
  assert.deepEqual(await listTree(f.dir), [], 'no output, no temp file');
  const storeTmp = path.join(f.store, 'v1', 'tmp');
  assert.deepEqual(existsSync(storeTmp) ? await listTree(storeTmp) : [], [], 'no partial download in the store');
});

test('two fetches of one URL at once: the second waits for the first (the resume lock) and takes its blob: one request', async (t) => {
  const data = randomData(400_000);
  let release!: () => void;
  const held = new Promise<void>((resolve) => (release = resolve));
  let firstHit!: () => void;
  const hit = new Promise<void>((resolve) => (firstHit = resolve));
  const srv = await startServer(t, {
    '/shared.iso': (_req, res, n) => {
      res.writeHead(200, { 'content-length': String(data.length) });
      res.write(data.subarray(0, 100_000));
      if (n === 1) firstHit();
      void held.then(() => res.end(data.subarray(100_000)));
    },
  });
  const f = await fresh(t);
  const args = ['fetch', srv.url('/shared.iso'), '--json'];
  const a = startHoard(args, { cwd: f.dir, store: f.store });
  t.after(() => a.child.kill());
  await hit;
  const b = startHoard(args, { cwd: f.dir, store: f.store });
  t.after(() => b.child.kill());
  await b.until(/"type":"waiting"/, 'stdout');
  release();
  const [ra, rb] = await Promise.all([a.done, b.done]);
  assert.equal(ra.code, 0, ra.stderr);
  assert.equal(rb.code, 0, rb.stderr);
  assert.equal(srv.total(), 1, 'downloaded once');
  assert.equal(fetched(ra.stdout).result, 'downloaded');
  assert.equal(fetched(rb.stdout).result, 'cached');
  assert.equal(fetched(rb.stdout).path, f.blob(data));
});
