// The three output modes, and `hoard ui` in a real terminal: tmux (Debian's package, installed by
// .ci/run) runs the built CLI in a pane of a known size; the test types keys with send-keys
// and reads the screen with capture-pane.
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, promises as fs, readFileSync } from 'node:fs';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { CLI, cliEnv, gate, hoard, jsonLines, listTree, project, randomData, sha256, startServer, tmpDir } from '../helpers.ts';
import { registrySkip, startRegistry } from '../fixtures/registry.ts';

/** Cursor movement, erasing, the alternate screen, hidden cursor: what animation is made of. */
const CURSOR_ESCAPES = /\x1b\[\d*(;\d*)*[ABCDEFGHJKST]|\x1b\[\?(1049|25|2026)[hl]|\x1b\[2K|\r(?!\n)/;

/** A preload that records whether the TUI bundle (Ink, React) was ever required. */
async function traceTui(t: TestContext): Promise<{ args: string[]; loaded: () => boolean }> {
  const dir = tmpDir(t, 'hoard-trace-');
  const marker = path.join(dir, 'tui-loaded');
  const hook = path.join(dir, 'trace.cjs');
  await fs.writeFile(
    hook,
    `const M = require('node:module'); const load = M._load;
M._load = function (request, ...rest) {
  if (/hoard-tui\\.cjs$|[\\\\/]node_modules[\\\\/](ink|react)[\\\\/]/.test(request)) require('node:fs').writeFileSync(${JSON.stringify(marker)}, request);
  return load.call(this, request, ...rest);
};\n`,
  );
  return { args: ['--require', hook], loaded: () => existsSync(marker) };
}

/** Runs the CLI with stdin, stdout and stderr all pipes (CI, `| cat`). */
function piped(args: string[], o: { cwd: string; store: string; nodeArgs?: string[] }): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const env = cliEnv({ NO_COLOR: undefined }, o.store);
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...(o.nodeArgs ?? []), CLI, ...args], { cwd: o.cwd, env, stdio: ['pipe', 'pipe', 'pipe'] });
    child.stdin.end();
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d));
    child.stderr.on('data', (d: Buffer) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

async function threeArtifacts(t: TestContext, routes: { delay?: number; until?: Promise<void> } = {}) {
  const files = { 'ceos-lab': randomData(400_000), 'veos-lab': randomData(250_000), 'lab-tools': randomData(30_000) };
  const srv = await startServer(t, Object.fromEntries(Object.entries(files).map(([n, body]) => [`/${n}.bin`, { body, ...(routes.delay ? { delay: routes.delay } : {}), ...(routes.until ? { until: routes.until } : {}) }])));
  const p = await project(t, {
    version: 1,
    artifacts: {
      'ceos-lab': { url: srv.url('/ceos-lab.bin'), path: 'images/cEOS-lab-4.32.1F.tar.xz' },
      'veos-lab': { url: srv.url('/veos-lab.bin'), path: 'images/vEOS-lab-4.32.1F.qcow2', link: 'copy' },
      'lab-tools': { url: srv.url('/lab-tools.bin'), path: 'lab-tools-2.3.0.run', executable: true },
    },
  });
  return { p, srv, files };
}

test('`hoard sync | cat`: the same plain lines, no cursor movement, and Ink is never loaded', async (t) => {
  const { p } = await threeArtifacts(t, { delay: 300 });
  const trace = await traceTui(t);
  const r = await piped(['sync'], { cwd: p.dir, store: p.store, nodeArgs: trace.args });
  assert.equal(r.code, 0, r.stderr);
  assert.doesNotMatch(r.stdout, CURSOR_ESCAPES);
  assert.doesNotMatch(r.stderr, CURSOR_ESCAPES);
  assert.doesNotMatch(r.stdout, /\x1b/, 'no colour either');
  const lines = r.stdout.trim().split('\n');
  assert.equal(lines.length, 4);
  assert.match(lines.at(-1)!, /^3 artifacts: 0 hits, 3 misses, \S+ KiB downloaded, 0 B saved in \S+ · hoard\.json updated$/);
  for (const name of ['ceos-lab', 'veos-lab', 'lab-tools']) assert.ok(lines.some((l) => l.startsWith(`${name}  downloaded`)), name);
  assert.equal(trace.loaded(), false, 'the TUI bundle must not be required in a pipe');
});

test('--json: only NDJSON on stdout, every line parses, the last is the summary; no Ink', async (t) => {
  const { p } = await threeArtifacts(t);
  const trace = await traceTui(t);
  const r = await piped(['sync', '--json'], { cwd: p.dir, store: p.store, nodeArgs: trace.args });
  assert.equal(r.code, 0, r.stderr);
  const events = jsonLines(r.stdout);
  assert.ok(r.stdout.split('\n').filter(Boolean).every((l) => l.startsWith('{"type":')));
  assert.equal(events[0]!.type, 'start');
  assert.equal(events.at(-1)!.type, 'summary');
  assert.equal(events.at(-1)!.misses, 3);
  assert.equal(trace.loaded(), false);
});

test('`hoard --help` lists ui and loads no Ink', async (t) => {
  const dir = tmpDir(t);
  const trace = await traceTui(t);
  const r = await piped(['--help'], { cwd: dir, store: path.join(dir, 'store'), nodeArgs: trace.args });
  assert.equal(r.code, 0);
  assert.match(r.stdout, /hoard ui\s+the interactive terminal interface/);
  assert.equal(trace.loaded(), false);
});

test('`hoard ui` without a terminal: exit 2, E_TTY, and a hint naming status and sync', async (t) => {
  const { p } = await threeArtifacts(t);
  const r = await piped(['ui'], { cwd: p.dir, store: p.store });
  assert.equal(r.code, 2);
  assert.equal(r.stdout, '');
  assert.match(r.stderr, /hoard: error: `hoard ui` needs a terminal/);
  assert.match(r.stderr, /hint: use hoard status \/ hoard sync/);
  const j = await piped(['ui', '--json'], { cwd: p.dir, store: p.store });
  assert.equal(j.code, 2);
  assert.deepEqual(jsonLines(j.stdout).map((e) => e.type), ['error']);
});

// ---------------------------------------------------------------- in a real terminal

function haveTmux(): boolean {
  try {
    execFileSync('tmux', ['-V'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/**
 * A private tmux server (its own socket) running `command` in a pane of `width`×`height`. The
 * pane inherits the server's environment: the tests' isolated one (cliEnv, colours allowed
 * unless `env` says NO_COLOR), plus `env`.
 */
async function terminal(t: TestContext, command: string, o: { cwd: string; env: Record<string, string>; width?: number; height?: number }) {
  const socket = `hoard-test-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  const env = cliEnv({ NO_COLOR: undefined, TMUX: undefined, TMUX_PANE: undefined, ...o.env });
  const tmux = (...args: string[]) => execFileSync('tmux', ['-L', socket, ...args], { encoding: 'utf8', env });
  // The pane stays open after the command, so the screen can be read to the end.
  tmux('-f', '/dev/null', 'new-session', '-d', '-s', 'hoard', '-x', String(o.width ?? 100), '-y', String(o.height ?? 30), '-c', o.cwd,
    `${command}; echo EXIT=$? > exit-code; sleep 600`);
  t.after(() => {
    try {
      tmux('kill-server');
    } catch {}
  });
  const screen = () => tmux('capture-pane', '-p', '-t', 'hoard');
  return {
    screen,
    keys: (...keys: string[]) => tmux('send-keys', '-t', 'hoard', ...keys),
    resize: (w: number, h: number) => tmux('resize-window', '-t', 'hoard', '-x', String(w), '-y', String(h)),
    async until(what: string, ok: (s: string) => boolean, ms = 20_000): Promise<string> {
      const end = Date.now() + ms;
      for (;;) {
        const s = screen();
        if (ok(s)) return s;
        if (Date.now() > end) throw new Error(`timed out waiting for ${what}; the screen:\n${s}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
  };
}

const exitCode = async (dir: string, ms = 10_000): Promise<string> => {
  const file = path.join(dir, 'exit-code');
  const end = Date.now() + ms;
  while (!existsSync(file) || !readFileSync(file, 'utf8').includes('\n')) {
    if (Date.now() > end) throw new Error('the command did not exit');
    await new Promise((r) => setTimeout(r, 50));
  }
  return readFileSync(file, 'utf8').trim();
};

test('hoard ui in tmux: a selects all, s syncs, the list turns to in sync, q exits 0', { skip: !haveTmux() && 'tmux is not installed' }, async (t) => {
  const { p, files } = await threeArtifacts(t);
  const term = await terminal(t, `${JSON.stringify(process.execPath)} ${JSON.stringify(CLI)} ui`, { cwd: p.dir, env: { HOARD_STORE: p.store } });
  let s = await term.until('the list', (x) => x.includes('3 artifacts, 3 out of sync'));
  assert.match(s, /ceos-lab\s+\?\s+unlocked\s+images\/cEOS-lab-4\.32\.1F\.tar\.xz/);
  assert.match(s, /↑↓\/jk move · space select · a all · s\/Enter sync · f force · v verify · \/ filter · \? help · q quit/);
  term.keys('a');
  await term.until('the selection', (x) => x.includes('3 selected'));
  term.keys('s');
  s = await term.until('all in sync', (x) => x.includes('3 artifacts, all in sync') && /3 artifacts: 0 hits, 3 misses/.test(x));
  for (const name of ['ceos-lab', 'veos-lab', 'lab-tools']) assert.match(s, new RegExp(`${name}\\s+\\S+ KiB\\s+in sync`));
  assert.match(s, /3 artifacts: 0 hits, 3 misses/);
  // q is refused while the sync is still finishing ("a sync is running"): press it until it quits.
  for (let i = 0; i < 50 && !existsSync(path.join(p.dir, 'exit-code')); i++) {
    term.keys('q');
    await new Promise((r) => setTimeout(r, 200));
  }
  assert.equal(await exitCode(p.dir), 'EXIT=0');
  assert.equal(sha256(await fs.readFile(path.join(p.dir, 'artifacts', 'images', 'cEOS-lab-4.32.1F.tar.xz'))), sha256(files['ceos-lab']));
  assert.equal(sha256(await fs.readFile(path.join(p.dir, 'artifacts', 'images', 'vEOS-lab-4.32.1F.qcow2'))), sha256(files['veos-lab']));
  assert.equal(sha256(await fs.readFile(path.join(p.dir, 'artifacts', 'lab-tools-2.3.0.run'))), sha256(files['lab-tools']));
  // The alternate screen is left: the shell's screen is back.
  await term.until('the screen restored', (x) => !x.includes('hoard ui ·'));
});

test('hoard ui in tmux: fits 80×24, redraws on resize, Ctrl-C mid-download exits 130 without a temp file', { skip: !haveTmux() && 'tmux is not installed' }, async (t) => {
  const { p } = await threeArtifacts(t, { until: gate(t).until }); // answered only after the test
  const term = await terminal(t, `${JSON.stringify(process.execPath)} ${JSON.stringify(CLI)} ui`, { cwd: p.dir, env: { HOARD_STORE: p.store }, width: 80, height: 24 });
  let s = await term.until('the list', (x) => x.includes('3 out of sync'));
  const lines = s.trimEnd().split('\n');
  assert.ok(lines.length <= 24, `${lines.length} lines`);
  assert.ok(lines.every((l) => [...l].length <= 80));
  assert.match(s, /↑↓\/jk move {2}␣ select {2}a all {2}s sync {2}f force {2}v verify {2}\/ filter {2}\? help {2}q quit/, 'the short footer, whole');
  term.resize(100, 30);
  s = await term.until('the wide footer', (x) => x.includes('space select · a all'));
  term.keys('G', 'Enter');
  s = await term.until('the download', (x) => /↓ veos-lab/.test(x));
  term.keys('C-c');
  assert.equal(await exitCode(p.dir), 'EXIT=130');
  assert.deepEqual(await listTree(path.join(p.store, 'v1', 'tmp')), []);
  assert.deepEqual(await listTree(path.join(p.store, 'v1', 'blobs')), ['sha256']);
});

test('hoard sync in tmux: live bars while downloading, then the plain lines and the summary; exit 0', { skip: !haveTmux() && 'tmux is not installed' }, async (t) => {
  const answers = gate(t);
  const { p } = await threeArtifacts(t, { until: answers.until });
  const term = await terminal(t, `${JSON.stringify(process.execPath)} ${JSON.stringify(CLI)} sync`, { cwd: p.dir, env: { HOARD_STORE: p.store, NO_COLOR: '1' } });
  const live = await term.until('the bars', (x) => /0\/3 artifacts/.test(x) && /↓ ceos-lab/.test(x));
  answers.open();
  assert.match(live, /[░]{6,}/);
  const end = await term.until('the summary', (x) => /3 artifacts: 0 hits, 3 misses/.test(x));
  assert.equal(await exitCode(p.dir), 'EXIT=0');
  assert.doesNotMatch(end, /↓ |░/, 'the bars are gone');
  assert.match(end, /ceos-lab {2}downloaded 391 KiB, linked \(hardlink\)/);
  assert.match(end, /3 artifacts: 0 hits, 3 misses, 664 KiB downloaded, 0 B saved in \S+ · hoard\.json updated/);

  // A pipe inside the terminal: stdout gets plain lines only.
  await fs.rm(path.join(p.dir, 'exit-code'));
  await fs.rm(path.join(p.dir, 'artifacts'), { recursive: true });
  const term2 = await terminal(t, `${JSON.stringify(process.execPath)} ${JSON.stringify(CLI)} sync | cat > piped.txt`, { cwd: p.dir, env: { HOARD_STORE: p.store, NO_COLOR: '1' } });
  await exitCode(p.dir);
  void term2;
  const piped = await fs.readFile(path.join(p.dir, 'piped.txt'), 'utf8');
  assert.doesNotMatch(piped, CURSOR_ESCAPES);
  assert.match(piped, /^3 artifacts: 3 hits, 0 misses/m);
});

test('hoard ui in tmux: a configured size limit (HOARD_MAX_SIZE) applies to its syncs: another project\'s blob is evicted', { skip: !haveTmux() && 'tmux is not installed' }, async (t) => {
  const { p, files } = await threeArtifacts(t);
  // Another project used the store earlier: its blob is the least recently used.
  const old = randomData(300_000);
  const srv = await startServer(t, { '/old.bin': old });
  const q = await project(t, { version: 1, artifacts: { old: { url: srv.url('/old.bin'), digest: `sha256:${sha256(old)}`, size: old.length } } });
  assert.equal((await hoard(['sync', '-m', q.manifestPath], { cwd: q.dir, store: p.store })).code, 0);
  const oldBlob = path.join(p.store, 'v1', 'blobs', 'sha256', sha256(old));
  assert.ok(existsSync(oldBlob));
  const limit = String(Object.values(files).reduce((n, b) => n + b.length, 0) + 1000);
  const term = await terminal(t, `${JSON.stringify(process.execPath)} ${JSON.stringify(CLI)} ui`, { cwd: p.dir, env: { HOARD_STORE: p.store, HOARD_MAX_SIZE: limit } });
  await term.until('the list', (x) => x.includes('3 artifacts, 3 out of sync'));
  term.keys('a');
  await term.until('the selection', (x) => x.includes('3 selected'));
  term.keys('s');
  await term.until('all in sync', (x) => x.includes('3 artifacts, all in sync'));
  // Eviction follows the sync; wait for the blob to go (the screen may refresh first).
  for (let n = 0; existsSync(oldBlob) && n < 500; n++) await new Promise((resolve) => setTimeout(resolve, 20));
  assert.equal(existsSync(oldBlob), false, 'the least recently used blob of the other project stayed');
  for (const data of Object.values(files)) assert.ok(existsSync(path.join(p.store, 'v1', 'blobs', 'sha256', sha256(data))));
});

test('hoard ui in tmux with a team cache (a real registry): a missing blob another machine pushed reads "in team cache", one it lacks "not downloaded"', { skip: (!haveTmux() && 'tmux is not installed') || registrySkip }, async (t) => {
  const reg = await startRegistry(t);
  const a = randomData(50_000);
  const b = randomData(20_000);
  const srv = await startServer(t, { '/a.bin': a, '/b.bin': b });
  const p = await project(t, {
    version: 1, remote: reg.remote('lab/tty'),
    artifacts: { alpha: { url: srv.url('/a.bin'), digest: `sha256:${sha256(a)}`, size: a.length }, beta: { url: srv.url('/b.bin'), digest: `sha256:${sha256(b)}`, size: b.length } },
  });
  // The other machine: syncs alpha from its url and pushes it.
  const other = path.join(tmpDir(t), 'other-store');
  const env = { DOCKER_CONFIG: tmpDir(t), REGISTRY_AUTH_FILE: path.join(tmpDir(t), 'none.json') };
  for (const args of [['sync', 'alpha'], ['push', 'alpha']]) {
    const r = await hoard(args, { cwd: p.dir, store: other, env });
    assert.equal(r.code, 0, r.stderr);
  }
  await fs.rm(path.join(p.dir, 'artifacts'), { recursive: true });
  const term = await terminal(t, `${JSON.stringify(process.execPath)} ${JSON.stringify(CLI)} ui`, { cwd: p.dir, env: { HOARD_STORE: p.store, ...env } });
  const s = await term.until('the team cache answer', (x) => /alpha\s+48\.8 KiB\s+in team cache/.test(x));
  assert.match(s, /beta\s+19\.5 KiB\s+not downloaded/);
  assert.match(s, new RegExp(`alpha: the team cache ${reg.remote('lab/tty').replace(/[.]/g, '\\.')} has it`));
  term.keys('q');
  assert.equal(await exitCode(p.dir), 'EXIT=0');
});
