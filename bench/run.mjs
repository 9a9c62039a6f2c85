#!/usr/bin/env node
// hoard benchmarks, each case measured side by side with a baseline in one run.
//
//   npm run bench                       (builds dist/ first)
//   node bench/run.mjs [--only a,c] [--json]
//
// Environment:
//   BENCH_SIZE_MB    size of the big artifact (default 1024)
//   BENCH_RUNS       measured runs per case, after one discarded warm-up (default 5;
//                    the cheap cases b and e use three times as many)
//   BENCH_SMALL      number of small artifacts in case b (default 1000)
//   BENCH_GC_BLOBS   blobs in case h's store (default 10000), named by BENCH_GC_MANIFESTS manifests (default 100)
//
// Case g compares with `aria2c` (Debian: apt-get install aria2) and is skipped without it.
//   BENCH_NODE_ARGS  extra node flags for every hoard run, e.g.
//                    "--cpu-prof --cpu-prof-dir=/tmp/hoard-prof"
//   BENCH_TMPDIR     where test data goes (default: the OS temp folder); removed afterwards
//
// Everything is served by a loopback HTTP server (127.0.0.1, port 0) in a child process.
// Timings are wall clock from spawn() to the child's exit. Each case runs once untimed
// first, so the served file is in the page cache for both hoard and the baseline; dirty
// pages from the previous run are flushed (`sync`) before every timed run.
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

const argv = process.argv.slice(2);
const jsonOut = argv.includes('--json');
const onlyArg = argv.includes('--only') ? argv[argv.indexOf('--only') + 1] : argv.find((a) => a.startsWith('--only='))?.slice(7);
const only = new Set((onlyArg ?? 'a,b,c,d,e,f,g,h').split(',').map((s) => s.trim().toLowerCase()));
if (![...only].every((c) => 'abcdefgh'.includes(c) && c.length === 1)) {
  process.stderr.write(`usage: node bench/run.mjs [--only a,b,c,d,e,f,g,h] [--json]  (got --only ${onlyArg})\n`);
  process.exit(2);
}
const BIG = Math.round(Number(process.env.BENCH_SIZE_MB ?? 1024) * MiB);
const RUNS = Math.max(1, Number(process.env.BENCH_RUNS ?? 5));
const SMALL = Number(process.env.BENCH_SMALL ?? 1000);
const GC_BLOBS = Number(process.env.BENCH_GC_BLOBS ?? 10_000);
const GC_MANIFESTS = Number(process.env.BENCH_GC_MANIFESTS ?? 100);
const NODE_ARGS = (process.env.BENCH_NODE_ARGS ?? '').split(/\s+/).filter(Boolean);

const log = (s) => process.stderr.write(`${s}\n`);
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return (s[(s.length - 1) >> 1] + s[s.length >> 1]) / 2;
};
const fmtMs = (ms) => (ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(1)} ms`);
const bigLabel = BIG >= 1024 * MiB ? `${+(BIG / 1024 / MiB).toFixed(2)} GiB` : `${+(BIG / MiB).toFixed(1)} MiB`;

// ---------------------------------------------------------------- processes

const children = new Set();

/** Runs a command; resolves with its wall time (spawn to exit) and output. Throws on failure. */
function run(cmd, args, { cwd, env = process.env } = {}) {
  return new Promise((resolve, reject) => {
    const out = [];
    const err = [];
    const t0 = performance.now();
    let ms = 0;
    const child = spawn(cmd, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    children.add(child);
    child.stdout.on('data', (d) => out.push(d));
    child.stderr.on('data', (d) => err.push(d));
    child.on('exit', () => (ms = performance.now() - t0));
    child.on('error', reject);
    child.on('close', (code, signal) => {
      children.delete(child);
      const r = { ms, code, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() };
      if (code !== 0 || signal) reject(new Error(`${cmd} ${args.join(' ')} failed (${signal ?? `exit ${code}`}):\n${r.stderr}${r.stdout.slice(-2000)}`));
      else resolve(r);
    });
  });
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
 * `runs` rounds. `setup` runs untimed before every run. Returns the samples per side.
 */
async function measure(label, runs, sides) {
  const samples = sides.map(() => []);
  for (let round = 0; round <= runs; round++) {
    for (const [i, side] of sides.entries()) {
      await side.setup?.();
      const r = await side.cmd();
      if (round > 0) samples[i].push(r.ms);
    }
  }
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
  results.push({ id, title, unit, hoard: value, baseline: base, ratio, goal, pass: (ratio ?? value) <= goal, samples: { hoard, baseline } });
}

async function main(tmp) {
  const served = path.join(tmp, 'served');
  mkdirSync(path.join(served, 'small'), { recursive: true });
  const server = await startServer(served);
  try {
    const needBig = ['a', 'c', 'd'].some((c) => only.has(c));
    let big = null;
    if (needBig) {
      log(`generating ${bigLabel} of test data in ${tmp} …`);
      big = writeBigFile(path.join(served, 'big.bin'), BIG);
    }
    const bigProject = path.join(tmp, 'proj-big');
    if (big) writeManifest(bigProject, { big: { url: `${server.origin}/big.bin`, digest: big.digest, size: big.size } });
    const bigOut = path.join(bigProject, 'artifacts', 'big.bin');
    /** Awaits a run, then checks that it left `file` with the big artifact's size. */
    const leaves = async (file, running) => {
      const r = await running;
      const size = statSync(file).size;
      if (size !== BIG) throw new Error(`${file} has ${size} bytes, expected ${BIG}`);
      return r;
    };

    // (a) cold sync of one big artifact vs curl, both from the same server.
    if (only.has('a')) {
      log(`(a) cold sync of ${bigLabel} vs curl`);
      const store = path.join(tmp, 'store-cold');
      const curlOut = path.join(tmp, 'curl.bin');
      const [h, c] = await measure('a', RUNS, [
        {
          name: 'hoard',
          setup: () => {
            rmSync(store, { recursive: true, force: true });
            rmSync(path.dirname(bigOut), { recursive: true, force: true });
            flushDirty();
          },
          cmd: () => leaves(bigOut, hoard(['sync'], { cwd: bigProject, store })),
        },
        {
          name: 'curl',
          setup: () => {
            rmSync(curlOut, { force: true });
            flushDirty();
          },
          cmd: () => leaves(curlOut, run('curl', ['-s', '-o', curlOut, `${server.origin}/big.bin`])),
        },
      ]);
      rmSync(curlOut, { force: true });
      report('a', `cold sync ${bigLabel} vs curl`, h, c, 1.05);
    }

    // (d) peak RSS of hoard while cold-syncing the big artifact (getrusage via a preload).
    if (only.has('d')) {
      log(`(d) peak RSS of a cold sync of ${bigLabel}`);
      const store = path.join(tmp, 'store-rss');
      const rssFile = path.join(tmp, 'rss.txt');
      const peaks = [];
      for (let i = 0; i < Math.min(RUNS, 3); i++) {
        rmSync(store, { recursive: true, force: true });
        rmSync(path.dirname(bigOut), { recursive: true, force: true });
        flushDirty();
        const nodeArgs = ['--import', path.join(BENCH, 'rss-hook.mjs')];
        await leaves(bigOut, hoard(['sync'], { cwd: bigProject, store, nodeArgs, env: { BENCH_RSS_FILE: rssFile } }));
        peaks.push(Number(readFileSync(rssFile, 'utf8')) / 1024);
      }
      log(`  d: peak RSS [${peaks.map((p) => `${p.toFixed(1)} MiB`).join(', ')}]`);
      report('d', `peak RSS, cold sync ${bigLabel} (max of ${peaks.length})`, peaks, null, 150, { unit: 'MiB', pick: (xs) => Math.max(...xs) });
    }

    // (c) re-materialising the big artifact from a warm store vs cp of the blob.
    if (only.has('c')) {
      log(`(c) re-materialise ${bigLabel} from a warm store vs cp`);
      const store = path.join(tmp, 'store-warm');
      await hoard(['sync'], { cwd: bigProject, store });
      rmSync(path.dirname(bigOut), { recursive: true, force: true });
      const { events } = lastSummary((await hoard(['sync', '--json'], { cwd: bigProject, store })).stdout);
      const art = events.find((e) => e.type === 'artifact');
      if (art?.blob !== 'cached' || art?.output !== 'linked') throw new Error(`(c) expected a cached blob and a linked output, got ${JSON.stringify(art)}`);
      const blob = path.join(store, 'v1', 'blobs', 'sha256', big.digest.slice(7));
      const cpOut = path.join(tmp, 'cp.bin');
      const [h, c] = await measure('c', RUNS, [
        {
          name: 'hoard',
          setup: () => {
            rmSync(path.dirname(bigOut), { recursive: true, force: true });
            flushDirty();
          },
          cmd: () => leaves(bigOut, hoard(['sync'], { cwd: bigProject, store })),
        },
        {
          name: 'cp',
          setup: () => {
            rmSync(cpOut, { force: true });
            flushDirty();
          },
          cmd: () => leaves(cpOut, run('cp', [blob, cpOut])),
        },
      ]);
      rmSync(cpOut, { force: true });
      report('c', `re-materialise ${bigLabel} vs cp (${art.method})`, h, c, 0.05);
    }
    rmSync(path.join(tmp, 'store-cold'), { recursive: true, force: true });
    rmSync(path.join(tmp, 'store-rss'), { recursive: true, force: true });

    // (b) no-op sync of many small artifacts, cached and linked, vs node -e 0.
    if (only.has('b')) {
      log(`(b) no-op sync of ${SMALL} small artifacts vs node -e 0`);
      const project = path.join(tmp, 'proj-small');
      const store = path.join(tmp, 'store-small');
      const artifacts = {};
      for (let i = 0; i < SMALL; i++) {
        const name = `s${String(i).padStart(5, '0')}`;
        const data = randomBytes(512 + ((i * 7919) % 8192));
        writeFileSync(path.join(served, 'small', `${name}.bin`), data);
        artifacts[name] = { url: `${server.origin}/small/${name}.bin`, digest: `sha256:${createHash('sha256').update(data).digest('hex')}`, size: data.length };
      }
      writeManifest(project, artifacts);
      await hoard(['sync'], { cwd: project, store });
      const { summary } = lastSummary((await hoard(['sync', '--json'], { cwd: project, store })).stdout);
      if (summary.hits !== SMALL || summary.misses !== 0 || summary.bytesDownloaded !== 0 || summary.manifestUpdated) {
        throw new Error(`(b) the second sync was not a no-op: ${JSON.stringify(summary)}`);
      }
      const [h, n] = await measure('b', RUNS * 3, [
        { name: 'hoard', cmd: () => hoard(['sync'], { cwd: project, store }) },
        { name: 'node', cmd: () => run(process.execPath, ['-e', '0']) },
      ]);
      report('b', `no-op sync, ${SMALL} artifacts vs node -e 0`, h, n, 1.8);
    }

    // (e) hoard --help vs node -e 0 (report only).
    if (only.has('e')) {
      log('(e) hoard --help vs node -e 0');
      const [h, n] = await measure('e', RUNS * 3, [
        { name: 'hoard', cmd: () => hoard(['--help'], { cwd: tmp, store: path.join(tmp, 'store-none') }) },
        { name: 'node', cmd: () => run(process.execPath, ['-e', '0']) },
      ]);
      report('e', 'hoard --help vs node -e 0 (report only)', h, n, 1.8);
    }

    // (h) hoard gc over a big store vs du -s of the same store.
    if (only.has('h')) await gcCase(tmp);

    // (f) 20 artifacts whose images are all present: the engine's share of a sync should be
    // one process (a single `podman image inspect` for all tags), not twenty.
    if (only.has('f')) {
      if (spawnSync('podman', ['version'], { stdio: 'ignore' }).status !== 0) log('(f) skipped: podman is not installed');
      else await imagesCase(tmp, served, server);
    }

    // (g) many small downloads from a slow server: parallel hoard vs a sequential curl loop and aria2c -j 8.
    if (only.has('g')) await parallelCase(tmp, served, server);
  } finally {
    server.stop();
  }
}

async function parallelCase(tmp, served, server) {
  const N = 60;
  const SIZE = 1_000_000;
  const DELAY = 50;
  log(`(g) ${N} artifacts of 1 MB, the server waiting ${DELAY} ms before each answer: sync --jobs 8 vs a curl loop and aria2c -j 8`);
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
  const [h, c, a] = await measure('g', RUNS, sides);
  for (const f of files) {
    if (statSync(path.join(project, 'artifacts', f.name)).size !== SIZE) throw new Error(`(g) ${f.name} was not synced`);
  }
  report('g', `${N}×1 MB, ${DELAY} ms latency: sync -j8 vs curl loop`, h, c, 0.35);
  if (a) report('g', `${N}×1 MB, ${DELAY} ms latency: sync -j8 vs aria2c -j8`, h, a, 1.0);
}

/**
 * (h) `hoard gc` over GC_BLOBS blobs named by GC_MANIFESTS manifests, every one known to the
 * store (as syncs record them), against `du -s` of the store. A steady-state gc: every blob is
 * named, so it lists the blobs, reads and validates every manifest, and removes nothing.
 */
async function gcCase(tmp) {
  log(`(h) hoard gc over ${GC_BLOBS} blobs and ${GC_MANIFESTS} manifests vs du -s`);
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
  if (first.blobsAfter !== GC_BLOBS || first.manifests !== GC_MANIFESTS || first.removed !== 0) throw new Error(`(h) unexpected gc: ${JSON.stringify(first)}`);
  const [h, d, n] = await measure('h', RUNS * 3, [
    { name: 'hoard gc', cmd: () => hoard(['gc'], { cwd: tmp, store }) },
    { name: 'du -s', cmd: () => run('du', ['-s', store]) },
    { name: 'node -e 0', cmd: () => run(process.execPath, ['-e', '0']) },
  ]);
  report('h', `gc, ${GC_BLOBS} blobs / ${GC_MANIFESTS} manifests vs du -s`, h, d, 3);
  Object.assign(results.at(-1), {
    note: `hoard gc takes ${fmtMs(median(h))}, of which node's own start-up (node -e 0) is ${fmtMs(median(n))}: ${fmtMs(median(h) - median(n))} of work vs ${fmtMs(median(d))} for du -s`,
  });
  rmSync(store, { recursive: true, force: true });
}

async function imagesCase(tmp, served, server) {
  const N = 20;
  log(`(f) sync of ${N} artifacts with images present vs --no-images`);
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
    if (summary.imagesPresent !== N) throw new Error(`(f) expected ${N} images present, got ${JSON.stringify(summary)}`);
    const spawns = readFileSync(calls, 'utf8').trim().split('\n').length;
    log(`  f: engine processes per no-op sync: ${spawns}`);
    const [withImages, noImages, inspectOnce] = await measure('f', RUNS * 2, [
      { name: 'images', cmd: () => hoard(['sync', '--engine', 'podman'], { cwd: project, store, env }) },
      { name: 'no-images', cmd: () => hoard(['sync', '--no-images'], { cwd: project, store }) },
      { name: 'one inspect', cmd: () => run(real, ['image', 'inspect', ...Object.values(artifacts).map((a) => a.image)]) },
    ]);
    report('f', `${N} images present vs --no-images`, withImages, noImages, Infinity);
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
  const order = 'abcdefgh';
  const rows = [...results].sort((x, y) => order.indexOf(x.id) - order.indexOf(y.id)).map((r) => {
    const fmt = (v) => (v === null ? '—' : r.unit === 'MiB' ? `${v.toFixed(1)} MiB` : fmtMs(v));
    const goal = typeof r.goal === 'string' ? r.goal : r.unit === 'MiB' ? `≤ ${r.goal} MiB` : `≤ ${r.goal}`;
    return [`(${r.id}) ${r.title}`, fmt(r.hoard), fmt(r.baseline), r.ratio === null ? '—' : r.ratio.toFixed(3), goal, r.pass ? 'PASS' : 'MISS'];
  });
  const head = ['case', 'hoard', 'baseline', 'ratio', 'goal', 'result'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  const out = [line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)];
  const notes = results.filter((r) => r.note).map((r) => `(${r.id}) ${r.note}`);
  process.stdout.write(`\nhoard bench — medians of ${RUNS} runs (b, e, g: ${RUNS * 3}; f: ${RUNS * 2}), node ${process.version}, ${os.cpus().length} cores\n${out.join('\n')}\n${notes.join('\n')}${notes.length ? '\n' : ''}`);
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
