// The TUI's components rendered by Ink into a fake terminal (ink-testing-library): what a
// person sees for a given state, at 80×24.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { render } from 'ink-testing-library';
import { createElement } from 'react';
import { downloadText, footerText, LiveSync, Screen } from '../../src/tui/components.tsx';
import { initialLive, liveReducer, type LiveAction, type LiveState } from '../../src/tui/live.ts';
import { initialState, reducer, type Action, type UiState } from '../../src/tui/state.ts';
import type { SyncEvent, UiEvent } from '../../src/tui/types.ts';

type Plan = Extract<SyncEvent, { type: 'plan' }>;
const plan = (name: string, path: string, size: number | undefined, o: Partial<Plan> = {}): Plan => ({
  type: 'plan', name, path, inSync: false, blob: 'none', output: 'none', ...(size !== undefined ? { size } : {}), ...o,
});
const MiB = 1024 * 1024;

/** A lab's worth of artifacts, every state once. */
const PLANS: Plan[] = [
  plan('ceos-lab', 'images/cEOS-lab-4.32.1F.tar.xz', 470 * MiB, { inSync: true, image: 'none', imageRef: 'arista/ceos:4.32.1F' }),
  plan('veos-lab', 'images/vEOS-lab-4.32.1F.qcow2', 560 * MiB, { blob: 'fetch', output: 'link' }),
  plan('lab-tools', 'lab-tools-2.3.0-linux-amd64.run', 12 * MiB, { output: 'link' }),
  plan('srl', 'images/srlinux-24.3.tar', 900 * MiB, { blob: 'refetch', blobReason: 'size 5, expected 943718400' }),
  plan('notes', 'notes.pdf', 2048, { output: 'conflict', outputReason: 'a file hoard did not put there' }),
  plan('frr', 'images/frr-10.tar', undefined, { blob: 'lock', output: 'link' }),
  plan('xrd', 'images/xrd-control-plane-24.1.1.tar.gz', 1200 * MiB, { image: 'import', imageRef: 'ios-xr/xrd-control-plane:24.1.1' }),
  plan('vjunos', 'images/vjunos-router-23.2R1.tar', 700 * MiB, { image: 'reimport', imageRef: 'vrnetlab/vr-vjunos:23.2R1' }),
];

let clock = 50_000;
const ev = (event: UiEvent, at = (clock += 10)): Action => ({ type: 'event', event, at });

function listState(o: { width?: number; height?: number } = {}): UiState {
  const s0 = initialState({ manifest: 'hoard.json', store: '/home/me/.cache/hoard', width: o.width ?? 80, height: o.height ?? 23 });
  return [
    ev({ type: 'start', artifacts: PLANS.length, store: '/home/me/.cache/hoard', output: '/home/me/lab/artifacts', dryRun: true }),
    ...PLANS.map((p) => ev(p)),
    ev({
      type: 'summary', artifacts: 8, hits: 0, misses: 0, failed: 0, conflicts: 1, bytesDownloaded: 0, bytesSaved: 0, elapsedMs: 4,
      manifestUpdated: false, imagesPresent: 1, imagesImported: 0, outOfSync: 7,
    }),
    { type: 'done', id: 1, result: { code: 3, error: null }, at: (clock += 10) } as Action,
    { type: 'free', bytes: 118 * 1024 * MiB } as Action,
  ].reduce(reducer, s0);
}

const key = (input: string, k: Record<string, boolean> = {}): Action => ({ type: 'key', input, key: k });

function frame(state: UiState): string[] {
  const r = render(createElement(Screen, { state, color: false }));
  const out = r.lastFrame() ?? '';
  r.unmount();
  return out.split('\n');
}

function assertFits(lines: string[], width: number, height: number) {
  assert.equal(lines.length, height, `the screen is ${height} lines:\n${lines.join('\n')}`);
  for (const l of lines) assert.ok([...l].length <= width, `wider than ${width}: ${JSON.stringify(l)}`);
}

test('the list shows every artifact with size, state in words and path, and fits 80×24', () => {
  const lines = frame(listState());
  assertFits(lines, 80, 23);
  const text = lines.join('\n');
  assert.match(lines[0]!, /hoard ui · 8 artifacts, 7 out of sync · hoard\.json/);
  assert.match(lines[1]!, /store \/home\/me\/\.cache\/hoard · 118 GiB free · output \/home\/me\/lab\/artifacts/);
  const row = (name: string) => lines.find((l) => l.includes(` ${name} `)) ?? assert.fail(`no row for ${name}:\n${text}`);
  assert.match(row('ceos-lab'), /^› ○ ceos-lab\s+470 MiB\s+in sync\s+images\/cEOS-lab-4\.32\.1F\.tar\.xz$/);
  assert.match(row('veos-lab'), /560 MiB\s+not downloaded\s+images\/vEOS/);
  assert.match(row('lab-tools'), /12\.0 MiB\s+not linked/);
  assert.match(row('srl'), /900 MiB\s+corrupt/);
  assert.match(row('notes'), /2\.0 KiB\s+conflict/);
  assert.match(row('frr'), /\?\s+unlocked/);
  assert.match(row('xrd'), /1\.2 GiB\s+image missing/);
  assert.match(row('vjunos'), /image stale/);
  assert.match(lines.at(-1)!, /↑↓\/jk move {2}␣ select {2}a all {2}s sync {2}f force {2}v verify {2}\/ filter {2}\? help {2}q quit/);
});

test('the cursor and the selection are marked', () => {
  const s = [key('j'), key(' '), key(' ')].reduce(reducer, listState());
  const lines = frame(s);
  assert.match(lines.find((l) => l.includes('veos-lab'))!, /^ {2}● veos-lab/);
  assert.match(lines.find((l) => l.includes('lab-tools'))!, /^ {2}● lab-tools/);
  assert.match(lines.find((l) => l.includes(' srl '))!, /^› ○ srl/);
  assert.match(lines[0]!, /2 selected/);
});

test('the filter narrows the list and shows what was typed', () => {
  const s = [key('/'), key('lab')].reduce(reducer, listState());
  const lines = frame(s);
  assertFits(lines, 80, 23);
  const names = lines.filter((l) => /^[› ] [●○] /.test(l)).map((l) => l.split(/\s+/)[2]);
  assert.deepEqual(names, ['ceos-lab', 'veos-lab', 'lab-tools']);
  assert.ok(lines.some((l) => l.startsWith('/lab▏  (3 matches')), lines.join('\n'));
  const none = frame([key('/'), key('zzz')].reduce(reducer, listState()));
  assert.ok(none.some((l) => l.includes('no artifact matches "zzz"')));
});

test('progress rows: a bar, bytes, speed and ETA per download, a spinner per import; the state column follows', () => {
  let s = [key('j'), key('a'), key('s')].reduce(reducer, listState());
  const t0 = 100_000;
  s = [
    ev({ type: 'start', artifacts: 8, store: '/s', output: '/o', dryRun: false }, t0),
    ev({ type: 'download', name: 'veos-lab', url: 'https://downloads.example.com/vEOS-lab.qcow2', size: 560 * MiB, reason: 'missing' }, t0),
    ev({ type: 'download', name: 'frr', url: 'https://downloads.example.com/frr.tar', size: null, reason: 'unlocked' }, t0),
    ev({ type: 'progress', name: 'veos-lab', received: 140 * MiB, total: 560 * MiB }, t0 + 10_000),
    ev({ type: 'progress', name: 'frr', received: 3 * MiB, total: null }, t0 + 10_000),
    ev({ type: 'image', name: 'xrd', ref: 'ios-xr/xrd-control-plane:24.1.1', action: 'import' }, t0 + 7_000),
    ev({ type: 'line', text: 'lab-tools  cached, linked (hardlink)  artifacts/lab-tools-2.3.0-linux-amd64.run\n', stream: 'out' }, t0 + 10_000),
  ].reduce(reducer, s);
  const lines = frame(s);
  assertFits(lines, 80, 23);
  const text = lines.join('\n');
  assert.match(text, /↓ veos-lab [█░]+ {2}25% +140 MiB\/560 MiB +14\.0 MiB\/s ETA 30\.0s/);
  assert.match(text, /↓ frr +[░]+ +3\.0 MiB +307 KiB\/s$/m, 'unknown size: no percentage, no ETA');
  const bars = lines.filter((l) => l.startsWith('↓ ')).map((l) => l.indexOf(' ', l.lastIndexOf('░')));
  assert.equal(new Set(bars).size, 1, 'the bars end in the same column');
  assert.match(text, /[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏] xrd +importing ios-xr\/xrd-control-plane:24\.1\.1 3s/);
  assert.match(text, /lab-tools {2}cached, linked \(hardlink\)/);
  assert.match(lines.find((l) => l.includes(' veos-lab ') && l.includes('images/'))!, /↓ 25%/);
  assert.match(lines.find((l) => l.includes(' frr ') && l.includes('images/'))!, /↓ 3\.0 MiB/);
  assert.match(lines.find((l) => l.includes(' xrd ') && l.includes('images/'))!, /importing/);
});

test('errors from the engine appear with their hint, and long lines wrap instead of being cut', () => {
  let s = [key('s')].reduce(reducer, listState());
  s = reducer(s, {
    type: 'done', id: s.job!.id, at: 1,
    result: { code: 2, error: { code: 'E_MANIFEST', message: 'hoard.json is not a valid manifest: /artifacts/x/url expected an http:// or https:// URL', hint: 'fix hoard.json and press s again' } },
  });
  const lines = frame(s);
  assertFits(lines, 80, 23);
  const text = lines.join('\n');
  assert.match(text, /^error: hoard\.json is not a valid manifest: \/artifacts\/x\/url expected an http:\/\/\nor https:\/\/ URL$/m);
  assert.match(text, /hint: fix hoard\.json and press s again/);
});

test('the help screen lists the keys and the states, within 80×24', () => {
  const lines = frame(reducer(listState(), key('?')));
  assertFits(lines, 80, 23);
  const text = lines.join('\n');
  for (const k of ['space', 'PgUp', 'filter by name', 'force-sync', 'verify', 'quit', 'image stale', 'conflict']) assert.ok(text.includes(k), `help lacks ${k}`);
});

test('a missing blob the team cache holds says so in its row, and why under the list when highlighted', () => {
  let s = listState();
  s = reducer(s, ev({ type: 'check', name: 'veos-lab', subject: 'blob', path: 'oci://registry.example.com/lab/hoard-cache', result: 'in the team cache', inTeamCache: true }));
  // Only rows whose blob sync would download take the answer (veos-lab's plan had no digest: give it one).
  assert.equal(s.rows[1]!.teamCache, undefined, 'a row without a locked digest is not marked');
  s = { ...s, rows: s.rows.map((r) => (r.name === 'veos-lab' || r.name === 'srl' ? { ...r, missing: `sha256:${'b'.repeat(64)}` } : r)) };
  for (const name of ['veos-lab', 'srl']) s = reducer(s, ev({ type: 'check', name, subject: 'blob', path: 'oci://registry.example.com/lab/hoard-cache', result: 'in the team cache', inTeamCache: true }));
  let lines = frame(s);
  assertFits(lines, 80, 23);
  assert.match(lines.find((l) => l.includes('veos-lab'))!, /veos-lab\s+560 MiB\s+in team cache\s+images\/vEOS/);
  assert.match(lines.find((l) => l.includes(' srl '))!, /srl\s+900 MiB\s+corrupt/, 'a more serious word stays');
  lines = frame(reducer(s, key('j')));
  assert.ok(lines.some((l) => l.includes('veos-lab: the team cache oci://registry.example.com/lab/hoard-cache has it')), lines.join('\n'));
  lines = frame([key('j'), key('j'), key('j')].reduce(reducer, s));
  assert.ok(lines.some((l) => l.includes('srl: size 5, expected 943718400; the team cache')), lines.join('\n'));
  const help = frame(reducer(s, key('?'))).join('\n');
  assert.match(help, /not downloaded\s+not in the store yet \("in team cache": the team cache has it\)/);
});

test('a wide terminal gets the long footer; a narrow one the short one, never wrapped', () => {
  assert.equal(footerText(120)[1]!.key, 'space');
  assert.equal(footerText(80)[1]!.key, '␣');
  assert.deepEqual(footerText(50).map((i) => i.key), ['↑↓/jk', 's', '?', 'q'], 'narrow: the essential keys, whole');
  const lines = frame(listState({ width: 60, height: 15 }));
  assertFits(lines, 60, 15);
  assert.ok([...downloadText({ name: 'a-very-long-artifact-name', received: 5, total: 10, started: 0, at: 1000 }, 1000, 40, 20)].length <= 40);
});

test('live sync: printed lines stay, an overall bar and one line per download below, gone after the summary', () => {
  const steps: LiveAction[] = [
    { type: 'event', event: { type: 'start', artifacts: 3, store: '/s', output: '/o', dryRun: false }, at: 0 },
    { type: 'event', event: { type: 'line', text: 'lab-tools  cached, up to date  artifacts/lab-tools.run\n', stream: 'out' }, at: 0 },
    { type: 'event', event: { type: 'artifact', name: 'lab-tools', path: 'lab-tools.run', digest: null, size: 5, blob: 'cached', output: 'present', bytesDownloaded: 0 }, at: 0 },
    { type: 'event', event: { type: 'download', name: 'ceos-lab', url: 'u', size: 400 * MiB, reason: 'missing' }, at: 0 },
    { type: 'event', event: { type: 'download', name: 'veos-lab', url: 'u', size: 100 * MiB, reason: 'missing' }, at: 0 },
    { type: 'event', event: { type: 'progress', name: 'ceos-lab', received: 100 * MiB, total: 400 * MiB }, at: 4000 },
    { type: 'event', event: { type: 'progress', name: 'veos-lab', received: 50 * MiB, total: 100 * MiB }, at: 4000 },
  ];
  const state: LiveState = steps.reduce(liveReducer, initialLive(80));
  const r = render(createElement(LiveSync, { state, color: false }));
  const text = r.lastFrame() ?? '';
  r.unmount();
  assert.match(text, /^lab-tools {2}cached, up to date {2}artifacts\/lab-tools\.run$/m);
  assert.match(text, /[█░]+ 1\/3 artifacts · 150 MiB\/500 MiB · 37\.5 MiB\/s · ETA 9\.3s/);
  assert.match(text, /↓ ceos-lab [█░]+ {2}25% +100 MiB\/400 MiB/);
  assert.match(text, /↓ veos-lab [█░]+ {2}50% +50\.0 MiB\/100 MiB/);
  for (const l of text.split('\n')) assert.ok([...l].length <= 80, l);

  const done = liveReducer(state, {
    type: 'event', at: 5000,
    event: { type: 'summary', artifacts: 3, hits: 1, misses: 2, failed: 0, conflicts: 0, bytesDownloaded: 500 * MiB, bytesSaved: 5, elapsedMs: 5000, manifestUpdated: false, imagesPresent: 0, imagesImported: 0 },
  });
  const r2 = render(createElement(LiveSync, { state: liveReducer(done, { type: 'event', event: { type: 'line', text: '3 artifacts: 1 hit, 2 misses\n', stream: 'out' }, at: 5000 }), color: false }));
  const end = r2.lastFrame() ?? '';
  r2.unmount();
  assert.doesNotMatch(end, /[█░]/, 'no bars after the summary');
  assert.match(end, /3 artifacts: 1 hit, 2 misses/);
});
