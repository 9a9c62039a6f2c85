import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

// Two V8 settings for a process that moves many bytes. Neither changes what is computed,
// only when V8 spends CPU on it, and only from now on (this module is loaded when something
// must be downloaded):
// - undici parses HTTP/1.1 with llhttp compiled to WebAssembly, compiled when the first
//   connection is made. V8's baseline compiler, Liftoff, is fast enough for it: a download's
//   time goes to hashing and the disk. Without this V8 also re-compiles the parser with
//   TurboFan in the background (~70 ms of CPU, often while the process exits) and a
//   download's peak memory grows by ~25-35 MiB.
// - Every socket read is a new 64 KiB buffer, outside V8's heap, dead a moment later. The
//   scavenges that free them hand the freeing to a background thread; until it has run, V8
//   still counts those bytes as allocated and starts a full mark-compact right after almost
//   every scavenge (~30 per GiB, ~0.4 s of CPU on two cores). Freeing them in the scavenge
//   itself costs little and avoids that.
//
// (V8 accepts cached code only under the flags it was made with: code compiled after this, like
// the TUI's during a live sync, may miss the compile cache once. That costs a compile, nothing else.)
export function useDownloadFlags(): void {
  setFlagsFromString('--liftoff-only');
  setFlagsFromString('--no-concurrent-array-buffer-sweeping');
  // Node 24's V8 (12+) lets the dead read buffers of a download pile up in a young generation
  // it sizes by the machine's memory (a 1 GiB download peaked at 180 MiB there, 117 MiB on
  // Node 20); a scavenge every RECLAIM_BYTES received frees them as they die (and costs less
  // than the full collections they otherwise bring). V8 takes a smaller young generation only
  // on the command line; `gc` is exposed to a context made after the flag is set.
  if (minorGc === undefined) {
    minorGc = null;
    if (Number.parseInt(process.versions.v8, 10) >= 12) {
      setFlagsFromString('--expose-gc');
      minorGc = runInNewContext('gc') as (o: { type: 'minor' }) => void;
    }
  }
}

const RECLAIM_BYTES = 16 * 1024 * 1024;
let minorGc: ((o: { type: 'minor' }) => void) | null | undefined;
let sinceReclaim = 0;

/** Counts bytes received; every RECLAIM_BYTES, a scavenge (see useDownloadFlags). */
export function reclaimAfter(bytes: number): void {
  if (!minorGc) return;
  sinceReclaim += bytes;
  if (sinceReclaim < RECLAIM_BYTES) return;
  sinceReclaim = 0;
  minorGc({ type: 'minor' });
}
