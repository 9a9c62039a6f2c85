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

const file = path.join(__dirname, 'hoard-main.cjs');
// Under coverage (npm test sets NODE_V8_COVERAGE), the bundle is required as usual: the byte
// offsets V8 reports then match the file and its source map (no wrapper in front).
if (process.env.NODE_V8_COVERAGE) {
  require(file);
  return;
}
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
