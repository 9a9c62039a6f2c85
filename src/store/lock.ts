import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { isErrno } from '../core/errors.ts';

interface LockOwner {
  pid: number;
  host: string;
  /** Process start time from /proc, so a reused pid is not mistaken for the holder. */
  start: string | null;
}

export interface LockWaitInfo {
  file: string;
  owner: LockOwner | null;
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

const self: LockOwner = { pid: process.pid, host: os.hostname(), start: processStart(process.pid) };

function isAlive(owner: LockOwner): boolean {
  if (owner.host !== self.host) return true; // cannot tell; wait for it
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
  opts: { onWait?: (info: LockWaitInfo) => void; notifyAfterMs?: number } = {},
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

async function takeLock(
  file: string,
  opts: { onWait?: (info: LockWaitInfo) => void; notifyAfterMs?: number; wait: boolean },
): Promise<(() => Promise<void>) | null> {
  const started = Date.now();
  let notified = false;
  let delay = 25;
  // What this process writes; a nonce tells two acquisitions by one process apart.
  const mine = JSON.stringify({ ...self, nonce: randomBytes(8).toString('hex') });
  await fs.mkdir(path.dirname(file), { recursive: true });
  for (;;) {
    try {
      const fh = await fs.open(file, 'wx');
      try {
        await fh.writeFile(mine);
      } finally {
        await fh.close();
      }
      return async () => {
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
    if (!notified && Date.now() - started >= (opts.notifyAfterMs ?? 3000)) {
      notified = true;
      opts.onWait?.({ file, owner });
    }
    await sleep(delay);
    delay = Math.min(delay * 2, 250);
  }
}

/** Whether a process with this pid runs on this host (a pid that cannot be signalled counts as running). */
export function pidAlive(pid: number): boolean {
  return isAlive({ pid, host: self.host, start: null });
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
