// The configuration file ($XDG_CONFIG_HOME/hoard/config.json) and the precedence of every
// setting: flag > HOARD_* variable > configuration file > default, as `hoard config` reports it
// and as the commands use it.
import assert from 'node:assert/strict';
import { promises as fs, statSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { hoard, jsonLines, randomData, sha256, startServer, tmpDir } from '../helpers.ts';

/** A home, a cache and a config folder of the test's own; `run` never sets HOARD_STORE. */
async function setup(t: TestContext) {
  const base = tmpDir(t);
  const home = path.join(base, 'home');
  const config = path.join(base, 'config');
  const cache = path.join(base, 'cache');
  const dir = path.join(base, 'project');
  await fs.mkdir(home);
  await fs.mkdir(dir);
  const file = path.join(config, 'hoard', 'config.json');
  const writeConfig = async (text: unknown) => {
    await fs.mkdir(path.dirname(file), { recursive: true });
    await fs.writeFile(file, typeof text === 'string' ? text : JSON.stringify(text, null, 2));
  };
  const env = { HOME: home, XDG_CONFIG_HOME: config, XDG_CACHE_HOME: cache };
  const run = (args: string[], extra: Record<string, string> = {}) => hoard(args, { cwd: dir, env: { ...env, ...extra } });
  return { base, home, config, cache, dir, file, writeConfig, run };
}

type Shown = Record<string, { value: unknown; origin: string; source: string }>;

async function shown(s: Awaited<ReturnType<typeof setup>>, args: string[] = [], env: Record<string, string> = {}) {
  const r = await s.run(['config', '--json', ...args], env);
  assert.equal(r.code, 0, r.stderr);
  const events = jsonLines(r.stdout);
  assert.equal(events.length, 1);
  assert.equal(events[0]!.type, 'config');
  return events[0] as { file: string; fileFound: boolean; settings: Shown };
}

test('hoard config: every setting from its default, then the config file, then HOARD_*, then a flag', async (t) => {
  const s = await setup(t);

  // 1. Defaults; the store under $XDG_CACHE_HOME.
  let c = await shown(s);
  assert.equal(c.file, s.file);
  assert.equal(c.fileFound, false);
  assert.deepEqual(c.settings, {
    store: { value: path.join(s.cache, 'hoard'), origin: 'default', source: '$XDG_CACHE_HOME/hoard' },
    enabled: { value: true, origin: 'default', source: 'default' },
    maxSize: { value: null, origin: 'default', source: 'default' },
    fetchRetention: { value: '30d', origin: 'default', source: 'default' },
    jobs: { value: 4, origin: 'default', source: 'default' },
    link: { value: 'auto', origin: 'default', source: 'default' },
    engine: { value: 'auto', origin: 'default', source: 'default' },
    remote: { value: null, origin: 'default', source: 'default' },
    push: { value: false, origin: 'default', source: 'default' },
    remotes: { value: {}, origin: 'default', source: 'default' },
  });
  // Without XDG_CACHE_HOME: ~/.cache/hoard.
  const noXdg = await s.run(['config', '--json'], { XDG_CACHE_HOME: '' });
  assert.deepEqual((jsonLines(noXdg.stdout)[0]!.settings as Shown).store, { value: path.join(s.home, '.cache', 'hoard'), origin: 'default', source: '~/.cache/hoard' });

  // 2. The configuration file beats the defaults; ~/ is the home folder; a number of bytes is kept as written.
  await s.writeConfig({ store: '~/big/hoard', enabled: false, maxSize: 5_000_000, fetchRetention: '7d', jobs: 8, link: 'copy', engine: 'podman' });
  c = await shown(s);
  assert.equal(c.fileFound, true);
  const file = { origin: 'file', source: s.file };
  assert.deepEqual(c.settings, {
    store: { value: path.join(s.home, 'big', 'hoard'), ...file },
    enabled: { value: false, ...file },
    maxSize: { value: '5000000', ...file },
    fetchRetention: { value: '7d', ...file },
    jobs: { value: 8, ...file },
    link: { value: 'copy', ...file },
    engine: { value: 'podman', ...file },
    remote: { value: null, origin: 'default', source: 'default' },
    push: { value: false, origin: 'default', source: 'default' },
    remotes: { value: {}, origin: 'default', source: 'default' },
  });

  // 3. HOARD_* beats the file.
  const env = {
    HOARD_STORE: path.join(s.base, 'env-store'), HOARD_NO_STORE: '0', HOARD_MAX_SIZE: '5GiB', HOARD_FETCH_RETENTION: '12h',
    HOARD_JOBS: '3', HOARD_LINK: 'hardlink', HOARD_ENGINE: 'docker',
  };
  c = await shown(s, [], env);
  assert.deepEqual(c.settings, {
    store: { value: path.join(s.base, 'env-store'), origin: 'env', source: 'HOARD_STORE' },
    enabled: { value: true, origin: 'env', source: 'HOARD_NO_STORE' },
    maxSize: { value: '5GiB', origin: 'env', source: 'HOARD_MAX_SIZE' },
    fetchRetention: { value: '12h', origin: 'env', source: 'HOARD_FETCH_RETENTION' },
    jobs: { value: 3, origin: 'env', source: 'HOARD_JOBS' },
    link: { value: 'hardlink', origin: 'env', source: 'HOARD_LINK' },
    engine: { value: 'docker', origin: 'env', source: 'HOARD_ENGINE' },
    remote: { value: null, origin: 'default', source: 'default' },
    push: { value: false, origin: 'default', source: 'default' },
    remotes: { value: {}, origin: 'default', source: 'default' },
  });

  // 4. A flag beats the variable.
  const flagStore = path.join(s.base, 'flag-store');
  c = await shown(s, ['--store', flagStore, '--jobs', '2', '--link', 'reflink', '--engine', 'auto', '--max-size', '1GB'], env);
  assert.deepEqual(c.settings, {
    store: { value: flagStore, origin: 'flag', source: '--store' },
    enabled: { value: true, origin: 'env', source: 'HOARD_NO_STORE' },
    maxSize: { value: '1GB', origin: 'flag', source: '--max-size' },
    fetchRetention: { value: '12h', origin: 'env', source: 'HOARD_FETCH_RETENTION' },
    jobs: { value: 2, origin: 'flag', source: '--jobs' },
    link: { value: 'reflink', origin: 'flag', source: '--link' },
    engine: { value: 'auto', origin: 'flag', source: '--engine' },
    remote: { value: null, origin: 'default', source: 'default' },
    push: { value: false, origin: 'default', source: 'default' },
    remotes: { value: {}, origin: 'default', source: 'default' },
  });
  c = await shown(s, ['--no-store'], env);
  assert.deepEqual(c.settings.enabled, { value: false, origin: 'flag', source: '--no-store' });
  assert.deepEqual(c.settings.store, { value: path.join(s.base, 'env-store'), origin: 'env', source: 'HOARD_STORE' });
  c = await shown(s, [], { HOARD_NO_STORE: 'yes' });
  assert.deepEqual(c.settings.enabled, { value: false, origin: 'env', source: 'HOARD_NO_STORE' });

  // The same, for a person: one line per setting, its value and where it came from.
  const text = await s.run(['config', '--jobs', '2'], { HOARD_LINK: 'hardlink' });
  assert.equal(text.code, 0, text.stderr);
  assert.match(text.stdout, new RegExp(`^config file +${s.file}$`, 'm'));
  assert.match(text.stdout, /^jobs +2 +flag --jobs$/m);
  assert.match(text.stdout, /^link +hardlink +env HOARD_LINK$/m);
  assert.match(text.stdout, new RegExp(`^engine +podman +config file ${s.file}$`, 'm'));
  assert.match(text.stdout, new RegExp(`^store +${path.join(s.home, 'big', 'hoard')} +config file`, 'm'));
});

test('sync uses the configuration file: its store, its link mode for entries without one; HOARD_STORE and --link beat it', async (t) => {
  const a = randomData(30_000);
  const b = randomData(20_000);
  const srv = await startServer(t, { '/a.bin': a, '/b.bin': b });
  const s = await setup(t);
  const manifest = {
    version: 1,
    artifacts: {
      a: { url: srv.url('/a.bin'), digest: `sha256:${sha256(a)}`, size: a.length },
      b: { url: srv.url('/b.bin'), digest: `sha256:${sha256(b)}`, size: b.length, link: 'hardlink' },
    },
  };
  await fs.writeFile(path.join(s.dir, 'hoard.json'), JSON.stringify(manifest));
  const store = path.join(s.base, 'configured-store');
  await s.writeConfig({ store, link: 'copy' });
  const blob = (root: string, data: Buffer) => path.join(root, 'v1', 'blobs', 'sha256', sha256(data));
  const out = (name: string) => path.join(s.dir, 'artifacts', name);

  const r = await s.run(['sync']);
  assert.equal(r.code, 0, r.stderr);
  assert.ok(statSync(blob(store, a)).isFile(), 'the blob is in the configured store');
  assert.equal(srv.total(), 2);
  // "link": "copy" from the file: a's output is a copy of its own; b's entry says hardlink and keeps it.
  assert.notEqual(statSync(out('a.bin')).ino, statSync(blob(store, a)).ino);
  assert.equal(statSync(out('a.bin')).mode & 0o777, 0o644);
  assert.equal(statSync(out('b.bin')).ino, statSync(blob(store, b)).ino);
  assert.match(r.stdout, /^a {2}downloaded .*, linked \(copy\)/m);

  // The configured link mode is part of what status compares: a hard link where a copy is wanted is drift.
  await fs.rm(out('a.bin'));
  await fs.link(blob(store, a), out('a.bin'));
  assert.equal((await s.run(['status'])).code, 3);
  // --link applies to every artifact: a hard link is what is wanted then.
  const flag = await s.run(['sync', '--link', 'hardlink']);
  assert.equal(flag.code, 0, flag.stderr);
  assert.equal(statSync(out('a.bin')).ino, statSync(blob(store, a)).ino);

  // HOARD_STORE beats the file's store: the other store is empty, so both are downloaded again.
  await fs.rm(path.join(s.dir, 'artifacts'), { recursive: true });
  const other = path.join(s.base, 'env-store');
  const e = await s.run(['sync'], { HOARD_STORE: other });
  assert.equal(e.code, 0, e.stderr);
  assert.ok(statSync(blob(other, a)).isFile());
  assert.equal(srv.total(), 4);
});

test('jobs: the configuration file sets how many downloads run at once, HOARD_JOBS beats it', async (t) => {
  // A server that counts requests in flight; each answer waits, so parallel requests overlap.
  const bodies = new Map(['/1.bin', '/2.bin', '/3.bin'].map((p) => [p, randomData(1000)]));
  let inFlight = 0;
  let most = 0;
  const server = http.createServer((req, res) => {
    inFlight++;
    most = Math.max(most, inFlight);
    const body = bodies.get(req.url ?? '')!;
    setTimeout(() => {
      res.end(body, () => inFlight--);
    }, 300);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => {
    server.closeAllConnections();
    server.close(() => resolve());
  }));
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const s = await setup(t);
  const artifacts = Object.fromEntries([...bodies.keys()].map((p) => [p.slice(1, 2), { url: `${origin}${p}` }]));
  await fs.writeFile(path.join(s.dir, 'hoard.json'), JSON.stringify({ version: 1, artifacts }));
  await s.writeConfig({ jobs: 1 });

  const one = await s.run(['sync', '--json', '--store', path.join(s.base, 's1')]);
  assert.equal(one.code, 0, one.stderr);
  assert.equal(most, 1, 'one download at a time');

  most = 0;
  await fs.rm(path.join(s.dir, 'artifacts'), { recursive: true });
  const three = await s.run(['sync', '--json', '--store', path.join(s.base, 's2')], { HOARD_JOBS: '3' });
  assert.equal(three.code, 0, three.stderr);
  assert.equal(most, 3, 'HOARD_JOBS=3 wins over the file');
});

test('a broken configuration file is exit 2 naming the file, the key, what was expected and where; every command refuses', async (t) => {
  const s = await setup(t);
  await fs.writeFile(path.join(s.dir, 'hoard.json'), JSON.stringify({ version: 1, artifacts: {} }));
  const cases: Array<[string, RegExp[]]> = [
    ['{\n  "job": 8\n}\n', [/:2:10: "job" is not a setting \(known: store, enabled, maxSize, fetchRetention, jobs, link, engine, remote, push, remotes\)/]],
    ['{"jobs": "8"}', [/:1:10: "jobs" expected a whole number of at least 1, found "8"/]],
    ['{"jobs": 0, "link": "symlink", "enabled": "no"}', [
      /"jobs" expected a whole number of at least 1, found 0/,
      /:1:21: "link" expected one of "auto", "reflink", "hardlink", "copy", found "symlink"/,
      /"enabled" expected true or false, found "no"/,
    ]],
    ['{"store": "relative/store"}', [/"store" expected an absolute path, or one starting with ~\//]],
    ['{"maxSize": -5}', [/"maxSize" expected a size: a number of bytes, or a string such as "5GB" or "5GiB", found -5/]],
    ['{"engine": "docker",\n  "jobs": 2,\n}\n', [/:3:1: expected a property name in double quotes, found "}" \(not valid JSON\)/]],
    ['{"jobs": 2, "jobs": 3}', [/duplicate key "jobs"/]],
    ['[]', [/expected an object such as \{"jobs": 8\}/]],
  ];
  for (const [text, patterns] of cases) {
    await s.writeConfig(text);
    for (const command of [['config'], ['sync'], ['status']]) {
      const r = await s.run(command);
      assert.equal(r.code, 2, `${command[0]} with ${text}: ${r.stderr}`);
      assert.match(r.stderr, new RegExp(`hoard: error: ${s.file} is not a valid configuration:`));
      for (const p of patterns) assert.match(r.stderr, p, `${text}\n${r.stderr}`);
      assert.match(r.stderr, /hint: fix .*config\.json/);
    }
  }
  // Every pattern names the file on its line.
  await s.writeConfig('{"jobs": "8"}');
  assert.match((await s.run(['config'])).stderr, new RegExp(`^ {2}${s.file}:1:10: "jobs"`, 'm'));
  // Nothing was created on the way.
  await assert.rejects(fs.stat(path.join(s.cache, 'hoard')));
});

test('a bad HOARD_* setting is exit 2 naming the variable', async (t) => {
  const s = await setup(t);
  for (const [name, value, expected] of [
    ['HOARD_JOBS', '0', /HOARD_JOBS=0: expected a whole number of at least 1/],
    ['HOARD_JOBS', 'many', /HOARD_JOBS=many: expected a whole number/],
    ['HOARD_LINK', 'symlink', /HOARD_LINK=symlink: expected one of auto, reflink, hardlink, copy/],
    ['HOARD_ENGINE', 'lxc', /HOARD_ENGINE=lxc: expected one of auto, docker, podman/],
    ['HOARD_NO_STORE', 'maybe', /HOARD_NO_STORE=maybe: expected true or false/],
  ] as const) {
    const r = await s.run(['config'], { [name]: value });
    assert.equal(r.code, 2, `${name}=${value}`);
    assert.match(r.stderr, expected);
    assert.match(r.stderr, new RegExp(`hint: fix or unset ${name}`));
  }
  const flag = await s.run(['config', '--jobs', '0']);
  assert.equal(flag.code, 2);
  assert.match(flag.stderr, /--jobs must be a whole number of at least 1, not "0"/);
});

test('maxSize in the configuration file: each sync evicts other projects\' least recently used blobs afterwards; --max-size beats it', async (t) => {
  const [a, b, c] = [randomData(40_000), randomData(40_000), randomData(40_000)];
  const srv = await startServer(t, { '/a.bin': a, '/b.bin': b, '/c.bin': c });
  const s = await setup(t);
  const store = path.join(s.base, 'store');
  await s.writeConfig({ store, maxSize: '100KB' });
  const blob = (data: Buffer) => path.join(store, 'v1', 'blobs', 'sha256', sha256(data));
  const projectOf = async (name: string, data: Buffer) => {
    const dir = path.join(s.base, name);
    await fs.mkdir(dir);
    await fs.writeFile(path.join(dir, 'hoard.json'), JSON.stringify({ version: 1, artifacts: { [name]: { url: srv.url(`/${name}.bin`), digest: `sha256:${sha256(data)}`, size: data.length } } }));
    return path.join(dir, 'hoard.json');
  };
  const [ma, mb, mc] = [await projectOf('a', a), await projectOf('b', b), await projectOf('c', c)];
  assert.equal((await s.run(['sync', '-m', ma])).code, 0);
  assert.equal((await s.run(['sync', '-m', mb])).code, 0);
  // 80 kB in the store; the third blob makes 120 kB: the least recently used, a's, goes.
  const r = await s.run(['sync', '-m', mc, '--json']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(jsonLines(r.stdout).at(-1)!.evicted, 1);
  assert.equal(statSync(blob(a), { throwIfNoEntry: false }), undefined);
  assert.ok(statSync(blob(b)) && statSync(blob(c)));
  // A flag wins over the file: no limit worth evicting for.
  assert.equal((await s.run(['sync', '-m', ma, '--max-size', '1GB'])).code, 0);
  assert.ok(statSync(blob(a)) && statSync(blob(b)) && statSync(blob(c)));
});
