#!/usr/bin/env node
// Hashing benchmark (issue 13, item 1): wall and CPU time (user+sys) and peak RSS of
//   (a) a cold `hoard sync` of one big artifact vs `curl -o`, from a loopback server;
//   (r) a cold `hoard sync` of 4 big artifacts at once vs 4 concurrent `curl -o`;
//   (v) `hoard verify` of the 4 blobs vs `openssl dgst -sha256` of the same files.
//
//   npm run build && node bench/hash.mjs
//
// Environment: BENCH_SIZE_MB (default 1024), BENCH_RUNS (default 3), BENCH_TMPDIR, BENCH_CLI (another
// build of hoard.cjs, to compare).
// Each side is timed by GNU time (/usr/bin/time -f): wall, user, sys and max RSS of the
// whole command; medians are printed. Dirty pages are flushed (`sync`) before every run.
import { spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const BENCH = path.dirname(fileURLToPath(import.meta.url));
const CLI = process.env.BENCH_CLI ?? path.join(BENCH, '..', 'dist', 'hoard.cjs');
const MiB = 1024 * 1024;
const SIZE = Math.round(Number(process.env.BENCH_SIZE_MB ?? 1024) * MiB);
const RUNS = Math.max(1, Number(process.env.BENCH_RUNS ?? 3));
const log = (s) => process.stderr.write(`${s}\n`);
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return (s[(s.length - 1) >> 1] + s[s.length >> 1]) / 2;
};

/** Runs `cmd` under GNU time; { wall, cpu (user+sys), rss (MiB) }. */
function timed(cmd, args, opts = {}) {
  return new Promise((resolve, reject) => {
    const out = path.join(os.tmpdir(), `hoard-bench-time-${process.pid}`);
    const child = spawn('/usr/bin/time', ['-o', out, '-f', '%e %U %S %M', cmd, ...args], { stdio: ['ignore', 'ignore', 'pipe'], ...opts });
    let err = '';
    child.stderr.on('data', (d) => (err += d));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) return reject(new Error(`${cmd} ${args.join(' ')} failed (${code}): ${err}`));
      const [wall, user, sys, rss] = readFileSync(out, 'utf8').trim().split('\n').pop().split(' ').map(Number);
      rmSync(out, { force: true });
      resolve({ wall, cpu: user + sys, user, sys, rss: rss / 1024 });
    });
  });
}

function writeBigFile(file, size, seed) {
  const buf = randomBytes(16 * MiB);
  const hash = createHash('sha256');
  const fd = openSync(file, 'w');
  for (let off = 0, n = 0; off < size; off += buf.length, n++) {
    buf.writeUInt32LE(n, 0);
    buf.writeUInt32LE(seed, 4);
    const part = buf.subarray(0, Math.min(buf.length, size - off));
    hash.update(part);
    for (let w = 0; w < part.length; ) w += writeSync(fd, part, w);
  }
  closeSync(fd);
  return { digest: `sha256:${hash.digest('hex')}`, size };
}

async function startServer(root) {
  const child = spawn(process.execPath, [path.join(BENCH, 'server.mjs'), root], { stdio: ['pipe', 'pipe', 'inherit'] });
  const port = await new Promise((resolve, reject) => {
    child.once('error', reject);
    child.stdout.once('data', (d) => resolve(Number(String(d).trim())));
  });
  return { origin: `http://127.0.0.1:${port}`, stop: () => child.kill() };
}

const env = (store) => ({ ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('HOARD_'))), HOARD_STORE: store, NO_COLOR: '1' });
const fmt = (r) => `${r.wall.toFixed(2)} s wall, ${r.cpu.toFixed(2)} s cpu (user ${r.user.toFixed(2)} + sys ${r.sys.toFixed(2)}), ${r.rss.toFixed(0)} MiB`;
const med = (rs) => ({ wall: median(rs.map((r) => r.wall)), cpu: median(rs.map((r) => r.cpu)), user: median(rs.map((r) => r.user)), sys: median(rs.map((r) => r.sys)), rss: Math.max(...rs.map((r) => r.rss)) });

async function side(name, runs, setup, cmd) {
  const rs = [];
  for (let i = 0; i <= runs; i++) {
    setup?.();
    spawnSync('sync');
    const r = await cmd();
    if (i > 0) rs.push(r); // the first run warms the page cache
  }
  const m = med(rs);
  log(`  ${name.padEnd(28)} ${fmt(m)}`);
  return m;
}

const tmp = mkdtempSync(path.join(process.env.BENCH_TMPDIR ?? os.tmpdir(), 'hoard-bench-hash-'));
const served = path.join(tmp, 'served');
mkdirSync(served);
const server = await startServer(served);
try {
  log(`node ${process.version}, ${os.availableParallelism?.() ?? os.cpus().length} cores, ${SIZE / MiB} MiB per artifact, ${RUNS} runs (medians; RSS: max)`);
  const bigs = [0, 1, 2, 3].map((i) => writeBigFile(path.join(served, `big${i}.bin`), SIZE, i));
  const proj = (names) => {
    const dir = mkdtempSync(path.join(tmp, 'proj-'));
    const artifacts = Object.fromEntries(names.map((i) => [`big${i}`, { url: `${server.origin}/big${i}.bin`, ...bigs[i] }]));
    writeFileSync(path.join(dir, 'hoard.json'), JSON.stringify({ version: 1, artifacts }));
    return dir;
  };
  const store = path.join(tmp, 'store');
  const one = proj([0]);
  const four = proj([0, 1, 2, 3]);
  const fresh = (dir) => () => {
    rmSync(store, { recursive: true, force: true });
    rmSync(path.join(dir, 'artifacts'), { recursive: true, force: true });
  };
  const curlDir = path.join(tmp, 'curl');
  const freshCurl = () => {
    rmSync(curlDir, { recursive: true, force: true });
    mkdirSync(curlDir);
  };

  log('(a) cold sync of one artifact vs curl -o');
  const a = await side('hoard sync', RUNS, fresh(one), () => timed(process.execPath, [CLI, 'sync', '--no-images'], { cwd: one, env: env(store) }));
  const ac = await side('curl -o', RUNS, freshCurl, () => timed('curl', ['-sf', '-o', path.join(curlDir, 'a'), `${server.origin}/big0.bin`]));
  log(`  ratio ${(a.wall / ac.wall).toFixed(2)}x wall`);

  log('(r) cold sync of 4 artifacts at once vs 4 concurrent curl -o');
  const curl4 = [0, 1, 2, 3].map((i) => `curl -sf -o ${curlDir}/${i} ${server.origin}/big${i}.bin &`).join(' ') + ' wait';
  const r = await side('hoard sync (4)', RUNS, fresh(four), () => timed(process.execPath, [CLI, 'sync', '--no-images'], { cwd: four, env: env(store) }));
  const rc = await side('4 x curl -o', RUNS, freshCurl, () => timed('sh', ['-c', curl4]));
  log(`  ratio ${(r.wall / rc.wall).toFixed(2)}x wall`);

  log('(v) hoard verify of the 4 blobs vs openssl dgst -sha256');
  const blobs = bigs.map((b) => path.join(store, 'v1', 'blobs', 'sha256', b.digest.slice(7)));
  const v = await side('hoard verify', RUNS, null, () => timed(process.execPath, [CLI, 'verify'], { cwd: tmp, env: env(store) }));
  const vo = await side('openssl dgst -sha256', RUNS, null, () => timed('openssl', ['dgst', '-sha256', ...blobs]));
  log(`  ratio ${(v.wall / vo.wall).toFixed(2)}x wall`);
} finally {
  server.stop();
  rmSync(tmp, { recursive: true, force: true });
}
