// Where hoard's output goes: stdout in batches, stderr in order with it, and the printer.
import type { GlobalOptions } from './commands.ts';
import { createPrinter, type Printer } from './print.ts';
import type { Env } from './values.ts';

export interface Output {
  out: (s: string) => void;
  err: (s: string) => void;
  /** Writes what is pending on stdout now. */
  flush: () => void;
  /** The printer for these options (colour and progress as the terminal allows). */
  printer: (g: GlobalOptions) => Printer;
  /** A plain printer for an error before the options were read. */
  plain: (json: boolean, verbose: boolean) => Printer;
}

/**
 * stdout is written in batches (one write per event-loop turn, not per line): a no-op sync of
 * a thousand artifacts prints a thousand lines. stderr flushes stdout first, keeping order.
 */
export function createOutput(env: Env): Output {
  let pending = '';
  const flush = () => {
    if (pending) process.stdout.write(pending);
    pending = '';
  };
  const out = (s: string) => {
    if (!pending) setImmediate(flush);
    pending += s;
  };
  const err = (s: string) => {
    flush();
    process.stderr.write(s);
  };
  const printer = (g: GlobalOptions) =>
    createPrinter({
      json: g.json,
      verbose: g.verbose,
      quiet: g.quiet,
      color: g.color && !env.NO_COLOR && process.stdout.isTTY === true,
      progress: !g.json && !g.quiet && process.stderr.isTTY === true,
      // No terminal on stderr (CI, a pipe), or --json: progress as lines at a steady pace.
      ...(g.json || process.stderr.isTTY !== true ? { steady: progressPace(env) } : {}),
      out,
      err,
      cwd: process.cwd(),
    });
  const plain = (json: boolean, verbose: boolean) =>
    createPrinter({ json, verbose, quiet: false, color: false, progress: false, out, err, cwd: process.cwd() });
  return { out, err, flush, printer, plain };
}

/**
 * How often progress is reported without a terminal: a line every 10 s, a --json event every
 * second. HOARD_PROGRESS_INTERVAL_MS (internal, for tests) sets both.
 */
function progressPace(env: Env): { everyMs: number; jsonEveryMs: number } {
  const ms = Number(env.HOARD_PROGRESS_INTERVAL_MS);
  return Number.isFinite(ms) && ms >= 0 && env.HOARD_PROGRESS_INTERVAL_MS !== '' ? { everyMs: ms, jsonEveryMs: ms } : { everyMs: 10_000, jsonEveryMs: 1000 };
}
