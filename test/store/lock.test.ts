// Locks between processes (src/store/lock.ts), exercised with real child processes:
// the fixture test/fixtures/lock-child.ts takes the lock in its own process.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, promises as fs, readFileSync, renameSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { acquireLock, type LockWaitInfo } from '../../src/store/lock.ts';
import { openStore } from '../../src/store/store.ts';
import { ROOT, sha256, tmpDir } from '../helpers.ts';

const FIXTURE = path.join(ROOT, 'test', 'fixtures', 'lock-child.ts');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Child {
  proc: ChildProcess;
  /** Resolves when the child printed `line` on stdout. */
  printed(line: string): Promise<void>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stderr(): string;
}

function lockChild(t: TestContext, ...args: string[]): Child {
  const proc = spawn(process.execPath, ['--import', 'tsx', FIXTURE, ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  const waiters: Array<() => void> = [];
  proc.stdout!.on('data', (d: Buffer) => {
    stdout += d;
    for (const w of waiters) w();
  });
  proc.stderr!.on('data', (d: Buffer) => (stderr += d));
  // 'close', not 'exit': stdout is read to its end before a child counts as gone.
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    proc.on('close', (code, signal) => resolve({ code, signal })),
  );
  t.after(() => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
  });
  return {
    proc,
    exited,
    stderr: () => stderr,
    printed: (line) =>
      new Promise<void>((resolve, reject) => {
        const check = () => {
          if (stdout.split('\n').includes(line)) resolve();
        };
        waiters.push(check);
        check();
        void exited.then(({ code, signal }) => reject(new Error(`child exited (${code ?? signal}) before printing "${line}": ${stderr}`)));
      }),
  };
}

/** The pid of a process that has exited and been reaped. */
async function deadPid(): Promise<number> {
  const p = spawn(process.execPath, ['-e', '0'], { stdio: 'ignore' });
  await new Promise((r) => p.on('exit', r));
  return p.pid!;
}

/** Resolves to the release function, or to null when the lock was not taken within `ms`. */
async function acquireWithin(ms: number, file: string, opts?: Parameters<typeof acquireLock>[1]) {
  let timer: NodeJS.Timeout | undefined;
  const pending = acquireLock(file, opts);
  const result = await Promise.race([pending, new Promise<null>((r) => (timer = setTimeout(() => r(null), ms)))]);
  clearTimeout(timer);
  return { release: result, pending };
}

/** Start/end lines appended by holders; true when every "start X" is directly followed by "end X". */
function serialized(lines: string[]): boolean {
  if (lines.length % 2 !== 0) return false;
  for (let i = 0; i < lines.length; i += 2) {
    const [kind, pid] = lines[i]!.split(' ');
    if (kind !== 'start' || lines[i + 1] !== `end ${pid}`) return false;
  }
  return true;
}

/** A broken lock makes a waiter hang; fail instead. */
const T = { timeout: 20_000 };

const readLines = (file: string) => readFileSync(file, 'utf8').split('\n').filter(Boolean);

test('processes contending for one lock take turns: no holder starts before the previous one ended', T, async (t) => {
  const dir = tmpDir(t);
  const lockFile = path.join(dir, 'locks', 'x.lock');
  const log = path.join(dir, 'log');
  writeFileSync(log, '');

  // Hold the lock here until all four children are waiting for it, so they really contend.
  const releaseMine = await acquireLock(lockFile);
  const children = [1, 2, 3, 4].map(() => lockChild(t, 'hold', lockFile, log, '120'));
  await Promise.all(children.map((c) => c.printed('ready')));
  await sleep(150);
  assert.deepEqual(readLines(log), [], 'a child entered while this process held the lock');
  await releaseMine();

  const exits = await Promise.all(children.map((c) => c.exited));
  for (const [i, e] of exits.entries()) assert.equal(e.code, 0, children[i]!.stderr());
  const lines = readLines(log);
  assert.equal(lines.length, 8, lines.join('\n'));
  assert.ok(serialized(lines), `interleaved:\n${lines.join('\n')}`);
  assert.deepEqual(new Set(lines.map((l) => Number(l.split(' ')[1]))), new Set(children.map((c) => c.proc.pid)));
  assert.equal(existsSync(lockFile), false, 'the last holder removed the lock file');
});

test('a lock left by a process killed with SIGKILL is recovered at once, without waiting for the holder', T, async (t) => {
  const dir = tmpDir(t);
  const lockFile = path.join(dir, 'x.lock');
  const child = lockChild(t, 'die', lockFile);
  await child.printed('locked');
  const { signal } = await child.exited;
  assert.equal(signal, 'SIGKILL');
  assert.equal(JSON.parse(readFileSync(lockFile, 'utf8')).pid, child.proc.pid, 'the dead holder left its lock behind');

  const waits: LockWaitInfo[] = [];
  const { release } = await acquireWithin(4000, lockFile, { notifyAfterMs: 2000, onWait: (i) => waits.push(i) });
  assert.ok(release, 'the lock of a dead process was not recovered');
  assert.deepEqual(waits, [], 'a dead holder is not something to wait for');
  assert.equal(JSON.parse(readFileSync(lockFile, 'utf8')).pid, process.pid);
  await release();
});

test('onWait is called once, naming the live holder, when the wait lasts longer than notifyAfterMs', T, async (t) => {
  const dir = tmpDir(t);
  const lockFile = path.join(dir, 'x.lock');
  const log = path.join(dir, 'log');
  writeFileSync(log, '');
  const child = lockChild(t, 'hold', lockFile, log, '700');
  await child.printed('locked');

  const waits: LockWaitInfo[] = [];
  const release = await acquireLock(lockFile, { notifyAfterMs: 100, onWait: (i) => waits.push(i) });
  assert.deepEqual(readLines(log), [`start ${child.proc.pid}`, `end ${child.proc.pid}`], 'acquired while the child still held the lock');
  await release();
  assert.equal(waits.length, 1);
  assert.equal(waits[0]!.file, lockFile);
  assert.equal(waits[0]!.owner?.pid, child.proc.pid);
  assert.equal((await child.exited).code, 0, child.stderr());
});

test('onWait is not called for a wait shorter than notifyAfterMs', T, async (t) => {
  const lockFile = path.join(tmpDir(t), 'x.lock');
  const first = await acquireLock(lockFile);
  setTimeout(() => void first(), 50);
  let waited = false;
  const second = await acquireLock(lockFile, { notifyAfterMs: 5000, onWait: () => (waited = true) });
  await second();
  assert.equal(waited, false);
});

for (const [what, content] of [
  ['garbage', 'not json {'],
  ['an empty file (holder killed between create and write)', ''],
] as const) {
  test(`a lock file holding ${what}, older than 5 s, is recovered`, T, async (t) => {
    const lockFile = path.join(tmpDir(t), 'x.lock');
    writeFileSync(lockFile, content);
    const past = new Date(Date.now() - 10_000);
    await fs.utimes(lockFile, past, past);
    const { release } = await acquireWithin(3000, lockFile);
    assert.ok(release, 'an old unreadable lock file was not recovered');
    assert.equal(JSON.parse(readFileSync(lockFile, 'utf8')).pid, process.pid);
    await release();
  });
}

test('a fresh unreadable lock file is not stolen: its holder may still be writing it', T, async (t) => {
  const lockFile = path.join(tmpDir(t), 'x.lock');
  writeFileSync(lockFile, '');
  const { release, pending } = await acquireWithin(400, lockFile);
  assert.equal(release, null, 'took a lock whose holder may be alive');
  assert.equal(readFileSync(lockFile, 'utf8'), '');
  await fs.rm(lockFile);
  await (await pending)();
});

test('a lock whose pid now belongs to another process (pid reused) is recovered', T, async (t) => {
  const lockFile = path.join(tmpDir(t), 'x.lock');
  // This process is alive, but it is not the one that took the lock: its start time differs.
  writeFileSync(lockFile, JSON.stringify({ pid: process.pid, host: os.hostname(), start: '1' }));
  const { release } = await acquireWithin(3000, lockFile);
  assert.ok(release, 'a lock of a reused pid was treated as held');
  await release();
});

test('a lock held from another host is waited for, never recovered (its pid means nothing here)', T, async (t) => {
  const lockFile = path.join(tmpDir(t), 'x.lock');
  const owner = JSON.stringify({ pid: await deadPid(), host: `not-${os.hostname()}`, start: null });
  writeFileSync(lockFile, owner);
  const { release, pending } = await acquireWithin(400, lockFile);
  assert.equal(release, null, 'stole a lock held on another machine');
  assert.equal(readFileSync(lockFile, 'utf8'), owner);
  await fs.rm(lockFile);
  await (await pending)();
});

test('store.lock: the same digest is exclusive, different digests do not block each other', T, async (t) => {
  const store = openStore(tmpDir(t));
  const a = `sha256:${sha256(Buffer.from('a'))}` as const;
  const b = `sha256:${sha256(Buffer.from('b'))}` as const;
  const releaseA = await store.lock(a);
  const { release: releaseB } = await acquireWithin(2000, path.join(store.root, 'v1', 'locks', `${b.slice(7)}.lock`));
  assert.ok(releaseB, 'a lock on another digest blocked');
  await releaseB();
  let second = false;
  const pending = store.lock(a).then((r) => {
    second = true;
    return r;
  });
  await sleep(300);
  assert.equal(second, false, 'two holders of the same digest lock');
  await releaseA();
  await (await pending)();
});

test(
  'many processes finding the same dead holder\'s lock at once: still only one holder at a time',
  T,
  async (t) => {
    const dir = tmpDir(t);
    const children = 6;
    const rounds = 12;
    const period = 150;
    const owner = JSON.stringify({ pid: await deadPid(), host: os.hostname(), start: null });
    for (let r = 0; r < rounds; r++) {
      writeFileSync(path.join(dir, `${r}.lock`), owner);
      writeFileSync(path.join(dir, `${r}.log`), '');
    }
    const procs = Array.from({ length: children }, () => lockChild(t, 'rounds', dir, String(rounds), String(period), '10'));
    // Every child has started (on a loaded machine that takes seconds): then the rounds begin.
    await Promise.all(procs.map((p) => p.printed('ready')));
    const t0 = Date.now() + 200;
    writeFileSync(path.join(dir, 'go.tmp'), String(t0));
    renameSync(path.join(dir, 'go.tmp'), path.join(dir, 'go'));
    // A broken lock can leave an orphaned empty lock file behind (5 s to recover): bound the wait.
    const deadline = setTimeout(() => procs.forEach((p) => p.proc.kill('SIGKILL')), rounds * period + 20_000);
    await Promise.all(procs.map((p) => p.exited));
    clearTimeout(deadline);
    const broken = [];
    for (let r = 0; r < rounds; r++) {
      const lines = readLines(path.join(dir, `${r}.log`));
      if (lines.length !== 2 * children || !serialized(lines)) broken.push(`round ${r}: ${lines.join(', ')}`);
    }
    assert.deepEqual(broken, []);
  },
);

test('openStore({ lockWait }): its blob locks, pins and state files give up after timeoutMs (E_LOCKED) and end at an abort (E_INTERRUPTED); nothing is process-wide', T, async (t) => {
  const root = tmpDir(t, 'hoard-lockwait-');
  const digest = `sha256:${sha256(Buffer.from('lock wait'))}` as const;
  // A holder: this process through a store opened without a limit (a live holder all the same).
  const holder = openStore(root);
  const release = await holder.lock(digest);
  t.after(release);

  const limited = openStore(root, { lockWait: { timeoutMs: 150 } });
  assert.deepEqual(limited.lockWait, { timeoutMs: 150 });
  await assert.rejects(limited.lock(digest), (err: { code?: string }) => err.code === 'E_LOCKED');
  await assert.rejects(limited.pin(digest), (err: { code?: string }) => err.code === 'E_LOCKED');

  const controller = new AbortController();
  const aborted = openStore(root, { lockWait: { signal: controller.signal } });
  const waiting = aborted.lock(digest);
  setImmediate(() => controller.abort());
  await assert.rejects(waiting, (err: { code?: string }) => err.code === 'E_INTERRUPTED');

  // The state files beside the store obey it too: flushing used.json waits for its lock.
  const stateLock = await acquireLock(path.join(root, 'v1', 'locks', 'state-used.lock'));
  t.after(stateLock);
  limited.markUsed(digest);
  await assert.rejects(limited.flush(), (err: { code?: string }) => err.code === 'E_LOCKED');

  // A store opened with no lockWait is not limited by another's: it is still waiting when released.
  let done = false;
  const unlimited = openStore(root).lock(digest).then((r) => {
    done = true;
    return r;
  });
  await sleep(300);
  assert.equal(done, false, 'a store without lockWait waits without a limit');
  await release();
  await (await unlimited)();
});
