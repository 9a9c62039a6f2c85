#!/usr/bin/env node
// hoard's executable (dist/hoard.cjs): runs the bundled CLI, dist/hoard-main.cjs, from a V8
// code cache made on this machine by this Node.js, so that later starts skip compiling it.
// - The CLI bundle: a V8 code cache written after the first run that lacks one, so it holds
//   the functions that run compiled, not only the top level; one file per bundle, Node.js
//   version and architecture. Node's own compile cache (module.enableCompileCache(), Node >=
//   22.1) keeps only what is compiled when a file loads, which is little of what a command
//   runs: measured on Node 24, a no-op `hoard sync` of 1,000 artifacts costs 18 % less CPU time
//   with this cache than with Node's, and Node 20 has none (docs/development.md).
// - The bundles loaded later (the HTTP client, execa, yaml, the TUI): Node's compile cache,
//   where there is one.
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

if (cwdGone) {
  // nothing to run
} else if (env.NODE_DISABLE_COMPILE_CACHE || env.NODE_V8_COVERAGE) {
  // (Under coverage, as npm test runs, the bundle is required as usual: the byte offsets V8
  // reports then match the file and its source map, with no wrapper in front.)
  require(main);
} else {
  if (enableCompileCache) enableCompileCache(cacheDir);
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
  // A run that only prints the help or the version compiles little of what commands run: the
  // cache is left to the first command.
  const onlyHelp = process.argv.slice(2).every((a) => a.startsWith('-')) || process.argv.includes('--help') || process.argv.includes('-h');
  if ((cachedData === undefined || script.cachedDataRejected) && !onlyHelp) {
    process.once('exit', () => {
      try {
        fs.mkdirSync(cacheDir, { recursive: true });
        const tmp = `${file}.${process.pid}.tmp`;
        fs.writeFileSync(tmp, script.createCachedData());
        fs.renameSync(tmp, file);
        // Caches of other builds are never read again (this one's for other Nodes are kept).
        for (const name of fs.readdirSync(cacheDir)) {
          if (name.startsWith('hoard-main-') && name.endsWith('.v8') && !name.startsWith(`hoard-main-${HOARD_BUNDLE_ID}-`)) fs.rmSync(path.join(cacheDir, name), { force: true });
        }
      } catch {}
    });
  }
  // import() in code that V8 compiled with vm.Script has no loader (and on Node 20 none can be
  // given when the code comes from a cache): the TUI's ES module is imported from here instead
  // (src/cli/ui.ts).
  globalThis[Symbol.for('hoard.importBeside')] = (name) => import(path.join(__dirname, name));
  const mod = { exports: {} };
  script.runInThisContext()(mod.exports, createRequire(main), mod, main, __dirname);
}
