#!/usr/bin/env node
// hoard, end to end, with no vendor account and no internet.
//
// Makes a throw-away project and store, generates fake vendor artifacts, serves them from
// an HTTP server on 127.0.0.1 (loopback only), and runs the real CLI (dist/hoard.cjs) as a
// child process: first sync, second sync (no requests), relink after `rm -rf artifacts`,
// status. When podman or docker can be used, the cEOS tarball (a real, tiny root filesystem)
// is imported as an image, the second sync finds it present, and the image is removed at the
// end. Exits non-zero if any step does not do what it should. Run: npm run demo
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

const ROOT = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const CLI = path.join(ROOT, 'dist', 'hoard.cjs');
const MiB = 1024 * 1024;

const say = (text) => console.log(`\n==> ${text}`);
const fail = (text) => {
  throw new Error(text);
};

/** A ustar archive of `entries` (a name ending in '/' is a folder), as `tar c` writes one. */
function tar(entries) {
  const blocks = [];
  for (const [name, data] of entries) {
    const dir = name.endsWith('/');
    const body = dir ? Buffer.alloc(0) : Buffer.from(data);
    const h = Buffer.alloc(512);
    h.write(name, 0, 'utf8');
    h.write(dir ? '0000755\0' : '0000644\0', 100, 'latin1');
    h.write('0000000\0', 108, 'latin1');
    h.write('0000000\0', 116, 'latin1');
    h.write(`${body.length.toString(8).padStart(11, '0')}\0`, 124, 'latin1');
    h.write(`${Math.floor(Date.now() / 1000).toString(8).padStart(11, '0')}\0`, 136, 'latin1');
    h.write('        ', 148, 'latin1');
    h.write(dir ? '5' : '0', 156, 'latin1');
    h.write('ustar\0', 257, 'latin1');
    h.write('00', 263, 'latin1');
    let sum = 0;
    for (const b of h) sum += b;
    h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
    blocks.push(h, body, Buffer.alloc((512 - (body.length % 512)) % 512));
  }
  blocks.push(Buffer.alloc(1024));
  return Buffer.concat(blocks);
}

// A root filesystem tarball, as Arista ships cEOS-lab: `podman import` makes an image of it.
const rootfs = tar([
  ['etc/', ''],
  ['etc/os-release', 'NAME="cEOS-lab demo"\nID=ceos-demo\nVERSION_ID=4.32.1F\n'],
  ['etc/hostname', 'ceos-demo\n'],
  ['usr/', ''],
  ['usr/share/', ''],
  ['usr/share/ceos-demo/', ''],
  ['usr/share/ceos-demo/image.bin', randomBytes(16 * MiB)],
]);

// The fake vendor downloads: bytes in memory, served by path.
const files = {
  '/arista/cEOS-lab-demo.tar.gz': gzipSync(rootfs, { level: 1 }),
  '/arista/vEOS-lab-demo.qcow2': randomBytes(16 * MiB),
  '/tools/install-lab-tools.sh': Buffer.from('#!/bin/sh\n# demo installer: does nothing\necho "lab tools installed (not really)"\n'),
};

let requests = 0;
const server = http.createServer((req, res) => {
  requests++;
  const body = files[new URL(req.url ?? '/', 'http://localhost').pathname];
  if (!body || req.method !== 'GET') {
    res.writeHead(404).end('not found\n');
    return;
  }
  res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(body.length) });
  res.end(body);
});

const tmp = mkdtempSync(path.join(os.tmpdir(), 'hoard-demo-'));
const project = path.join(tmp, 'lab');
const store = path.join(tmp, 'store');

// The child sees HOARD_STORE and nothing else of the caller's HOARD_* settings, nor their
// configuration file.
const childEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('HOARD_')));
childEnv.HOARD_STORE = store;
childEnv.XDG_CONFIG_HOME = path.join(tmp, 'config');

let current = null;
/** Runs `hoard <args>` in the project; its output is shown and kept. Resolves with its exit code and stdout. */
function hoard(args) {
  console.log(`$ hoard ${args.join(' ')}`);
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { cwd: project, env: childEnv, stdio: ['ignore', 'pipe', 'inherit'] });
    current = child;
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
      process.stdout.write(d);
    });
    const timer = setTimeout(() => child.kill('SIGTERM'), 120_000);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      current = null;
      resolve({ code: code ?? (signal ? 128 : 1), out });
    });
  });
}

async function step(args, { expectedCode = 0, shows } = {}) {
  const { code, out } = await hoard(args);
  if (code !== expectedCode) fail(`\`hoard ${args.join(' ')}\` exited ${code}, expected ${expectedCode}`);
  if (shows && !out.includes(shows)) fail(`\`hoard ${args.join(' ')}\` did not say "${shows}"`);
}

/** podman or docker, when one can be used here (podman first: it needs no daemon); else null. */
function usableEngine() {
  for (const engine of ['podman', 'docker']) {
    const r = spawnSync(engine, ['image', 'ls', '-q'], { stdio: 'ignore', timeout: 20_000 });
    if (r.status === 0) return engine;
  }
  return null;
}
// HOARD_DEMO_ENGINE=none plays a machine without an engine (the demo's own test does).
const engine = process.env.HOARD_DEMO_ENGINE === 'none' ? null : usableEngine();
const imageRef = `localhost/hoard-demo/ceos:${process.pid}`;
let imported = false;

async function main() {
  if (!existsSync(CLI)) fail(`${path.relative(process.cwd(), CLI)} is missing; build first: node scripts/build.mjs (or run: npm run demo)`);

  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const base = `http://127.0.0.1:${server.address().port}`;

  say(`fake vendor server on ${base} (loopback only), serving:`);
  for (const [p, body] of Object.entries(files)) console.log(`    ${p}  ${body.length >= MiB ? `${body.length / MiB} MiB` : `${body.length} B`}`);

  // An unlocked manifest, as a person writes it: URLs, plus how each file is used.
  mkdirSync(project, { recursive: true });
  const manifest = {
    version: 1,
    output: 'artifacts',
    artifacts: {
      'ceos-lab': { url: `${base}/arista/cEOS-lab-demo.tar.gz`, ...(engine ? { image: imageRef } : {}) },
      'lab-tools': { url: `${base}/tools/install-lab-tools.sh`, executable: true },
      'veos-lab': { url: `${base}/arista/vEOS-lab-demo.qcow2`, link: 'copy' },
    },
  };
  writeFileSync(path.join(project, 'hoard.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  say(`project ${project}, store ${store}`);
  console.log('    hoard.json lists 3 artifacts by URL only: no digests yet');
  if (engine) console.log(`    ceos-lab, a root filesystem tarball, is to become the image ${imageRef} in ${engine}`);
  else console.log('    skipping the container image part: neither podman nor docker can be used here');
  const engineFlags = engine ? ['--engine', engine] : ['--no-images'];

  say(`first sync: download each artifact once, hash it, store it, link it${engine ? `, import ${imageRef} into ${engine}` : ''}, lock hoard.json`);
  imported = Boolean(engine);
  await step(['sync', ...engineFlags], engine ? { shows: `imported as ${imageRef}` } : {});
  const manifestText = readFileSync(path.join(project, 'hoard.json'), 'utf8');
  const locked = JSON.parse(manifestText);
  for (const [name, e] of Object.entries(locked.artifacts)) {
    if (!/^sha256:[0-9a-f]{64}$/.test(e.digest ?? '') || typeof e.size !== 'number') fail(`${name} was not locked in hoard.json`);
  }

  say('hoard.json now records digest and size (commit this file)');
  process.stdout.write(manifestText);

  say('second sync: everything is a cache hit, so no request reaches the server');
  const before = requests;
  console.log(`    server requests so far: ${before}`);
  await step(['sync', ...engineFlags], engine ? { shows: 'image present' } : {});
  console.log(`    server requests now:    ${requests}`);
  if (requests !== before) fail(`the second sync made ${requests - before} request(s); expected none`);

  say('rm -rf artifacts && hoard sync: outputs come back from the store, no download');
  console.log('$ rm -rf artifacts');
  rmSync(path.join(project, 'artifacts'), { recursive: true, force: true });
  const beforeRelink = requests;
  await step(['sync', ...engineFlags]);
  if (requests !== beforeRelink) fail(`relinking made ${requests - beforeRelink} request(s); expected none`);
  const tools = statSync(path.join(project, 'artifacts', 'install-lab-tools.sh'));
  if ((tools.mode & 0o111) === 0) fail('install-lab-tools.sh is not executable');
  const veos = statSync(path.join(project, 'artifacts', 'vEOS-lab-demo.qcow2'));
  if (veos.nlink !== 1 || (veos.mode & 0o200) === 0) fail('vEOS-lab-demo.qcow2 should be a private, writable copy (link: copy)');

  say('status: exit 0 when the project matches hoard.json (3 when something drifted)');
  await step(['status', ...engineFlags], { expectedCode: 0 });
  console.log('    exit status 0');

  if (engine) {
    say(`the image ${engine} has, labelled with the artifact's digest:`);
    const inspect = spawnSync(engine, ['image', 'inspect', '--format', '{{index .Config.Labels "io.hoard.digest"}}', imageRef], { encoding: 'utf8' });
    console.log(`$ ${engine} image inspect --format '{{index .Config.Labels "io.hoard.digest"}}' ${imageRef}\n${inspect.stdout.trim()}`);
    if (inspect.stdout.trim() !== locked.artifacts['ceos-lab'].digest) fail(`${imageRef} is not labelled with ceos-lab's digest`);
  }

  say(`done: ${requests} request(s) in total, one per artifact; everything after the first sync came from the store`);
}

let exitCode = 0;
const cleanup = () => {
  if (imported) {
    console.log(`\n==> removing the demo image: ${engine} rmi ${imageRef}`);
    spawnSync(engine, ['rmi', '--force', imageRef], { stdio: 'ignore', timeout: 60_000 });
  }
  server.closeAllConnections?.();
  server.close();
  rmSync(tmp, { recursive: true, force: true });
};
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.once(sig, () => {
    current?.kill(sig);
    cleanup();
    process.exit(130);
  });
}

try {
  await main();
} catch (err) {
  console.error(`\ndemo failed: ${err?.message ?? err}`);
  exitCode = 1;
} finally {
  cleanup();
}
process.exitCode = exitCode;
