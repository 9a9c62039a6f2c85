// What the terminal shows: functions of the state, with readonly props and no effects.
// Every line is built to fit the width it is given, so nothing wraps at 80 columns.
import { Box, Static, Text } from 'ink';
import { formatBytes, formatDuration } from '../core/format.ts';
import { etaOf, overall, speedOf, type Activity, type Download, type ImageWork } from './activity.ts';
import type { LiveState } from './live.ts';
import { layout, visibleRows, type LogLine, type Row, type RowState, type UiState } from './state.ts';
import { bar, cell, fit, spinner, wrap } from './text.ts';

type Color = 'green' | 'yellow' | 'red' | 'cyan' | 'magenta' | 'gray' | 'blue';

/** A missing blob the team cache holds: what the state column says instead of "not downloaded". */
export const IN_TEAM_CACHE = 'in team cache';

const STATE_COLOR: Record<RowState, Color> = {
  'in sync': 'green',
  'not downloaded': 'yellow',
  'not linked': 'yellow',
  'image missing': 'yellow',
  unlocked: 'cyan',
  corrupt: 'red',
  conflict: 'red',
  'image stale': 'red',
  'image unknown': 'magenta',
  'not an image archive': 'red',
};

interface Paint {
  /** Colours on (a terminal, not --no-color / NO_COLOR). */
  readonly color: boolean;
}

/** One line of text in one colour (or none). */
function Line({ text, color, paint, bold, dim }: { readonly text: string; readonly color?: Color | undefined; readonly bold?: boolean; readonly dim?: boolean } & { readonly paint: Paint }) {
  return (
    <Text wrap="truncate-end" {...(paint.color && color ? { color } : {})} {...(paint.color && bold ? { bold } : {})} {...(paint.color && dim ? { dimColor: true } : {})}>
      {text}
    </Text>
  );
}

// ---------------------------------------------------------------- progress rows

/** `↓ name  [█████░░░░░]  45%  12.0 MiB/470 MiB  15.2 MiB/s  ETA 30s`, fitted to `width`. */
export function downloadText(d: Download, now: number, width: number, nameWidth: number): string {
  const live = { ...d, at: Math.max(d.at, now) };
  const speed = speedOf(live);
  const eta = etaOf(live);
  const pct = d.total ? `${String(Math.floor((d.received / d.total) * 100)).padStart(3)}%` : '    ';
  const sizes = `${formatBytes(d.received)}${d.total !== null ? `/${formatBytes(d.total)}` : ''}`;
  // Columns of a fixed width, so that the bars of several downloads line up.
  const tail = ` ${pct} ${cell(sizes, 19, 'right')} ${cell(`${formatBytes(speed)}/s`, 12, 'right')} ${cell(eta !== null ? `ETA ${formatDuration(eta)}` : '', 10)}`;
  const head = `↓ ${cell(d.name, nameWidth)} `;
  const barWidth = Math.max(6, Math.min(30, width - head.length - tail.length));
  return fit(`${head}${bar(d.total ? d.received / d.total : 0, barWidth)}${tail}`.trimEnd(), width);
}

export function imageText(w: ImageWork, now: number, width: number, nameWidth: number): string {
  const secs = Math.max(0, Math.floor((now - w.started) / 1000));
  return fit(`${spinner(now)} ${cell(w.name, nameWidth)} ${w.action === 'import' ? 'importing' : 'loading'} ${w.ref}${secs ? ` ${secs}s` : ''}`, width);
}

export function ProgressRows({ activity, now, width, paint }: { readonly activity: Activity; readonly now: number; readonly width: number; readonly paint: Paint }) {
  const nameWidth = Math.min(20, Math.max(4, ...activity.downloads.map((d) => d.name.length), ...activity.images.map((i) => i.name.length)));
  return (
    <>
      {activity.downloads.map((d) => (
        <Line key={`d-${d.name}`} text={downloadText(d, now, width, nameWidth)} color="cyan" paint={paint} />
      ))}
      {activity.images.map((i) => (
        <Line key={`i-${i.name}`} text={imageText(i, now, width, nameWidth)} color="magenta" paint={paint} />
      ))}
    </>
  );
}

// ---------------------------------------------------------------- hoard ui

const SIZE_W = 9;
const STATE_W = 15;

function nameWidthFor(rows: readonly Row[], width: number): number {
  return Math.max(4, Math.min(Math.floor(width * 0.3), 28, Math.max(4, ...rows.map((r) => r.name.length))));
}

/** What the state column says: live work first, then the state in words. */
function stateCell(r: Row, s: Pick<UiState, 'activity' | 'now'>): { text: string; color: Color } {
  const d = s.activity.downloads.find((x) => x.name === r.name);
  if (d) return { text: d.total ? `↓ ${Math.floor((d.received / d.total) * 100)}%` : `↓ ${formatBytes(d.received)}`, color: 'cyan' };
  const i = s.activity.images.find((x) => x.name === r.name);
  if (i) return { text: `${spinner(s.now)} ${i.action === 'import' ? 'importing' : 'loading'}`, color: 'magenta' };
  if (r.teamCache && r.state === 'not downloaded') return { text: IN_TEAM_CACHE, color: 'blue' };
  return { text: r.state, color: STATE_COLOR[r.state] };
}

export function ArtifactList({ state, paint }: { readonly state: UiState; readonly paint: Paint }) {
  const rows = visibleRows(state);
  const height = layout(state).list;
  const nw = nameWidthFor(state.rows, state.width);
  const pathW = Math.max(0, state.width - (4 + nw + 1 + SIZE_W + 2 + STATE_W + 2));
  const shown = rows.slice(state.scroll, state.scroll + height);
  const lines = shown.map((r, i) => {
    const index = state.scroll + i;
    const here = index === state.cursor;
    const picked = state.selected.includes(r.name);
    const st = stateCell(r, state);
    return (
      <Text key={r.name} wrap="truncate-end" {...(here && paint.color ? { inverse: true } : {})}>
        {here ? '›' : ' '} {picked ? '●' : '○'} {cell(r.name, nw)} {cell(r.size === null ? '?' : formatBytes(r.size), SIZE_W, 'right')}{'  '}
        <Text {...(paint.color ? { color: st.color } : {})}>{cell(st.text, STATE_W)}</Text>
        {'  '}
        {fit(r.path, pathW)}
      </Text>
    );
  });
  const empty = !state.loaded ? `${spinner(state.now)} reading ${state.manifest}…` : state.rows.length === 0 ? 'no artifacts yet: add one with `hoard add <url>`' : `no artifact matches "${state.filter}"`;
  return (
    <Box flexDirection="column" height={height}>
      {lines.length > 0 ? lines : <Line text={empty} paint={paint} dim />}
    </Box>
  );
}

function Heads({ state, paint }: { readonly state: UiState; readonly paint: Paint }) {
  const nw = nameWidthFor(state.rows, state.width);
  return <Line text={`    ${cell('NAME', nw)} ${cell('SIZE', SIZE_W, 'right')}  ${cell('STATE', STATE_W)}  PATH`} paint={paint} dim />;
}

function Header({ state, paint }: { readonly state: UiState; readonly paint: Paint }) {
  const out = state.rows.filter((r) => r.state !== 'in sync').length;
  const counts = state.loaded
    ? `${state.rows.length} artifact${state.rows.length === 1 ? '' : 's'}, ${out === 0 ? 'all in sync' : `${out} out of sync`}${state.selected.length ? `, ${state.selected.length} selected` : ''}`
    : 'reading…';
  const free = state.free === null ? '' : ` · ${formatBytes(state.free)} free`;
  return (
    <>
      <Text wrap="truncate-end">
        <Text {...(paint.color ? { bold: true } : {})}>hoard ui</Text>
        {' · '}
        <Text {...(paint.color ? { color: out === 0 && state.loaded ? 'green' : 'yellow' } : {})}>{counts}</Text>
        {state.job && state.job.op !== 'status' ? ` · ${spinner(state.now)} ${state.interrupted ? 'stopping' : state.job.op === 'verify' ? 'verifying' : 'syncing'}` : ''}
        {` · ${state.manifest}`}
      </Text>
      <Line text={`store ${state.store}${free}${state.output ? ` · output ${state.output}` : ''}`} paint={paint} dim />
    </>
  );
}

function logColor(l: LogLine): Color | undefined {
  return l.tone === 'error' ? 'red' : l.tone === 'warn' ? 'yellow' : l.tone === 'hint' || l.tone === 'note' ? 'gray' : undefined;
}

/** Downloads, imports and the latest outcomes, in `height` lines. */
export function ActivityPane({ state, height, paint }: { readonly state: UiState; readonly height: number; readonly paint: Paint }) {
  const a = state.activity;
  const work = a.downloads.length + a.images.length;
  const working = state.job && state.job.op !== 'status' && work === 0
    ? [`${spinner(state.now)} ${state.job.op === 'verify' ? 'verifying every blob in the store and the outputs…' : state.interrupted ? 'stopping…' : `syncing ${state.job.names.join(', ')}…`}`]
    : [];
  const room = Math.max(0, height - Math.min(work, height) - working.length);
  // The latest lines at the bottom, word-wrapped; what does not fit scrolls off the top.
  const rows: Array<{ text: string; tone: LogLine['tone'] }> = [];
  for (let i = state.log.length - 1; i >= 0 && rows.length < room; i--) {
    const l = state.log[i]!;
    rows.unshift(...wrap(l.text, state.width).map((text) => ({ text, tone: l.tone })));
  }
  const log = room > 0 ? rows.slice(-room) : [];
  return (
    <Box flexDirection="column" height={height}>
      <ProgressRows activity={{ ...a, downloads: a.downloads.slice(0, height), images: a.images.slice(0, Math.max(0, height - a.downloads.length)) }} now={state.now} width={state.width} paint={paint} />
      {working.map((w) => (
        <Line key="working" text={fit(w, state.width)} color="magenta" paint={paint} />
      ))}
      {log.map((l, i) => (
        <Line key={`l-${i}`} text={l.text} color={logColor(l)} paint={paint} />
      ))}
    </Box>
  );
}

/** The footer's keys: [key, what it does], and the wider spelling of a few keys. */
export const KEYS: ReadonlyArray<readonly [string, string, string?]> = [
  ['↑↓/jk', 'move'], ['␣', 'select', 'space'], ['a', 'all'], ['s', 'sync', 's/Enter'], ['f', 'force'],
  ['v', 'verify'], ['/', 'filter'], ['?', 'help'], ['q', 'quit'],
];

/** The keys in one line: `↑↓/jk move  ␣ select  a all  s sync …` (80 columns), wider when there is room. */
export function footerText(width: number): Array<{ key: string; label: string; sep: string }> {
  const wide = KEYS.map(([k, l, w]) => ({ key: w ?? k, label: l, sep: ' · ' }));
  const len = (items: Array<{ key: string; label: string; sep: string }>) => items.reduce((n, i, idx) => n + [...i.key].length + 1 + i.label.length + (idx ? i.sep.length : 0), 0);
  if (len(wide) <= width) return wide;
  const short = KEYS.map(([k, l]) => ({ key: k, label: l, sep: '  ' }));
  // A narrow terminal: the keys that lead to the others (? lists them all).
  return len(short) <= width ? short : short.filter((i) => ['↑↓/jk', 's', '?', 'q'].includes(i.key));
}

export function Footer({ width, paint }: { readonly width: number; readonly paint: Paint }) {
  const items = footerText(width);
  return (
    <Text wrap="truncate-end">
      {items.map((i, idx) => (
        <Text key={i.key}>
          {idx ? i.sep : ''}
          <Text {...(paint.color ? { bold: true } : {})}>{i.key}</Text> <Text {...(paint.color ? { dimColor: true } : {})}>{i.label}</Text>
        </Text>
      ))}
    </Text>
  );
}

function NoteLine({ state, paint }: { readonly state: UiState; readonly paint: Paint }) {
  if (state.mode === 'filter' || state.filter) {
    const n = visibleRows(state).length;
    return <Line text={`/${state.filter}${state.mode === 'filter' ? '▏' : ''}  (${n} match${n === 1 ? '' : 'es'}${state.mode === 'filter' ? '; Enter keeps it, Esc clears it' : ''})`} color="cyan" paint={paint} />;
  }
  if (state.notice) return <Line text={state.notice} color="yellow" paint={paint} />;
  // Otherwise, why the highlighted artifact is in its state.
  const row = visibleRows(state)[state.cursor];
  const cached = row?.teamCache ? `the team cache${state.remote ? ` ${state.remote}` : ''} has it: sync pulls it from there` : '';
  const why = row && row.state !== 'in sync' ? [row.detail, cached].filter(Boolean).join('; ') : '';
  if (row && why) return <Line text={`${row.name}: ${why}`} paint={paint} dim />;
  return <Text> </Text>;
}

export const HELP: ReadonlyArray<readonly [string, string]> = [
  ['↑ ↓  j k', 'move; PgUp PgDn, g G for the first and last'],
  ['space', 'select or unselect the artifact, and move down'],
  ['a', 'select every listed artifact (again: unselect them)'],
  ['s, Enter', 'sync the selection, or the highlighted artifact'],
  ['f', 'force-sync: download again and replace outputs'],
  ['v', 'verify: re-hash every blob and output'],
  ['/', 'filter by name; Enter keeps the filter, Esc clears it'],
  ['Esc', 'clear the selection and the filter'],
  ['?', 'this help; any key closes it'],
  ['q', 'quit (Ctrl-C stops a running sync and quits)'],
];

const LEGEND: ReadonlyArray<readonly [RowState, string]> = [
  ['in sync', 'blob in the store, output in place, image present'],
  ['not downloaded', `not in the store yet ("${IN_TEAM_CACHE}": the team cache has it)`],
  ['not linked', 'the output file is missing or outdated'],
  ['corrupt', 'the stored blob does not match its digest'],
  ['unlocked', 'no digest in hoard.json yet'],
  ['conflict', 'someone else\'s file is at the output path'],
  ['image missing', 'the container engine lacks the image'],
  ['image stale', 'the tag was built from another file'],
  ['not an image archive', 'the file is no archive an engine can take'],
];

export function Help({ height, paint, width }: { readonly height: number; readonly width: number; readonly paint: Paint }) {
  const lines: Array<{ text: string; color?: Color }> = [
    ...HELP.map(([k, v]) => ({ text: fit(`${cell(k, 15)} ${v}`, width) })),
    ...LEGEND.map(([k, v]) => ({ text: fit(`${cell(k, 15)} ${v}`, width), color: STATE_COLOR[k] })),
  ];
  return (
    <Box flexDirection="column" height={height}>
      {lines.slice(0, height).map((l, i) => (
        <Line key={i} text={l.text} color={l.color} paint={paint} />
      ))}
    </Box>
  );
}

/** The whole `hoard ui` screen: exactly `state.height` lines of at most `state.width` columns. */
export function Screen({ state, color }: { readonly state: UiState; readonly color: boolean }) {
  const paint = { color };
  const { activity } = layout(state);
  const rule = '─'.repeat(Math.max(0, state.width));
  return (
    <Box flexDirection="column" width={state.width} height={state.height}>
      <Header state={state} paint={paint} />
      {state.mode === 'help' ? (
        <Help height={state.height - 4} width={state.width} paint={paint} />
      ) : (
        <>
          <Heads state={state} paint={paint} />
          <ArtifactList state={state} paint={paint} />
          <Line text={rule} paint={paint} dim />
          <ActivityPane state={state} height={activity} paint={paint} />
          <NoteLine state={state} paint={paint} />
        </>
      )}
      <Footer width={state.width} paint={paint} />
    </Box>
  );
}

// ---------------------------------------------------------------- live hoard sync

/** `⠹ [██████░░░░] 2/5 artifacts · 12.0 MiB/470 MiB · 15.2 MiB/s · ETA 30s` */
export function overallText(s: LiveState): string {
  const a = s.activity;
  const o = overall(a, s.now);
  const frac = o.expected > 0 ? o.received / o.expected : a.total ? a.done / a.total : 0;
  const eta = o.speed > 0 && o.expected > o.received ? ` · ETA ${formatDuration(((o.expected - o.received) / o.speed) * 1000)}` : '';
  const bytes = o.expected > 0 ? ` · ${formatBytes(o.received)}/${formatBytes(o.expected)} · ${formatBytes(o.speed)}/s${eta}` : '';
  const tail = ` ${a.done}/${a.total} artifact${a.total === 1 ? '' : 's'}${bytes}`;
  const barWidth = Math.max(6, Math.min(30, s.width - tail.length - 4));
  return fit(`${spinner(s.now)} ${bar(frac, barWidth)}${tail}`, s.width);
}

/** `hoard sync` on a terminal: the printed lines stay; the bars below are redrawn. */
export function LiveSync({ state, color }: { readonly state: LiveState; readonly color: boolean }) {
  const paint = { color };
  return (
    <>
      <Static items={[...state.lines]}>{(line, i) => <Text key={i}>{line}</Text>}</Static>
      {state.running && (
        <Box flexDirection="column">
          <Line text={overallText(state)} paint={paint} bold />
          <ProgressRows activity={state.activity} now={state.now} width={state.width} paint={paint} />
        </Box>
      )}
    </>
  );
}
