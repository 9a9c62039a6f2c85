// The state of a live `hoard sync` on a terminal: the printer's lines (kept, above) and the
// work in flight (redrawn, below). Pure, like the ui's reducer.
import { foldActivity, noActivity, type Activity } from './activity.ts';
import type { UiEvent } from './types.ts';

export interface LiveState {
  /** Every line printed so far, in order; Ink writes each once, above the live part. */
  lines: readonly string[];
  activity: Activity;
  /** Between the engine's `start` and its `summary`. */
  running: boolean;
  now: number;
  width: number;
}

export type LiveAction =
  | { type: 'event'; event: UiEvent; at: number }
  | { type: 'tick'; at: number }
  | { type: 'resize'; width: number };

export function initialLive(width: number, now = 0): LiveState {
  return { lines: [], activity: noActivity, running: false, now, width };
}

export function liveReducer(s: LiveState, a: LiveAction): LiveState {
  switch (a.type) {
    case 'tick':
      return s.running ? { ...s, now: a.at } : s;
    case 'resize':
      return { ...s, width: a.width };
    case 'event': {
      const e = a.event;
      if (e.type === 'line') return { ...s, lines: [...s.lines, ...e.text.replace(/\n$/, '').split('\n')] };
      const next = { ...s, now: a.at, activity: foldActivity(s.activity, e, a.at) };
      if (e.type === 'start') return { ...next, running: !e.dryRun };
      if (e.type === 'summary') return { ...next, running: false };
      return next;
    }
  }
}
