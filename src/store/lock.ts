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

async function readOwner(file: string): Promise<LockOwner | null | 'gone'> {
  try {
    const text = await fs.readFile(file, 'utf8');
    const o = JSON.parse(text) as LockOwner;
    return typeof o.pid === 'number' ? o : null;
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return 'gone';
    return null; // half-written by a holder that was killed while writing, or garbage
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Takes an exclusive lock between processes by creating `file` (O_EXCL). Waits while a
 * live process holds it, calls `onWait` once after `notifyAfterMs`, and removes a lock
 * whose holder is dead. Returns the function that releases it.
 */
export async function acquireLock(
  file: string,
  opts: { onWait?: (info: LockWaitInfo) => void; notifyAfterMs?: number } = {},
): Promise<() => Promise<void>> {
  const started = Date.now();
  let notified = false;
  let delay = 25;
  await fs.mkdir(path.dirname(file), { recursive: true });
  for (;;) {
    try {
      const fh = await fs.open(file, 'wx');
      try {
        await fh.writeFile(JSON.stringify(self));
      } finally {
        await fh.close();
      }
      return async () => {
        await fs.rm(file, { force: true });
      };
    } catch (err) {
      if (!isErrno(err, 'EEXIST')) throw err;
    }
    const owner = await readOwner(file);
    if (owner === 'gone') continue;
    const age = Date.now() - (await fs.stat(file).then((s) => s.mtimeMs, () => Date.now()));
    // A holder that died (or an unreadable lock older than a few seconds) is recovered.
    if ((owner && !isAlive(owner)) || (owner === null && age > 5000)) {
      await fs.rm(file, { force: true });
      continue;
    }
    if (!notified && Date.now() - started >= (opts.notifyAfterMs ?? 3000)) {
      notified = true;
      opts.onWait?.({ file, owner });
    }
    await sleep(delay);
    delay = Math.min(delay * 2, 250);
  }
}
