#!/usr/bin/env node
// hoard's executable (dist/hoard.cjs): runs the bundled CLI, dist/hoard-main.cjs, through a
// code cache made on this machine by this Node.js, so that later starts skip compiling it.
// - Node >= 22.1: Node's own compile cache (module.enableCompileCache()), which also covers
//   the bundles loaded later (the HTTP client, the TUI).
// - Node 20, which has none: the bundle's V8 code cache, written after the first run that
//   lacks one (so it holds the functions that run used, not only the top level), one file per
//   Node version, bundle and architecture. On a loaded 2-core machine it saves ~20% of a
//   no-op `hoard sync` (see the README's development notes).
// Both live in $XDG_CACHE_HOME/hoard-compile-cache (else ~/.cache/hoard-compile-cache), beside
// the default store, not in it (a command that fails creates no store), or in $NODE_COMPILE_CACHE
// when set; NODE_DISABLE_COMPILE_CACHE=1 turns both off. A cache that cannot be read or written
// is no error: the bundle is compiled as usual.
'use strict';
const path = require('node:path');
const { enableCompileCache } = require('node:module');

const main = path.join(__dirname, 'hoard-main.cjs');
const env = process.env;
const home = env.HOME || require('node:os').homedir();
const cacheDir =
  env.NODE_COMPILE_CACHE ||
  path.join(env.XDG_CACHE_HOME && path.isAbsolute(env.XDG_CACHE_HOME) ? env.XDG_CACHE_HOME : path.join(home, '.cache'), 'hoard-compile-cache');

if (enableCompileCache) {
  enableCompileCache(cacheDir);
  require(main);
} else if (env.NODE_DISABLE_COMPILE_CACHE) {
  require(main);
} else {
  runWithCodeCache();
}

function runWithCodeCache() {
  const fs = require('node:fs');
  const { createRequire } = require('node:module');
  const vm = require('node:vm');
  // HOARD_BUNDLE_ID: the CLI bundle's content hash, set by scripts/build.mjs. (V8 checks only a
  // cache's length and flags against the source, so the name must say which bundle made it.)
  const file = path.join(cacheDir, `hoard-main-${HOARD_BUNDLE_ID}-${process.version}-${process.arch}.v8`);
  let cachedData;
  try {
    cachedData = fs.readFileSync(file);
  } catch {}
  const script = new vm.Script(`(function (exports, require, module, __filename, __dirname) {${fs.readFileSync(main, 'utf8')}\n})`, {
    filename: main,
    cachedData,
  });
  if (cachedData === undefined || script.cachedDataRejected) {
    process.once('exit', () => {
      try {
        fs.mkdirSync(cacheDir, { recursive: true });
        const tmp = `${file}.${process.pid}.tmp`;
        fs.writeFileSync(tmp, script.createCachedData());
        fs.renameSync(tmp, file);
      } catch {}
    });
  }
  // import() in code that V8 took from a cache has no loader on Node 20: the TUI's ES module is
  // imported from here instead (src/cli/ui.ts).
  globalThis[Symbol.for('hoard.importBeside')] = (name) => import(path.join(__dirname, name));
  const mod = { exports: {} };
  script.runInThisContext()(mod.exports, createRequire(main), mod, main, __dirname);
}
