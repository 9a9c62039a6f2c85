// What the TUI receives from the CLI: plain data and a small interface over the same engine
// `hoard sync`, `status` and `verify` run. Nothing here is a class or an instance check: in the
// built CLI the TUI is a bundle of its own (see scripts/build.mjs), so errors and events cross
// that boundary as plain objects.
import type { ErrorInfo, SyncEvent } from '../sync/events.ts';
import type { VerifyEvent } from '../sync/verify.ts';

export type { ErrorInfo, SyncEvent, VerifyEvent };

/** A line of the plain printer's output (the same words `hoard sync` prints in a pipe). */
export interface LineEvent {
  type: 'line';
  text: string;
  stream: 'out' | 'err';
  /** What the printer meant by it (an error, a warning, a hint, a note), so nobody re-reads the words. */
  tone?: Tone;
}

/** How a printed line is meant: errors red, warnings yellow, hints and notes dim. */
export type Tone = 'error' | 'warn' | 'hint' | 'note';

/** Everything the TUI folds: the engine's events, verify's, and printed lines. */
export type UiEvent = SyncEvent | VerifyEvent | LineEvent;
export type UiEmit = (event: UiEvent) => void;

/** How an operation ended: its exit status as a command, and the error that stopped it, if any. */
export interface OpResult {
  code: number;
  error: ErrorInfo | null;
}

/** The operations `hoard ui` offers; each re-reads hoard.json and never rejects. */
export interface UiEngine {
  /** The manifest and the store, as shown in the header. */
  readonly manifest: string;
  readonly store: string;
  /** `hoard status`: one `plan` event per artifact, then a summary. Changes nothing. */
  status(emit: UiEmit): Promise<OpResult>;
  /** `hoard sync [names..] [--force]`. */
  sync(o: { names: readonly string[]; force: boolean }, emit: UiEmit, signal: AbortSignal): Promise<OpResult>;
  /** `hoard verify`: re-hashes the store and the outputs. */
  verify(emit: UiEmit): Promise<OpResult>;
  /** Free bytes on the store's filesystem (null when it cannot be told). */
  freeSpace(): Promise<number | null>;
  /**
   * Which of these blobs the team cache holds: a `check` event each (`inTeamCache`), the same
   * lookup as `hoard status -v`. Run after the list is shown; resolves quietly when there is no
   * team cache, it cannot be reached, or `signal` aborts (nothing to show then).
   */
  teamCache?(blobs: ReadonlyArray<{ name: string; digest: string }>, emit: UiEmit, signal: AbortSignal): Promise<void>;
}
