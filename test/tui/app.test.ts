// `hoard ui` in-process: the Ink app in a fake terminal (ink-testing-library), driven by keys,
// over the real engine (the CLI's status/sync/verify) against a loopback HTTP server.
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { render } from 'ink-testing-library';
import { createElement } from 'react';
import type { GlobalOptions } from '../../src/cli/commands.ts';
import { resolveSettings } from '../../src/cli/config.ts';
import { teamCacheFor } from '../../src/cli/push.ts';
import { createUiEngine } from '../../src/cli/ui.ts';
import type { Digest } from '../../src/core/digest.ts';
import { createRegistryClient } from '../../src/remote/client.ts';
import { parseRemote } from '../../src/remote/ref.ts';
import { UiApp } from '../../src/tui/app.tsx';
import { control } from '../../src/tui/index.ts';
import { initialState, reducer } from '../../src/tui/state.ts';
import { createStore } from '../../src/tui/store.ts';
import { gate, listTree, project, randomData, sha256, startServer, tmpDir } from '../helpers.ts';
import { registrySkip, startRegistry } from '../fixtures/registry.ts';

async function until(what: string, fn: () => boolean, ms = 10_000, show?: () => string): Promise<void> {
  const end = Date.now() + ms;
  while (!fn()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}${show ? `:\n${show()}` : ''}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function mount(t: import('node:test').TestContext, manifest: unknown, o: { teamCache?: boolean } = {}) {
  const p = await project(t, manifest);
  const g: GlobalOptions = { manifest: p.manifestPath, store: p.store, json: false, verbose: false, quiet: false, color: false };
  // The team cache as `hoard ui` gets it from main.ts: the manifest's "remote" (no config file, no credentials).
  const env = { HOME: tmpDir(t), XDG_CONFIG_HOME: tmpDir(t) };
  const base = createUiEngine(g, env, { jobs: 2, images: false, engine: 'auto', ...(o.teamCache ? { teamCache: teamCacheFor(resolveSettings({}, env), env) } : {}) }, p.manifestPath);
  // Counts finished team cache lookups: something to wait for when nothing is shown.
  const probes = { done: 0 };
  const engine = { ...base, teamCache: async (...a: Parameters<NonNullable<typeof base.teamCache>>) => {
    await base.teamCache!(...a);
    probes.done++;
  } };
  const store = createStore(reducer, initialState({ manifest: engine.manifest, store: engine.store, width: 80, height: 23 }));
  const app = render(createElement(UiApp, { store, color: false }));
  t.after(() => app.unmount());
  const exit = control(store, engine);
  // A test that fails before q still ends the controller (its ticker would keep the process alive).
  t.after(() => {
    store.dispatch({ type: 'interrupt' });
    store.dispatch({ type: 'interrupt' });
  });
  const frame = () => app.lastFrame() ?? '';
  return { p, app, store, exit, frame, probes };
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
  const srv = await startServer(t, { '/slow.bin': { body: data, until: gate(t).until } });
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

/** Puts `data` into the registry as hoard push does (the blob and its anchoring manifest). */
async function pushBlob(t: import('node:test').TestContext, remote: string, data: Buffer, title: string): Promise<void> {
  const file = path.join(tmpDir(t), title);
  await fs.writeFile(file, data);
  const client = createRegistryClient({ ref: parseRemote(remote, 'test'), env: {} });
  try {
    const digest: Digest = `sha256:${sha256(data)}`;
    await client.uploadBlob(file, digest, data.length);
    await client.putAnchor({ digest, size: data.length, title });
  } finally {
    await client.close();
  }
}

test('team cache (a real registry): after the list is shown, a missing blob the registry holds says "in team cache"; one it lacks does not; s pulls it from there', { skip: registrySkip }, async (t) => {
  const reg = await startRegistry(t);
  const a = randomData(40_000);
  const b = randomData(30_000);
  await pushBlob(t, reg.remote('lab/ui'), a, 'a.bin');
  const srv = await startServer(t, { '/a.bin': a, '/b.bin': b });
  const { app, exit, frame, store, probes } = await mount(t, {
    version: 1, remote: reg.remote('lab/ui'),
    artifacts: { alpha: { url: srv.url('/a.bin'), digest: `sha256:${sha256(a)}`, size: a.length }, beta: { url: srv.url('/b.bin'), digest: `sha256:${sha256(b)}`, size: b.length } },
  }, { teamCache: true });
  // The first list the app shows comes before any answer from the registry.
  const firstList = new Promise<ReturnType<typeof store.getState>>((resolve) => {
    const off = store.subscribe(() => {
      if (store.getState().loaded) {
        off();
        resolve(store.getState());
      }
    });
  });
  const first = await firstList;
  assert.deepEqual(first.rows.map((r) => [r.name, r.state, r.teamCache]), [['alpha', 'not downloaded', undefined], ['beta', 'not downloaded', undefined]]);

  await until('the team cache answer', () => /alpha\s+39\.1 KiB\s+in team cache/.test(frame()) && probes.done === 1, 10_000, frame);
  assert.match(frame(), /beta\s+29\.3 KiB\s+not downloaded/, 'a blob the registry lacks: nothing shown');
  assert.equal(store.getState().rows[1]!.teamCache, false);
  assert.match(frame(), new RegExp(`alpha: the team cache ${reg.remote('lab/ui').replace(/[.]/g, '\\.')} has it`), 'the highlighted row says why');
  assert.ok(!store.getState().log.some((l) => l.tone === 'warn' || l.tone === 'error'), 'no warning for the miss');
  assert.equal(srv.total(), 0, 'looking costs the origin nothing');

  // s on alpha: pulled from the registry, not from its url.
  app.stdin.write('s');
  await until('alpha in sync', () => /alpha\s+39\.1 KiB\s+in sync/.test(frame()) && store.getState().job === null, 10_000, frame);
  assert.match(frame(), /alpha\s+pulled from cache/);
  assert.equal(srv.hits.get('/a.bin') ?? 0, 0, 'the origin was not asked');
  app.stdin.write('q');
  assert.equal(await exit, 0);
});

test('team cache down: the list shows the blobs as not downloaded, with no warning or error', { skip: registrySkip }, async (t) => {
  const reg = await startRegistry(t);
  await reg.stop();
  const a = randomData(10_000);
  const srv = await startServer(t, { '/a.bin': a });
  const { app, exit, frame, store, probes } = await mount(t, {
    version: 1, remote: reg.remote('lab/ui'), artifacts: { alpha: { url: srv.url('/a.bin'), digest: `sha256:${sha256(a)}`, size: a.length } },
  }, { teamCache: true });
  await until('the lookup to end', () => probes.done === 1 && store.getState().loaded, 10_000, frame);
  assert.match(frame(), /alpha\s+9\.8 KiB\s+not downloaded/);
  assert.equal(store.getState().rows[0]!.teamCache, undefined, 'no answer: nothing known');
  assert.deepEqual(store.getState().log, [], 'nothing in the log');
  assert.doesNotMatch(frame(), /team cache|warning|error/);
  app.stdin.write('q');
  assert.equal(await exit, 0);
});
