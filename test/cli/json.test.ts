// --json output, as the CLI really prints it, checked against schemas/events.schema.json: every
// kind of event the commands emit (sync, status, dry-run, verify, add, -v checks, failures,
// conflicts, corrupt blobs, images, fatal errors) must be described by the schema.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promises as fs, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { hoard, jsonLines, podmanSkip, project, randomData, ROOT, sha256, startServer, tmpDir } from '../helpers.ts';

const schema = JSON.parse(readFileSync(path.join(ROOT, 'schemas', 'events.schema.json'), 'utf8'));
const validate = new Ajv2020({ allErrors: true, strict: true }).compile(schema);

/** Every stdout line parses, matches the schema, and the last is a summary (or an error). */
function check(label: string, r: { stdout: string }, seen: Set<string>, last: 'summary' | 'error' | 'fetched' | 'config' = 'summary') {
  const lines = r.stdout.split('\n').filter(Boolean);
  assert.ok(lines.length > 0, `${label}: no output`);
  const events = jsonLines(r.stdout);
  for (const [i, e] of events.entries()) {
    if (!validate(e)) assert.fail(`${label}: line ${i + 1} does not match the schema: ${JSON.stringify(e)}\n${JSON.stringify(validate.errors, null, 1).slice(0, 1500)}`);
    seen.add(String(e.type) + (e.type === 'summary' && 'blobs' in e ? ':verify' : ''));
  }
  assert.equal(events.at(-1)!.type, last, `${label}: the last line`);
  return events;
}

test('every --json line of sync, status, dry-run, add and verify matches schemas/events.schema.json', async (t) => {
  const good = randomData(120_000);
  const other = randomData(20_000);
  const srv = await startServer(t, {
    '/good.bin': good,
    '/other.bin': other,
    '/mirror-down.bin': { body: Buffer.from('no'), status: 503 },
    '/tools.run': randomData(5_000),
  });
  const p = await project(t, {
    version: 1,
    artifacts: {
      good: { url: srv.url('/mirror-down.bin'), mirrors: [srv.url('/good.bin')], digest: `sha256:${sha256(good)}`, size: good.length },
      unlocked: { url: srv.url('/other.bin'), path: 'sub/other.bin', link: 'copy' },
      missing: { url: srv.url('/nothing-here.bin') },
    },
  });
  const seen = new Set<string>();

  check('status before anything', await p.run('status', '--json', '-v'), seen);
  check('dry run', await p.run('sync', '--dry-run', '--json'), seen);
  const first = check('first sync, -v', await p.run('sync', '--json', '-v'), seen);
  assert.ok(first.some((e) => e.type === 'artifact' && e.blob === 'failed' && (e.error as { code: string }).code === 'E_HTTP'));
  assert.ok(first.some((e) => e.type === 'warning'), 'the failing mirror warns');
  assert.ok(first.some((e) => e.type === 'progress'));

  // Someone else's file at an output path, and a blob damaged in the store.
  await fs.rm(path.join(p.dir, 'artifacts', 'sub', 'other.bin'));
  await fs.writeFile(path.join(p.dir, 'artifacts', 'sub', 'other.bin'), 'mine');
  const blob = path.join(p.store, 'v1', 'blobs', 'sha256', sha256(good));
  await fs.chmod(blob, 0o644);
  await fs.appendFile(blob, 'x');
  await fs.chmod(blob, 0o444);
  const status = check('status with drift', await p.run('status', '--json', '--verify'), seen);
  assert.ok(status.some((e) => e.type === 'plan' && e.output === 'conflict'));
  assert.ok(status.some((e) => e.type === 'plan' && e.blob === 'refetch'));
  check('verify', await p.run('verify', '--json'), seen);
  check('sync after verify', await p.run('sync', '--json'), seen);
  // --force fetches a stored blob again: the event says why as a field, not only in words.
  const forced = check('sync --force', await p.run('sync', 'good', '--force', '--json'), seen);
  const again = forced.find((e) => e.type === 'artifact');
  assert.deepEqual([again?.blob, again?.redownload, again?.reason], ['redownloaded', 'force', '--force']);
  check('verify, all good but the conflict', await p.run('verify', '--json', '-v'), seen);
  check('add', await p.run('add', srv.url('/tools.run'), '--executable', '--json'), seen);
  check('a fatal error', await p.run('sync', 'nope', '--json'), seen, 'error');
  // The store disabled: written straight to another output folder, then found up to date there.
  const elsewhere = path.join(tmpDir(t), 'out');
  const direct = check('--no-store', await p.run('sync', 'good', '--no-store', '--json', '--output', elsewhere), seen);
  assert.equal(direct.find((e) => e.type === 'artifact')!.output, 'written');
  const direct2 = check('--no-store again', await p.run('sync', 'good', '--no-store', '--json', '--output', elsewhere), seen);
  assert.equal(direct2.find((e) => e.type === 'artifact')!.blob, 'none');
  // hoard fetch (a download, then the cache with -o) and hoard config.
  check('fetch', await p.run('fetch', srv.url('/other.bin'), '--json', '--refresh'), seen, 'fetched');
  check('fetch -o', await p.run('fetch', srv.url('/other.bin'), '--json', '-o', path.join(elsewhere, 'fetched.bin')), seen, 'fetched');
  check('config', await p.run('config', '--json'), seen, 'config');

  for (const type of ['start', 'plan', 'check', 'download', 'progress', 'warning', 'artifact', 'summary', 'verified', 'summary:verify', 'error', 'fetched', 'config']) {
    assert.ok(seen.has(type), `no ${type} event was produced, so none was checked`);
  }
});

test('every --json line of gc, sync --max-size and hoard store matches the schema', async (t) => {
  const [a, b] = [randomData(30_000), randomData(20_000)];
  const srv = await startServer(t, { '/a.bin': a, '/b.bin': b });
  const p = await project(t, { version: 1, artifacts: { a: { url: srv.url('/a.bin') }, b: { url: srv.url('/b.bin') } } });
  const seen = new Set<string>();
  const lines = (label: string, r: { stdout: string; code: number | null; stderr: string }) => {
    assert.equal(r.code, 0, `${label}: ${r.stderr}`);
    const events = jsonLines(r.stdout);
    assert.ok(events.length > 0, `${label}: no output`);
    for (const [i, e] of events.entries()) {
      if (!validate(e)) assert.fail(`${label}: line ${i + 1} does not match the schema: ${JSON.stringify(e)}\n${JSON.stringify(validate.errors, null, 1).slice(0, 1500)}`);
      seen.add(`${label.split(' ')[0]}:${String(e.type)}${e.type === 'removed' ? `:${String(e.subject)}:${String(e.reason)}` : ''}`);
    }
    return events;
  };
  lines('sync', await p.run('sync', '--json'));
  const other = path.join(p.dir, 'other.bin');
  await fs.writeFile(other, randomData(5_000));
  lines('store add', await p.run('store', 'add', other, '--json'));
  lines('store ls', await p.run('store', 'ls', '--json'));
  lines('store du', await p.run('store', 'du', '--json'));
  lines('store path', await p.run('store', 'path', '--json'));
  const stale = path.join(p.store, 'v1', 'tmp', '99999999-x.part');
  await fs.writeFile(stale, 'left');
  await fs.utimes(stale, new Date(0), new Date(0));
  await fs.writeFile(path.join(p.store, 'v1', 'locks', `${'f'.repeat(64)}.lock`), JSON.stringify({ pid: 99999999, host: os.hostname(), start: null }));
  // A blob only `hoard fetch` wanted: kept by gc for the fetch retention, and listed as fetched.
  const fetched = randomData(4_000);
  srv.routes.set('/fetched.bin', { body: fetched });
  lines('fetch', await p.run('fetch', srv.url('/fetched.bin'), '--json'));
  lines('store ls', await p.run('store', 'ls', '--json'));
  lines('gc --dry-run', await p.run('gc', '--dry-run', '--json', '--max-size', '40KB'));
  const gc = lines('gc', await p.run('gc', '--json'));
  assert.equal(gc.at(-1)!.type, 'summary');
  lines('store add', await p.run('store', 'add', other, '--json')); // a blob of nobody's, for sync to evict
  lines('sync --max-size', await hoard(['sync', 'b', '--json', '--max-size', '25KB'], { cwd: p.dir, store: p.store }));
  lines('store rm', await p.run('store', 'rm', sha256(b), '--json'));
  for (const type of [
    'gc:kept', 'gc:removed:blob:unreferenced', 'gc:removed:tmp:dead-process', 'gc:removed:lock:dead-process', 'gc:manifest', 'gc:summary',
    'sync:removed:blob:lru', 'sync:summary', 'store:blob', 'store:summary', 'store:added', 'store:store', 'store:removed:blob:rm',
    'store:warning',
  ]) {
    assert.ok(seen.has(type), `no ${type} event was produced, so none was checked (saw ${[...seen].join(', ')})`);
  }
});

test('the schema tells events apart: wrong fields and unknown types are rejected', () => {
  assert.equal(validate({ type: 'progress', name: 'a', received: 1, total: null }), true);
  assert.equal(validate({ type: 'progress', name: 'a', received: -1, total: null }), false);
  assert.equal(validate({ type: 'artifact', name: 'a', path: 'a', digest: 'md5:x', size: 1, blob: 'cached', output: 'present', bytesDownloaded: 0 }), false);
  assert.equal(validate({ type: 'summary', blobs: 1, bytes: 2, corrupt: 0, outputs: 0, outputsDiffering: 0, elapsedMs: 3 }), true, 'verify\'s summary');
  assert.equal(validate({ type: 'summary', blobs: 1 }), false);
  assert.equal(validate({ type: 'line', text: 'x' }), false, 'the TUI\'s own line events are not part of --json');
  assert.equal(validate({ type: 'removed', subject: 'blob', path: 'p', bytes: 1, reason: 'lru', dryRun: false }), true);
  assert.equal(validate({ type: 'removed', subject: 'blob', path: 'p', bytes: 1, reason: 'because', dryRun: false }), false);
  assert.equal(validate({ type: 'summary', store: '/s', blobs: 1, bytes: 2, tmpFiles: 0, tmpBytes: 0 }), true, 'store du');
  assert.equal(validate({ type: 'summary', store: '/s', blobs: 1, bytes: 2, tmpFiles: 0 }), false);
  assert.equal(validate({ type: 'kept', digest: `sha256:${'a'.repeat(64)}`, path: 'p', reason: 'in-use' }), true);
  assert.equal(validate({ type: 'kept', digest: `sha256:${'a'.repeat(64)}`, path: 'p', reason: 'fetched', lastUsed: '2026-01-01T00:00:00.000Z', keptUntil: '2026-01-31T00:00:00.000Z' }), true);
  assert.equal(validate({ type: 'kept', digest: `sha256:${'a'.repeat(64)}`, path: 'p', reason: 'old' }), false);
});


test('images: the image event and the image fields match the schema', { skip: podmanSkip }, async (t: TestContext) => {
  const dir = tmpDir(t, 'hoard-rootfs-');
  await fs.mkdir(path.join(dir, 'root', 'etc'), { recursive: true });
  writeFileSync(path.join(dir, 'root', 'etc', 'release'), 'json schema test\n');
  execFileSync('tar', ['-C', path.join(dir, 'root'), '-cf', path.join(dir, 'rootfs.tar'), '.']);
  const tar = readFileSync(path.join(dir, 'rootfs.tar'));
  const ref = `localhost/hoard-json-${randomBytes(4).toString('hex')}/img:1`;
  t.after(() => {
    try {
      execFileSync('podman', ['rmi', '-f', ref], { stdio: 'ignore' });
    } catch {}
  });
  const srv = await startServer(t, { '/rootfs.tar': tar });
  const p = await project(t, { version: 1, artifacts: { img: { url: srv.url('/rootfs.tar'), image: ref } } });
  const seen = new Set<string>();
  check('status with an image', await p.run('status', '--json', '--engine', 'podman', '-v'), seen);
  const events = check('sync with an image', await hoard(['sync', '--json', '--engine', 'podman'], { cwd: p.dir, store: p.store }), seen);
  assert.deepEqual(events.filter((e) => e.type === 'image').map((e) => [e.name, e.ref, e.action]), [['img', ref, 'import']]);
  assert.equal(events.find((e) => e.type === 'artifact')!.image, 'imported');
  check('sync with the image present', await p.run('sync', '--json', '--engine', 'podman'), seen);
});
