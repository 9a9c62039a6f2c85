// The TUI's entry points, loaded only on a terminal (never for pipes, --json or --help).
//   runUi:      `hoard ui`, the full-screen app over the engine's status/sync/verify.
//   renderSync: `hoard sync` on a terminal, the printer's lines plus live progress bars.
// Each is the single place that starts work and ends its Ink app.
import { render } from 'ink';
import { createElement } from 'react';
import { LiveApp, UiApp } from './app.tsx';
import { initialLive, liveReducer, type LiveAction, type LiveState } from './live.ts';
import { initialState, reducer, type Action, type Job, type Probe, type UiState } from './state.ts';
import { createStore, type Store } from './store.ts';
import type { OpResult, UiEngine, UiEvent } from './types.ts';

export type { OpResult, UiEmit, UiEngine, UiEvent } from './types.ts';

export interface Terminal {
  stdin: NodeJS.ReadStream;
  stdout: NodeJS.WriteStream;
  stderr: NodeJS.WriteStream;
}

const ALT_SCREEN_ON = '\x1b[?1049h';
const ALT_SCREEN_OFF = '\x1b[?1049l';
const size = (out: NodeJS.WriteStream) => ({ width: out.columns || 80, height: Math.max(8, (out.rows || 24) - 1) });

/**
 * Starts the jobs the state asks for and reports their events back into the store. Resolves
 * with the exit code once the state has one. Separate from rendering, so tests can drive it.
 */
export function control(store: Store<UiState, Action>, engine: UiEngine, o: { signal?: AbortSignal; tickMs?: number } = {}): Promise<number> {
  let started = 0;
  let current: AbortController | null = null;
  let probed = 0;
  let probing: AbortController | null = null;
  const emitEvent = (event: UiEvent) => store.dispatch({ type: 'event', event, at: Date.now() });
  /** The team cache lookup: in the background, after the list is shown; never a job (keys keep working). */
  const probe = (p: Probe) => {
    probing?.abort();
    if (store.getState().exit !== null) return;
    const ac = new AbortController();
    probing = ac;
    void engine.teamCache?.(p.blobs, (e) => !ac.signal.aborted && emitEvent(e), ac.signal).catch(() => {});
  };
  const run = (job: Job) => {
    const ac = new AbortController();
    current = ac;
    const emit = (event: UiEvent) => store.dispatch({ type: 'event', event, at: Date.now() });
    const op =
      job.op === 'status' ? engine.status(emit) : job.op === 'sync' ? engine.sync({ names: job.names, force: job.force }, emit, ac.signal) : engine.verify(emit);
    op
      .catch((err: unknown): OpResult => ({ code: 1, error: { code: 'E_INTERNAL', message: String((err as Error)?.message ?? err) } }))
      .then((result) => {
        if (current === ac) current = null;
        store.dispatch({ type: 'done', id: job.id, result, at: Date.now() });
        if (job.op !== 'status') void engine.freeSpace().then((bytes) => store.dispatch({ type: 'free', bytes }));
      });
  };
  return new Promise((resolve) => {
    const check = () => {
      const s = store.getState();
      if (s.interrupted) current?.abort();
      if (s.exit !== null) {
        stop();
        resolve(s.exit);
        return;
      }
      if (s.probe && s.probe.id > probed) {
        probed = s.probe.id;
        const p = s.probe;
        queueMicrotask(() => probe(p));
      }
      if (s.job && s.job.id > started) {
        started = s.job.id;
        const job = s.job;
        queueMicrotask(() => run(job));
      }
    };
    const unsubscribe = store.subscribe(check);
    const ticker = setInterval(() => {
      if (store.getState().job) store.dispatch({ type: 'tick', at: Date.now() });
    }, o.tickMs ?? 100);
    const onAbort = () => store.dispatch({ type: 'interrupt' });
    o.signal?.addEventListener('abort', onAbort);
    const stop = () => {
      unsubscribe();
      clearInterval(ticker);
      probing?.abort();
      o.signal?.removeEventListener('abort', onAbort);
    };
    void engine.freeSpace().then((bytes) => store.dispatch({ type: 'free', bytes }));
    check();
    if (o.signal?.aborted) onAbort();
  });
}

/** `hoard ui`: full screen until `q` (0) or Ctrl-C (130, after the running sync has stopped). */
export async function runUi(engine: UiEngine, term: Terminal, o: { color: boolean; signal?: AbortSignal }): Promise<number> {
  const store = createStore(reducer, initialState({ manifest: engine.manifest, store: engine.store, ...size(term.stdout), now: Date.now() }));
  const onResize = () => store.dispatch({ type: 'resize', ...size(term.stdout) });
  term.stdout.on('resize', onResize);
  term.stdout.write(ALT_SCREEN_ON);
  const ink = render(createElement(UiApp, { store, color: o.color }), {
    stdin: term.stdin, stdout: term.stdout, stderr: term.stderr, exitOnCtrlC: false, patchConsole: false, maxFps: 20,
  });
  try {
    return await control(store, engine, o.signal ? { signal: o.signal } : {});
  } finally {
    ink.unmount();
    await ink.waitUntilExit().catch(() => {});
    term.stdout.off('resize', onResize);
    term.stdout.write(ALT_SCREEN_OFF);
  }
}

export interface LiveView {
  /** An engine event, or a line the printer wrote. */
  event(event: UiEvent): void;
  /** Draws the last frame (the summary is the last line) and ends Ink. */
  close(): Promise<void>;
}

/** `hoard sync` on a terminal: lines as the plain printer writes them, bars redrawn below. */
export async function renderSync(term: Pick<Terminal, 'stdout' | 'stderr' | 'stdin'>, o: { color: boolean }): Promise<LiveView> {
  const store = createStore<LiveState, LiveAction>(liveReducer, initialLive(term.stdout.columns || 80, Date.now()));
  const onResize = () => store.dispatch({ type: 'resize', width: term.stdout.columns || 80 });
  term.stdout.on('resize', onResize);
  const ink = render(createElement(LiveApp, { store, color: o.color }), {
    stdin: term.stdin, stdout: term.stdout, stderr: term.stderr, exitOnCtrlC: false, patchConsole: false, maxFps: 15,
  });
  const ticker = setInterval(() => store.dispatch({ type: 'tick', at: Date.now() }), 100);
  return {
    event: (event) => store.dispatch({ type: 'event', event, at: Date.now() }),
    async close() {
      clearInterval(ticker);
      term.stdout.off('resize', onResize);
      ink.unmount();
      await ink.waitUntilExit().catch(() => {});
    },
  };
}
