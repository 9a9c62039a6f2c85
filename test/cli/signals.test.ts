// Signals and lock waits, against the built CLI: a sync that waits for another process's lock
// can be stopped (Ctrl-C 130, SIGTERM 143, SIGHUP 129) at once, releases the locks it holds and
// keeps its partial downloads; it says who holds the lock, and gives up after --lock-timeout.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { jsonLines, project, randomData, ROOT, sha256, startHoard, startServer } from '../helpers.ts';

const FIXTURE = path.join(ROOT, 'test', 'fixtures', 'lock-child.ts');

/** Another process that holds `lockFile` until the test ends. */
async function holder(t: TestContext, lockFile: string): Promise<ChildProcess> {
  const log = path.join(path.dirname(path.dirname(lockFile)), 'holder.log');
  const child = spawn(process.execPath, ['--import', 'tsx', FIXTURE, 'hold', lockFile, log, '600000'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
  t.after(() => {
    child.kill('SIGKILL');
  });
  let out = '';
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => {
      out += d;
      if (out.includes('locked')) resolve();
    });
    child.on('exit', () => reject(new Error('the lock holder exited')));
  });
  return child;
}

/** A project whose one locked artifact's blob lock is held by another process. */
async function blocked(t: TestContext) {
  const data = randomData(10_000);
  const hex = sha256(data);
  const srv = await startServer(t, { '/a.bin': data });
  const p = await project(t, { version: 1, artifacts: { a: { url: srv.url('/a.bin'), digest: `sha256:${hex}`, size: data.length } } });
  const lockFile = path.join(p.store, 'v1', 'locks', `${hex}.lock`);
  const h = await holder(t, lockFile);
  return { p, srv, hex, lockFile, holder: h };
}

/** Resolves with the run's result, or fails when it has not ended `ms` after the signal (it hangs). */
async function endsSoon<T>(done: Promise<T>, what: string, ms = 15_000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: still running ${ms} ms later (the signal was swallowed)`)), ms);
  });
  try {
    return await Promise.race([done, late]);
  } finally {
    clearTimeout(timer);
  }
}

for (const [signal, code] of [['SIGINT', 130], ['SIGTERM', 143], ['SIGHUP', 129]] as const) {
  test(`${signal} while sync waits for another process's lock: exit ${code} at once, the holder's lock untouched`, async (t) => {
    const { p, srv, lockFile, holder: h } = await blocked(t);
    const run = startHoard(['sync', '--lock-timeout', '0'], { cwd: p.dir, store: p.store });
    t.after(() => run.child.kill('SIGKILL'));
    // It says who holds the lock (once), then waits.
    await run.until(new RegExp(`waiting for .*held by pid ${h.pid} on ${os.hostname()} since `), 'stderr');
    run.child.kill(signal);
    const r = await endsSoon(run.done, `hoard sync after ${signal}`);
    assert.equal(r.code, code, r.stderr);
    assert.equal(r.stderr.match(/^waiting for/gm)?.length, 1, `the wait is announced once:\n${r.stderr}`);
    assert.equal(srv.total(), 0, 'nothing was downloaded');
    assert.ok(existsSync(lockFile), "the other process's lock stays");
    assert.match(await fs.readFile(lockFile, 'utf8'), new RegExp(`"pid":${h.pid}`));
  });
}

test('--lock-timeout 1s: sync gives up with E_LOCKED naming the holder (pid, host), exit 1', async (t) => {
  const { p, lockFile, holder: h } = await blocked(t);
  const r = await endsSoon(startHoard(['sync', '--lock-timeout', '1s'], { cwd: p.dir, store: p.store }).done, 'hoard sync --lock-timeout 1s', 30_000);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, new RegExp(`error: gave up after 1 s: ${lockFile.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} is held by pid ${h.pid} on ${os.hostname()}`));
  assert.match(r.stderr, /hint: .*--lock-timeout/);
  const j = await endsSoon(startHoard(['sync', '--json'], { cwd: p.dir, store: p.store, env: { HOARD_LOCK_TIMEOUT: '500ms' } }).done, 'HOARD_LOCK_TIMEOUT', 30_000);
  assert.equal(j.code, 1);
  const art = jsonLines(j.stdout).find((e) => e.type === 'artifact') as { error: { code: string } };
  assert.equal(art.error.code, 'E_LOCKED');
  const waiting = jsonLines(j.stdout).find((e) => e.type === 'waiting');
  assert.equal(waiting?.pid, h.pid, 'the waiting event names the holder as data');
  assert.equal(waiting?.timeoutMs, 500);
});

test('a lock left by another host (its pid cannot be checked) is waited for up to --lock-timeout, then E_LOCKED names the host', async (t) => {
  const data = randomData(1000);
  const hex = sha256(data);
  const srv = await startServer(t, { '/a.bin': data });
  const p = await project(t, { version: 1, artifacts: { a: { url: srv.url('/a.bin'), digest: `sha256:${hex}`, size: data.length } } });
  const lockFile = path.join(p.store, 'v1', 'locks', `${hex}.lock`);
  await fs.mkdir(path.dirname(lockFile), { recursive: true });
  await fs.writeFile(lockFile, JSON.stringify({ pid: 4242, host: 'build-box-7', start: null, since: '2026-01-02T03:04:05.000Z' }));
  const r = await endsSoon(startHoard(['sync', '--lock-timeout', '1s'], { cwd: p.dir, store: p.store }).done, 'sync', 30_000);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /held by pid 4242 on build-box-7 since 2026-01-02T03:04:05.000Z/);
  assert.equal(srv.total(), 0);
  assert.ok(existsSync(lockFile), 'a foreign lock is never removed');
});

test('--lock-timeout with a bad value is a usage error (exit 2)', async (t) => {
  const { p } = await blocked(t);
  for (const [args, env] of [[['sync', '--lock-timeout', 'soon'], {}], [['status'], { HOARD_LOCK_TIMEOUT: 'forever' }]] as const) {
    const r = await startHoard([...args], { cwd: p.dir, store: p.store, env }).done;
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /error: --lock-timeout "(soon|forever)" is not a duration\nhint: /);
  }
});

// SIGHUP (the terminal closed, an ssh session dropped) stops a run as SIGTERM does.
for (const [signal, code] of [['SIGTERM', 143], ['SIGHUP', 129]] as const) {
  test(`${signal} mid-sync: the locks this process holds are released, its partial download kept; the next run resumes (exit ${code})`, async (t) => {
    const size = 4 * 1024 * 1024;
    const big = randomData(size);
    const small = randomData(5000);
    const served = { bytes: 0 };
    const srv = await startServer(t, {
      // Sends the first MiB, then nothing more (the connection stays open) — until the test ends.
      '/big.bin': (req, res) => {
        const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
        const start = range ? Number(range[1]) : 0;
        res.writeHead(start ? 206 : 200, { 'content-length': String(size - start), etag: '"big"', ...(start ? { 'content-range': `bytes ${start}-${size - 1}/${size}` } : {}) });
        if (start) return res.end(big.subarray(start));
        res.write(big.subarray(0, 1024 * 1024), () => (served.bytes = 1024 * 1024));
      },
      '/small.bin': small,
    });
    const bigHex = sha256(big);
    const smallHex = sha256(small);
    const p = await project(t, {
      version: 1,
      artifacts: {
        big: { url: srv.url('/big.bin'), digest: `sha256:${bigHex}`, size },
        small: { url: srv.url('/small.bin'), digest: `sha256:${smallHex}`, size: small.length },
      },
    });
    const locks = path.join(p.store, 'v1', 'locks');
    const h = await holder(t, path.join(locks, `${smallHex}.lock`));
    const run = startHoard(['sync', '--lock-timeout', '0', '--stall-timeout', '600'], { cwd: p.dir, store: p.store });
    t.after(() => run.child.kill('SIGKILL'));
    await run.until(new RegExp(`waiting for .*held by pid ${h.pid}`), 'stderr');
    // The big download got bytes (its .partial exists), under its lock.
    const partial = path.join(p.store, 'v1', 'tmp', `${bigHex}.partial`);
    const partialBytes = async () => (await fs.stat(partial).catch(() => null))?.size ?? -1;
    while (served.bytes === 0 || (await partialBytes()) < 0) await new Promise((r) => setTimeout(r, 20));
    assert.ok(existsSync(path.join(locks, `${bigHex}.lock`)), 'the download holds its lock');
    run.child.kill(signal);
    const r = await endsSoon(run.done, `sync after ${signal}`);
    assert.equal(r.code, code, r.stderr);
    assert.ok(!existsSync(path.join(locks, `${bigHex}.lock`)), 'its own lock was released');
    assert.ok(existsSync(path.join(locks, `${smallHex}.lock`)), "the other process's lock stays");
    assert.equal(await partialBytes(), 1024 * 1024, 'the partial download is kept, every byte received');
    h.kill('SIGKILL');
    await new Promise((resolve) => h.once('exit', resolve));
    const again = await startHoard(['sync', '--json'], { cwd: p.dir, store: p.store }).done;
    assert.equal(again.code, 0, again.stderr);
    const download = jsonLines(again.stdout).find((e) => e.type === 'download' && e.name === 'big');
    assert.equal(download?.resumeFrom, 1024 * 1024, 'the next run resumes where it stopped');
  });
}
