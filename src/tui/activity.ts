// Work in flight, folded from sync events: active downloads (bytes, speed, ETA), image imports,
// and the totals behind the overall bar. Shared by `hoard ui` and the live `hoard sync`.
import type { UiEvent } from './types.ts';

export interface Download {
  name: string;
  received: number;
  total: number | null;
  /** Bytes kept from an interrupted download (not counted in its speed). */
  from?: number;
  /** When the download started and when its last progress arrived (ms, from the action). */
  started: number;
  at: number;
}

export interface ImageWork {
  name: string;
  ref: string;
  action: 'import' | 'load';
  started: number;
}

export interface Activity {
  /** Artifacts this run handles, and how many are done. */
  total: number;
  done: number;
  downloads: readonly Download[];
  images: readonly ImageWork[];
  /** Bytes of downloads that finished, and their expected sizes. */
  finishedBytes: number;
  finishedExpected: number;
  /** When the first download of the run started (overall speed). */
  firstStart: number | null;
}

export const noActivity: Activity = {
  total: 0, done: 0, downloads: [], images: [], finishedBytes: 0, finishedExpected: 0, firstStart: null,
};

/** Pure: the activity after `event`, which arrived at `at` (ms). */
export function foldActivity(a: Activity, event: UiEvent, at: number): Activity {
  switch (event.type) {
    case 'start':
      return event.dryRun ? a : { ...noActivity, total: event.artifacts };
    case 'download': {
      // A retry from a mirror restarts the row of the same artifact.
      const from = event.resumeFrom ?? 0;
      const d: Download = { name: event.name, received: from, total: event.size, from, started: at, at };
      return { ...a, downloads: [...a.downloads.filter((x) => x.name !== event.name), d], firstStart: a.firstStart ?? at };
    }
    case 'progress':
      return {
        ...a,
        downloads: a.downloads.map((d) => (d.name === event.name ? { ...d, received: event.received, total: event.total ?? d.total, at } : d)),
      };
    case 'image':
      return { ...a, images: [...a.images.filter((x) => x.name !== event.name), { name: event.name, ref: event.ref, action: event.action, started: at }] };
    case 'artifact': {
      const d = a.downloads.find((x) => x.name === event.name);
      return {
        ...a,
        done: a.done + 1,
        downloads: d ? a.downloads.filter((x) => x !== d) : a.downloads,
        images: a.images.filter((x) => x.name !== event.name),
        finishedBytes: a.finishedBytes + event.bytesDownloaded,
        finishedExpected: a.finishedExpected + (d ? (d.total ?? event.bytesDownloaded) : 0),
      };
    }
    default:
      return a;
  }
}

/** Bytes per second of one download (0 until some time has passed). */
export function speedOf(d: Pick<Download, 'received' | 'from' | 'started' | 'at'>): number {
  const s = (d.at - d.started) / 1000;
  return s > 0.05 ? (d.received - (d.from ?? 0)) / s : 0;
}

/** Remaining milliseconds at the current speed, when the size is known. */
export function etaOf(d: Download): number | null {
  const v = speedOf(d);
  return d.total !== null && v > 0 ? (Math.max(0, d.total - d.received) / v) * 1000 : null;
}

/** The overall bar: bytes received and expected over every download of the run so far. */
export function overall(a: Activity, now: number): { received: number; expected: number; speed: number } {
  let received = a.finishedBytes;
  let expected = a.finishedExpected;
  // The speed counts only bytes moved in this run, not those kept from an interrupted one.
  let moved = a.finishedBytes;
  for (const d of a.downloads) {
    received += d.received;
    expected += d.total ?? d.received;
    moved += d.received - (d.from ?? 0);
  }
  const speed = a.firstStart !== null ? speedOf({ received: moved, started: a.firstStart, at: now }) : 0;
  return { received, expected, speed };
}
