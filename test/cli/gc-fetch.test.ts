// gc and `hoard fetch`: a fetched blob no manifest names is kept while it was used within the
// fetch retention (--fetch-retention, HOARD_FETCH_RETENTION, config "fetchRetention"), through
// the built CLI on real temp folders and a loopback HTTP server.
import assert from 'node:assert/strict';
import { existsSync, promises as fs } from 'node:fs';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { hoard, jsonLines, randomData, sha256, startServer, tmpDir, type RunResult } from '../helpers.ts';

const DAY = 86_400_000;

function ok(r: RunResult, what: string): RunResult {
  assert.equal(r.code, 0, `${what}: exit ${r.code}\n${r.stderr}${r.stdout}`);
  return r;
}

/** A store with one blob that only `hoard fetch` wanted. */
async function fetchedBlob(t: TestContext) {
  const data = randomData(20_000);
  const srv = await startServer(t, { '/tool.bin': data });
  const base = tmpDir(t, 'hoard-gc-fetch-');
  const store = path.join(base, 'store');
  const config = path.join(base, 'config');
  const run = (args: string[], env: Record<string, string> = {}) => hoard(args, { cwd: base, store, env: { XDG_CONFIG_HOME: config, ...env } });
  ok(await run(['fetch', srv.url('/tool.bin')]), 'fetch');
  const hex = sha256(data);
  const blob = path.join(store, 'v1', 'blobs', 'sha256', hex);
  assert.ok(existsSync(blob));
  return {
    base, store, hex, blob, run, srv,
    gc: (args: string[] = [], env: Record<string, string> = {}) => run(['gc', ...args], env),
    /** Makes the blob's last-use record (and fetch's own) `ms` older. */
    age: async (ms: number) => {
      for (const name of ['used.json', 'fetched.json']) {
        const file = path.join(store, 'v1', 'state', name);
        const rec = JSON.parse(await fs.readFile(file, 'utf8')) as Record<string, number>;
        assert.equal(typeof rec[hex], 'number', `${name} records the fetched blob`);
        rec[hex] = rec[hex]! - ms;
        await fs.writeFile(file, JSON.stringify(rec));
      }
    },
    writeConfig: async (doc: unknown) => {
      await fs.mkdir(path.join(config, 'hoard'), { recursive: true });
      await fs.writeFile(path.join(config, 'hoard', 'config.json'), JSON.stringify(doc));
    },
  };
}

const removed = (r: RunResult) => jsonLines(r.stdout).filter((e) => e.type === 'removed' && e.subject === 'blob').map((e) => String(e.digest).slice(7));

test('a blob only hoard fetch wanted survives gc while used within the retention (default 30 days), and says why', async (t) => {
  const f = await fetchedBlob(t);
  const r = ok(await f.gc(['--json']), 'gc');
  assert.deepEqual(removed(r), []);
  assert.ok(existsSync(f.blob), 'the fetched blob is kept');
  const kept = jsonLines(r.stdout).find((e) => e.type === 'kept');
  assert.equal(kept?.reason, 'fetched');
  assert.equal(kept?.digest, `sha256:${f.hex}`);
  assert.ok(Date.parse(String(kept?.keptUntil)) - Date.parse(String(kept?.lastUsed)) === 30 * DAY);
  const summary = jsonLines(r.stdout).at(-1)!;
  assert.equal(summary.fetchedKept, 1);
  assert.equal(summary.fetchRetentionMs, 30 * DAY);

  // 3 days later: --dry-run and -v say why it stays; a plain gc keeps quiet about it.
  await f.age(3 * DAY);
  const dry = ok(await f.gc(['--dry-run']), 'gc --dry-run');
  assert.match(dry.stdout, new RegExp(`kept sha256:${f.hex}  \\(fetched, used 3 days ago\\)`));
  const plain = ok(await f.gc(), 'gc');
  assert.doesNotMatch(plain.stdout, /kept/);
  assert.match(plain.stdout, /1 fetched blob used within 30 d/);
  assert.match(ok(await f.gc(['-v']), 'gc -v').stdout, /\(fetched, used 3 days ago\)/);
  assert.ok(existsSync(f.blob));

  // A second fetch is a use (answered from the store): the clock starts again.
  await f.age(27 * DAY);
  assert.equal(jsonLines(ok(await f.run(['fetch', '--json', f.srv.url('/tool.bin')]), 'fetch again').stdout).at(-1)!.result, 'cached');
  ok(await f.gc(), 'gc after a re-fetch');
  assert.ok(existsSync(f.blob), 're-fetching counts as a use');
});

test('a fetched blob unused for longer than the retention is removed; --fetch-retention 0 removes it at once', async (t) => {
  const f = await fetchedBlob(t);
  await f.age(31 * DAY);
  const r = ok(await f.gc(['--json']), 'gc');
  assert.deepEqual(removed(r), [f.hex]);
  assert.ok(!existsSync(f.blob));
  // What fetch recorded of it is forgotten with it.
  const rec = JSON.parse(await fs.readFile(path.join(f.store, 'v1', 'state', 'fetched.json'), 'utf8')) as Record<string, number>;
  assert.equal(rec[f.hex], undefined);

  const g = await fetchedBlob(t);
  assert.deepEqual(removed(ok(await g.gc(['--json', '--fetch-retention', '0']), 'gc --fetch-retention 0')), [g.hex]);
  assert.ok(!existsSync(g.blob));
});

test('--fetch-retention, HOARD_FETCH_RETENTION and the config file\'s "fetchRetention" set the period (flag > variable > file)', async (t) => {
  const f = await fetchedBlob(t);
  await f.age(2 * DAY);
  // 7d keeps a blob used 2 days ago, 12h does not: dry runs, so each case sees the same store.
  const keeps = async (args: string[], env: Record<string, string> = {}) => {
    const r = ok(await f.gc(['--dry-run', '--json', ...args], env), `gc ${args.join(' ')} ${JSON.stringify(env)}`);
    return removed(r).length === 0;
  };
  assert.equal(await keeps(['--fetch-retention', '7d']), true);
  assert.equal(await keeps(['--fetch-retention', '12h']), false);
  assert.equal(await keeps(['--fetch-retention', '30m']), false);
  assert.equal(await keeps([], { HOARD_FETCH_RETENTION: '12h' }), false);
  assert.equal(await keeps([], { HOARD_FETCH_RETENTION: '7d' }), true);
  await f.writeConfig({ fetchRetention: '1d' });
  assert.equal(await keeps([]), false, 'the config file');
  assert.equal(await keeps([], { HOARD_FETCH_RETENTION: '3d' }), true, 'the variable beats the file');
  assert.equal(await keeps(['--fetch-retention', '12h'], { HOARD_FETCH_RETENTION: '3d' }), false, 'the flag beats the variable');
  const shown = jsonLines(ok(await f.run(['config', '--json']), 'config').stdout)[0]!.settings as Record<string, { value: unknown; origin: string }>;
  assert.deepEqual([shown.fetchRetention!.value, shown.fetchRetention!.origin], ['1d', 'file']);
  // A real run under the file's 1d: the blob goes.
  assert.deepEqual(removed(ok(await f.gc(['--json']), 'gc')), [f.hex]);
});

test('a bad retention is a usage error (exit 2) naming the flag, the variable or the file, and removes nothing', async (t) => {
  const f = await fetchedBlob(t);
  await f.age(40 * DAY);
  const flag = await f.gc(['--fetch-retention', 'soon']);
  assert.equal(flag.code, 2, flag.stderr);
  assert.match(flag.stderr, /error: --fetch-retention "soon" is not a duration/);
  assert.match(flag.stderr, /hint: .*30d/);
  const env = await f.gc([], { HOARD_FETCH_RETENTION: '-1d' });
  assert.equal(env.code, 2, env.stderr);
  assert.match(env.stderr, /HOARD_FETCH_RETENTION "-1d" is not a duration/);
  await f.writeConfig({ fetchRetention: 'a month' });
  const file = await f.gc();
  assert.equal(file.code, 2, file.stderr);
  assert.match(file.stderr, /"fetchRetention" expected a duration/);
  assert.ok(existsSync(f.blob), 'nothing was removed');
});
