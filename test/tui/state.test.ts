// The TUI's state: event and key sequences in, state out. No terminal involved.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { etaOf, foldActivity, noActivity, overall, speedOf } from '../../src/tui/activity.ts';
import { initialLive, liveReducer } from '../../src/tui/live.ts';
import { initialState, layout, reducer, rowFromPlan, visibleRows, type Action, type KeyInput, type UiState } from '../../src/tui/state.ts';
import type { SyncEvent, UiEvent } from '../../src/tui/types.ts';

type Plan = Extract<SyncEvent, { type: 'plan' }>;
const plan = (name: string, o: Partial<Plan> = {}): Plan => ({
  type: 'plan', name, path: `${name}.bin`, inSync: false, blob: 'none', output: 'none', size: 1024, ...o,
});
const start = (n: number, dryRun = true): UiEvent => ({ type: 'start', artifacts: n, store: '/s', output: '/p/artifacts', dryRun });
const statusSummary = (n: number, out: number): UiEvent => ({
  type: 'summary', artifacts: n, hits: 0, misses: 0, failed: 0, conflicts: 0, bytesDownloaded: 0, bytesSaved: 0,
  elapsedMs: 3, manifestUpdated: false, imagesPresent: 0, imagesImported: 0, outOfSync: out,
});
const artifact = (name: string, o: Partial<Extract<SyncEvent, { type: 'artifact' }>> = {}): UiEvent => ({
  type: 'artifact', name, path: `${name}.bin`, digest: `sha256:${'a'.repeat(64)}`, size: 1024, blob: 'downloaded', output: 'linked',
  method: 'hardlink', bytesDownloaded: 1024, ...o,
});

let clock = 1000;
const ev = (event: UiEvent, at = (clock += 10)): Action => ({ type: 'event', event, at });
const key = (input: string, k: KeyInput = {}): Action => ({ type: 'key', input, key: k });
const run = (s: UiState, ...actions: Action[]) => actions.reduce(reducer, s);

const MIXED: Plan[] = [
  plan('ceos', { inSync: true }),
  plan('disk', { blob: 'fetch', output: 'link' }),
  plan('tools', { output: 'relink', outputReason: "hoard's file from sha256:…" }),
  plan('broken', { blob: 'refetch', blobReason: 'size 10, expected 1024' }),
  plan('mine', { output: 'conflict', outputReason: 'a file hoard did not put there' }),
  plan('new', { blob: 'lock', output: 'link', size: undefined }),
  plan('img', { image: 'import', imageRef: 'arista/ceos:4.32' }),
  plan('old', { image: 'reimport', imageRef: 'arista/ceos:4.31', imageReason: 'built from another file' }),
];

/** A state with the mixed list loaded (the first status run done). */
function loaded(plans: Plan[] = MIXED, size = { width: 80, height: 23 }): UiState {
  const s0 = initialState({ manifest: 'hoard.json', store: '/s', ...size });
  return run(s0, ev(start(plans.length)), ...plans.map((p) => ev(p)), ev(statusSummary(plans.length, plans.filter((p) => !p.inSync).length)), {
    type: 'done', id: 1, result: { code: 3, error: null }, at: (clock += 10),
  });
}

test('status plan events become rows with their state in words; the list swaps in on the summary', () => {
  const s0 = initialState({ manifest: 'hoard.json', store: '/s', width: 80, height: 23 });
  assert.deepEqual(s0.job, { id: 1, op: 'status' }, 'the app starts by reading the state');
  const mid = run(s0, ev(start(2)), ev(plan('a')));
  assert.equal(mid.rows.length, 0, 'rows are not shown half-read');
  const s = loaded();
  assert.deepEqual(
    s.rows.map((r) => [r.name, r.state]),
    [
      ['ceos', 'in sync'], ['disk', 'not downloaded'], ['tools', 'not linked'], ['broken', 'corrupt'],
      ['mine', 'conflict'], ['new', 'unlocked'], ['img', 'image missing'], ['old', 'image stale'],
    ],
  );
  assert.equal(s.rows[3]!.detail, 'size 10, expected 1024');
  assert.equal(s.rows[5]!.size, null);
  assert.equal(s.output, '/p/artifacts');
  assert.equal(s.job, null);
  assert.equal(s.loaded, true);
});

test('the most serious word wins: a conflict over a missing blob, a corrupt blob over a missing image', () => {
  assert.equal(rowFromPlan(plan('x', { blob: 'fetch', output: 'conflict' })).state, 'conflict');
  assert.equal(rowFromPlan(plan('x', { blob: 'refetch', image: 'import' })).state, 'corrupt');
  assert.equal(rowFromPlan(plan('x', { blob: 'adopt' })).state, 'not downloaded');
  assert.equal(rowFromPlan(plan('x', { image: 'unavailable', imageReason: 'docker is not installed' })).state, 'image unknown');
});

test('j/k and arrows move within the list; space toggles and moves down; a selects all, again none', () => {
  let s = loaded();
  s = run(s, key('k'), key('', { upArrow: true }));
  assert.equal(s.cursor, 0, 'no move above the first row');
  s = run(s, key('j'), key('', { downArrow: true }));
  assert.equal(s.cursor, 2);
  s = run(s, key(' '));
  assert.deepEqual(s.selected, ['tools']);
  assert.equal(s.cursor, 3);
  s = run(s, key('k'), key(' '));
  assert.deepEqual(s.selected, [], 'space again unselects');
  s = run(s, key('G'));
  assert.equal(s.cursor, 7);
  s = run(s, key('j'));
  assert.equal(s.cursor, 7, 'no move below the last row');
  s = run(s, key('a'));
  assert.equal(s.selected.length, 8);
  s = run(s, key('a'));
  assert.deepEqual(s.selected, []);
});

test('the list scrolls to keep the cursor on screen, and a resize re-fits it', () => {
  const many = Array.from({ length: 40 }, (_, i) => plan(`a${String(i).padStart(2, '0')}`));
  let s = loaded(many, { width: 80, height: 23 });
  const h = layout(s).list;
  assert.ok(h >= 5 && h < 40);
  assert.equal(layout(s).list + layout(s).activity + 6, 23, 'every line of the screen is accounted for');
  s = run(s, ...Array.from({ length: h + 3 }, () => key('j')));
  assert.equal(s.cursor, h + 3);
  assert.equal(s.scroll, 4);
  s = run(s, key('g'));
  assert.equal(s.scroll, 0);
  s = run(s, key('G'), { type: 'resize', width: 100, height: 40 });
  assert.equal(s.cursor, 39);
  assert.equal(s.scroll, 40 - layout(s).list);
});

test('/ filters by name as you type (keys that arrive together too); Esc clears it', () => {
  let s = loaded();
  s = run(s, key('j'), key('j'), key('/'), key('i'));
  assert.equal(s.mode, 'filter');
  assert.deepEqual(visibleRows(s).map((r) => r.name), ['disk', 'mine', 'img']);
  assert.equal(s.cursor, 0, 'the cursor goes back to the first match');
  s = run(s, key('mg'));
  assert.deepEqual(visibleRows(s).map((r) => r.name), ['img']);
  s = run(s, key('', { backspace: true }), key('', { backspace: true }));
  assert.equal(s.filter, 'i');
  s = run(s, key('', { return: true }));
  assert.equal(s.mode, 'list');
  assert.equal(s.filter, 'i', 'Enter keeps the filter');
  s = run(s, key('a'));
  assert.deepEqual(s.selected, ['disk', 'mine', 'img'], 'a selects what is listed');
  s = run(s, key('', { escape: true }));
  assert.equal(s.filter, '');
  assert.deepEqual(s.selected, []);
  // Typed as one chunk (tmux, a fast typist): "/", "o", "l".
  s = run(s, key('/ol'));
  assert.deepEqual(visibleRows(s).map((r) => r.name), ['tools', 'old']);
  s = run(s, key('\rjs'));
  assert.equal(s.mode, 'list', 'a return inside a chunk is Enter');
  assert.deepEqual(s.job, { id: 2, op: 'sync', names: ['old'], force: false });
});

test('s syncs the selection (in manifest order), or the highlighted row; f forces; v verifies', () => {
  let s = loaded();
  s = run(s, key('j'), key('j'), key('j'), key(' '), key('g'), key(' '));
  assert.deepEqual(s.selected, ['broken', 'ceos']);
  s = run(s, key('s'));
  assert.deepEqual(s.job, { id: 2, op: 'sync', names: ['ceos', 'broken'], force: false });
  assert.deepEqual(s.selected, [], 'the selection is handed to the sync');

  let t = run(loaded(), key('j'), key('', { return: true }));
  assert.deepEqual(t.job, { id: 2, op: 'sync', names: ['disk'], force: false }, 'Enter: the highlighted row');
  t = run(loaded(), key('f'));
  assert.deepEqual(t.job, { id: 2, op: 'sync', names: ['ceos'], force: true });
  t = run(loaded(), key('v'));
  assert.deepEqual(t.job, { id: 2, op: 'verify' });

  const busy = run(s, key('v'));
  assert.equal(busy.job, s.job, 'one job at a time');
  assert.match(busy.notice ?? '', /sync is running/);
  const cleared = run(busy, key('j'));
  assert.equal(cleared.notice, null, 'a notice lasts until the next key');
});

test('downloads show progress, outcomes mark rows in sync, and the end of a sync refreshes the list', () => {
  let s = run(loaded(), key('j'), key('s'));
  const id = s.job!.id;
  s = run(
    s,
    ev(start(1, false), 10_000),
    ev({ type: 'download', name: 'disk', url: 'http://x/disk', size: 1000, reason: 'missing' }, 10_000),
    ev({ type: 'progress', name: 'disk', received: 250, total: 1000 }, 10_500),
  );
  assert.equal(s.activity.total, 1);
  assert.deepEqual(s.activity.downloads.map((d) => [d.name, d.received, d.total]), [['disk', 250, 1000]]);
  assert.equal(speedOf(s.activity.downloads[0]!), 500);
  assert.equal(etaOf(s.activity.downloads[0]!), 1500);
  s = run(s, ev(artifact('disk', { bytesDownloaded: 1000 }), 11_000), ev({ type: 'line', text: 'disk  downloaded 1000 B, linked (hardlink)  artifacts/disk.bin\n', stream: 'out' }));
  assert.equal(s.activity.downloads.length, 0);
  assert.equal(s.activity.done, 1);
  assert.equal(s.rows.find((r) => r.name === 'disk')!.state, 'in sync');
  assert.deepEqual(s.log.map((l) => l.text), ['disk  downloaded 1000 B, linked (hardlink)  artifacts/disk.bin']);
  s = run(s, { type: 'done', id, result: { code: 0, error: null }, at: 12_000 });
  assert.deepEqual(s.job, { id: id + 1, op: 'status' }, 'status runs again after a sync');
});

test('a failed operation shows its error and hint; a failed artifact keeps its state', () => {
  let s = run(loaded(), key('s'));
  s = run(s, ev(start(1, false)), ev(artifact('ceos', { blob: 'failed', output: 'skipped', error: { code: 'E_HTTP', message: '503' } })));
  assert.equal(s.rows[0]!.state, 'in sync', 'unchanged until the status run says otherwise');
  s = run(s, { type: 'done', id: s.job!.id, result: { code: 2, error: { code: 'E_MANIFEST', message: 'hoard.json is not valid', hint: 'fix it' } }, at: 1 });
  assert.deepEqual(s.log.slice(-2), [{ text: 'error: hoard.json is not valid', tone: 'error' }, { text: 'hint: fix it', tone: 'hint' }]);
});

test('q quits with 0 when idle; Ctrl-C during a sync waits for it to stop, then exits 130', () => {
  assert.equal(run(loaded(), key('q')).exit, 0);
  assert.equal(run(loaded(), key('c', { ctrl: true })).exit, 130, 'nothing running: at once');

  let s = run(loaded(), key('s'));
  const id = s.job!.id;
  s = run(s, key('q'));
  assert.equal(s.exit, null, 'q does not abandon a running sync');
  s = run(s, key('c', { ctrl: true }));
  assert.equal(s.interrupted, true);
  assert.equal(s.exit, null, 'still stopping: temporary files are being removed');
  s = run(s, { type: 'done', id, result: { code: 130, error: null }, at: 1 });
  assert.equal(s.exit, 130);
  assert.equal(s.job, null, 'no refresh after an interrupt');
  assert.equal(run(s, key('j')), s, 'nothing changes once exiting');

  const twice = run(loaded(), key('s'), { type: 'interrupt' }, { type: 'interrupt' });
  assert.equal(twice.exit, 130, 'a second Ctrl-C leaves at once');
});

test('? shows help until the next key', () => {
  let s = run(loaded(), key('?'));
  assert.equal(s.mode, 'help');
  s = run(s, key('j'));
  assert.equal(s.mode, 'list');
  assert.equal(s.cursor, 0, 'the key that closes help does nothing else');
});

test('activity: retries restart a row, images are tracked until their artifact is done, the overall bar sums bytes', () => {
  let a = foldActivity(noActivity, start(3, false), 0);
  a = foldActivity(a, { type: 'download', name: 'a', url: 'u', size: 100, reason: 'missing' }, 0);
  a = foldActivity(a, { type: 'progress', name: 'a', received: 60, total: 100 }, 500);
  a = foldActivity(a, { type: 'download', name: 'a', url: 'mirror', size: 100, reason: 'missing' }, 600);
  assert.deepEqual(a.downloads.map((d) => [d.name, d.received, d.started]), [['a', 0, 600]]);
  a = foldActivity(a, { type: 'download', name: 'b', url: 'u', size: null, reason: 'unlocked' }, 600);
  a = foldActivity(a, { type: 'progress', name: 'b', received: 50, total: null }, 1600);
  a = foldActivity(a, { type: 'progress', name: 'a', received: 100, total: 100 }, 1600);
  a = foldActivity(a, artifact('a', { bytesDownloaded: 100 }), 1600);
  a = foldActivity(a, { type: 'image', name: 'c', ref: 'x/y:1', action: 'import' }, 1700);
  assert.deepEqual(a.images.map((i) => i.name), ['c']);
  assert.deepEqual(overall(a, 1600), { received: 150, expected: 150, speed: 150 / 1.6 }, 'speed since the first download began');
  assert.equal(etaOf(a.downloads[0]!), null, 'no ETA without a size');
  a = foldActivity(a, artifact('c', { image: 'imported', imageRef: 'x/y:1', bytesDownloaded: 0 }), 1800);
  assert.deepEqual(a.images, []);
  assert.equal(a.done, 2);
});

test('live sync: printed lines are kept in order, the bars run from start to summary', () => {
  let s = initialLive(80);
  s = liveReducer(s, { type: 'event', event: start(2, false), at: 1 });
  assert.equal(s.running, true);
  s = liveReducer(s, { type: 'event', event: { type: 'line', text: 'a  cached, up to date  artifacts/a\n', stream: 'out' }, at: 2 });
  s = liveReducer(s, { type: 'event', event: { type: 'line', text: 'warning: x\nhint: y\n', stream: 'err' }, at: 3 });
  assert.deepEqual(s.lines, ['a  cached, up to date  artifacts/a', 'warning: x', 'hint: y']);
  s = liveReducer(s, { type: 'event', event: statusSummary(2, 0), at: 4 });
  assert.equal(s.running, false);
  assert.equal(liveReducer(s, { type: 'tick', at: 9 }), s, 'no redraws once done');
});

test('team cache: missing blobs are looked up after the list is shown; answers mark rows; a new status keeps them and asks only for new blobs', () => {
  const d = (c: string) => `sha256:${c.repeat(64)}` as const;
  const plans: Plan[] = [
    plan('here', { inSync: true, digest: d('1') }),
    plan('cached', { blob: 'fetch', output: 'link', digest: d('2') }),
    plan('absent', { blob: 'fetch', output: 'link', digest: d('3') }),
    plan('broken', { blob: 'refetch', blobReason: 'size 10, expected 1024', digest: d('4') }),
    plan('new', { blob: 'lock', output: 'link', size: undefined }),
  ];
  let s = loaded(plans);
  assert.deepEqual(s.rows.map((r) => r.missing ?? null), [null, d('2'), d('3'), d('4'), null], 'only blobs sync would download');
  // The list is there before anything asks the remote; the lookup is a request, not a job.
  assert.ok(s.rows.every((r) => r.teamCache === undefined));
  assert.equal(s.job, null);
  assert.deepEqual(s.probe, { id: 1, blobs: [{ name: 'cached', digest: d('2') }, { name: 'absent', digest: d('3') }, { name: 'broken', digest: d('4') }] });
  const check = (name: string, there: boolean): UiEvent => ({
    type: 'check', name, subject: 'blob', path: 'oci://reg/team/cache', result: there ? 'in the team cache' : 'not in the team cache', inTeamCache: there,
  });
  s = run(s, ev(check('cached', true)), ev(check('absent', false)), ev(check('broken', true)));
  assert.deepEqual(s.rows.map((r) => r.teamCache ?? null), [null, true, false, true, null]);
  assert.equal(s.remote, 'oci://reg/team/cache');
  // A local check event (status -v's store probes) carries no team cache fact: nothing changes.
  assert.equal(run(s, ev({ type: 'check', name: 'cached', subject: 'blob', path: '/s/v1/blobs/sha256/22', result: 'missing' })).rows[1]!.teamCache, true);

  // After a sync of "broken" (status again): the known answers stay, a new missing blob is asked for.
  s = run(s, key('j'), key('j'), key('j'), key('s'));
  s = run(s, { type: 'done', id: s.job!.id, result: { code: 0, error: null }, at: (clock += 10) });
  const again = [plans[0]!, plans[1]!, plans[2]!, plan('broken', { inSync: true, digest: d('4') }), plan('new', { blob: 'fetch', output: 'link', digest: d('5') })];
  s = run(s, ev(start(5)), ...again.map((p) => ev(p)), ev(statusSummary(5, 3)));
  assert.deepEqual(s.rows.map((r) => r.teamCache ?? null), [null, true, false, null, null]);
  assert.deepEqual(s.probe, { id: 2, blobs: [{ name: 'new', digest: d('5') }] });
});
