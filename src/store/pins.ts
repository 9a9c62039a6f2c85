// Locks and pins on blobs: a per-digest lock between processes, and pins that keep a blob a
// running sync is about to name away from gc. Every wait obeys the caller's LockWait.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { randomHex } from '../core/builtins.ts';
import { digestHex, type Digest } from '../core/digest.ts';
import { acquireLock, lockState, tryAcquireLock, type LockWait, type LockWaitInfo } from './lock.ts';
import type { storeLayout } from './paths.ts';

export function openPins(layout: ReturnType<typeof storeLayout>, wait: LockWait = {}) {
  const lockFile = (digest: Digest) => path.join(layout.locks, `${digestHex(digest)}.lock`);
  const pins = {
    lock(digest: Digest, onWait?: (info: LockWaitInfo) => void): Promise<() => Promise<void>> {
      return acquireLock(lockFile(digest), { ...wait, ...(onWait ? { onWait } : {}) });
    },

    async pin(digest: Digest, opts: { locked?: boolean } = {}): Promise<() => Promise<void>> {
      // Under the blob's lock: gc, which holds the lock while it decides, never misses a pin.
      const release = opts.locked ? null : await pins.lock(digest);
      try {
        return await acquireLock(path.join(layout.locks, `${digestHex(digest)}.${process.pid}-${randomHex(4)}.pin`), wait);
      } finally {
        await release?.();
      }
    },

    tryLock(digest: Digest): Promise<(() => Promise<void>) | null> {
      return tryAcquireLock(lockFile(digest));
    },

    async pinned(): Promise<Set<string>> {
      const names = await fs.readdir(layout.locks).catch(() => [] as string[]);
      const out = new Set<string>();
      for (const name of names) {
        if (!name.endsWith('.pin')) continue;
        const hex = name.slice(0, 64);
        if (!out.has(hex) && (await lockState(path.join(layout.locks, name))).state === 'held') out.add(hex);
      }
      return out;
    },

    async inUse(digest: Digest, pinned?: ReadonlySet<string>): Promise<boolean> {
      return (await lockState(lockFile(digest))).state === 'held' || (pinned ?? (await pins.pinned())).has(digestHex(digest));
    },
  };
  return pins;
}
