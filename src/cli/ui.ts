// The terminal side of the CLI: `hoard ui`, and `hoard sync` with live progress. The TUI
// itself (Ink and React) is loaded here, lazily, and only when stdout is a terminal; pipes,
// --json and --help never load it. It gets the engine as plain functions over the same
// commands the CLI runs (status, sync, verify), and plain data back: no second sync.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { errorInfo, exitCodeFor, HoardError, isErrno, signalExit } from '../core/errors.ts';
import type { Digest } from '../core/digest.ts';
import { loadManifest } from '../manifest/load.ts';
import { checkTeamCache } from '../remote/index.ts';
import { releaseHeldLocksSync } from '../store/lock.ts';
import { escapeStrings } from '../core/terminal.ts';
import type { LiveView, OpResult, UiEmit, UiEngine, UiEvent } from '../tui/index.ts';
import { runStatus, runSync, runVerify, type GlobalOptions, type ImageOptions, type NetworkFlags, type TeamCacheFlags } from './commands.ts';
import { createPrinter, type Printer } from './print.ts';

type Env = Record<string, string | undefined>;

const IMPORT_BESIDE = Symbol.for('hoard.importBeside');

/**
 * In the built CLI this is dist/hoard-tui.mjs, a bundle of its own (see scripts/build.mjs).
 * Ink (through is-in-ci) reads CI and CONTINUOUS_INTEGRATION once, when it loads, and then draws
 * only a final frame. hoard loads it only for a terminal it has checked itself, so it loads
 * it with those two hidden, and puts them back as soon as Ink has loaded.
 */
async function loadTui(): Promise<typeof import('../tui/index.ts')> {
  const hidden = { CI: process.env.CI, CONTINUOUS_INTEGRATION: process.env.CONTINUOUS_INTEGRATION };
  delete process.env.CI;
  delete process.env.CONTINUOUS_INTEGRATION;
  // On Node 20 the executable runs the CLI bundle from a V8 code cache, where import() is not
  // available (Node 20 loses the callback when code comes from a cache): it imports for us.
  const importBeside = (globalThis as { [IMPORT_BESIDE]?: (file: string) => Promise<typeof import('../tui/index.ts')> })[IMPORT_BESIDE];
  try {
    return await (importBeside ? importBeside('hoard-tui.mjs') : import('../tui/index.ts'));
  } finally {
    for (const [k, v] of Object.entries(hidden)) if (v !== undefined) process.env[k] = v;
  }
}

function colorOn(g: GlobalOptions, env: Env): boolean {
  return g.color && !env.NO_COLOR && process.stdout.isTTY === true;
}

/** Free bytes on the filesystem that holds `dir` (or its nearest existing parent). */
async function freeBytes(dir: string): Promise<number | null> {
  for (let d = path.resolve(dir); ; d = path.dirname(d)) {
    try {
      const s = await fs.statfs(d);
      return s.bavail * s.bsize;
    } catch (err) {
      if (!isErrno(err, 'ENOENT', 'ENOTDIR') || path.dirname(d) === d) return null;
    }
  }
}

/**
 * While Ink is up, keep a listener on SIGINT and SIGTERM. Ink's exit hook (signal-exit)
 * re-raises a signal nobody else listens to, which would kill hoard before an aborted download
 * has removed its temporary file; main.ts aborts on the first signal, and a second one quits.
 */
const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

async function holdingSignals<T>(fn: () => Promise<T>, o: { fullScreen?: boolean } = {}): Promise<T> {
  let first: NodeJS.Signals | null = null;
  const hold = (signal: NodeJS.Signals) => {
    first ??= signal;
    if (++seen < 2) return;
    // Leave the alternate screen (hoard ui) and show the cursor again before quitting; the
    // locks this process holds go with it.
    process.stdout.write(`${o.fullScreen ? '\x1b[?1049l' : ''}\x1b[?25h`);
    releaseHeldLocksSync();
    process.exit(signalExit(first));
  };
  let seen = 0;
  for (const sig of SIGNALS) process.on(sig, hold);
  try {
    return await fn();
  } finally {
    for (const sig of SIGNALS) process.off(sig, hold);
  }
}

/**
 * `hoard sync` draws live progress: stdout is a terminal (of a known size: Ink would clear the
 * screen on every frame of one that reports 0 rows), and neither --json nor --quiet.
 */
export function wantsLive(g: GlobalOptions, dryRun: boolean): boolean {
  return !g.json && !g.quiet && !dryRun && process.stdout.isTTY === true && process.stdout.rows > 0 && process.stdout.columns > 0;
}

/**
 * Runs `run` (a sync) with its printed lines and live progress drawn by Ink. The lines are
 * the plain printer's, so the output ends with the same summary as in a pipe. Ink is loaded
 * only once there is something to animate (a download or an image import): a sync with
 * everything in place prints its lines plainly and never pays for it.
 */
export async function runLive(g: GlobalOptions, env: Env, run: (printer: Printer) => Promise<number>): Promise<number> {
  const errIsTerminal = process.stderr.isTTY === true;
  let view: LiveView | null = null;
  let opening: Promise<void> | null = null;
  /** Events for the view while Ink loads; the `start` and finished artifacts seed its counts. */
  const queue: UiEvent[] = [];
  const seen: UiEvent[] = [];
  const toView = (e: UiEvent) => (view ? view.event(e) : queue.push(e));
  // Before Ink: plain lines, batched per event-loop turn like main.ts does.
  let pending = '';
  const flush = () => {
    if (pending) process.stdout.write(pending);
    pending = '';
  };
  const plain = createPrinter({
    json: false, verbose: g.verbose, quiet: false, color: colorOn(g, env), progress: false, cwd: process.cwd(),
    out: (text, tone) => {
      if (opening) return toView({ type: 'line', text, stream: 'out', ...(tone ? { tone } : {}) });
      if (!pending) setImmediate(flush);
      pending += text;
    },
    // Warnings and errors stay on stderr when it is not the same terminal (2>log).
    err: (text, tone) => {
      if (opening && errIsTerminal) return toView({ type: 'line', text, stream: 'err', ...(tone ? { tone } : {}) });
      flush();
      process.stderr.write(text);
    },
  });
  const goLive = () => {
    flush();
    queue.push(...seen);
    opening = loadTui()
      .then((tui) => tui.renderSync({ stdin: process.stdin, stdout: process.stdout, stderr: process.stderr }, { color: colorOn(g, env) }))
      .catch((): LiveView => ({
        // No TUI after all (a broken install): the plain lines, without animation.
        event: (e) => void (e.type === 'line' && (e.stream === 'out' ? process.stdout : process.stderr).write(e.text)),
        close: async () => {},
      }))
      .then((v) => {
        view = v;
        for (const e of queue.splice(0)) v.event(e);
      });
  };
  const printer: Printer = {
    ...plain,
    event(e) {
      const ev = e as UiEvent;
      if (!opening && (ev.type === 'download' || ev.type === 'image')) goLive();
      plain.event(e);
      // Names and messages from a manifest or a server carry no control characters to the screen.
      if (opening) toView(escapeStrings(ev));
      else if (ev.type === 'start' || ev.type === 'artifact') seen.push(ev);
    },
  };
  try {
    return await holdingSignals(() => run(printer));
  } finally {
    flush();
    if (opening) {
      await opening;
      await view!.close();
    }
  }
}

/** The engine as `hoard ui` sees it: each operation re-reads hoard.json and never throws. */
export function createUiEngine(g: GlobalOptions, env: Env, o: UiOptions, manifestFile: string): UiEngine {
  /**
   * Events go to the TUI; with `lines`, also the words `hoard sync` would print for them
   * (uncoloured: the TUI wraps them to its width and colours them itself).
   */
  const printerFor = (emit: UiEmit, lines: boolean): Printer => {
    const plain = createPrinter({
      json: false, verbose: g.verbose, quiet: false, color: false, progress: false, cwd: process.cwd(),
      out: (text, tone) => emit({ type: 'line', text, stream: 'out', ...(tone ? { tone } : {}) }),
      err: (text, tone) => emit({ type: 'line', text, stream: 'err', ...(tone ? { tone } : {}) }),
    });
    return {
      ...plain,
      event(e) {
        // Names and messages from a manifest or a server carry no control characters to the screen.
        emit(escapeStrings(e as UiEvent));
        if (lines) plain.event(e);
      },
      info(text) {
        if (lines) plain.info(text);
      },
      fatal() {},
    };
  };
  const guard = async (fn: () => Promise<number>): Promise<OpResult> => {
    try {
      return { code: await fn(), error: null };
    } catch (err) {
      return { code: exitCodeFor(err), error: escapeStrings(errorInfo(err)) };
    }
  };
  const images = { images: o.images, engine: o.engine };
  const output = o.output ? { output: o.output } : {};
  return {
    manifest: path.relative(process.cwd(), manifestFile).startsWith('..') ? manifestFile : path.relative(process.cwd(), manifestFile),
    store: g.store,
    status: (emit) => guard(() => runStatus({ ...g, verbose: false }, printerFor(emit, false), env, { names: [], verify: false, ...images, ...output })),
    sync: ({ names, force }, emit, signal) =>
      guard(() =>
        runSync(g, printerFor(emit, true), env, signal, {
          names: [...names], force, dryRun: false, frozen: false, jobs: o.jobs, verify: false, ...images, ...output,
          ...(o.network ? { network: o.network } : {}),
          ...(o.maxSize !== undefined ? { maxSize: o.maxSize } : {}),
          ...(o.teamCache ? { teamCache: o.teamCache } : {}),
        }),
      ),
    verify: (emit) => guard(() => runVerify({ ...g, json: false, quiet: false }, printerFor(emit, true), output)),
    freeSpace: () => freeBytes(g.store),
    // The lookup `hoard status -v` does, for the rows the list shows as missing. A team cache
    // that is down, refuses, or misses shows nothing here: sync says why if it gets there.
    teamCache: async (blobs, emit, signal) => {
      if (!o.teamCache || blobs.length === 0) return;
      try {
        const remote = o.teamCache(await loadManifest(g.manifest));
        if (!remote) return;
        try {
          await checkTeamCache(remote, blobs as ReadonlyArray<{ name: string; digest: Digest }>, (e) => emit(escapeStrings(e as UiEvent)), signal);
        } finally {
          await remote.close();
        }
      } catch {
        /* nothing to show */
      }
    },
  };
}

export interface UiOptions extends ImageOptions, NetworkFlags {
  output?: string;
  jobs: number;
  /** The configured size limit: each sync evicts afterwards, as `hoard sync` does. */
  maxSize?: number;
  /** The team cache its syncs read through (src/cli/push.ts). */
  teamCache?: TeamCacheFlags['teamCache'];
}

/** `hoard ui`: needs a terminal on both sides; 0 on `q`, 130 on Ctrl-C. */
export async function runUiCommand(g: GlobalOptions, env: Env, signal: AbortSignal, o: UiOptions): Promise<number> {
  if (g.json) {
    throw new HoardError('E_USAGE', '`hoard ui` is interactive: it has no --json output', { hint: 'use hoard status --json / hoard sync --json' });
  }
  if (!process.stdin.isTTY || !process.stdout.isTTY) {
    throw new HoardError('E_TTY', `\`hoard ui\` needs a terminal, and ${process.stdout.isTTY ? 'stdin' : 'stdout'} is not one`, {
      hint: 'use hoard status / hoard sync',
    });
  }
  // An unreadable or invalid manifest fails here, as for any command, before the screen opens.
  const manifest = await loadManifest(g.manifest);
  const tui = await loadTui();
  const code = await holdingSignals(
    () => tui.runUi(createUiEngine(g, env, o, manifest.file), { stdin: process.stdin, stdout: process.stdout, stderr: process.stderr }, { color: colorOn(g, env), signal }),
    { fullScreen: true },
  );
  process.stdin.pause();
  return code;
}
