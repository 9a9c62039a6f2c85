// "Errors, never stack traces": each case is one `error:` line and a `hint:`, a documented
// E_* code in --json, and the right exit status, against the built CLI.
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, promises as fs } from 'node:fs';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { CLI, cliEnv, hoard, jsonLines, project, randomData, sha256, startServer, tmpDir, type RunResult } from '../helpers.ts';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { readFileSync } from 'node:fs';
import { ERROR_CODES } from '../../src/core/errors.ts';
import { ROOT } from '../helpers.ts';

const validate = new Ajv2020({ allErrors: true, strict: true }).compile(JSON.parse(readFileSync(path.join(ROOT, 'schemas', 'events.schema.json'), 'utf8')));

/** One error line and a hint, no stack trace; the code in --json is documented. */
function oneError(r: RunResult, pattern: RegExp): void {
  const errors = r.stderr.split('\n').filter((l) => /\berror:/.test(l));
  assert.equal(errors.length, 1, `one error line:\n${r.stderr}`);
  assert.match(r.stderr, pattern);
  assert.match(r.stderr, /\bhint: \S/);
  assert.doesNotMatch(r.stderr, /\n\s+at .*\(.*:\d+:\d+\)|TypeError|RangeError|Error: E[A-Z]+:/, 'no stack trace');
}

function codesIn(stdout: string): string[] {
  const codes: string[] = [];
  for (const e of jsonLines(stdout)) {
    if (!validate(e)) assert.fail(`not described by schemas/events.schema.json: ${JSON.stringify(e)}\n${JSON.stringify(validate.errors)}`);
    if (e.type === 'error') codes.push(String(e.code));
    for (const k of ['error', 'imageError'] as const) if (e[k]) codes.push(String((e[k] as { code: string }).code));
    if (e.type === 'summary' && e.manifestError) codes.push(String((e.manifestError as { code: string }).code));
  }
  for (const c of codes) assert.ok(c in ERROR_CODES, `${c} is a documented code`);
  return codes;
}

async function oneArtifact(t: TestContext, body = randomData(2000), locked = true) {
  const srv = await startServer(t, { '/a.bin': body });
  const p = await project(t, { version: 1, artifacts: { a: { url: srv.url('/a.bin'), ...(locked ? { digest: `sha256:${sha256(body)}`, size: body.length } : {}) } } });
  return { srv, p, body };
}

test('the output folder is a file: E_NOTDIR, one error line, exit 1', async (t) => {
  const { p } = await oneArtifact(t);
  await fs.writeFile(path.join(p.dir, 'artifacts'), 'not a folder');
  const r = await p.run('sync');
  assert.equal(r.code, 1, r.stderr);
  oneError(r, /artifacts.*(is a file|not a folder)/);
  const j = await p.run('sync', '--json');
  assert.deepEqual(codesIn(j.stdout), ['E_NOTDIR']);
});

test('-o pointing at a file: E_NOTDIR naming it, exit 1', async (t) => {
  const { p } = await oneArtifact(t);
  const file = path.join(p.dir, 'plain.txt');
  await fs.writeFile(file, 'x');
  for (const out of [file, path.join(file, 'sub')]) {
    const r = await p.run('sync', '-o', out);
    assert.equal(r.code, 1, r.stderr);
    oneError(r, /plain\.txt/);
    assert.deepEqual(codesIn((await p.run('sync', '-o', out, '--json')).stdout), ['E_NOTDIR']);
  }
});

test('300 levels of nested JSON (JSON.parse takes them) in hoard.json or the config file: refused beyond 256 levels, E_MANIFEST / E_CONFIG, exit 2', async (t) => {
  const { p } = await oneArtifact(t);
  const deep = `${'['.repeat(300)}${']'.repeat(300)}`;
  await fs.writeFile(p.manifestPath, `{"version": 1, "artifacts": {}, "x": ${deep}}`);
  const r = await p.run('status');
  assert.equal(r.code, 2, r.stderr);
  // The 257th level: the 256th "[" of x (x starts at column 38, inside the manifest's object).
  oneError(r, /hoard\.json:1:293: .*nested more than 256 levels deep/);
  assert.deepEqual(codesIn((await p.run('status', '--json')).stdout), ['E_MANIFEST']);

  const cfg = tmpDir(t);
  mkdirSync(path.join(cfg, 'hoard'));
  await fs.writeFile(path.join(cfg, 'hoard', 'config.json'), `{"x": ${deep}}`);
  const c = await hoard(['config', '--json'], { cwd: p.dir, env: { XDG_CONFIG_HOME: cfg } });
  assert.equal(c.code, 2, c.stderr);
  oneError(c, /config\.json.*nested more than 256 levels deep/s);
  assert.deepEqual(codesIn(c.stdout), ['E_CONFIG']);
});

test('50,000 levels of nested JSON in hoard.json or the config file: E_MANIFEST / E_CONFIG, exit 2, no stack overflow', async (t) => {
  const { p } = await oneArtifact(t);
  const deep = `${'['.repeat(50_000)}${']'.repeat(50_000)}`;
  await fs.writeFile(p.manifestPath, `{"version": 1, "artifacts": {}, "x": ${deep}}`);
  const r = await p.run('status');
  assert.equal(r.code, 2, r.stderr);
  oneError(r, /nested more than \d+ levels deep/);
  assert.deepEqual(codesIn((await p.run('status', '--json')).stdout), ['E_MANIFEST']);

  const cfg = tmpDir(t);
  mkdirSync(path.join(cfg, 'hoard'));
  await fs.writeFile(path.join(cfg, 'hoard', 'config.json'), deep);
  const c = await hoard(['config', '--json'], { cwd: p.dir, env: { XDG_CONFIG_HOME: cfg } });
  assert.equal(c.code, 2, c.stderr);
  oneError(c, /config\.json.*nested more than/s);
  assert.deepEqual(codesIn(c.stdout), ['E_CONFIG']);
});

/** Runs `fn` with `dir` made immutable (chattr +i: even root cannot create a file in it). */
async function immutable<T>(t: TestContext, dir: string, fn: () => Promise<T>): Promise<T | undefined> {
  try {
    execFileSync('chattr', ['+i', dir], { stdio: 'ignore' });
  } catch {
    t.skip('chattr +i is not available here (not ext4/xfs, or not root)');
    return undefined;
  }
  try {
    return await fn();
  } finally {
    execFileSync('chattr', ['-i', dir]);
  }
}

test('hoard.json cannot be written (its folder refuses new files): the summary still prints, says the lock was not recorded, exit 1', async (t) => {
  // We run as root, so a read-only folder is no obstacle: the project folder is made immutable
  // instead (chattr +i), where the temp file beside hoard.json cannot be created (EPERM).
  const { p, body } = await oneArtifact(t, randomData(3000), false);
  const out = tmpDir(t);
  const before = await fs.readFile(p.manifestPath, 'utf8');
  const r = await immutable(t, p.dir, () => p.run('sync', '-o', out));
  if (!r) return;
  assert.equal(r.code, 1, r.stderr);
  oneError(r, /hoard\.json was not updated .*the lock of "a" was not recorded/);
  assert.match(r.stdout, /1 artifact: 0 hits, 1 miss.*hoard\.json NOT updated/);
  assert.equal(await fs.readFile(p.manifestPath, 'utf8'), before);
  assert.deepEqual(await fs.readFile(path.join(out, 'a.bin')), body, 'the download itself is done');
  const j = await immutable(t, p.dir, () => p.run('sync', '-o', out, '--json'));
  assert.deepEqual(codesIn(j!.stdout), ['E_PERMISSION']);
  const summary = jsonLines(j!.stdout).find((e) => e.type === 'summary') as { manifestError: { errno: string } };
  assert.equal(summary.manifestError.errno, 'EPERM');
});

test('hoard.json on a full disk (a tiny tmpfs): E_NOSPACE, the summary says the lock was not recorded', async (t) => {
  const { p } = await oneArtifact(t, randomData(3000), false);
  const mnt = tmpDir(t);
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', mnt], { stdio: 'ignore' });
  } catch {
    t.skip('cannot mount a tmpfs here');
    return;
  }
  try {
  const manifest = path.join(mnt, 'hoard.json');
  await fs.copyFile(p.manifestPath, manifest);
  // Fill the filesystem to the last byte.
  const fh = await fs.open(path.join(mnt, 'filler'), 'w');
  try {
    for (;;) await fh.write(Buffer.alloc(4096));
  } catch {
    // ENOSPC: full
  } finally {
    await fh.close();
  }
  const r = await hoard(['sync', '-m', manifest, '-o', tmpDir(t)], { cwd: p.dir, store: p.store });
  assert.equal(r.code, 1, r.stderr);
  oneError(r, /hoard\.json was not updated \(.*ENOSPC.*\): the lock of "a" was not recorded/);
  assert.match(r.stdout, /hoard\.json NOT updated/);
  const j = await hoard(['sync', '-m', manifest, '-o', tmpDir(t), '--json'], { cwd: p.dir, store: p.store });
  assert.deepEqual(codesIn(j.stdout), ['E_NOSPACE']);
  } finally {
    execFileSync('umount', ['-l', mnt]);
  }
});

test("HTTP_PROXY='not a url' is a usage error naming the variable (exit 2), before anything is downloaded", async (t) => {
  const { p, srv } = await oneArtifact(t);
  for (const [name, value] of [['HTTP_PROXY', 'not a url'], ['https_proxy', 'ftp://x:21']] as const) {
    const r = await hoard(['sync'], { cwd: p.dir, store: p.store, env: { [name]: value } });
    assert.equal(r.code, 2, r.stderr);
    oneError(r, new RegExp(`${name}=.* is not a proxy URL`));
  }
  assert.equal(srv.total(), 0);
});

test('the store path is a file: E_NOTDIR naming it, exit 1, for sync, status, verify, gc and store ls', async (t) => {
  const { p } = await oneArtifact(t);
  const file = path.join(path.dirname(p.dir), 'store-file');
  await fs.writeFile(file, 'x');
  for (const args of [['sync'], ['status'], ['verify'], ['gc'], ['store', 'ls']]) {
    const r = await hoard([...args, '--json'], { cwd: p.dir, store: file });
    assert.equal(r.code, 1, `${args.join(' ')}: ${r.stderr}`);
    oneError(r, /store-file/);
    assert.deepEqual(codesIn(r.stdout), ['E_NOTDIR'], args.join(' '));
  }
});

test('a folder or a symlink under blobs/sha256/: verify and gc skip it and go on', async (t) => {
  const { p, body } = await oneArtifact(t);
  assert.equal((await p.run('sync')).code, 0);
  const blobs = path.join(p.store, 'v1', 'blobs', 'sha256');
  await fs.mkdir(path.join(blobs, 'a'.repeat(64)));
  await fs.symlink('/etc/hostname', path.join(blobs, 'b'.repeat(64)));
  const v = await p.run('verify');
  assert.equal(v.code, 0, v.stderr);
  assert.match(v.stdout, /verified 1 blob/);
  assert.doesNotMatch(v.stderr, /error:/);
  const g = await p.run('gc');
  assert.equal(g.code, 0, g.stderr);
  assert.doesNotMatch(g.stderr, /error:/);
  const ls = await p.run('store', 'ls');
  assert.equal(ls.code, 0, ls.stderr);
  assert.match(ls.stdout, new RegExp(sha256(body)));
  assert.ok(existsSync('/etc/hostname'), 'the symlink target is never touched');
});

test('three wrong 206 answers: E_RANGE says the server ignores ranges', async (t) => {
  const body = randomData(5000);
  const srv = await startServer(t, {
    // Always a 206, always for the wrong range.
    '/a.bin': (_req, res) => res.writeHead(206, { 'content-range': `bytes 100-199/${body.length}`, 'content-length': '100' }).end(body.subarray(100, 200)),
  });
  const p = await project(t, { version: 1, artifacts: { a: { url: srv.url('/a.bin'), digest: `sha256:${sha256(body)}`, size: body.length } } });
  const r = await p.run('sync');
  assert.equal(r.code, 1, r.stderr);
  oneError(r, /ignores range requests/);
  assert.deepEqual(codesIn((await p.run('sync', '--json')).stdout), ['E_RANGE']);
});

test('a deleted working directory: one error line (E_CWD), exit 1', async (t) => {
  const base = tmpDir(t);
  const gone = path.join(base, 'gone');
  mkdirSync(gone);
  // A shell whose folder is removed under it, then runs hoard.
  const run = (json: boolean) =>
    new Promise<RunResult>((resolve) => {
      const child = spawn('/bin/sh', ['-c', `cd "${gone}" && rmdir "${gone}" && exec "${process.execPath}" "${CLI}" status${json ? ' --json' : ''}`], { env: cliEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d));
      child.stderr.on('data', (d: Buffer) => (stderr += d));
      child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
    });
  const r = await run(false);
  assert.equal(r.code, 1, r.stderr);
  oneError(r, /working directory no longer exists/);
  mkdirSync(gone);
  assert.deepEqual(codesIn((await run(true)).stdout), ['E_CWD']);
});

test('HOARD_FORCE=maybe, HOARD_JSON=maybe, HOARD_VERBOSE=2: exit 2 naming the variable, as for any malformed variable', async (t) => {
  const { p } = await oneArtifact(t);
  for (const [name, value, cmd] of [['HOARD_FORCE', 'maybe', 'sync'], ['HOARD_JSON', 'maybe', 'status'], ['HOARD_VERBOSE', '2', 'status'], ['HOARD_FORCE', 'maybe', 'status']] as const) {
    const r = await hoard([cmd], { cwd: p.dir, store: p.store, env: { [name]: value } });
    assert.equal(r.code, 2, `${name}=${value} ${cmd}: ${r.stderr}`);
    oneError(r, new RegExp(`${name}=${value}: expected true or false`));
  }
  // The spellings CI files use still work.
  for (const v of ['1', 'yes', 'on', 'true', '0', 'no', 'off', 'false']) assert.equal((await hoard(['status'], { cwd: p.dir, store: p.store, env: { HOARD_VERBOSE: v } })).code, 3, v);
});

test('HOARD_STORE=relative is refused as the config file refuses it (exit 2); ~/ is expanded', async (t) => {
  const { p } = await oneArtifact(t);
  const r = await hoard(['store', 'path'], { cwd: p.dir, env: { HOARD_STORE: 'relative/store' } });
  assert.equal(r.code, 2, r.stderr);
  oneError(r, /HOARD_STORE=relative\/store: expected an absolute path/);
  const home = tmpDir(t);
  const h = await hoard(['store', 'path'], { cwd: p.dir, env: { HOARD_STORE: '~/hoard-store', HOME: home } });
  assert.equal(h.code, 0, h.stderr);
  assert.equal(h.stdout.trim(), path.join(home, 'hoard-store'));
  // --store on the command line is a person's choice, resolved against the working folder.
  const f = await hoard(['store', 'path', '--store', 'here'], { cwd: p.dir });
  assert.equal(f.stdout.trim(), path.join(p.dir, 'here'));
});

test('an HTTP proxy is used for http:// URLs by forwarding (absolute-form request line), not CONNECT', async (t) => {
  const body = randomData(4000);
  const srv = await startServer(t, { '/a.bin': body });
  const seen: string[] = [];
  // A tiny loopback forward proxy that records each request line and relays it.
  const proxy = http.createServer((req, res) => {
    seen.push(`${req.method} ${req.url}`);
    const target = new URL(req.url!);
    const up = http.request({ host: target.hostname, port: target.port, path: target.pathname, method: req.method, headers: req.headers }, (r) => {
      res.writeHead(r.statusCode!, r.headers);
      r.pipe(res);
    });
    req.pipe(up);
  });
  proxy.on('connect', (req, sock: net.Socket) => {
    seen.push(`CONNECT ${req.url}`);
    sock.end('HTTP/1.1 405 Method Not Allowed\r\n\r\n');
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  t.after(() => {
    proxy.closeAllConnections();
    proxy.close();
  });
  const p = await project(t, { version: 1, artifacts: { a: { url: srv.url('/a.bin'), digest: `sha256:${sha256(body)}`, size: body.length } } });
  const proxyUrl = `127.0.0.1:${(proxy.address() as AddressInfo).port}`; // no scheme: http://, as curl reads it
  const r = await hoard(['sync'], { cwd: p.dir, store: p.store, env: { http_proxy: proxyUrl, NO_PROXY: '' } });
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(seen, [`GET ${srv.url('/a.bin')}`]);
  assert.deepEqual(await fs.readFile(path.join(p.dir, 'artifacts', 'a.bin')), body);
});

test('a read-only filesystem under the output (EROFS): E_READONLY naming the path, exit 1', async (t) => {
  const { p } = await oneArtifact(t);
  const out = path.join(tmpDir(t), 'ro');
  mkdirSync(out);
  try {
    execFileSync('mount', ['--bind', '-o', 'ro', out, out], { stdio: 'ignore' });
  } catch {
    t.skip('cannot bind-mount read-only here');
    return;
  }
  try {
    const r = await p.run('sync', '-o', out);
    assert.equal(r.code, 1, r.stderr);
    oneError(r, /read-only filesystem \(EROFS\)/);
    assert.deepEqual(codesIn((await p.run('sync', '-o', out, '--json')).stdout), ['E_READONLY']);
  } finally {
    execFileSync('umount', ['-l', out]);
  }
});
