// Node's built-in modules that a no-op `hoard sync` or `hoard --help` does not need, loaded at
// their first use instead of when the CLI starts (an `import` of them runs at start-up, as
// esbuild bundles it). Measured on Node 24 (CPU time of `node -e "require(m)"` over
// `node -e 0`): node:crypto ~11 ms, node:child_process ~8 ms, node:worker_threads and
// node:perf_hooks ~3 ms each; see docs/development.md.
import type * as Crypto from 'node:crypto';

/** node:crypto, loaded at the first call. */
export const crypto = (): typeof Crypto => process.getBuiltinModule('node:crypto');

/** Random hex digits (`bytes` random bytes) for names nobody else picks: temp files, lock nonces. */
export function randomHex(bytes: number): string {
  return crypto().randomBytes(bytes).toString('hex');
}

/** Milliseconds on a monotonic clock (performance.now() without loading node:perf_hooks). */
export function monotonicMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}
