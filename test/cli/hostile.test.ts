// A cloned repository is not trusted: its hoard.json and its committed symbolic links must
// not make hoard write outside the project or into .git, and a manifest that cannot be
// synced safely is refused before anything is fetched. The real CLI, real folders.
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { describe, test, type TestContext } from 'node:test';
import { CLI, cliEnv, hoard, jsonLines, listTree, project, randomData, sha256, startServer, tmpDir } from '../helpers.ts';

/** A project with one artifact served by a real server, and a folder outside it standing for ~/.ssh. */
async function hostile(t: TestContext, artifact: Record<string, unknown> = {}, top: Record<string, unknown> = {}) {
  const body = randomData(5000);
  const srv = await startServer(t, { '/x.bin': body });
  const p = await project(t, { version: 1, ...top, artifacts: { x: { url: srv.url('/x.bin'), ...artifact } } });
  const outside = path.join(path.dirname(p.dir), 'dot-ssh');
  await fs.mkdir(outside);
  await fs.writeFile(path.join(outside, 'authorized_keys'), 'ssh-ed25519 AAAA me\n');
  return { ...p, srv, body, outside };
}

async function assertNothingWritten(h: Awaited<ReturnType<typeof hostile>>) {
  assert.deepEqual(await listTree(h.outside), ['authorized_keys']);
  assert.equal(h.srv.total(), 0, 'nothing was downloaded');
}

describe('nothing outside the project (committed symbolic links)', () => {
  test('output folder "artifacts" committed as a symlink out of the project: exit 2 (E_PATH) naming it; nothing written', async (t) => {
    const h = await hostile(t);
    await fs.symlink(h.outside, path.join(h.dir, 'artifacts'));
    const r = await h.run('sync', '--no-images', '--json');
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /artifacts is a symbolic link to .*dot-ssh, outside .*: hoard will not write through it/);
    assert.equal(jsonLines(r.stdout).find((e) => e.type === 'error')?.code, 'E_PATH');
    await assertNothingWritten(h);
    const before = await fs.readFile(h.manifestPath, 'utf8');
    assert.equal(await fs.readFile(h.manifestPath, 'utf8'), before);
    // status says the same (and reads nothing there).
    assert.equal((await h.run('status', '--no-images')).code, 2);
  });

  test('a folder inside the output folder committed as a symlink out of it: exit 2 naming it', async (t) => {
    const h = await hostile(t, { path: 'images/x.bin' });
    await fs.mkdir(path.join(h.dir, 'artifacts'));
    await fs.symlink(h.outside, path.join(h.dir, 'artifacts', 'images'));
    const r = await h.run('sync', '--no-images');
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /artifacts\/images is a symbolic link to .*dot-ssh/);
    await assertNothingWritten(h);
  });

  test('"output": "a/b" where a is a symlink out of the project: nothing created there (mkdir -p would have)', async (t) => {
    const h = await hostile(t, {}, { output: 'a/b' });
    await fs.symlink(h.outside, path.join(h.dir, 'a'));
    const r = await h.run('sync', '--no-images');
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /[/]a is a symbolic link/);
    await assertNothingWritten(h);
  });

  test('a symlink into .git (artifacts -> .git/hooks) is refused too', async (t) => {
    const h = await hostile(t, { path: 'pre-commit' });
    await fs.mkdir(path.join(h.dir, '.git', 'hooks'), { recursive: true });
    await fs.symlink(path.join('.git', 'hooks'), path.join(h.dir, 'artifacts'));
    const r = await h.run('sync', '--no-images');
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /inside a \.git folder/);
    assert.deepEqual(await listTree(path.join(h.dir, '.git', 'hooks')), []);
  });

  test('the same with the store disabled (--no-store writes beside the output)', async (t) => {
    const h = await hostile(t);
    await fs.symlink(h.outside, path.join(h.dir, 'artifacts'));
    const r = await h.run('sync', '--no-images', '--no-store');
    assert.equal(r.code, 2, r.stderr);
    await assertNothingWritten(h);
  });

  test('a symlink that stays inside the project is fine; so is --output pointing anywhere (a person\'s choice)', async (t) => {
    const h = await hostile(t);
    await fs.mkdir(path.join(h.dir, 'shared'));
    await fs.symlink('shared', path.join(h.dir, 'artifacts'));
    const r = await h.run('sync', '--no-images');
    assert.equal(r.code, 0, r.stderr);
    assert.equal(sha256(await fs.readFile(path.join(h.dir, 'shared', 'x.bin'))), sha256(h.body));

    const elsewhere = path.join(tmpDir(t), 'chosen');
    const o = await h.run('sync', '--no-images', '--output', elsewhere);
    assert.equal(o.code, 0, o.stderr);
    assert.equal(sha256(await fs.readFile(path.join(elsewhere, 'x.bin'))), sha256(h.body));
  });
});

describe('nothing in .git', () => {
  for (const [what, artifact, top, pointer] of [
    ['"output": ".git/hooks"', {}, { output: '.git/hooks' }, '/output'],
    ['"output": "sub/.Git"', {}, { output: 'sub/.Git' }, '/output'],
    ['"path": ".git/hooks/pre-commit"', { path: '.git/hooks/pre-commit' }, {}, '/artifacts/x/path'],
    ['"path": "vendor/.GIT/config"', { path: 'vendor/.GIT/config' }, {}, '/artifacts/x/path'],
  ] as const) {
    test(`${what} is refused: exit 2 with the pointer; nothing fetched`, async (t) => {
      const h = await hostile(t, artifact, top);
      const r = await h.run('sync', '--no-images');
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, new RegExp(`${pointer.replace(/\//g, '\\/')} is inside a \\.git folder`));
      assert.equal(h.srv.total(), 0);
      await assert.rejects(fs.stat(path.join(h.dir, '.git')), { code: 'ENOENT' });
    });
  }

  test('init --output .git is refused', async (t) => {
    const dir = tmpDir(t);
    const r = await hoard(['init', '--output', '.git'], { cwd: dir });
    assert.equal(r.code, 2, r.stderr);
    assert.deepEqual(await listTree(dir), []);
  });
});

describe('init and a .gitignore that is a symlink', () => {
  test('a .gitignore leading out of the project is not appended to: a warning, and hoard.json is still created', async (t) => {
    const base = tmpDir(t);
    const dir = path.join(base, 'lab');
    await fs.mkdir(dir);
    const victim = path.join(base, 'bashrc');
    await fs.writeFile(victim, 'export PATH=/usr/bin\n');
    await fs.symlink(victim, path.join(dir, '.gitignore'));
    const r = await hoard(['init'], { cwd: dir });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(await fs.readFile(victim, 'utf8'), 'export PATH=/usr/bin\n');
    assert.match(r.stderr, /\.gitignore is a symbolic link to .*bashrc, outside .*: not changed; add \/artifacts\/ to it yourself/);
    assert.ok((await fs.lstat(path.join(dir, '.gitignore'))).isSymbolicLink());
    assert.ok((await fs.stat(path.join(dir, 'hoard.json'))).isFile());
  });

  test('a .gitignore symlinked to a file inside the project is updated there', async (t) => {
    const dir = tmpDir(t);
    await fs.writeFile(path.join(dir, 'common.gitignore'), 'node_modules\n');
    await fs.symlink('common.gitignore', path.join(dir, '.gitignore'));
    const r = await hoard(['init'], { cwd: dir });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(await fs.readFile(path.join(dir, 'common.gitignore'), 'utf8'), 'node_modules\n/artifacts/\n');
  });
});

describe('control characters in names and paths', () => {
  const cases: Array<[string, Record<string, unknown>, string, string]> = [
    ['ESC in "path"', { path: 'a\u001b[31mred.bin' }, '/x.bin', '/artifacts/x/path'],
    ['LF in "path"', { path: 'a\nb.bin' }, '/x.bin', '/artifacts/x/path'],
    ['TAB in "path"', { path: 'a\tb.bin' }, '/x.bin', '/artifacts/x/path'],
    ['DEL in "path"', { path: 'a\u007fb.bin' }, '/x.bin', '/artifacts/x/path'],
    ['C1 (U+009B, CSI) in "path"', { path: 'a\u009b31mb.bin' }, '/x.bin', '/artifacts/x/path'],
    ['BEL percent-encoded in the URL file name', {}, '/a%07b.bin', '/artifacts/x/url'],
    ['CR percent-encoded in the URL file name', {}, '/a%0Db.bin', '/artifacts/x/url'],
    ['ESC percent-encoded in the URL file name', {}, '/a%1B%5B2Jb.bin', '/artifacts/x/url'],
    ['C1 NEL (U+0085) percent-encoded in the URL file name', {}, '/a%C2%85b.bin', '/artifacts/x/url'],
  ];
  for (const [what, artifact, urlPath, pointer] of cases) {
    test(`${what}: exit 2 (E_MANIFEST) at ${pointer}`, async (t) => {
      const srv = await startServer(t, {});
      const p = await project(t, { version: 1, artifacts: { x: { url: srv.url(urlPath), ...artifact } } });
      const r = await p.run('sync', '--no-images', '--json');
      assert.equal(r.code, 2, r.stderr);
      const err = jsonLines(r.stdout).find((e) => e.type === 'error')!;
      assert.equal(err.code, 'E_MANIFEST');
      assert.match(String(err.message), new RegExp(`${pointer.replace(/\//g, '\\/')} `));
      assert.equal(srv.total(), 0);
    });
  }

  test('ESC in an artifact name: exit 2 at /artifacts', async (t) => {
    const p = await project(t, { version: 1, artifacts: { 'a\u001bb': { url: 'http://127.0.0.1:9/x.bin' } } });
    const r = await p.run('status', '--no-images');
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /not a valid artifact name/);
  });

  test('hoard add of a URL whose file name decodes to ESC: exit 2, hoard.json unchanged', async (t) => {
    const srv = await startServer(t, { '/a%1Bb.bin': randomData(100) });
    const p = await project(t, { version: 1, artifacts: {} });
    const before = await fs.readFile(p.manifestPath, 'utf8');
    const r = await p.run('add', srv.url('/a%1Bb.bin'), '--name', 'ab');
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /control character/);
    assert.equal(await fs.readFile(p.manifestPath, 'utf8'), before);
  });
});

describe('credentials in URLs', () => {
  test('hoard add https://user:pass@host/…: exit 2, nothing recorded or fetched, and the hint shows headers with ${VAR}', async (t) => {
    const srv = await startServer(t, { '/x.bin': randomData(100) });
    const p = await project(t, { version: 1, artifacts: {} });
    const before = await fs.readFile(p.manifestPath, 'utf8');
    const r = await p.run('add', srv.url('/x.bin').replace('://', '://alice:s3cret@'));
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /user name or password/);
    assert.match(r.stderr, /hint: .*-H 'Authorization: Basic \$\{VENDOR_BASIC\}'/);
    assert.doesNotMatch(r.stderr, /s3cret/, 'the password is not printed');
    assert.equal(await fs.readFile(p.manifestPath, 'utf8'), before);
    assert.equal(srv.total(), 0);
  });

  test('user:pass@ in a manifest URL or mirror: exit 2 at its pointer, naming the headers way', async (t) => {
    const srv = await startServer(t, { '/x.bin': randomData(100) });
    const p = await project(t, {
      version: 1,
      artifacts: { x: { url: srv.url('/x.bin'), mirrors: [srv.url('/x.bin').replace('://', '://bob:pw@')] } },
    });
    const r = await p.run('sync', '--no-images');
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /\/artifacts\/x\/mirrors\/0 has a user name or password/);
    assert.match(r.stderr, /"headers": \{"Authorization": "Basic \$\{VENDOR_BASIC\}"\}/);
    assert.equal(srv.total(), 0);
  });

  test('a ?token= query is allowed, but add warns that it will be committed', async (t) => {
    const body = randomData(100);
    const srv = await startServer(t, { '/x.bin': body });
    const p = await project(t, { version: 1, artifacts: {} });
    const r = await p.run('add', `${srv.url('/x.bin')}?X-Amz-Signature=abc&token=def`, '--json');
    assert.equal(r.code, 0, r.stderr);
    const w = jsonLines(r.stdout).find((e) => e.type === 'warning');
    assert.ok(w, r.stdout);
    assert.match(String(w.message), /"X-Amz-Signature", "token", which looks like a secret: it will be committed/);
    const m = JSON.parse(await fs.readFile(p.manifestPath, 'utf8'));
    assert.equal(m.artifacts['x.bin'].digest, `sha256:${sha256(body)}`);
  });
});

describe('manifests that cannot be synced are refused at validation', () => {
  test('a size above 2^53 - 1: exit 2 at /artifacts/x/size', async (t) => {
    const p = await project(t, '{"version": 1, "artifacts": {"x": {"url": "http://127.0.0.1:9/x.bin", "size": 9007199254740993}}}\n');
    const r = await p.run('status', '--no-images');
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /\/artifacts\/x\/size expected at most 9007199254740991/);
  });

  test('"p" and "p/x": a file and a folder at once; both pointers are named', async (t) => {
    const p = await project(t, {
      version: 1,
      artifacts: { a: { url: 'http://127.0.0.1:9/a.bin', path: 'p' }, b: { url: 'http://127.0.0.1:9/b.bin', path: 'p/x' } },
    });
    const r = await p.run('status', '--no-images');
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /\/artifacts\/b\/path needs a folder where \/artifacts\/a\/path has its file/);
    // In the other order (the folder's entry first), too.
    await fs.writeFile(p.manifestPath, JSON.stringify({
      version: 1,
      artifacts: { a: { url: 'http://127.0.0.1:9/a.bin', path: 'p/x/y' }, b: { url: 'http://127.0.0.1:9/p' } },
    }));
    const r2 = await p.run('status', '--no-images');
    assert.equal(r2.code, 2, r2.stderr);
    assert.match(r2.stderr, /\/artifacts\/b\/url is a file, but \/artifacts\/a\/path needs a folder there/);
  });

  test('paths equal but for letter case: exit 2, both pointers named', async (t) => {
    const p = await project(t, {
      version: 1,
      artifacts: { a: { url: 'http://127.0.0.1:9/Image.ISO' }, b: { url: 'http://127.0.0.1:9/other', path: 'image.iso' } },
    });
    const r = await p.run('status', '--no-images');
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /\/artifacts\/b\/path is the same output path as \/artifacts\/a\/url but for letter case/);
  });
});

describe('a blob and hoard.json are on disk before they get their names (strace)', () => {
  let strace = true;
  try {
    execFileSync('strace', ['-V'], { stdio: 'ignore' });
  } catch {
    strace = false;
  }
  const skip = strace ? false : 'strace is not installed (.ci/run installs it)';

  /**
   * A real `hoard sync` of one artifact under strace: the system calls that make files durable
   * and name them. `adopt`: the entry is locked and its output already holds the bytes, so the
   * blob is restored to the store from the output (nothing is downloaded).
   */
  async function tracedSync(t: TestContext, o: { adopt?: boolean } = {}) {
    const body = randomData(1000);
    const srv = await startServer(t, { '/x.bin': body });
    const p = await project(t, { version: 1, artifacts: { x: { url: srv.url('/x.bin'), ...(o.adopt ? { digest: `sha256:${sha256(body)}`, size: body.length } : {}) } } });
    if (o.adopt) {
      await fs.mkdir(path.join(p.dir, 'artifacts'));
      await fs.writeFile(path.join(p.dir, 'artifacts', 'x.bin'), body);
    }
    const log = path.join(path.dirname(p.dir), 'strace.log');
    const dir = await fs.realpath(p.dir);
    // strace follows threads (-f): node's file system calls run on libuv's thread pool; -y names each fd's file.
    // (Asynchronously: the server answering the download runs in this process.)
    await promisify(execFile)('strace', ['-f', '-y', '-qq', '-e', 'trace=fsync,fdatasync,rename,renameat,renameat2,link,linkat', '-o', log, process.execPath, CLI, 'sync', '--no-images'], {
      cwd: dir,
      env: cliEnv({}, p.store),
    });
    const lines = (await fs.readFile(log, 'utf8')).split('\n');
    /** Whether a call matching `call` on `file` returned before line `before` (a call strace split across threads counts once it resumed). */
    const flushedBefore = (call: RegExp, file: string, before: number) =>
      lines.slice(0, before).some((l, i) => {
        const m = /^(\d+)\s+(\w+)\(/.exec(l);
        if (!m || !call.test(m[2]!) || !l.includes(`<${file}>`)) return false;
        if (!l.includes('<unfinished ...>')) return true;
        return lines.slice(i + 1, before).some((r) => r.startsWith(`${m[1]} `) && r.includes(`<... ${m[2]} resumed>`));
      });
    assert.equal(srv.total(), o.adopt ? 0 : 1, o.adopt ? 'restored from the output, not downloaded' : 'downloaded once');
    return { body, p, dir, lines, flushedBefore };
  }

  for (const [how, adopt] of [['downloaded', false], ['restored to the store from its output', true]] as const) {
    test(`a blob ${how}: its temp file is fdatasync()ed before it is linked or renamed into blobs/sha256/<hex>`, { skip }, async (t) => {
      const { body, p, lines, flushedBefore } = await tracedSync(t, { adopt });
      const store = await fs.realpath(p.store);
      const blob = path.join(store, 'v1', 'blobs', 'sha256', sha256(body));
      // link(tmp, blob) (or rename when a damaged blob is replaced): the call that gives the blob its name.
      const at = lines.findIndex((l) => /^\d+\s+(link|linkat|rename|renameat2?)\(/.test(l) && l.includes(`"${blob}"`));
      assert.ok(at > 0, `no link or rename onto ${blob} in:\n${lines.join('\n')}`);
      const tmp = /"([^"]+)"/.exec(lines[at]!)![1]!;
      assert.ok(tmp.startsWith(path.join(store, 'v1', 'tmp') + path.sep), `the blob came from the store's tmp folder: ${lines[at]}`);
      assert.ok(flushedBefore(/^f(data)?sync$/, tmp, at), `${tmp} was fsync()ed or fdatasync()ed before it got its name:\n${lines.slice(0, at + 1).join('\n')}`);
      assert.equal(sha256(await fs.readFile(blob)), sha256(body));
    });
  }

  test('hoard.json\'s temp file is fsync()ed before the rename, and the folder after it', { skip }, async (t) => {
    const { body, p, dir, lines, flushedBefore } = await tracedSync(t);
    const renameAt = lines.findIndex((l) => /rename.*\.hoard\.json\.hoard-.*\.tmp.*hoard\.json"/.test(l));
    assert.ok(renameAt > 0, `no rename onto hoard.json in:\n${lines.join('\n')}`);
    const tmp = /"([^"]*\.hoard\.json\.hoard-[^"]*\.tmp)"/.exec(lines[renameAt]!)![1]!;
    assert.ok(flushedBefore(/^f(data)?sync$/, tmp, renameAt), 'the temp file was fsync()ed before the rename');
    assert.ok(lines.slice(renameAt + 1).some((l) => /fsync/.test(l) && l.includes(`<${dir}>`)), 'the folder was fsync()ed after it');
    assert.equal(JSON.parse(await fs.readFile(p.manifestPath, 'utf8')).artifacts.x.digest, `sha256:${sha256(body)}`);
  });
});
