// Usage: when each blob was last used (state/used.json), for --max-size eviction (least recently
// used first) and the fetch retention of gc.
import path from 'node:path';
import type { LockWait } from './lock.ts';
import type { storeLayout } from './paths.ts';
import { StateFile } from './state-file.ts';

/** "Used" is recorded at most this often per blob, so a no-op sync usually writes nothing. */
export const USED_GRANULARITY_MS = 60 * 60 * 1000;

/** Last use per blob hex (ms since the epoch). Two processes that both record keep the later time. */
export function openUsage(layout: ReturnType<typeof storeLayout>, wait: LockWait = {}) {
  const used = new StateFile<number>(
    path.join(layout.state, 'used.json'),
    path.join(layout.locks, 'state-used.lock'),
    (inFile, mine) => (typeof inFile === 'number' && inFile > mine ? inFile : mine),
    wait,
  );
  return {
    /** Records a use now (a blob just published or fetched), whatever was recorded before. */
    set(hex: string, at: number): void {
      used.set(hex, at);
    },
    /** Records a use, written only when the record is older than USED_GRANULARITY_MS. */
    mark(hex: string, now = Date.now()): void {
      const last = used.get(hex);
      if (last === undefined || now - last >= USED_GRANULARITY_MS) used.set(hex, now);
    },
    /** When the blob was last used, as recorded; null when never recorded. */
    last(hex: string): number | null {
      const last = used.get(hex);
      return typeof last === 'number' ? last : null;
    },
    forget(hex: string): void {
      used.set(hex, undefined);
    },
    forgetWhere(gone: (hex: string) => boolean): void {
      for (const hex of used.keys()) if (gone(hex)) used.set(hex, undefined);
    },
    flush: () => used.flush(),
  };
}
