// Progress without a terminal (CI, pipes): a start line per download, a progress line at a
// steady pace, nothing with -q, and --json progress events at a bounded rate. The pace is
// HOARD_PROGRESS_INTERVAL_MS here (internal, for tests), so no test waits 10 s.
import assert from 'node:assert/strict';
import type http from 'node:http';
import { test } from 'node:test';
import { formatPair, formatProgressLine } from '../../src/cli/print.ts';
import { foldActivity, noActivity, overall } from '../../src/tui/activity.ts';
import { jsonLines, project, randomData, sha256, startServer } from '../helpers.ts';

const MiB = 1024 * 1024;

test('the progress line: both sizes in one unit, speed, ETA', () => {
  assert.equal(formatProgressLine('ceos-lab', 212 * MiB, 470 * MiB, 18 * MiB), 'ceos-lab  212/470 MiB  18.0 MiB/s  ETA 15s');
  assert.equal(formatProgressLine('x', 5 * MiB, null, 0), 'x  5.0 MiB  0 B/s');
  assert.equal(formatPair(1536, 2048), '1.5/2.0 KiB');
  assert.equal(formatProgressLine('big', 100 * MiB, 10_000 * MiB, MiB), 'big  0.1/9.8 GiB  1.0 MiB/s  ETA 165m00s');
});

test('after a resume, the overall speed counts only the bytes moved in this run', () => {
  let a = foldActivity(noActivity, { type: 'start', artifacts: 1, store: '/s', output: '/o', dryRun: false }, 0);
  a = foldActivity(a, { type: 'download', name: 'x', url: 'http://h/x', size: 100 * MiB, reason: 'missing', resumeFrom: 90 * MiB }, 0);
  a = foldActivity(a, { type: 'progress', name: 'x', received: 95 * MiB, total: 100 * MiB }, 1000);
  assert.equal(overall(a, 1000).speed, 5 * MiB);
});

/** 10 chunks of 50 KiB, one every 40 ms: a download that takes a moment. */
function slow(body: Buffer) {
  return (_req: http.IncomingMessage, res: http.ServerResponse) => {
    res.writeHead(200, { 'content-length': String(body.length) });
    let i = 0;
    const next = () => {
      if (i >= 10) return void res.end();
      res.write(body.subarray(i * 51_200, (i + 1) * 51_200));
      i++;
      setTimeout(next, 40);
    };
    next();
  };
}

test('in a pipe: a start line and progress lines on stderr; -q silences them; --json progress is bounded', async (t) => {
  const body = randomData(512_000);
  const srv = await startServer(t, { '/big.bin': slow(body) });
  const manifest = { version: 1, artifacts: { big: { url: srv.url('/big.bin'), digest: `sha256:${sha256(body)}`, size: body.length } } };
  const p = await project(t, manifest);
  const { hoard } = await import('../helpers.ts');
  const run = (args: string[], interval: string) => hoard(args, { cwd: p.dir, store: p.store, env: { HOARD_PROGRESS_INTERVAL_MS: interval } });
  const host = new URL(srv.url('/')).host;

  const r = await run(['sync', '--no-images'], '50');
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, new RegExp(`^big {2}downloading 500 KiB from ${host.replace(/\./g, '\\.')}$`, 'm'));
  assert.match(r.stderr, /^big {2}\d+(\.\d)?\/500(\.0)? KiB {2}[\d.]+ (B|KiB|MiB)\/s {2}ETA \d+s$/m);
  assert.match(r.stdout, /big {2}downloaded 500 KiB/);

  const quiet = await hoard(['sync', '-q', '--force'], { cwd: p.dir, store: p.store, env: { HOARD_PROGRESS_INTERVAL_MS: '50' } });
  assert.equal(quiet.code, 0, quiet.stderr);
  assert.equal(quiet.stderr, '');

  // A pace longer than the download: --json carries only the last progress event.
  const json = await run(['sync', '--json', '--force'], '600000');
  assert.equal(json.code, 0, json.stderr);
  const progress = jsonLines(json.stdout).filter((e) => e.type === 'progress');
  assert.equal(progress.length, 1, JSON.stringify(progress));
  assert.equal(progress[0]!.received, body.length);
  const often = await run(['sync', '--json', '--force'], '0');
  assert.ok(jsonLines(often.stdout).filter((e) => e.type === 'progress').length > 1);
});

test('without the test pace, a short download prints its start line and no progress line', async (t) => {
  const data = randomData(20_000);
  const srv = await startServer(t, { '/small.bin': data });
  const p = await project(t, { version: 1, artifacts: { small: { url: srv.url('/small.bin'), digest: `sha256:${sha256(data)}`, size: data.length } } });
  const r = await p.run('sync');
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /^small {2}downloading 19\.5 KiB from /m);
  assert.doesNotMatch(r.stderr, /\/s/);
});
