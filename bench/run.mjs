#!/usr/bin/env node
// hoard benchmarks: the table of issue 13, each case measured side by side with a baseline in
// one run, and printed with the Node.js that ran it (hoard runs under the same Node).
//
//   npm run bench                                  build dist/, run every case of the table (a-i)
//   node bench/run.mjs c e g                       only these cases (also --only c,e,g); --json
//   PATH=/path/to/node24/bin:$PATH npm run bench   the same on another Node, e.g. Node 24 from npm:
//       mkdir -p /tmp/node24 && (cd /tmp/node24 && npm i --no-save node@24)
//       PATH=/tmp/node24/node_modules/node/bin:$PATH npm run bench
//
// Cases (the goal in brackets):
//   a  cold sync of 1 GiB vs curl -o                                     [<= 1.05x]
//      and vs curl -o then `sync -d` of its file (hoard fdatasyncs a blob before naming it)
//   b  4 concurrent cold 256 MiB (one sync, --jobs 4) vs 4 concurrent curl -o  [<= 1.10x]
//   c  no-op sync of 1,000 artifacts vs node -e 0                        [<= 1.6x Node 20, 2.5x Node >= 22]
//   d  no-op sync of 10,000 artifacts vs node -e 0                       [<= 6x]
//   e  hoard --help vs node -e 0                                         [<= 2.0x]
//   f  hoard verify of 4 GiB (4 blobs) vs openssl dgst -sha256 of the same files  [<= 1.10x]
//   g  hoard gc, 10,000 blobs / 100 manifests vs du -s                   [<= 3x]
//   h  first sync of 40,000 entries sharing one digest vs a no-op sync of them  [<= 3x]
//   i  peak RSS: cold sync of 1 GiB, and of 4 x 1 GiB at once            [<= 150 / 300 MiB]
// The team cache (issue 12) has its own: npm run bench:remote (bench/remote.mjs, a real registry).
// Not in the table, run only when named:
//   j  re-materialise 1 GiB from a warm store vs cp                      [<= 0.05x]
//   k  20 artifacts with images present: engine processes per sync (podman)
//   l  60 x 1 MB from a server 50 ms away: sync --jobs 8 vs a curl loop and aria2c -j 8
//
// Each time is wall clock from spawn() to exit; the table also gives each side's CPU time
// (user + sys of the process and its children, from bash's `times`), which a loaded
// machine disturbs less. Each case runs once untimed first (the served files are then in the
// page cache for both sides); dirty pages are flushed (`sync`) before every timed run.
//
// Environment:
//   BENCH_SIZE_MB    size of the big artifact (default 1024; b uses a quarter, f and i four)
//   BENCH_RUNS       measured runs per case (default 5; c, d, e, g three times as many; h one)
//   BENCH_SMALL      artifacts in case c (default 1000); BENCH_MANY in d (default 10000)
//   BENCH_GC_BLOBS   blobs in case g (default 10000), named by BENCH_GC_MANIFESTS manifests (100)
//   BENCH_SHARED     entries sharing one digest in case h (default 40000)
//   BENCH_NODE_ARGS  extra node flags for every hoard run, e.g. "--cpu-prof --cpu-prof-dir=/tmp/p"
//   BENCH_TMPDIR     where test data goes (default: the OS temp folder); removed afterwards
// Everything is served by a loopback HTTP server (127.0.0.1, port 0) in a child process.
import { spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';

const BENCH = path.dirname(fileURLToPath(import.meta.url));
const CLI = path.join(BENCH, '..', 'dist', 'hoard.cjs');
const MiB = 1024 * 1024;

const ALL = 'abcdefghijkl';
const TABLE = 'abcdefghi';
const argv = process.argv.slice(2);
const jsonOut = argv.includes('--json');
const onlyArg = argv.includes('--only') ? argv[argv.indexOf('--only') + 1] : argv.find((a) => a.startsWith('--only='))?.slice(7);
const named = [...(onlyArg ?? '').split(','), ...argv.filter((a) => /^[a-z]$/i.test(a))].map((c) => c.trim().toLowerCase()).filter(Boolean);
const only = new Set(named.length ? named : TABLE);
if (![...only].every((c) => c.length === 1 && ALL.includes(c))) {
  process.stderr.write(`usage: node bench/run.mjs [case letters a-l ...] [--json]   (got ${[...only].join(' ')})\n`);
  process.exit(2);
}
const BIG = Math.round(Number(process.env.BENCH_SIZE_MB ?? 1024) * MiB);
const RUNS = Math.max(1, Number(process.env.BENCH_RUNS ?? 5));
const SMALL = Number(process.env.BENCH_SMALL ?? 1000);
const MANY = Number(process.env.BENCH_MANY ?? 10_000);
const GC_BLOBS = Number(process.env.BENCH_GC_BLOBS ?? 10_000);
const GC_MANIFESTS = Number(process.env.BENCH_GC_MANIFESTS ?? 100);
const SHARED = Number(process.env.BENCH_SHARED ?? 40_000);
const NODE_ARGS = (process.env.BENCH_NODE_ARGS ?? '').split(/\s+/).filter(Boolean);
const NODE_MAJOR = Number(process.versions.node.split('.')[0]);

const log = (s) => process.stderr.write(`${s}\n`);
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return (s[(s.length - 1) >> 1] + s[s.length >> 1]) / 2;
};
const fmtMs = (ms) => (ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(1)} ms`);
const bigLabel = (n) => (n >= 1024 * MiB ? `${+(n / 1024 / MiB).toFixed(2)} GiB` : `${+(n / MiB).toFixed(1)} MiB`);

// ---------------------------------------------------------------- processes

const children = new Set();

/**
 * Runs a command; resolves with its wall time (spawn to exit), its CPU time (user + sys of it and
 * its children, as the shell's `times` reports them) and its output. Throws on failure.
 */
function run(cmd, args, { cwd, env = process.env } = {}) {
  return new Promise((resolve, reject) => {
    const out = [];
    const err = [];
    const times = [];
    const t0 = performance.now();
    let ms = 0;
    const child = spawn(SHELL, ['-c', '"$0" "$@"; s=$?; times >&3; exit $s', cmd, ...args], { cwd, env, stdio: ['ignore', 'pipe', 'pipe', 'pipe'] });
    children.add(child);
    child.stdout.on('data', (d) => out.push(d));
    child.stderr.on('data', (d) => err.push(d));
    child.stdio[3].on('data', (d) => times.push(d));
    child.on('exit', () => (ms = performance.now() - t0));
    child.on('error', reject);
    child.on('close', (code, signal) => {
      children.delete(child);
      // `times`: the shell's own user and sys time, then its children's (0m0.123s 0m0.045s).
      const secs = [...Buffer.concat(times).toString().matchAll(/(\d+)m([\d.]+)s/g)].map((m) => Number(m[1]) * 60 + Number(m[2]));
      const r = { ms, cpu: ((secs[2] ?? 0) + (secs[3] ?? 0)) * 1000, code, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() };
      if (code !== 0 || signal) reject(new Error(`${cmd} ${args.join(' ')} failed (${signal ?? `exit ${code}`}):\n${r.stderr}${r.stdout.slice(-2000)}`));
      else resolve(r);
    });
  });
}

/** bash's `times` reads getrusage (microseconds); dash's counts clock ticks (10 ms). */
const SHELL = spawnSync('bash', ['-c', 'true']).status === 0 ? 'bash' : 'sh';

/** Runs several commands at once; resolves when all are done, with the wall time and the CPU time of all. */
async function runAll(starts) {
  const t0 = performance.now();
  const rs = await Promise.all(starts.map((start) => start()));
  return { ms: performance.now() - t0, cpu: rs.reduce((n, r) => n + r.cpu, 0), rs };
}

const hoardEnv = (store, extra = {}) => ({
  ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('HOARD_'))),
  HOARD_STORE: store,
  NO_COLOR: '1',
  ...extra,
});
const hoard = (args, { cwd, store, nodeArgs = [], env = {} }) => run(process.execPath, [...NODE_ARGS, ...nodeArgs, CLI, ...args], { cwd, env: hoardEnv(store, env) });
const flushDirty = () => spawnSync('sync');

/**
 * Measures sides [{ name, setup?, cmd }] interleaved: one discarded warm-up round, then
 * `runs` rounds. `setup` runs untimed before every run. Returns the wall-time samples per side
 * (and, as .cpu, the CPU-time samples).
 */
async function measure(label, runs, sides, { warmUp = true } = {}) {
  const samples = sides.map(() => []);
  const cpu = sides.map(() => []);
  for (let round = warmUp ? 0 : 1; round <= runs; round++) {
    for (const [i, side] of sides.entries()) {
      await side.setup?.();
      const r = await side.cmd();
      if (round > 0) {
        samples[i].push(r.ms);
        cpu[i].push(r.cpu);
      }
    }
  }
  for (const [i, xs] of samples.entries()) xs.cpu = cpu[i];
  log(`  ${label}: ${sides.map((s, i) => `${s.name} [${samples[i].map(fmtMs).join(', ')}]`).join('  vs  ')}`);
  return samples;
}

// ---------------------------------------------------------------- test data

/** A file of `size` bytes: a 16 MiB random buffer written repeatedly, a counter varying each copy. */
function writeBigFile(file, size) {
  const buf = randomBytes(16 * MiB);
  const hash = createHash('sha256');
  const fd = openSync(file, 'w');
  try {
    for (let off = 0, n = 0; off < size; off += buf.length, n++) {
      buf.writeUInt32LE(n, 0);
      const part = buf.subarray(0, Math.min(buf.length, size - off));
      hash.update(part);
      for (let w = 0; w < part.length; ) w += writeSync(fd, part, w);
    }
  } finally {
    closeSync(fd);
  }
  return { digest: `sha256:${hash.digest('hex')}`, size };
}

function writeManifest(dir, artifacts) {
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, 'hoard.json'), `${JSON.stringify({ version: 1, output: 'artifacts', artifacts }, null, 2)}\n`);
}

/** Starts bench/server.mjs on `root`; resolves with its origin and a stop function. */
async function startServer(root) {
  const child = spawn(process.execPath, [path.join(BENCH, 'server.mjs'), root], { stdio: ['pipe', 'pipe', 'inherit'] });
  const port = await new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`server exited (${code})`)));
    child.stdout.once('data', (d) => resolve(Number(String(d).trim())));
  });
  return { origin: `http://127.0.0.1:${port}`, stop: () => child.kill() };
}

function lastSummary(ndjson) {
  const events = ndjson.trim().split('\n').map((l) => JSON.parse(l));
  return { events, summary: events.findLast((e) => e.type === 'summary') };
}

// ---------------------------------------------------------------- cases

const results = [];
/** Records a case: `hoard` and `baseline` are samples (baseline null: the goal is on hoard's value). */
function report(id, title, hoard, baseline, goal, { unit = 'ms', pick = median } = {}) {
  const value = pick(hoard);
  const base = baseline && median(baseline);
  const ratio = base ? value / base : null;
  // The same ratio in CPU time, where both sides have it.
  const cpuRatio = hoard.cpu && baseline?.cpu && median(baseline.cpu) > 0 ? median(hoard.cpu) / median(baseline.cpu) : null;
  results.push({
    id, title, unit, hoard: value, baseline: base, ratio, cpuRatio, goal, pass: (ratio ?? value) <= goal,
    samples: { hoard, baseline, hoardCpu: hoard.cpu ?? null, baselineCpu: baseline?.cpu ?? null },
  });
}

async function main(tmp) {
  const served = path.join(tmp, 'served');
  mkdirSync(path.join(served, 'small'), { recursive: true });
  const server = await startServer(served);
  /** Awaits a run, then checks that it left each of `files` with `size` bytes. */
  const leaves = async (files, size, running) => {
    const r = await running;
    for (const file of [files].flat()) {
      const got = statSync(file).size;
      if (got !== size) throw new Error(`${file} has ${got} bytes, expected ${size}`);
    }
    return r;
  };
  /** `n` files of `size` bytes served as /<prefix><i>.bin, and a project locking them. */
  const bigProject = (name, n, size) => {
    const files = Array.from({ length: n }, (_, i) => {
      const file = `${name}${i}.bin`;
      return { file, ...writeBigFile(path.join(served, file), size) };
    });
    const dir = path.join(tmp, `proj-${name}`);
    writeManifest(dir, Object.fromEntries(files.map((f) => [f.file.slice(0, -4), { url: `${server.origin}/${f.file}`, digest: f.digest, size }])));
    return { dir, files, outs: files.map((f) => path.join(dir, 'artifacts', f.file)), urls: files.map((f) => `${server.origin}/${f.file}`) };
  };
  const fresh = (...dirs) => () => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
    flushDirty();
  };
  try {
    // (a) cold sync of one big artifact vs curl, both from the same server.
    if (only.has('a') || only.has('i') || only.has('j')) {
      log(`generating ${bigLabel(BIG)} of test data in ${tmp} …`);
      const p = bigProject('big', 1, BIG);
      if (only.has('a')) {
        log(`(a) cold sync of ${bigLabel(BIG)} vs curl -o`);
        const store = path.join(tmp, 'store-a');
        const curlOut = path.join(tmp, 'curl.bin');
        const [h, c, durable] = await measure('a', RUNS, [
          { name: 'hoard', setup: fresh(store, path.join(p.dir, 'artifacts')), cmd: () => leaves(p.outs, BIG, hoard(['sync'], { cwd: p.dir, store })) },
          { name: 'curl', setup: fresh(curlOut), cmd: () => leaves(curlOut, BIG, run('curl', ['-s', '-o', curlOut, p.urls[0]])) },
          // hoard syncs a blob to the disk before it names it (a power loss leaves no wrong
          // blob); curl does not. The same durability for curl: its file, then fdatasync.
          { name: 'curl+sync', setup: fresh(curlOut), cmd: () => leaves(curlOut, BIG, run('sh', ['-c', 'curl -s -o "$1" "$2" && sync -d "$1"', 'sh', curlOut, p.urls[0]])) },
        ]);
        rmSync(curlOut, { force: true });
        rmSync(store, { recursive: true, force: true });
        report('a', `cold sync ${bigLabel(BIG)} vs curl -o`, h, c, 1.05);
        report('a', `cold sync ${bigLabel(BIG)} vs curl -o + sync -d`, h, durable, 1.05);
      }
      if (only.has('i')) await peakRss(tmp, 'i', `cold sync of ${bigLabel(BIG)}`, p, BIG, 150);
      if (only.has('j')) await rematerialise(tmp, p);
      rmSync(path.join(served, 'big0.bin'), { force: true });
    }

    // (b) one sync of four artifacts (--jobs 4, the default) vs four curl at once.
    if (only.has('b')) {
      const size = Math.round(BIG / 4);
      log(`(b) 4 concurrent cold ${bigLabel(size)}: one sync vs 4 curl -o at once`);
      const p = bigProject('quarter', 4, size);
      const store = path.join(tmp, 'store-b');
      const curlOuts = p.files.map((f) => path.join(tmp, `curl-${f.file}`));
      const [h, c, durable] = await measure('b', RUNS, [
        { name: 'hoard', setup: fresh(store, path.join(p.dir, 'artifacts')), cmd: () => leaves(p.outs, size, hoard(['sync', '--jobs', '4'], { cwd: p.dir, store })) },
        {
          name: '4 curl',
          setup: fresh(...curlOuts),
          cmd: () => leaves(curlOuts, size, runAll(p.urls.map((u, i) => () => run('curl', ['-s', '-o', curlOuts[i], u])))),
        },
        {
          name: '4 curl+sync',
          setup: fresh(...curlOuts),
          cmd: () => leaves(curlOuts, size, runAll(p.urls.map((u, i) => () => run('sh', ['-c', 'curl -s -o "$1" "$2" && sync -d "$1"', 'sh', curlOuts[i], u])))),
        },
      ]);
      for (const f of [...curlOuts, ...p.files.map((f) => path.join(served, f.file))]) rmSync(f, { force: true });
      rmSync(store, { recursive: true, force: true });
      report('b', `4 concurrent cold ${bigLabel(size)} vs 4 curl -o`, h, c, 1.1);
      report('b', `4 concurrent cold ${bigLabel(size)} vs 4 curl -o + sync -d`, h, durable, 1.1);
    }

    // (c, d) no-op syncs of many small artifacts, cached and linked, vs node -e 0.
    if (only.has('c')) await noOpCase(tmp, served, server, 'c', SMALL, NODE_MAJOR >= 22 ? 2.5 : 1.6);
    if (only.has('d')) await noOpCase(tmp, served, server, 'd', MANY, 6);

    // (e) hoard --help vs node -e 0.
    if (only.has('e')) {
      log('(e) hoard --help vs node -e 0');
      const [h, n] = await measure('e', RUNS * 3, [
        { name: 'hoard', cmd: () => hoard(['--help'], { cwd: tmp, store: path.join(tmp, 'store-none') }) },
        { name: 'node', cmd: () => run(process.execPath, ['-e', '0']) },
      ]);
      report('e', 'hoard --help vs node -e 0', h, n, 2.0);
    }

    // (f, i) four big artifacts: verify them (f), and the peak RSS of syncing them at once (i).
    if (only.has('f') || only.has('i')) {
      log(`generating 4 × ${bigLabel(BIG)} of test data …`);
      const p = bigProject('four', 4, BIG);
      if (only.has('i')) await peakRss(tmp, 'i', `cold sync of 4 × ${bigLabel(BIG)} at once`, p, BIG, 300);
      if (only.has('f')) {
        log(`(f) hoard verify of 4 × ${bigLabel(BIG)} vs openssl dgst -sha256 of the same files`);
        const store = path.join(tmp, 'store-f');
        await hoard(['sync'], { cwd: p.dir, store });
        const blobs = p.files.map((f) => path.join(store, 'v1', 'blobs', 'sha256', f.digest.slice(7)));
        const [h, o] = await measure('f', RUNS, [
          { name: 'hoard verify', cmd: () => hoard(['verify'], { cwd: p.dir, store }) },
          { name: 'openssl', cmd: () => run('openssl', ['dgst', '-sha256', ...blobs]) },
        ]);
        rmSync(store, { recursive: true, force: true });
        report('f', `verify 4 × ${bigLabel(BIG)} vs openssl dgst -sha256`, h, o, 1.1);
      }
      for (const f of p.files) rmSync(path.join(served, f.file), { force: true });
    }

    // (g) hoard gc over a big store vs du -s of the same store.
    if (only.has('g')) await gcCase(tmp);

    // (h) a first sync of many entries that share one digest vs a no-op sync of them.
    if (only.has('h')) await sharedCase(tmp, served, server);

    // (k) 20 artifacts whose images are all present: the engine's share of a sync should be
    // one process (a single `podman image inspect` for all tags), not twenty.
    if (only.has('k')) {
      if (spawnSync('podman', ['version'], { stdio: 'ignore' }).status !== 0) log('(k) skipped: podman is not installed');
      else await imagesCase(tmp, served, server);
    }

    // (l) many small downloads from a slow server: parallel hoard vs a sequential curl loop and aria2c -j 8.
    if (only.has('l')) await parallelCase(tmp, served, server);
  } finally {
    server.stop();
  }
}

/** (i) Peak RSS of hoard (getrusage via a preload) while cold-syncing project `p`. */
async function peakRss(tmp, id, what, p, size, goal) {
  log(`(${id}) peak RSS of a ${what}`);
  const store = path.join(tmp, 'store-rss');
  const rssFile = path.join(tmp, 'rss.txt');
  const peaks = [];
  for (let i = 0; i < Math.min(RUNS, 3); i++) {
    rmSync(store, { recursive: true, force: true });
    rmSync(path.join(p.dir, 'artifacts'), { recursive: true, force: true });
    flushDirty();
    const nodeArgs = ['--import', path.join(BENCH, 'rss-hook.mjs')];
    const r = await hoard(['sync', '--jobs', '4'], { cwd: p.dir, store, nodeArgs, env: { BENCH_RSS_FILE: rssFile } });
    for (const out of p.outs) if (statSync(out).size !== size) throw new Error(`(${id}) ${out} was not synced: ${r.stderr}`);
    peaks.push(Number(readFileSync(rssFile, 'utf8')) / 1024);
  }
  rmSync(store, { recursive: true, force: true });
  log(`  ${id}: peak RSS [${peaks.map((x) => `${x.toFixed(1)} MiB`).join(', ')}]`);
  report(id, `peak RSS, ${what} (max of ${peaks.length})`, peaks, null, goal, { unit: 'MiB', pick: (xs) => Math.max(...xs) });
}

/** (j) Re-materialising the big artifact from a warm store vs cp of the blob. */
async function rematerialise(tmp, p) {
  log(`(j) re-materialise ${bigLabel(BIG)} from a warm store vs cp`);
  const store = path.join(tmp, 'store-warm');
  await hoard(['sync'], { cwd: p.dir, store });
  rmSync(path.join(p.dir, 'artifacts'), { recursive: true, force: true });
  const { events } = lastSummary((await hoard(['sync', '--json'], { cwd: p.dir, store })).stdout);
  const art = events.find((e) => e.type === 'artifact');
  if (art?.blob !== 'cached' || art?.output !== 'linked') throw new Error(`(j) expected a cached blob and a linked output, got ${JSON.stringify(art)}`);
  const blob = path.join(store, 'v1', 'blobs', 'sha256', p.files[0].digest.slice(7));
  const cpOut = path.join(tmp, 'cp.bin');
  const [h, c] = await measure('j', RUNS, [
    {
      name: 'hoard',
      setup: () => {
        rmSync(path.join(p.dir, 'artifacts'), { recursive: true, force: true });
        flushDirty();
      },
      cmd: () => hoard(['sync'], { cwd: p.dir, store }),
    },
    {
      name: 'cp',
      setup: () => {
        rmSync(cpOut, { force: true });
        flushDirty();
      },
      cmd: () => run('cp', [blob, cpOut]),
    },
  ]);
  rmSync(cpOut, { force: true });
  rmSync(store, { recursive: true, force: true });
  report('j', `re-materialise ${bigLabel(BIG)} vs cp (${art.method})`, h, c, 0.05);
}

/** (c, d) A no-op sync of `n` small artifacts, cached and linked, vs node -e 0. */
async function noOpCase(tmp, served, server, id, n, goal) {
  log(`(${id}) no-op sync of ${n} small artifacts vs node -e 0`);
  const project = path.join(tmp, `proj-${id}`);
  const store = path.join(tmp, `store-${id}`);
  const artifacts = {};
  for (let i = 0; i < n; i++) {
    const name = `${id}${String(i).padStart(5, '0')}`;
    const data = randomBytes(512 + ((i * 7919) % 8192));
    writeFileSync(path.join(served, 'small', `${name}.bin`), data);
    artifacts[name] = { url: `${server.origin}/small/${name}.bin`, digest: `sha256:${createHash('sha256').update(data).digest('hex')}`, size: data.length };
  }
  writeManifest(project, artifacts);
  await hoard(['sync'], { cwd: project, store });
  const { summary } = lastSummary((await hoard(['sync', '--json'], { cwd: project, store })).stdout);
  if (summary.hits !== n || summary.misses !== 0 || summary.bytesDownloaded !== 0 || summary.manifestUpdated) {
    throw new Error(`(${id}) the second sync was not a no-op: ${JSON.stringify(summary)}`);
  }
  const [h, nd] = await measure(id, RUNS * 3, [
    { name: 'hoard', cmd: () => hoard(['sync'], { cwd: project, store }) },
    { name: 'node', cmd: () => run(process.execPath, ['-e', '0']) },
  ]);
  rmSync(store, { recursive: true, force: true });
  rmSync(project, { recursive: true, force: true });
  report(id, `no-op sync, ${n} artifacts vs node -e 0`, h, nd, goal);
}

/** (h) A first sync of SHARED entries with one digest (one download, SHARED outputs) vs a no-op sync of them. */
async function sharedCase(tmp, served, server) {
  log(`(h) first sync of ${SHARED} entries sharing one digest vs a no-op sync of them`);
  const data = randomBytes(4096);
  writeFileSync(path.join(served, 'small', 'shared.bin'), data);
  const digest = `sha256:${createHash('sha256').update(data).digest('hex')}`;
  const project = path.join(tmp, 'proj-h');
  const store = path.join(tmp, 'store-h');
  const artifacts = {};
  for (let i = 0; i < SHARED; i++) {
    const name = `e${String(i).padStart(5, '0')}`;
    artifacts[name] = { url: `${server.origin}/small/shared.bin`, path: `${name}.bin`, digest, size: data.length };
  }
  writeManifest(project, artifacts);
  const runs = Math.max(1, Math.ceil(RUNS / 5));
  const [first] = await measure('h first', runs, [
    { name: 'first sync', setup: fresh2(store, path.join(project, 'artifacts')), cmd: () => hoard(['sync', '--no-images'], { cwd: project, store }) },
  ], { warmUp: false });
  const { summary } = lastSummary((await hoard(['sync', '--json', '--no-images'], { cwd: project, store })).stdout);
  if (summary.hits !== SHARED || summary.bytesDownloaded !== 0) throw new Error(`(h) the second sync was not a no-op: ${JSON.stringify(summary)}`);
  const [noop] = await measure('h no-op', RUNS, [{ name: 'no-op sync', cmd: () => hoard(['sync', '--no-images'], { cwd: project, store }) }]);
  rmSync(store, { recursive: true, force: true });
  rmSync(project, { recursive: true, force: true });
  report('h', `first sync of ${SHARED} entries, one digest, vs no-op sync`, first, noop, 3);
}

function fresh2(...dirs) {
  return () => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
    flushDirty();
  };
}

async function parallelCase(tmp, served, server) {
  const N = 60;
  const SIZE = 1_000_000;
  const DELAY = 50;
  log(`(l) ${N} artifacts of 1 MB, the server waiting ${DELAY} ms before each answer: sync --jobs 8 vs a curl loop and aria2c -j 8`);
  mkdirSync(path.join(served, 'g'), { recursive: true });
  const files = [];
  for (let i = 0; i < N; i++) {
    const name = `g${String(i).padStart(2, '0')}.bin`;
    const data = randomBytes(SIZE);
    writeFileSync(path.join(served, 'g', name), data);
    files.push({ name, url: `${server.origin}/delay/${DELAY}/g/${name}`, hex: createHash('sha256').update(data).digest('hex') });
  }
  const project = path.join(tmp, 'proj-g');
  const store = path.join(tmp, 'store-g');
  writeManifest(project, Object.fromEntries(files.map((f) => [f.name.slice(0, -4), { url: f.url, digest: `sha256:${f.hex}`, size: SIZE }])));
  const curlDir = path.join(tmp, 'curl-g');
  const ariaDir = path.join(tmp, 'aria-g');
  const ariaList = path.join(tmp, 'aria-g.txt');
  writeFileSync(ariaList, files.map((f) => `${f.url}\n  out=${f.name}\n  checksum=sha-256=${f.hex}\n`).join(''));
  const curlLoop = `for u in ${files.map((f) => f.url).join(' ')}; do curl -sf -o "${curlDir}/\${u##*/}" "$u" || exit 1; done`;
  const fresh = (dir) => () => {
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    flushDirty();
  };
  const hasAria = spawnSync('aria2c', ['--version'], { stdio: 'ignore' }).status === 0;
  if (!hasAria) log('  aria2c is not installed (apt-get install aria2): compared with curl only');
  const sides = [
    {
      name: 'hoard -j8',
      setup: () => {
        rmSync(store, { recursive: true, force: true });
        fresh(path.join(project, 'artifacts'))();
      },
      cmd: () => hoard(['sync', '--jobs', '8', '--no-images'], { cwd: project, store }),
    },
    { name: 'curl loop', setup: fresh(curlDir), cmd: () => run('sh', ['-c', curlLoop]) },
    ...(hasAria
      ? [{
          name: 'aria2c -j8',
          setup: fresh(ariaDir),
          cmd: () => run('aria2c', ['-q', '-j', '8', '-d', ariaDir, '-i', ariaList, '--file-allocation=none', '--allow-overwrite=true', '--auto-file-renaming=false']),
        }]
      : []),
  ];
  const [h, c, a] = await measure('l', RUNS, sides);
  for (const f of files) {
    if (statSync(path.join(project, 'artifacts', f.name)).size !== SIZE) throw new Error(`(l) ${f.name} was not synced`);
  }
  report('l', `${N}×1 MB, ${DELAY} ms latency: sync -j8 vs curl loop`, h, c, 0.35);
  if (a) report('l', `${N}×1 MB, ${DELAY} ms latency: sync -j8 vs aria2c -j8`, h, a, 1.0);
}

/**
 * (g) `hoard gc` over GC_BLOBS blobs named by GC_MANIFESTS manifests, every one known to the
 * store (as syncs record them), against `du -s` of the store. A steady-state gc: every blob is
 * named, so it lists the blobs, reads and validates every manifest, and removes nothing.
 */
async function gcCase(tmp) {
  log(`(g) hoard gc over ${GC_BLOBS} blobs and ${GC_MANIFESTS} manifests vs du -s`);
  const store = path.join(tmp, 'store-gc');
  const blobs = path.join(store, 'v1', 'blobs', 'sha256');
  mkdirSync(blobs, { recursive: true });
  mkdirSync(path.join(store, 'v1', 'state'), { recursive: true });
  const known = {};
  // State as syncs leave it: a fingerprint and a last use per blob.
  const fingerprints = {};
  const used = {};
  const perManifest = Math.ceil(GC_BLOBS / GC_MANIFESTS);
  for (let m = 0, i = 0; m < GC_MANIFESTS; m++) {
    const artifacts = {};
    for (let k = 0; k < perManifest && i < GC_BLOBS; k++, i++) {
      const data = randomBytes(512 + ((i * 7919) % 4096));
      const hex = createHash('sha256').update(data).digest('hex');
      writeFileSync(path.join(blobs, hex), data, { mode: 0o444 });
      const st = statSync(path.join(blobs, hex));
      fingerprints[hex] = `${st.size}:${st.ino}:${st.mtimeMs}:${(st.mode & 0o7777).toString(8)}`;
      used[hex] = Date.now() - i * 1000;
      artifacts[`a${String(k).padStart(4, '0')}`] = { url: `http://127.0.0.1:9/m${m}/a${k}.bin`, digest: `sha256:${hex}`, size: data.length };
    }
    const dir = path.join(tmp, 'gc-projects', `p${m}`);
    writeManifest(dir, artifacts);
    known[path.join(dir, 'hoard.json')] = { added: new Date().toISOString() };
  }
  writeFileSync(path.join(store, 'v1', 'state', 'manifests.json'), `${JSON.stringify(known)}\n`);
  writeFileSync(path.join(store, 'v1', 'state', 'blobs.json'), `${JSON.stringify(fingerprints)}\n`);
  writeFileSync(path.join(store, 'v1', 'state', 'used.json'), `${JSON.stringify(used)}\n`);
  const first = lastSummary((await hoard(['gc', '--json'], { cwd: tmp, store })).stdout).summary;
  if (first.blobsAfter !== GC_BLOBS || first.manifests !== GC_MANIFESTS || first.removed !== 0) throw new Error(`(g) unexpected gc: ${JSON.stringify(first)}`);
  const [h, d, n] = await measure('g', RUNS * 3, [
    { name: 'hoard gc', cmd: () => hoard(['gc'], { cwd: tmp, store }) },
    { name: 'du -s', cmd: () => run('du', ['-s', store]) },
    { name: 'node -e 0', cmd: () => run(process.execPath, ['-e', '0']) },
  ]);
  report('g', `gc, ${GC_BLOBS} blobs / ${GC_MANIFESTS} manifests vs du -s`, h, d, 3);
  Object.assign(results.at(-1), {
    note: `hoard gc takes ${fmtMs(median(h))}, of which node's own start-up (node -e 0) is ${fmtMs(median(n))}: ${fmtMs(median(h) - median(n))} of work vs ${fmtMs(median(d))} for du -s`,
  });
  rmSync(store, { recursive: true, force: true });
}

async function imagesCase(tmp, served, server) {
  const N = 20;
  log(`(k) sync of ${N} artifacts with images present vs --no-images`);
  const project = path.join(tmp, 'proj-images');
  const store = path.join(tmp, 'store-images');
  const rootfs = path.join(tmp, 'rootfs');
  mkdirSync(path.join(rootfs, 'etc'), { recursive: true });
  const prefix = `localhost/hoard-bench-${randomBytes(3).toString('hex')}`;
  const artifacts = {};
  for (let i = 0; i < N; i++) {
    writeFileSync(path.join(rootfs, 'etc', 'release'), `bench image ${i}\n`);
    const tar = path.join(served, `img${i}.tar`);
    spawnSync('tar', ['-C', rootfs, '-cf', tar, '.']);
    const data = readFileSync(tar);
    artifacts[`img${i}`] = { url: `${server.origin}/img${i}.tar`, digest: `sha256:${createHash('sha256').update(data).digest('hex')}`, size: data.length, image: `${prefix}/img:${i}` };
  }
  writeManifest(project, artifacts);
  // A shim counts the engine processes each sync starts.
  const shim = path.join(tmp, 'shim');
  const calls = path.join(tmp, 'engine-calls.log');
  mkdirSync(shim, { recursive: true });
  const real = spawnSync('sh', ['-c', 'command -v podman'], { encoding: 'utf8' }).stdout.trim();
  writeFileSync(path.join(shim, 'podman'), `#!/bin/sh\necho "$1" >> ${calls}\nexec ${real} "$@"\n`, { mode: 0o755 });
  const env = { PATH: `${shim}:${process.env.PATH}` };
  try {
    await hoard(['sync', '--engine', 'podman'], { cwd: project, store, env });
    rmSync(calls, { force: true });
    const { summary } = lastSummary((await hoard(['sync', '--json', '--engine', 'podman'], { cwd: project, store, env })).stdout);
    if (summary.imagesPresent !== N) throw new Error(`(k) expected ${N} images present, got ${JSON.stringify(summary)}`);
    const spawns = readFileSync(calls, 'utf8').trim().split('\n').length;
    log(`  k: engine processes per no-op sync: ${spawns}`);
    const [withImages, noImages, inspectOnce] = await measure('k', RUNS * 2, [
      { name: 'images', cmd: () => hoard(['sync', '--engine', 'podman'], { cwd: project, store, env }) },
      { name: 'no-images', cmd: () => hoard(['sync', '--no-images'], { cwd: project, store }) },
      { name: 'one inspect', cmd: () => run(real, ['image', 'inspect', ...Object.values(artifacts).map((a) => a.image)]) },
    ]);
    report('k', `${N} images present vs --no-images`, withImages, noImages, Infinity);
    // The goal is the number of engine processes, not a time.
    Object.assign(results.at(-1), {
      goal: '1 engine process',
      pass: spawns === 1,
      note: `${spawns} engine process(es) per sync; images cost ${fmtMs(median(withImages) - median(noImages))} more, one \`podman image inspect\` of all ${N} tags alone takes ${fmtMs(median(inspectOnce))}`,
    });
  } finally {
    const ids = spawnSync('podman', ['images', '--filter', `reference=${prefix}/*`, '-q'], { encoding: 'utf8' }).stdout.trim();
    if (ids) spawnSync('podman', ['rmi', '-f', ...new Set(ids.split('\n'))], { stdio: 'ignore' });
  }
}

function printTable() {
  const rows = [...results].sort((x, y) => ALL.indexOf(x.id) - ALL.indexOf(y.id)).map((r) => {
    const fmt = (v) => (v === null ? '—' : r.unit === 'MiB' ? `${v.toFixed(1)} MiB` : fmtMs(v));
    const goal = typeof r.goal === 'string' ? r.goal : r.unit === 'MiB' ? `≤ ${r.goal} MiB` : `≤ ${r.goal}`;
    return [`(${r.id}) ${r.title}`, fmt(r.hoard), fmt(r.baseline), r.ratio === null ? '—' : r.ratio.toFixed(2), r.cpuRatio === null ? '—' : r.cpuRatio.toFixed(2), goal, r.pass ? 'PASS' : 'MISS'];
  });
  const head = ['case', 'hoard', 'baseline', 'ratio', 'cpu ratio', 'goal', 'result'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  const out = [line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)];
  const notes = results.filter((r) => r.note).map((r) => `(${r.id}) ${r.note}`);
  const load = os.loadavg()[0].toFixed(1);
  process.stdout.write(
    `\nhoard bench — node ${process.version}, ${os.cpus().length} cores, load ${load} — medians of ${RUNS} runs (c, d, e, g: ${RUNS * 3}; h: first sync ${Math.max(1, Math.ceil(RUNS / 5))}); ` +
      `ratio: wall time, cpu ratio: user + sys\n${out.join('\n')}\n${notes.join('\n')}${notes.length ? '\n' : ''}`,
  );
}

const tmp = mkdtempSync(path.join(process.env.BENCH_TMPDIR ?? os.tmpdir(), 'hoard-bench-'));
const cleanup = () => rmSync(tmp, { recursive: true, force: true });
process.once('SIGINT', () => {
  for (const child of children) child.kill();
  cleanup();
  process.exit(130);
});
try {
  await main(tmp);
  if (jsonOut) process.stdout.write(`${JSON.stringify({ node: process.version, cores: os.cpus().length, bigBytes: BIG, runs: RUNS, results }, null, 2)}\n`);
  else printTable();
} catch (err) {
  log(`bench failed: ${err?.stack ?? err}`);
  process.exitCode = 1;
} finally {
  cleanup();
}
