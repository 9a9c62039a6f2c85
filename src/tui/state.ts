// The state of `hoard ui`, and the one pure reducer that changes it. Keys and engine events
// come in as actions; the screen is a function of the state; the controller (index.ts) starts
// the job the state asks for and exits with `exit` once it is set.
import { foldActivity, noActivity, type Activity } from './activity.ts';
import type { ErrorInfo, OpResult, SyncEvent, UiEvent } from './types.ts';
import { stateOf, type ArtifactState } from '../sync/states.ts';

/** An artifact's state in words, as the list shows it (the same words as `hoard status`). */
export type RowState = ArtifactState;

export interface Row {
  name: string;
  path: string;
  size: number | null;
  state: RowState;
  /** Why, when the plan says (a corrupt blob's reason, whose file is in the way, …). */
  detail?: string;
  image?: string;
  /** The locked digest of a blob sync would download (missing from the store, or corrupt). */
  missing?: string;
  /** Whether the team cache holds that blob; undefined until it has been asked. */
  teamCache?: boolean;
}

/** Blobs to look up in the team cache (after the list is shown): the controller runs it. */
export interface Probe {
  id: number;
  blobs: ReadonlyArray<{ name: string; digest: string }>;
}

export type Job =
  | { id: number; op: 'status' }
  | { id: number; op: 'sync'; names: readonly string[]; force: boolean }
  | { id: number; op: 'verify' };

export interface LogLine {
  text: string;
  /** How to colour it: errors red, warnings yellow, hints and notes dim. */
  tone?: 'error' | 'warn' | 'hint' | 'note';
}

/** A line of the printer's (plain, uncoloured) output, toned as the printer meant it (never by its words). */
export function printedLine(text: string, tone?: LogLine['tone']): LogLine {
  return tone ? { text, tone } : { text };
}

export interface UiState {
  manifest: string;
  store: string;
  free: number | null;
  /** The output folder (from the engine's `start` event). */
  output: string | null;
  rows: readonly Row[];
  /** Rows of a status run in progress; swapped in when its summary arrives. */
  incoming: Row[] | null;
  /** The team cache lookup the controller should run (a new id: a new lookup). */
  probe: Probe | null;
  /** The team cache the rows were looked up in (`oci://…`), once one answered. */
  remote: string | null;
  loaded: boolean;
  /** Index into the visible (filtered) rows, and the first visible row of the list. */
  cursor: number;
  scroll: number;
  selected: readonly string[];
  filter: string;
  mode: 'list' | 'filter' | 'help';
  job: Job | null;
  nextId: number;
  activity: Activity;
  log: readonly LogLine[];
  /** A one-line note under the list, cleared by the next key. */
  notice: string | null;
  width: number;
  height: number;
  /** Time of the latest action (ms): speeds, ETAs and spinners are computed from it. */
  now: number;
  /** Ctrl-C: the running job is being aborted; exit 130 once it has stopped. */
  interrupted: boolean;
  /** Set once: the controller exits with this code. */
  exit: number | null;
}

/** The keys the reducer reads (Ink's Key, reduced to what is used). */
export interface KeyInput {
  upArrow?: boolean;
  downArrow?: boolean;
  pageUp?: boolean;
  pageDown?: boolean;
  home?: boolean;
  end?: boolean;
  return?: boolean;
  escape?: boolean;
  backspace?: boolean;
  delete?: boolean;
  ctrl?: boolean;
  meta?: boolean;
  tab?: boolean;
}

export type Action =
  | { type: 'key'; input: string; key: KeyInput; at?: number }
  | { type: 'event'; event: UiEvent; at: number }
  | { type: 'done'; id: number; result: OpResult; at: number }
  | { type: 'free'; bytes: number | null }
  | { type: 'resize'; width: number; height: number }
  | { type: 'tick'; at: number }
  /** Ctrl-C, or SIGINT/SIGTERM from outside. */
  | { type: 'interrupt' };

const LOG_LIMIT = 200;

export function initialState(o: { manifest: string; store: string; width: number; height: number; now?: number }): UiState {
  return {
    manifest: o.manifest, store: o.store, free: null, output: null,
    rows: [], incoming: null, probe: null, remote: null, loaded: false,
    cursor: 0, scroll: 0, selected: [], filter: '', mode: 'list',
    // The first thing the app does: look at every artifact.
    job: { id: 1, op: 'status' }, nextId: 2,
    activity: noActivity, log: [], notice: null,
    width: o.width, height: o.height, now: o.now ?? 0,
    interrupted: false, exit: null,
  };
}

type PlanEvent = Extract<SyncEvent, { type: 'plan' }>;

/** Pure: the words for an artifact's plan, most serious first. */
export function rowFromPlan(p: PlanEvent): Row {
  const base = { name: p.name, path: p.path, size: p.size ?? null, ...(p.imageRef ? { image: p.imageRef } : {}) };
  const missing = p.digest && (p.blob === 'fetch' || p.blob === 'refetch') ? { missing: p.digest } : {};
  return { ...base, ...stateOf(p), ...missing };
}

/**
 * The rows of a new status run, keeping what the team cache was found to hold for the same
 * blobs, and the lookup still to do for the others (null: nothing to ask).
 */
function withTeamCache(rows: readonly Row[], old: readonly Row[], lastProbe: Probe | null): { rows: Row[]; probe: Probe | null } {
  const known = new Map(old.filter((r) => r.missing && r.teamCache !== undefined).map((r) => [`${r.name}\0${r.missing}`, r.teamCache!]));
  const next = rows.map((r) => {
    const t = r.missing ? known.get(`${r.name}\0${r.missing}`) : undefined;
    return t === undefined ? r : { ...r, teamCache: t };
  });
  const blobs = next.filter((r) => r.missing && r.teamCache === undefined).map((r) => ({ name: r.name, digest: r.missing! }));
  return { rows: next, probe: blobs.length ? { id: (lastProbe?.id ?? 0) + 1, blobs } : lastProbe };
}

/** The rows the filter lets through. */
export function visibleRows(s: Pick<UiState, 'rows' | 'filter'>): readonly Row[] {
  if (!s.filter) return s.rows;
  const f = s.filter.toLowerCase();
  return s.rows.filter((r) => r.name.toLowerCase().includes(f));
}

/** Lines of the screen: fixed parts, the list, and the activity area below it. */
export function layout(s: Pick<UiState, 'height' | 'rows' | 'filter'>): { list: number; activity: number } {
  // title, store line, column heads, rule, note or filter line, footer.
  const avail = Math.max(2, s.height - 6);
  const wanted = Math.max(1, visibleRows(s).length);
  const minActivity = Math.min(6, Math.floor(avail / 2));
  const activity = Math.max(minActivity, Math.min(avail - wanted, avail - 1));
  return { list: Math.max(1, avail - activity), activity };
}

/** Keeps the cursor inside the visible rows and on screen. */
function settle(s: UiState): UiState {
  const n = visibleRows(s).length;
  const cursor = Math.min(Math.max(0, s.cursor), Math.max(0, n - 1));
  const h = layout(s).list;
  let scroll = Math.min(s.scroll, cursor);
  if (cursor >= scroll + h) scroll = cursor - h + 1;
  scroll = Math.max(0, Math.min(scroll, Math.max(0, n - h)));
  return cursor === s.cursor && scroll === s.scroll ? s : { ...s, cursor, scroll };
}

function addLog(s: UiState, ...lines: LogLine[]): UiState {
  const log = [...s.log, ...lines];
  return { ...s, log: log.length > LOG_LIMIT ? log.slice(-LOG_LIMIT) : log };
}

function errorLines(e: ErrorInfo): LogLine[] {
  return [{ text: `error: ${e.message}`, tone: 'error' }, ...(e.hint ? [{ text: `hint: ${e.hint}`, tone: 'hint' as const }] : [])];
}

type JobSpec = { op: 'status' } | { op: 'sync'; names: readonly string[]; force: boolean } | { op: 'verify' };

function startJob(s: UiState, job: JobSpec): UiState {
  return { ...s, job: { ...job, id: s.nextId }, nextId: s.nextId + 1 };
}

/** What `s`, Enter or `f` act on: the selection, else the highlighted row. */
export function targets(s: UiState): string[] {
  if (s.selected.length > 0) return s.rows.filter((r) => s.selected.includes(r.name)).map((r) => r.name);
  const row = visibleRows(s)[s.cursor];
  return row ? [row.name] : [];
}

function busy(s: UiState): boolean {
  return s.job !== null && s.job.op !== 'status';
}

/** One character of a chunk of input, as Ink would have reported it alone. */
function keyOf(ch: string): [string, KeyInput] {
  if (ch === '\r' || ch === '\n') return ['', { return: true }];
  if (ch === '\x7f' || ch === '\b') return ['', { backspace: true }];
  if (ch === '\t') return ['', { tab: true }];
  if (ch === '\x03') return ['c', { ctrl: true }];
  return [ch, {}];
}

function onKey(s0: UiState, input: string, key: KeyInput): UiState {
  // Keys typed faster than a frame (or pasted) arrive together: take them one by one.
  const plain = !key.ctrl && !key.meta && !key.upArrow && !key.downArrow && !key.return && !key.escape;
  if (plain && [...input].length > 1) return [...input].reduce((acc, ch) => onKey(acc, ...keyOf(ch)), s0);
  const s: UiState = s0.notice ? { ...s0, notice: null } : s0;
  if (key.ctrl && input === 'c') return reducer(s, { type: 'interrupt' });

  if (s.mode === 'help') {
    if (input === 'q') return onKey({ ...s, mode: 'list' }, 'q', {});
    return { ...s, mode: 'list' };
  }

  const move = (to: number): UiState => settle({ ...s, cursor: to });
  const page = layout(s).list;
  if (key.upArrow) return move(s.cursor - 1);
  if (key.downArrow) return move(s.cursor + 1);
  if (key.pageUp) return move(s.cursor - page);
  if (key.pageDown) return move(s.cursor + page);
  if (key.home) return move(0);
  if (key.end) return move(Number.MAX_SAFE_INTEGER);

  if (s.mode === 'filter') {
    if (key.return) return { ...s, mode: 'list' };
    if (key.escape) return settle({ ...s, mode: 'list', filter: '', cursor: 0, scroll: 0 });
    if (key.backspace || key.delete) return settle({ ...s, filter: s.filter.slice(0, -1), cursor: 0, scroll: 0 });
    if (input && !key.ctrl && !key.meta && !key.tab && /^[\x20-\x7e]+$/.test(input)) {
      return settle({ ...s, filter: s.filter + input, cursor: 0, scroll: 0 });
    }
    return s;
  }

  switch (input) {
    case 'k':
      return move(s.cursor - 1);
    case 'j':
      return move(s.cursor + 1);
    case 'g':
      return move(0);
    case 'G':
      return move(Number.MAX_SAFE_INTEGER);
    case ' ': {
      const row = visibleRows(s)[s.cursor];
      if (!row) return s;
      const selected = s.selected.includes(row.name) ? s.selected.filter((n) => n !== row.name) : [...s.selected, row.name];
      // Space also moves down, as in most list pickers.
      return settle({ ...s, selected, cursor: s.cursor + 1 });
    }
    case 'a': {
      const names = visibleRows(s).map((r) => r.name);
      const all = names.length > 0 && names.every((n) => s.selected.includes(n));
      return { ...s, selected: all ? s.selected.filter((n) => !names.includes(n)) : [...new Set([...s.selected, ...names])] };
    }
    case '/':
      return { ...s, mode: 'filter' };
    case '?':
      return { ...s, mode: 'help' };
    case 'q':
      if (busy(s)) return { ...s, notice: `a ${s.job!.op} is running: wait for it, or press Ctrl-C to stop it and quit` };
      return { ...s, exit: 0 };
    case 's':
    case 'f':
    case 'v':
      break;
    default:
      if (key.return) break;
      if (key.escape) return { ...s, selected: [], filter: '', cursor: s.filter ? 0 : s.cursor, scroll: s.filter ? 0 : s.scroll };
      return s;
  }

  // s, Enter, f, v: start work.
  if (s.job) return { ...s, notice: `wait: ${s.job.op === 'status' ? 'reading the state of the artifacts' : `a ${s.job.op} is running`}` };
  if (input === 'v') return startJob(s, { op: 'verify' });
  const names = targets(s);
  if (names.length === 0) return { ...s, notice: 'nothing to sync: no artifact is selected or highlighted' };
  return startJob({ ...s, selected: [] }, { op: 'sync', names, force: input === 'f' });
}

function onEvent(s: UiState, e: UiEvent, at: number): UiState {
  const next: UiState = { ...s, now: at, activity: foldActivity(s.activity, e, at) };
  switch (e.type) {
    case 'start':
      return { ...next, output: e.output, ...(s.job?.op === 'status' ? { incoming: [] } : {}) };
    case 'plan':
      return next.incoming ? { ...next, incoming: [...next.incoming, rowFromPlan(e)] } : next;
    case 'artifact': {
      // Done well: show it in sync at once; the status run that follows has the last word.
      const ok = e.blob !== 'failed' && (e.output === 'present' || e.output === 'linked' || e.output === 'relinked' || e.output === 'replaced' || e.output === 'written') &&
        (e.image === undefined || e.image === 'present' || e.image === 'imported' || e.image === 'loaded' || e.image === 'reimported');
      if (!ok) return next;
      return { ...next, rows: next.rows.map((r) => (r.name === e.name ? { name: r.name, path: r.path, size: e.size ?? r.size, state: 'in sync', ...(r.image ? { image: r.image } : {}) } : r)) };
    }
    case 'summary':
      if ('outOfSync' in e && e.outOfSync !== undefined && next.incoming) {
        const { rows, probe } = withTeamCache(next.incoming, next.rows, next.probe);
        return settle({ ...next, rows, probe, incoming: null, loaded: true });
      }
      return next;
    case 'check': {
      // The team cache's answer for a missing blob (the fact is on the event, not in its words).
      if (e.inTeamCache === undefined) return next;
      const rows = next.rows.map((r) => (r.name === e.name && r.missing ? { ...r, teamCache: e.inTeamCache! } : r));
      return { ...next, rows, remote: e.path };
    }
    case 'line':
      return addLog(next, ...e.text.replace(/\n$/, '').split('\n').map((t) => printedLine(t, e.tone)));
    default:
      return next;
  }
}

function onDone(s: UiState, id: number, result: OpResult, at: number): UiState {
  if (!s.job || s.job.id !== id) return s;
  const op = s.job.op;
  let next: UiState = { ...s, job: null, now: at, incoming: null, activity: noActivity };
  if (result.error) next = addLog(next, ...errorLines(result.error));
  if (op === 'status' && !next.loaded && result.error) next = { ...next, loaded: true };
  if (s.interrupted) return { ...next, exit: 130 };
  // After work, look again: the list shows what is true now.
  return op === 'status' ? next : startJob(next, { op: 'status' });
}

/** The reducer: pure, total, and the only way the state changes. */
export function reducer(s: UiState, a: Action): UiState {
  if (s.exit !== null) return s;
  switch (a.type) {
    case 'key':
      return onKey(a.at !== undefined ? { ...s, now: a.at } : s, a.input, a.key);
    case 'event':
      return onEvent(s, a.event, a.at);
    case 'done':
      return onDone(s, a.id, a.result, a.at);
    case 'free':
      return { ...s, free: a.bytes };
    case 'resize':
      return settle({ ...s, width: a.width, height: a.height });
    case 'tick':
      return { ...s, now: a.at };
    case 'interrupt':
      // A second Ctrl-C, or nothing running that writes: leave now.
      if (s.interrupted || !busy(s)) return { ...s, interrupted: true, exit: 130 };
      return addLog({ ...s, interrupted: true }, { text: 'interrupting: stopping downloads, removing temporary files…', tone: 'note' });
  }
}
