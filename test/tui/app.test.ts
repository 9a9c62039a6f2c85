// `hoard ui` in-process: the Ink app in a fake terminal (ink-testing-library), driven by keys,
// over the real engine (the CLI's status/sync/verify) against a loopback HTTP server.
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { render } from 'ink-testing-library';
import { createElement } from 'react';
import type { GlobalOptions } from '../../src/cli/commands.ts';
import { createUiEngine } from '../../src/cli/ui.ts';
import { UiApp } from '../../src/tui/app.tsx';
import { control } from '../../src/tui/index.ts';
import { initialState, reducer } from '../../src/tui/state.ts';
import { createStore } from '../../src/tui/store.ts';
import { listTree, project, randomData, sha256, startServer } from '../helpers.ts';

async function until(what: string, fn: () => boolean, ms = 10_000, show?: () => string): Promise<void> {
  const end = Date.now() + ms;
  while (!fn()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}${show ? `:\n${show()}` : ''}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function mount(t: import('node:test').TestContext, manifest: unknown) {
  const p = await project(t, manifest);
  const g: GlobalOptions = { manifest: p.manifestPath, store: p.store, json: false, verbose: false, quiet: false, color: false };
  const engine = createUiEngine(g, {}, { jobs: 2, images: false, engine: 'auto' }, p.manifestPath);
  const store = createStore(reducer, initialState({ manifest: engine.manifest, store: engine.store, width: 80, height: 23 }));
  const app = render(createElement(UiApp, { store, color: false }));
  t.after(() => app.unmount());
  const exit = control(store, engine);
  const frame = () => app.lastFrame() ?? '';
  return { p, app, store, exit, frame };
}

test('a selects all, s syncs them with the real engine, the list refreshes to in sync, q exits 0', async (t) => {
  const a = randomData(150_000);
  const b = randomData(20_000);
  const srv = await startServer(t, { '/a.bin': a, '/b.bin': b });
  const { p, app, exit, frame, store } = await mount(t, {
    version: 1,
    artifacts: { alpha: { url: srv.url('/a.bin'), path: 'images/a.bin' }, beta: { url: srv.url('/b.bin'), digest: `sha256:${sha256(b)}`, size: b.length } },
  });
  await until('the first status', () => frame().includes('2 artifacts, 2 out of sync'), 10_000, frame);
  assert.match(frame(), /alpha\s+\?\s+unlocked\s+images\/a\.bin/);
  assert.match(frame(), /beta\s+19\.5 KiB\s+not downloaded\s+b\.bin/);

  app.stdin.write('a');
  await until('the selection', () => frame().includes('2 selected'));
  app.stdin.write('s');
  await until('everything in sync', () => frame().includes('2 artifacts, all in sync') && store.getState().job === null);
  assert.match(frame(), /alpha\s+146 KiB\s+in sync/, 'the entry was locked and its size is shown');
  assert.match(frame().replace(/\s*\n\s*/g, ' '), /2 artifacts: 0 hits, 2 misses, 166 KiB downloaded, 0 B saved in \S+ · hoard\.json updated/, 'the summary');
  assert.equal(sha256(await fs.readFile(path.join(p.dir, 'artifacts', 'images', 'a.bin'))), sha256(a));
  assert.equal(sha256(await fs.readFile(path.join(p.dir, 'artifacts', 'b.bin'))), sha256(b));
  assert.equal(JSON.parse(await fs.readFile(p.manifestPath, 'utf8')).artifacts.alpha.digest, `sha256:${sha256(a)}`);

  // v re-hashes everything. Written to through its hard link, beta's blob is damaged too:
  // verify removes it, and the refreshed list says so.
  await fs.chmod(path.join(p.dir, 'artifacts', 'b.bin'), 0o644);
  await fs.appendFile(path.join(p.dir, 'artifacts', 'b.bin'), 'x');
  app.stdin.write('v');
  await until('verify', () => /verified 2 blobs/.test(frame()) && store.getState().job === null, 10_000, frame);
  assert.match(frame().replace(/\s*\n\s*/g, ' '), /verified 2 blobs \(\S+ KiB\), removed 1 corrupt .*; 2 outputs, 1 differ/);
  // The output is still the inode hoard linked: hoard's own damaged file, which the next sync repairs.
  assert.match(frame(), /beta\s+19\.5 KiB\s+not downloaded/, 'the damaged hard link is hoard\'s: sync repairs it');

  app.stdin.write('q');
  assert.equal(await exit, 0);
});

test('Ctrl-C during a download aborts it, removes the temporary file, and exits 130', async (t) => {
  const data = randomData(50_000);
  // The server holds the answer: the download is in flight when Ctrl-C comes.
  const srv = await startServer(t, { '/slow.bin': { body: data, delay: 5_000 } });
  const { p, app, exit, frame, store } = await mount(t, { version: 1, artifacts: { slow: { url: srv.url('/slow.bin'), digest: `sha256:${sha256(data)}` } } });
  await until('the first status', () => frame().includes('1 out of sync'));
  app.stdin.write('s');
  await until('the download', () => store.getState().activity.downloads.length === 1);
  assert.match(frame(), /↓ slow/);
  app.stdin.write('\x03');
  assert.equal(await exit, 130);
  assert.deepEqual(await listTree(path.join(p.store, 'v1', 'tmp')), [], 'no temporary file left');
  assert.deepEqual(await listTree(path.join(p.store, 'v1', 'blobs', 'sha256')), [], 'no blob');
});

test('q while a sync runs asks to wait; the sync goes on', async (t) => {
  const data = randomData(10_000);
  const srv = await startServer(t, { '/f.bin': { body: data, delay: 300 } });
  const { app, exit, frame, store } = await mount(t, { version: 1, artifacts: { f: { url: srv.url('/f.bin'), digest: `sha256:${sha256(data)}` } } });
  await until('the first status', () => frame().includes('1 out of sync'));
  app.stdin.write('s');
  await until('the sync', () => store.getState().job?.op === 'sync');
  app.stdin.write('q');
  await until('the notice', () => frame().includes('a sync is running: wait for it, or press Ctrl-C'));
  await until('in sync', () => frame().includes('all in sync') && store.getState().job === null);
  app.stdin.write('q');
  assert.equal(await exit, 0);
});
