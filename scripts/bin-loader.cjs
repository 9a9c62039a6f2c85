#!/usr/bin/env node
// hoard's executable. It runs the bundled CLI (hoard-main.cjs) through V8's code cache
// (hoard-main.cjs.cache, made at build time), which skips compiling the bundle on every
// start: a no-op `hoard sync` must feel instant. A cache from another Node.js version is
// rejected by V8 and the bundle is simply compiled as usual. CommonJS, not ESM: the ES
// module loader alone costs a few milliseconds more at start-up.
'use strict';
const { readFileSync, writeFileSync } = require('node:fs');
const { createRequire } = require('node:module');
const path = require('node:path');
const { Script } = require('node:vm');

// A working directory that was deleted under a shell: every module that asks for it would
// crash with a stack trace. Say so in one line (E_CWD in docs/errors.md), exit 1.
let cwdGone = false;
try {
  process.cwd();
} catch (err) {
  if (!err || err.code !== 'ENOENT') throw err;
  cwdGone = true;
  const message = 'the working directory no longer exists (it was deleted or moved)';
  const hint = '`cd` into an existing folder and run the command again';
  if (process.argv.includes('--json')) process.stdout.write(`${JSON.stringify({ type: 'error', code: 'E_CWD', message, hint })}\n`);
  process.stderr.write(`hoard: error: ${message}\nhint: ${hint}\n`);
  process.exitCode = 1;
}

if (!cwdGone) run();

function run() {
  const file = path.join(__dirname, 'hoard-main.cjs');
  let cachedData;
  try {
    cachedData = readFileSync(`${file}.cache`);
  } catch {}
  const script = new Script(`(function (exports, require, module, __filename, __dirname) {${readFileSync(file, 'utf8')}\n})`, {
    filename: file,
    cachedData,
  });
  // scripts/build.mjs: record what this run compiled, in this bundle (1) or in the HTTP
  // client's bundle, dist/hoard-net.cjs, which its own loader caches the same way (net).
  const building = process.env.HOARD_BUILD_CODE_CACHE;
  delete process.env.HOARD_BUILD_CODE_CACHE;
  if (building === '1') process.once('exit', () => writeFileSync(`${file}.cache`, script.createCachedData()));
  if (building === 'net') globalThis[Symbol.for('hoard.buildNetCache')] = true;
  const mod = { exports: {} };
  script.runInThisContext()(mod.exports, createRequire(file), mod, file, __dirname);
}
