#!/usr/bin/env node
// The team cache's benchmarks, each measured side by side with curl against the same real
// registry (CNCF Distribution, `docker-registry serve`, on 127.0.0.1) in one run:
//   pull   a blob into an empty store (hoard sync, read-through)  vs  curl -o of the blob URL
//          (and vs curl -o then sync -d: hoard fdatasyncs a blob before naming it)
//   push   hoard push of the blob                                 vs  curl -T (one PUT) to a fresh upload session
//   noop   hoard push of 100 artifacts the registry already has (one HEAD each): wall time
//
//   node bench/remote.mjs [--json]        (run `npm run build` first)
//
// Environment: BENCH_SIZE_MB (default 1024), BENCH_RUNS (default 3, after one discarded warm-up),
// BENCH_NOOP (artifacts in the no-op push, default 100), BENCH_TMPDIR (default: the OS temp folder).
// Needs docker-registry and curl (Debian: apt-get install docker-registry curl).
import { spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, mkdirSync, mkdtempSync, openSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';

const CLI = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'dist', 'hoard.cjs');
const MiB = 1024 * 1024;
const SIZE = Math.round(Number(process.env.BENCH_SIZE_MB ?? 1024) * MiB);
const RUNS = Math.max(1, Number(process.env.BENCH_RUNS ?? 3));
const NOOP = Number(process.env.BENCH_NOOP ?? 100);
const jsonOut = process.argv.includes('--json');
const log = (s) => process.stderr.write(`${s}\n`);
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return (s[(s.length - 1) >> 1] + s[s.length >> 1]) / 2;
};
const fmtMs = (ms) => (ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(1)} ms`);

for (const tool of ['docker-registry', 'curl']) {
  if (spawnSync(tool, ['--version'], { stdio: 'ignore' }).status !== 0) {
    log(`bench/remote.mjs needs ${tool} (apt-get install ${tool === 'curl' ? 'curl' : 'docker-registry'})`);
    process.exit(2);
  }
}

const children = new Set();
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
      const r = { ms, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() };
      if (code !== 0 || signal) reject(new Error(`${cmd} ${args.join(' ')} failed (${signal ?? `exit ${code}`}):\n${r.stderr}${r.stdout.slice(-2000)}`));
      else resolve(r);
    });
  });
}
const flush = () => spawnSync('sync');

const work = mkdtempSync(path.join(process.env.BENCH_TMPDIR ?? os.tmpdir(), 'hoard-bench-remote-'));
let registry = null;
const cleanup = () => {
  for (const c of children) c.kill('SIGKILL');
  registry?.kill('SIGTERM');
  rmSync(work, { recursive: true, force: true });
};
process.on('SIGINT', () => {
  cleanup();
  process.exit(130);
});

try {
  // The registry: open, filesystem storage in the work folder.
  const port = await new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const p = s.address().port;
      s.close(() => resolve(p));
    });
  });
  const storage = path.join(work, 'registry');
  mkdirSync(storage);
  const config = path.join(work, 'registry.yml');
  writeFileSync(config, `version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: ${storage}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:${port}\n  secret: bench\n`);
  registry = spawn('docker-registry', ['serve', config], { stdio: 'ignore' });
  await new Promise((resolve, reject) => {
    const poll = () => {
      const c = net.connect(port, '127.0.0.1', () => {
        c.end();
        resolve();
      });
      c.on('error', () => (registry.exitCode !== null ? reject(new Error('docker-registry did not start')) : setTimeout(poll, 50)));
    };
    poll();
  });
  const base = `http://127.0.0.1:${port}`;
  const remote = (repo) => `oci://127.0.0.1:${port}/${repo}`;

  // The big file, and a hoard store and project that hold it.
  log(`writing ${SIZE / MiB} MiB of random data…`);
  const file = path.join(work, 'big.bin');
  const hash = createHash('sha256');
  const fd = openSync(file, 'w');
  for (let left = SIZE; left > 0; ) {
    const chunk = randomBytes(Math.min(16 * MiB, left));
    hash.update(chunk);
    writeSync(fd, chunk);
    left -= chunk.length;
  }
  closeSync(fd);
  const digest = `sha256:${hash.digest('hex')}`;
  const env = { ...process.env, NO_COLOR: '1', XDG_CONFIG_HOME: path.join(work, 'config') };
  for (const k of Object.keys(env)) if (k.startsWith('HOARD_')) delete env[k];
  const project = path.join(work, 'project');
  mkdirSync(project);
  const manifest = (repo, artifacts) => writeFileSync(path.join(project, 'hoard.json'), JSON.stringify({ version: 1, remote: remote(repo), artifacts }));
  const big = { big: { url: 'http://127.0.0.1:9/big.bin', digest, size: SIZE } };
  const store = path.join(work, 'store');
  await run(process.execPath, [CLI, 'store', 'add', file, '--store', store], { env });

  const results = [];
  const side = async (name, what, hoardRun, refRun, refLabel) => {
    log(`${name}: one warm-up each, then ${RUNS} runs of each, alternating`);
    await hoardRun(-1);
    await refRun(-1);
    const h = [];
    const r = [];
    for (let i = 0; i < RUNS; i++) {
      flush();
      h.push(await hoardRun(i));
      flush();
      r.push(await refRun(i));
    }
    results.push({ case: name, what, hoardMs: median(h), refMs: median(r), ref: refLabel, ratio: median(h) / median(r) });
  };

  // push: hoard push vs curl -T, each to a repository of its own (so the blob is not there yet).
  let n = 0;
  await side(
    'push',
    `hoard push of ${SIZE / MiB} MiB`,
    async () => {
      manifest(`bench/push-${n++}`, big);
      return (await run(process.execPath, [CLI, 'push', '--store', store], { cwd: project, env })).ms;
    },
    async () => {
      const r = await fetch(`${base}/v2/bench/curl-${n++}/blobs/uploads/`, { method: 'POST' });
      const loc = new URL(r.headers.get('location'), base);
      loc.searchParams.set('digest', digest);
      return (await run('curl', ['-sS', '-f', '-T', file, '-H', 'content-type: application/octet-stream', loc.toString()])).ms;
    },
    'curl -T (one PUT to a fresh upload session)',
  );

  // pull: a sync into an empty store, the blob pulled from the registry, vs curl -o of the blob URL.
  manifest('bench/pull', big);
  await run(process.execPath, [CLI, 'push', '--store', store], { cwd: project, env });
  const fresh = path.join(work, 'fresh-store');
  const out = path.join(work, 'curl.out');
  const pull = async () => {
    rmSync(fresh, { recursive: true, force: true });
    rmSync(path.join(project, 'artifacts'), { recursive: true, force: true });
    const r = await run(process.execPath, [CLI, 'sync', '--store', fresh, '--no-images'], { cwd: project, env });
    if (!/pulled from cache/.test(r.stdout)) throw new Error(`the sync did not pull from the registry:\n${r.stdout}${r.stderr}`);
    return r.ms;
  };
  await side(
    'pull',
    `sync of ${SIZE / MiB} MiB from the registry into an empty store`,
    pull,
    async () => {
      rmSync(out, { force: true });
      return (await run('curl', ['-sS', '-f', '-o', out, `${base}/v2/bench/pull/blobs/${digest}`])).ms;
    },
    'curl -o of the blob URL',
  );
  // hoard syncs a blob to the disk before it names it; curl leaves its file in the page cache.
  // The same durability for curl: its file, then fdatasync (coreutils sync -d).
  await side(
    'pull+sync',
    `sync of ${SIZE / MiB} MiB from the registry into an empty store`,
    pull,
    async () => {
      rmSync(out, { force: true });
      return (await run('sh', ['-c', 'curl -sS -f -o "$1" "$2" && sync -d "$1"', 'sh', out, `${base}/v2/bench/pull/blobs/${digest}`])).ms;
    },
    'curl -o, then sync -d of its file',
  );
  rmSync(fresh, { recursive: true, force: true });
  rmSync(out, { force: true });
  rmSync(path.join(project, 'artifacts'), { recursive: true, force: true });

  // noop: 100 small artifacts the registry already has: one HEAD each, in parallel.
  const small = {};
  const smallStore = path.join(work, 'small-store');
  mkdirSync(path.join(smallStore, 'v1', 'blobs', 'sha256'), { recursive: true });
  for (let i = 0; i < NOOP; i++) {
    const data = randomBytes(1024);
    const hex = createHash('sha256').update(data).digest('hex');
    writeFileSync(path.join(smallStore, 'v1', 'blobs', 'sha256', hex), data, { mode: 0o444 });
    small[`a${i}`] = { url: `http://127.0.0.1:9/a${i}.bin`, digest: `sha256:${hex}`, size: data.length };
  }
  manifest('bench/noop', small);
  await run(process.execPath, [CLI, 'push', '--store', smallStore], { cwd: project, env });
  await side(
    'noop',
    `no-op hoard push of ${NOOP} present artifacts`,
    async () => {
      const r = await run(process.execPath, [CLI, 'push', '--store', smallStore, '--json'], { cwd: project, env });
      if (!r.stdout.includes(`"present":${NOOP}`)) throw new Error(`expected ${NOOP} present:\n${r.stdout.slice(-500)}`);
      return r.ms;
    },
    async () => (await run(process.execPath, ['-e', '0'], { env })).ms,
    'node -e 0 (start-up alone)',
  );

  if (jsonOut) process.stdout.write(`${JSON.stringify({ size: SIZE, runs: RUNS, results })}\n`);
  else {
    const rows = results.map((r) => [r.case, r.what, fmtMs(r.hoardMs), fmtMs(r.refMs), r.ref, `${r.ratio.toFixed(2)}×`]);
    const head = ['case', 'what', 'hoard', 'reference', 'reference is', 'ratio'];
    const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
    for (const r of [head, ...rows]) process.stdout.write(`${r.map((c, i) => c.padEnd(w[i])).join('  ')}\n`);
    process.stdout.write(`(medians of ${RUNS} runs; goals: pull ≤ 1.10×, push ≤ 1.10×, no-op push ≤ 0.5 s)\n`);
  }
} finally {
  cleanup();
}
