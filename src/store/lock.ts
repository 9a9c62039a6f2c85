import { readFileSync, rmSync, statSync } from 'node:fs';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describeDuration } from '../core/duration.ts';
import { randomHex } from '../core/builtins.ts';
import { HoardError, isErrno } from '../core/errors.ts';

interface LockOwner {
  pid: number;
  host: string;
  /** Process start time from /proc, so a reused pid is not mistaken for the holder. */
  start: string | null;
  /** When it was taken (ISO 8601); older lock files lack it, and their mtime says. */
  since?: string;
}

export interface LockWaitInfo {
  file: string;
  owner: LockOwner | null;
  /** When the holder took it (from the lock, else the lock file's mtime). */
  since: string | null;
  /** How long this process waits before giving up (ms); 0: forever. */
  timeoutMs: number;
}

/**
 * How a wait for a lock ends: an abort (Ctrl-C, SIGTERM, SIGHUP) ends it at once with
 * E_INTERRUPTED, and after `timeoutMs` (0 or absent: never) it ends with E_LOCKED naming the
 * holder. The CLI makes one from its signals and --lock-timeout and hands it to openStore and
 * every other place that takes a lock.
 */
export interface LockWait {
  signal?: AbortSignal;
  timeoutMs?: number;
}

/** The locks this process holds: file → what it wrote. Released by releaseHeldLocksSync on a forced exit. */
const held = new Map<string, string>();

/**
 * Removes every lock this process still holds, synchronously (a second Ctrl-C, an exit that
 * cannot wait for the normal unwinding). Only locks that still hold what this process wrote.
 */
export function releaseHeldLocksSync(): number {
  let n = 0;
  for (const [file, mine] of held) {
    try {
      if (readFileSync(file, 'utf8') === mine) {
        rmSync(file, { force: true });
        n++;
      }
    } catch {
      // gone already
    }
  }
  held.clear();
  return n;
}

/** "pid 123 on host-a since 12:01:02" — who holds a lock, for messages. */
export function describeHolder(info: Pick<LockWaitInfo, 'owner' | 'since'>): string {
  if (!info.owner) return 'an unknown process (the lock file is unreadable)';
  const since = info.since ? ` since ${info.since}` : '';
  return `pid ${info.owner.pid} on ${info.owner.host}${since}`;
}

function interruptedWhileWaiting(file: string): HoardError {
  return new HoardError('E_INTERRUPTED', `interrupted while waiting for the lock ${file}`, { hint: 'run the command again' });
}

function processStart(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Field 22 (starttime), counted after the parenthesised command name.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? null;
  } catch {
    return null;
  }
}

/** This process as a lock owner; made at the first lock (not when the CLI starts: it reads /proc). */
let selfOwner: LockOwner | null = null;
const me = (): LockOwner => (selfOwner ??= { pid: process.pid, host: os.hostname(), start: processStart(process.pid) });

function isAlive(owner: LockOwner): boolean {
  if (owner.host !== me().host) return true; // cannot tell; wait for it
  try {
    process.kill(owner.pid, 0);
  } catch (err) {
    if (isErrno(err, 'ESRCH')) return false;
  }
  if (owner.start !== null) {
    const now = processStart(owner.pid);
    if (now !== null && now !== owner.start) return false; // pid reused
  }
  return true;
}

/** The lock file's text and inode, or 'gone'. */
async function readLock(file: string): Promise<{ text: string; ino: number } | 'gone'> {
  try {
    const [text, st] = await Promise.all([fs.readFile(file, 'utf8'), fs.stat(file)]);
    return { text, ino: st.ino };
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return 'gone';
    throw err;
  }
}

function parseOwner(text: string): LockOwner | null {
  try {
    const o = JSON.parse(text) as LockOwner;
    return typeof o.pid === 'number' ? o : null;
  } catch {
    return null; // half-written by a holder that was killed while writing, or garbage
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function statMtime(file: string): number {
  return statSync(file).mtimeMs;
}



/**
 * Removes a lock judged stale, unless it changed since it was judged. Only one process
 * recovers at a time (under `<file>.recover`, itself taken with O_EXCL), and it re-reads
 * the lock first: a waiter that was slow must not delete a lock another waiter just took.
 */
async function recover(file: string, judged: { text: string; ino: number }): Promise<boolean> {
  const guard = `${file}.recover`;
  try {
    await (await fs.open(guard, 'wx')).close();
  } catch (err) {
    if (!isErrno(err, 'EEXIST')) throw err;
    // A recoverer that died holding the guard: the guard is only ever held for a moment.
    const age = Date.now() - (await fs.stat(guard).then((st) => st.mtimeMs, () => Date.now()));
    if (age > 10_000) await fs.rm(guard, { force: true });
    return false;
  }
  try {
    const now = await readLock(file);
    if (now !== 'gone' && now.ino === judged.ino && now.text === judged.text) await fs.rm(file, { force: true });
    return true;
  } finally {
    await fs.rm(guard, { force: true });
  }
}

/**
 * Takes an exclusive lock between processes by creating `file` (O_EXCL). Waits while a
 * live process holds it, calls `onWait` once after `notifyAfterMs`, and removes a lock
 * whose holder is dead. Returns the function that releases it.
 */
export async function acquireLock(
  file: string,
  opts: { onWait?: (info: LockWaitInfo) => void; notifyAfterMs?: number } & LockWait = {},
): Promise<() => Promise<void>> {
  return (await takeLock(file, { ...opts, wait: true }))!;
}

/**
 * Takes the lock only if nobody alive holds it (a dead holder's lock is recovered first);
 * null when a live process holds it. gc uses it: a blob in use is skipped, not waited for.
 */
export function tryAcquireLock(file: string): Promise<(() => Promise<void>) | null> {
  return takeLock(file, { wait: false });
}

/** Resolves after `ms`, or at once when `signal` aborts (then false). */
function pause(ms: number, signal: AbortSignal | undefined): Promise<boolean> {
  if (!signal) return sleep(ms).then(() => true);
  if (signal.aborted) return Promise.resolve(false);
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      resolve(false);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', done);
      resolve(true);
    }, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}

async function takeLock(
  file: string,
  opts: { onWait?: (info: LockWaitInfo) => void; notifyAfterMs?: number; wait: boolean } & LockWait,
): Promise<(() => Promise<void>) | null> {
  const started = Date.now();
  const signal = opts.signal;
  const timeoutMs = opts.timeoutMs ?? 0;
  let notified = false;
  let delay = 25;
  // What this process writes; a nonce tells two acquisitions by one process apart.
  const mine = JSON.stringify({ ...me(), since: new Date().toISOString(), nonce: randomHex(8) });
  await fs.mkdir(path.dirname(file), { recursive: true });
  for (;;) {
    if (opts.wait && signal?.aborted) throw interruptedWhileWaiting(file);
    try {
      const fh = await fs.open(file, 'wx');
      held.set(file, mine);
      try {
        await fh.writeFile(mine);
      } finally {
        await fh.close();
      }
      return async () => {
        held.delete(file);
        // Remove it only while it is still ours.
        const now = await readLock(file);
        if (now !== 'gone' && now.text === mine) await fs.rm(file, { force: true });
      };
    } catch (err) {
      if (!isErrno(err, 'EEXIST')) throw err;
    }
    const seen = await readLock(file);
    if (seen === 'gone') continue;
    const owner = parseOwner(seen.text);
    const age = Date.now() - (await fs.stat(file).then((st) => st.mtimeMs, () => Date.now()));
    // A holder that died (or an unreadable lock older than a few seconds) is recovered.
    if ((owner && !isAlive(owner)) || (owner === null && age > 5000)) {
      if (await recover(file, seen)) continue;
      await sleep(delay); // another process is recovering it
      continue;
    }
    if (!opts.wait) return null;
    const waited = Date.now() - started;
    const info = (): LockWaitInfo => {
      const mtime = (() => {
        try {
          return new Date(statMtime(file)).toISOString();
        } catch {
          return null;
        }
      })();
      return { file, owner, since: owner?.since ?? mtime, timeoutMs };
    };
    const givingUp = timeoutMs > 0 && waited >= timeoutMs;
    if (!notified && (givingUp || waited >= (opts.notifyAfterMs ?? 1000))) {
      notified = true;
      opts.onWait?.(info());
    }
    if (givingUp) {
      const i = info();
      throw new HoardError('E_LOCKED', `gave up after ${describeDuration(timeoutMs)}: ${file} is held by ${describeHolder(i)}`, {
        hint: `another hoard is using it: wait for it${owner ? ` (pid ${owner.pid}${owner.host !== me().host ? ` on ${owner.host}` : ''})` : ''}, or raise --lock-timeout (HOARD_LOCK_TIMEOUT; 0 waits forever)`,
        details: { lockFile: file, ...(owner ? { pid: owner.pid, host: owner.host } : {}), since: i.since, timeoutMs },
      });
    }
    const step = timeoutMs > 0 ? Math.max(1, Math.min(delay, timeoutMs - waited)) : delay;
    if (!(await pause(step, signal))) throw interruptedWhileWaiting(file);
    delay = Math.min(delay * 2, 250);
  }
}

/** Whether a process with this pid runs on this host (a pid that cannot be signalled counts as running). */
export function pidAlive(pid: number): boolean {
  return isAlive({ pid, host: me().host, start: null });
}

export type LockState = 'gone' | 'free' | 'held' | 'stale';

/**
 * What a lock file says without taking it: `held` by a live process (or by another host,
 * or unreadable and young), `stale` when its holder is dead (or unreadable and older than
 * a few seconds), `gone` when there is no such file.
 */
export async function lockState(file: string): Promise<{ state: LockState; owner: LockOwner | null }> {
  const seen = await readLock(file);
  if (seen === 'gone') return { state: 'gone', owner: null };
  const owner = parseOwner(seen.text);
  if (owner) return { state: isAlive(owner) ? 'held' : 'stale', owner };
  const age = Date.now() - (await fs.stat(file).then((st) => st.mtimeMs, () => Date.now()));
  return { state: age > 5000 ? 'stale' : 'held', owner: null };
}

/**
 * Removes a lock left by a dead process (the same judgement and the same guarded recovery
 * as a waiter's), and a recovery guard left by a dead recoverer. True when it removed it.
 */
export async function removeStaleLock(file: string): Promise<boolean> {
  if (file.endsWith('.recover')) {
    const age = Date.now() - (await fs.stat(file).then((st) => st.mtimeMs, () => Date.now()));
    if (age <= 10_000) return false;
    await fs.rm(file, { force: true });
    return true;
  }
  const seen = await readLock(file);
  if (seen === 'gone') return false;
  const owner = parseOwner(seen.text);
  const age = Date.now() - (await fs.stat(file).then((st) => st.mtimeMs, () => Date.now()));
  if (!((owner && !isAlive(owner)) || (owner === null && age > 5000))) return false;
  return recover(file, seen);
}
