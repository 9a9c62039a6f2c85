// hoard gc and size limits, through the built CLI on real temp folders, with a loopback HTTP
// server and, where a running sync matters, two processes at once.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { manifestStamp } from '../../src/sync/known.ts';
import { CLI, gate, hoard, startHoard, jsonLines, listTree, randomData, sha256, startServer, tmpDir, type RunResult } from '../helpers.ts';

const blobFile = (store: string, hex: string) => path.join(store, 'v1', 'blobs', 'sha256', hex);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Several projects sharing one store, as on a lab machine. */
async function lab(t: TestContext) {
  const base = tmpDir(t, 'hoard-gc-');
  const store = path.join(base, 'store');
  const make = async (name: string, artifacts: Record<string, unknown>) => {
    const dir = path.join(base, name);
    await fs.mkdir(dir, { recursive: true });
    const manifest = path.join(dir, 'hoard.json');
    await fs.writeFile(manifest, `${JSON.stringify({ version: 1, artifacts }, null, 2)}\n`);
    return {
      dir,
      manifest,
      run: (...args: string[]) => hoard(args, { cwd: dir, store }),
      /** Rewrites hoard.json through `fn`. */
      edit: async (fn: (doc: { artifacts: Record<string, unknown> }) => void) => {
        const doc = JSON.parse(await fs.readFile(manifest, 'utf8'));
        fn(doc);
        await fs.writeFile(manifest, `${JSON.stringify(doc, null, 2)}\n`);
      },
    };
  };
  return { base, store, make, gc: (...args: string[]) => hoard(['gc', ...args], { cwd: base, store }) };
}

/** An artifact entry locked to `data`, served at `url`. */
const locked = (url: string, data: Buffer) => ({ url, digest: `sha256:${sha256(data)}`, size: data.length });

function ok(r: RunResult, what: string): RunResult {
  assert.equal(r.code, 0, `${what}: exit ${r.code}\n${r.stderr}${r.stdout}`);
  return r;
}

/** Pretends `ms` went by: every recorded last use (and each manifest's "marked" stamp) moves back. */
async function age(store: string, ms: number): Promise<void> {
  const state = path.join(store, 'v1', 'state');
  const used = JSON.parse(await fs.readFile(path.join(state, 'used.json'), 'utf8')) as Record<string, number>;
  for (const k of Object.keys(used)) used[k] = used[k]! - ms;
  await fs.writeFile(path.join(state, 'used.json'), JSON.stringify(used));
  const manifests = JSON.parse(await fs.readFile(path.join(state, 'manifests.json'), 'utf8')) as Record<string, { used?: number }>;
  for (const m of Object.values(manifests)) if (m.used !== undefined) m.used -= ms;
  await fs.writeFile(path.join(state, 'manifests.json'), JSON.stringify(manifests));
}

const removedBlobs = (r: RunResult) =>
  jsonLines(r.stdout).filter((e) => e.type === 'removed' && e.subject === 'blob').map((e) => String(e.digest).slice(7));

test('gc keeps blobs any live manifest names, collects one dropped from a manifest and those of a deleted project', async (t) => {
  const [a, b, c, d] = [randomData(11_000), randomData(12_000), randomData(13_000), randomData(14_000)];
  const srv = await startServer(t, { '/a': a, '/b': b, '/c': c, '/d': d });
  const l = await lab(t);
  const p1 = await l.make('p1', { a: locked(srv.url('/a'), a), b: locked(srv.url('/b'), b) });
  const p2 = await l.make('p2', { b: locked(srv.url('/b'), b), c: locked(srv.url('/c'), c) });
  const p3 = await l.make('p3', { d: locked(srv.url('/d'), d) });
  for (const p of [p1, p2, p3]) ok(await p.run('sync'), 'sync');

  const nothing = ok(await l.gc('--json'), 'gc with every blob named');
  assert.deepEqual(removedBlobs(nothing), []);
  assert.equal(jsonLines(nothing.stdout).at(-1)!.manifests, 3);

  // b leaves p1 but p2 still names it; a leaves p1 and nobody else has it; p3 is deleted.
  await p1.edit((doc) => {
    delete doc.artifacts.a;
    delete doc.artifacts.b;
  });
  await fs.rm(p3.dir, { recursive: true });

  const r = ok(await l.gc('--json'), 'gc');
  assert.deepEqual(removedBlobs(r).sort(), [sha256(a), sha256(d)].sort());
  const summary = jsonLines(r.stdout).at(-1)!;
  assert.equal(summary.removed, 2);
  assert.equal(summary.bytesFreed, a.length + d.length);
  assert.equal(summary.manifests, 2);
  assert.ok(jsonLines(r.stdout).some((e) => e.type === 'manifest' && e.file === p3.manifest && e.state === 'missing' && e.forgotten === true));
  for (const kept of [b, c]) assert.ok(existsSync(blobFile(l.store, sha256(kept))), 'a blob a live manifest names is kept');
  for (const gone of [a, d]) assert.ok(!existsSync(blobFile(l.store, sha256(gone))));
  // The deleted project is forgotten; outputs are never gc's business.
  const known = JSON.parse(await fs.readFile(path.join(l.store, 'v1', 'state', 'manifests.json'), 'utf8'));
  assert.deepEqual(Object.keys(known).sort(), [p1.manifest, p2.manifest].sort());
  assert.equal(sha256(await fs.readFile(path.join(p1.dir, 'artifacts', 'a'))), sha256(a));

  // In words, for a person.
  ok(await p2.run('sync'), 'sync p2');
  await p2.edit((doc) => delete doc.artifacts.c);
  const text = ok(await l.gc(), 'gc, text');
  assert.match(text.stdout, new RegExp(`removed sha256:${sha256(c)}  12\\.7 KiB`));
  assert.match(text.stdout, /gc: freed 12\.7 KiB: 1 unreferenced blob/);
});

test('gc validates a known manifest once per content: the stamp it was valid with is recorded and skips validating it again; an edit is read anew', async (t) => {
  const [a, b] = [randomData(11_000), randomData(12_000)];
  const srv = await startServer(t, { '/a': a, '/b': b });
  const l = await lab(t);
  const p = await l.make('p', { a: locked(srv.url('/a'), a), b: locked(srv.url('/b'), b) });
  ok(await p.run('sync'), 'sync');
  const stateFile = path.join(l.store, 'v1', 'state', 'manifests.json');
  const record = async () => JSON.parse(await fs.readFile(stateFile, 'utf8'))[p.manifest] as { added: string; valid?: string };

  // (The stamp starts with the id of the rules that checked it, the built CLI's; see manifestStamp.)
  const rules = (await record()).valid!.split(':')[0];
  const stampNow = async () => `${rules}${(await manifestStamp(p.manifest))!.replace(/^[^:]*/, '')}`;
  ok(await l.gc(), 'gc');
  assert.equal((await record()).valid, await stampNow(), 'the sync, then gc, records the stamp the manifest was valid with');

  // An edit changes the stamp: the next gc reads the new content (b is no longer named).
  await p.edit((doc) => delete doc.artifacts.b);
  const r = ok(await l.gc('--json'), 'gc after an edit');
  assert.deepEqual(removedBlobs(r), [sha256(b)]);
  assert.equal((await record()).valid, await stampNow());

  // A broken edit is found invalid (and its blob kept), not taken from the record.
  await fs.writeFile(p.manifest, `{"version": 2, "artifacts": {"a": ${JSON.stringify(locked(srv.url('/a'), a))}}}\n`);
  const broken = ok(await l.gc('--json'), 'gc of an invalid manifest');
  assert.ok(jsonLines(broken.stdout).some((e) => e.type === 'manifest' && e.state === 'invalid'));
  assert.ok(existsSync(blobFile(l.store, sha256(a))));

  // The record is what spares the validation: with this content's stamp recorded as valid,
  // gc takes the file as it is (this schema error is not looked at again).
  const known = JSON.parse(await fs.readFile(stateFile, 'utf8'));
  known[p.manifest].valid = await stampNow();
  await fs.writeFile(stateFile, JSON.stringify(known));
  const trusted = ok(await l.gc('--json'), 'gc with the stamp recorded');
  assert.ok(jsonLines(trusted.stdout).some((e) => e.type === 'manifest' && e.state === 'ok' && e.digests === 1));
  assert.ok(existsSync(blobFile(l.store, sha256(a))));
});

test('gc --dry-run lists what would go and how many bytes, and removes nothing', async (t) => {
  const [a, b] = [randomData(30_000), randomData(5_000)];
  const srv = await startServer(t, { '/a': a, '/b': b });
  const l = await lab(t);
  const p = await l.make('p', { a: locked(srv.url('/a'), a), b: locked(srv.url('/b'), b) });
  ok(await p.run('sync'), 'sync');
  await p.edit((doc) => delete doc.artifacts.a);
  await fs.writeFile(path.join(l.store, 'v1', 'tmp', '99999999-left.part'), 'x'.repeat(100));
  await fs.utimes(path.join(l.store, 'v1', 'tmp', '99999999-left.part'), new Date(Date.now() - 3_600_000), new Date(Date.now() - 3_600_000));
  const before = await listTree(l.store);
  const stateBefore = await fs.readFile(path.join(l.store, 'v1', 'state', 'used.json'), 'utf8');

  const r = ok(await l.gc('--dry-run'), 'gc --dry-run');
  assert.match(r.stdout, new RegExp(`would remove sha256:${sha256(a)}  29\\.3 KiB`));
  assert.match(r.stdout, /would remove temp file .*99999999-left\.part/);
  assert.match(r.stdout, /gc --dry-run: would free 29\.4 KiB: 1 unreferenced blob \(29\.3 KiB\), 1 temp file \(100 B\)/);
  const json = jsonLines(ok(await l.gc('--dry-run', '--json', '--max-size', '1'), 'gc --dry-run --json').stdout);
  assert.ok(json.filter((e) => e.type === 'removed').every((e) => e.dryRun === true));
  assert.deepEqual(json.filter((e) => e.type === 'removed' && e.subject === 'blob').map((e) => [String(e.digest).slice(7), e.reason]), [
    [sha256(a), 'unreferenced'],
    [sha256(b), 'lru'],
  ]);
  assert.equal(json.at(-1)!.bytesFreed, a.length + b.length + 100);

  assert.deepEqual(await listTree(l.store), before, 'nothing was removed or added');
  assert.equal(await fs.readFile(path.join(l.store, 'v1', 'state', 'used.json'), 'utf8'), stateBefore);
});

test('an invalid manifest keeps every blob its text mentions; an unreadable one stops the sweep (exit 1)', async (t) => {
  const [a, b] = [randomData(1_000), randomData(2_000)];
  const srv = await startServer(t, { '/a': a, '/b': b });
  const l = await lab(t);
  const p = await l.make('p', { a: locked(srv.url('/a'), a) });
  const q = await l.make('q', { b: locked(srv.url('/b'), b) });
  ok(await p.run('sync'), 'sync p');
  ok(await q.run('sync'), 'sync q');
  // A merge conflict left in the file: not JSON, but the digest is still there.
  const text = await fs.readFile(p.manifest, 'utf8');
  await fs.writeFile(p.manifest, `<<<<<<< HEAD\n${text}=======\n{}\n>>>>>>> theirs\n`);
  await fs.rm(q.manifest);
  await fs.mkdir(q.manifest); // exists, cannot be read as a file

  const r = await l.gc();
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, new RegExp(`${p.manifest.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} is not a valid manifest .*kept every blob its text mentions \\(1\\)`));
  assert.match(r.stderr, /cannot read .*q\/hoard\.json .*no unreferenced blob was removed/);
  assert.ok(existsSync(blobFile(l.store, sha256(a))));
  assert.ok(existsSync(blobFile(l.store, sha256(b))), 'with a manifest it cannot read, gc removes nothing unreferenced');

  // The folder goes away: now q is missing, b is collected; a stays while p's text names it.
  await fs.rm(q.manifest, { recursive: true });
  const again = ok(await l.gc('--json'), 'gc');
  assert.deepEqual(removedBlobs(again), [sha256(b)]);
  assert.ok(existsSync(blobFile(l.store, sha256(a))));
});

/** Starts the CLI in the background (through the helper's environment); resolves its result when it exits. */
function background(args: string[], cwd: string, store: string): { done: Promise<RunResult>; pid: number } {
  const run = startHoard(args, { cwd, store });
  return { pid: run.pid, done: run.done };
}

async function until(what: string, fn: () => Promise<boolean> | boolean, ms = 15_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await fn())) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

test('gc never touches what a running sync holds (its blob lock, its temp file, a blob it published before writing hoard.json); stale temp files and dead locks go', async (t) => {
  const [held, fresh, slow] = [randomData(40_000), randomData(20_000), randomData(10_000)];
  const srv = await startServer(t, { '/held': held, '/fresh': fresh, '/slow': slow });
  const l = await lab(t);
  const p1 = await l.make('p1', { held: locked(srv.url('/held'), held) });
  ok(await p1.run('sync'), 'first sync');

  // Process 1: `sync --force` re-downloads `held` from a server that takes its time: it holds
  // the blob's lock and a temp file. Meanwhile p1 stops naming the blob.
  // (Both transfers below are answered only once gc has been checked: `release`.)
  const answers = gate(t);
  srv.routes.set('/held', { body: held, until: answers.until });
  const tmpDir1 = path.join(l.store, 'v1', 'tmp');
  const force = background(['sync', '--force'], p1.dir, l.store);
  // Its bytes go to <digest>.partial (what a later sync would resume from).
  const liveTmp = `${sha256(held)}.partial`;
  await until('the forced download to start', async () => (await fs.readdir(tmpDir1)).includes(liveTmp));
  await p1.edit((doc) => delete doc.artifacts.held);

  // Process 2: a new project syncs `fresh` (no digest yet: it locks it) and `slow` (which keeps the
  // sync going): `fresh` is published, but hoard.json names it only when the sync ends.
  srv.routes.set('/slow', { body: slow, until: answers.until });
  const p2 = await l.make('p2', { fresh: { url: srv.url('/fresh') }, slow: locked(srv.url('/slow'), slow) });
  const second = background(['sync'], p2.dir, l.store);
  await until('fresh to be published', () => existsSync(blobFile(l.store, sha256(fresh))));

  // Left behind by processes that are gone.
  const staleTmp = path.join(tmpDir1, '99999999-abcdef.part');
  await fs.writeFile(staleTmp, Buffer.alloc(3000));
  const old = new Date(Date.now() - 10 * 60_000);
  await fs.utimes(staleTmp, old, old);
  const deadOwner = JSON.stringify({ pid: 99999999, host: os.hostname(), start: null, nonce: 'x' });
  const deadLock = path.join(l.store, 'v1', 'locks', `${'e'.repeat(64)}.lock`);
  const deadPin = path.join(l.store, 'v1', 'locks', `${'e'.repeat(64)}.99999999-1234.pin`);
  await fs.writeFile(deadLock, deadOwner);
  await fs.writeFile(deadPin, deadOwner);

  const dry = jsonLines(ok(await l.gc('--dry-run', '--json'), 'gc --dry-run').stdout);
  assert.deepEqual(dry.filter((e) => e.type === 'kept').map((e) => String(e.digest).slice(7)).sort(), [sha256(held), sha256(fresh)].sort());
  assert.deepEqual(dry.filter((e) => e.type === 'removed' && e.subject === 'blob'), []);

  const r = ok(await l.gc('--json'), 'gc while two syncs run');
  const events = jsonLines(r.stdout);
  assert.deepEqual(events.filter((e) => e.type === 'kept').map((e) => String(e.digest).slice(7)).sort(), [sha256(held), sha256(fresh)].sort());
  assert.deepEqual(removedBlobs(r), []);
  assert.ok(existsSync(blobFile(l.store, sha256(held))), 'the blob whose lock a running sync holds is kept');
  assert.ok(existsSync(blobFile(l.store, sha256(fresh))), 'the blob a running sync published and pinned is kept');
  assert.ok(existsSync(path.join(tmpDir1, liveTmp)), 'the temp file of a live process is kept');
  assert.ok(existsSync(path.join(l.store, 'v1', 'locks', `${sha256(held)}.lock`)), 'a live lock is kept');
  assert.ok(!existsSync(staleTmp), 'a temp file of a dead process is removed');
  assert.ok(!existsSync(deadLock) && !existsSync(deadPin), 'locks of a dead process are removed');
  const summary = events.at(-1)!;
  assert.equal(summary.inUse, 2);
  assert.equal(summary.tmpFiles, 1);
  assert.equal(summary.tmpBytes, 3000);
  assert.equal(summary.locks, 2);

  // Both syncs finish as if nothing had happened.
  answers.open();
  ok(await force.done, 'the forced sync');
  ok(await second.done, 'the second sync');
  assert.equal(sha256(await fs.readFile(blobFile(l.store, sha256(fresh)))), sha256(fresh));
  assert.equal(JSON.parse(await fs.readFile(p2.manifest, 'utf8')).artifacts.fresh.digest, `sha256:${sha256(fresh)}`);
  // Now that the syncs are done, held (named by nobody) goes; fresh (named by p2) stays.
  assert.deepEqual(removedBlobs(ok(await l.gc('--json'), 'gc after')), [sha256(held)]);
  assert.ok(existsSync(blobFile(l.store, sha256(fresh))));
  assert.deepEqual((await fs.readdir(path.join(l.store, 'v1', 'locks'))).filter((n) => !n.startsWith('state-')), []);
});

test('--max-size evicts least recently used blobs first, referenced ones included; a cache hit counts as a use', async (t) => {
  const blobs = { a: randomData(10_000), b: randomData(10_000), c: randomData(10_000), d: randomData(10_000) };
  const srv = await startServer(t, Object.fromEntries(Object.entries(blobs).map(([k, v]) => [`/${k}`, v])));
  const l = await lab(t);
  const projects: Record<string, Awaited<ReturnType<typeof l.make>>> = {};
  // Used in the order a, b, c, d.
  for (const [k, v] of Object.entries(blobs)) {
    projects[k] = await l.make(k, { [k]: locked(srv.url(`/${k}`), v) });
    ok(await projects[k]!.run('sync'), `sync ${k}`);
  }
  // Two hours later, a's project syncs again: a no-op, all cache hits, and a is now the most recent.
  await age(l.store, 2 * 3_600_000);
  const hit = jsonLines(ok(await projects.a!.run('sync', '--json'), 'sync a again').stdout).at(-1)!;
  assert.equal(hit.hits, 1);
  assert.equal(srv.total(), 4, 'no request: a cache hit');

  // 40,000 bytes, 25 KB allowed: b (least recent) and c go; d and a stay.
  const dry = ok(await l.gc('--max-size', '25KB', '--dry-run', '--json'), 'dry run');
  assert.deepEqual(removedBlobs(dry), [sha256(blobs.b), sha256(blobs.c)]);
  const r = ok(await l.gc('--max-size', '25KB', '--json'), 'gc --max-size');
  const events = jsonLines(r.stdout);
  assert.deepEqual(removedBlobs(r), [sha256(blobs.b), sha256(blobs.c)], 'least recently used first');
  assert.ok(events.filter((e) => e.type === 'removed').every((e) => e.reason === 'lru'));
  const summary = events.at(-1)!;
  assert.equal(summary.evicted, 2);
  assert.equal(summary.storeBytes, 20_000);
  assert.equal(summary.maxSize, 25_000);
  for (const k of ['a', 'd'] as const) assert.ok(existsSync(blobFile(l.store, sha256(blobs[k]))));
  for (const k of ['b', 'c'] as const) assert.ok(!existsSync(blobFile(l.store, sha256(blobs[k]))));

  // Binary units: 10 KiB = 10,240 bytes holds one blob; d (older) goes.
  assert.deepEqual(removedBlobs(ok(await l.gc('--max-size', '10KiB', '--json'), 'gc --max-size 10KiB')), [sha256(blobs.d)]);
  // The evicted ones were referenced: their projects fetch them again.
  ok(await projects.b!.run('sync'), 'sync b after eviction');
  assert.ok(existsSync(blobFile(l.store, sha256(blobs.b))));
});

test('sync with --max-size or HOARD_MAX_SIZE evicts other projects\' least recently used blobs afterwards, never its own', async (t) => {
  const [a, b, c] = [randomData(10_000), randomData(10_000), randomData(10_000)];
  const srv = await startServer(t, { '/a': a, '/b': b, '/c': c });
  const l = await lab(t);
  const pa = await l.make('pa', { a: locked(srv.url('/a'), a) });
  const pb = await l.make('pb', { b: locked(srv.url('/b'), b) });
  const pc = await l.make('pc', { c: locked(srv.url('/c'), c) });
  ok(await pa.run('sync'), 'sync a');
  ok(await pb.run('sync'), 'sync b');

  const r = ok(await pc.run('sync', '--max-size', '25000'), 'sync c --max-size 25000');
  assert.match(r.stdout, new RegExp(`evicted sha256:${sha256(a)}  9\\.8 KiB  \\(least recently used`));
  assert.match(r.stdout, /1 artifact: 0 hits, 1 miss, .*evicted 1 blob \(9\.8 KiB\)/);
  assert.ok(!existsSync(blobFile(l.store, sha256(a))));
  assert.ok(existsSync(blobFile(l.store, sha256(b))) && existsSync(blobFile(l.store, sha256(c))));

  const env = (v: string) => hoard(['sync', '--json'], { cwd: pc.dir, store: l.store, env: { HOARD_MAX_SIZE: v } });
  const viaEnv = jsonLines(ok(await env('15KB'), 'HOARD_MAX_SIZE=15KB').stdout);
  assert.deepEqual(viaEnv.filter((e) => e.type === 'removed').map((e) => [String(e.digest).slice(7), e.reason]), [[sha256(b), 'lru']]);
  assert.equal(viaEnv.at(-1)!.evicted, 1);
  assert.equal(viaEnv.at(-1)!.bytesEvicted, 10_000);

  // Too small even for its own blob: it keeps it, says so, and succeeds.
  const tight = jsonLines(ok(await env('1KB'), 'HOARD_MAX_SIZE=1KB').stdout);
  assert.deepEqual(tight.filter((e) => e.type === 'removed'), []);
  assert.ok(tight.some((e) => e.type === 'warning' && /more than the size limit/.test(String(e.message))));
  assert.ok(existsSync(blobFile(l.store, sha256(c))));

  // Without a limit nothing is evicted.
  const plain = jsonLines(ok(await pb.run('sync', '--json'), 'sync b').stdout);
  assert.equal(plain.at(-1)!.evicted, undefined);
});

test('a --max-size that is not a size is a usage error (exit 2) naming the accepted units', async (t) => {
  const l = await lab(t);
  const p = await l.make('p', {});
  for (const [args, env] of [
    [['gc', '--max-size', '5 gigs'], {}],
    [['sync', '--max-size', '3 GBs'], {}],
    [['sync'], { HOARD_MAX_SIZE: '12XB' }],
  ] as const) {
    const r = await hoard([...args], { cwd: p.dir, store: l.store, env });
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, /--max-size ".*" is not a size/);
    assert.match(r.stderr, /KB, MB, GB, TB .* KiB, MiB, GiB, TiB/);
  }
  assert.ok(!existsSync(path.join(l.store, 'v1', 'blobs')), 'nothing ran');
});

test('HOARD_MAX_SIZE (or any HOARD_* option) exported in a shell does not break commands that lack the option', async (t) => {
  const l = await lab(t);
  const p = await l.make('p', {});
  const env = { HOARD_MAX_SIZE: '5GB', HOARD_FROZEN: 'true', HOARD_NAME: 'x' };
  for (const args of [['status'], ['verify'], ['store', 'du'], ['gc', '--dry-run'], ['sync'], ['-m', 'hoard.json', 'status']]) {
    const r = await hoard(args, { cwd: p.dir, store: l.store, env });
    assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
  }
});

test('an interrupted download is kept for the next sync to resume; one untouched for over a week is collected', async (t) => {
  const l = await lab(t);
  const tmp = path.join(l.store, 'v1', 'tmp');
  await fs.mkdir(tmp, { recursive: true });
  const recent = path.join(tmp, `${'a'.repeat(64)}.partial`);
  const given = path.join(tmp, `${'b'.repeat(64)}.partial`);
  for (const f of [recent, given]) {
    await fs.writeFile(f, Buffer.alloc(5000));
    await fs.writeFile(`${f}.json`, JSON.stringify({ url: 'http://127.0.0.1:9/x' }));
  }
  const lastWeek = new Date(Date.now() - 8 * 24 * 3600_000);
  for (const f of [given, `${given}.json`]) await fs.utimes(f, lastWeek, lastWeek);
  const dayAgo = new Date(Date.now() - 24 * 3600_000);
  for (const f of [recent, `${recent}.json`]) await fs.utimes(f, dayAgo, dayAgo);
  const r = ok(await l.gc('--json'), 'gc');
  assert.deepEqual((await fs.readdir(tmp)).sort(), [path.basename(recent), `${path.basename(recent)}.json`]);
  assert.equal(jsonLines(r.stdout).at(-1)!.tmpFiles, 2);
});
