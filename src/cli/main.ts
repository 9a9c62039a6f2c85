// The only module that touches process.argv, process.env and process.exit.
import { setMaxListeners } from 'node:events';
import path from 'node:path';
import yargs, { type Argv } from 'yargs';
import { errorInfo, EXIT_TEXT, exitCodeFor, HoardError, isBug, signalExit } from '../core/errors.ts';
import { describeDuration, parseDuration } from '../core/duration.ts';
import { proxySettings } from '../download/proxy.ts';
import { releaseHeldLocksSync, type LockWait } from '../store/lock.ts';
import type { NetworkOptions } from '../sync/sync.ts';
import type { LinkMode } from '../manifest/types.ts';
import { createPrinter, type Printer } from './print.ts';
import {
  MERGE_DRIVER_CONFIG, runAdd, runConfig, runFetch, runGc, runInit, runMergeDriver, runStatus, runStoreAdd, runStoreDu, runStoreLs, runStorePath, runStoreRm, runSync, runVerify,
  type GlobalOptions,
} from './commands.ts';
import { ENGINES, resolveSettings, SETTING_VARIABLES, type ResolvedSettings } from './config.ts';
import { parseSize } from '../core/format.ts';
import { findManifest } from '../manifest/find.ts';
import { runLive, runUiCommand, wantsLive } from './ui.ts';
import { runPush, teamCacheFor } from './push.ts';
import { releaseTypeOption, runAddArista, runAddFromClab, runOutdated, runUpdate, runVersions } from './vendor.ts';

declare const HOARD_VERSION: string | undefined; // set by scripts/build.mjs

const IMAGE_OPTIONS = {
  images: { type: 'boolean', default: true, describe: 'import or load container images (--no-images skips the engine entirely)' },
  engine: { choices: ENGINES, defaultDescription: 'auto', describe: 'container engine; auto: docker when its daemon answers, else podman' },
} as const;

const REMOTE_OPTION = {
  remote: {
    type: 'string', requiresArg: true,
    describe: 'team cache: oci://<registry>/<repository> [default: HOARD_REMOTE, hoard.json\'s "remote", the config file]; --no-remote: none',
  },
} as const;

const NETWORK_OPTIONS = {
  retries: { type: 'number', default: 5, describe: 'retries after a network error, a stall, 408, 429 or 5xx (a try that brought new bytes does not count)' },
  'retry-delay': { type: 'number', default: 1, describe: 'seconds before the first retry; doubles each time (max 30 s), with jitter; Retry-After wins' },
  'connect-timeout': { type: 'number', default: 30, describe: 'seconds to wait for a connection' },
  'response-timeout': { type: 'number', default: 60, describe: 'seconds to wait for the response headers' },
  'stall-timeout': { type: 'number', default: 60, describe: 'seconds without a byte before a transfer counts as stalled (then retried)' },
} as const;

/** The network flags as the engine takes them; a bad value is a usage error naming the flag. */
function networkOptions(args: Record<string, unknown>): NetworkOptions {
  const num = (flag: string, key: string, min: number, integer = false): number => {
    const v = Number(args[key]);
    if (!Number.isFinite(v) || v < min || (integer && !Number.isInteger(v))) {
      const given = typed(process.argv.slice(2), [`--${flag}`], args[key]);
      throw new HoardError('E_USAGE', `--${flag} must be ${integer ? 'a whole number' : 'a number'} of at least ${min}, not ${JSON.stringify(String(given))}`);
    }
    return v;
  };
  const ms = (flag: string, key: string) => Math.round(num(flag, key, 0.001) * 1000);
  return {
    retries: num('retries', 'retries', 0, true),
    retryDelayMs: Math.round(num('retry-delay', 'retryDelay', 0) * 1000),
    connectTimeoutMs: ms('connect-timeout', 'connectTimeout'),
    headersTimeoutMs: ms('response-timeout', 'responseTimeout'),
    stallTimeoutMs: ms('stall-timeout', 'stallTimeout'),
  };
}

function jobsOption(args: Record<string, unknown>): number {
  const jobs = Number(args.jobs);
  if (!Number.isInteger(jobs) || jobs < 1) throw new HoardError('E_USAGE', `--jobs must be a whole number of at least 1, not ${String(args.jobs)}`);
  return jobs;
}

const EPILOG = 'Every option can also be set as HOARD_<OPTION> in the environment (e.g. HOARD_STORE=/data/hoard, HOARD_NO_STORE=1);\n' +
  'store, jobs, link, engine and max-size also in $XDG_CONFIG_HOME/hoard/config.json (see `hoard config --help`).\n' +
  `Docs: README.md · exit codes: ${EXIT_TEXT} · error codes (E_*): docs/errors.md`;

function globals(y: Argv) {
  return y
    .option('manifest', { alias: 'm', type: 'string', default: 'hoard.json', defaultDescription: 'hoard.json here, else in the closest folder above (up to the repository root)', describe: 'manifest file', requiresArg: true })
    .option('store', {
      alias: 'cache-dir', type: 'string', requiresArg: true,
      describe: 'store folder [default: $XDG_CACHE_HOME/hoard or ~/.cache/hoard]; --no-store: keep nothing, download straight to the outputs',
    })
    .option('json', { type: 'boolean', default: false, describe: 'one JSON event per line on stdout' })
    .option('verbose', { alias: 'v', type: 'boolean', default: false, describe: 'show each cache check, request and stack traces' })
    .option('quiet', { alias: 'q', type: 'boolean', default: false, describe: 'only errors' })
    .option('color', { type: 'boolean', default: true, describe: 'colour output (--no-color, or NO_COLOR)' })
    .option('lock-timeout', {
      type: 'string', requiresArg: true, default: '5m',
      describe: 'how long to wait for a lock another hoard holds (30s, 5m, 1h; 0: forever), then fail naming it (E_LOCKED)',
    });
}

/** Options that HOARD_* variables may set; any other HOARD_* variable is the user's own (a token, say). */
const ENV_OPTIONS = [
  'manifest', 'store', 'cache-dir', 'json', 'verbose', 'quiet', 'color', 'output', 'force', 'dry-run', 'frozen',
  'link', 'jobs', 'verify', 'images', 'engine', 'name', 'path', 'image', 'sha256', 'executable', 'checksum-url', 'max-size', 'fetch-retention',
  'retries', 'retry-delay', 'connect-timeout', 'response-timeout', 'stall-timeout',
  'refresh', 'output-file', 'lock-timeout', 'release-type', 'token-env', 'latest', 'branch', 'from-clab',
];

/**
 * The command options each command has: a HOARD_* variable for an option the command being
 * run does not have is left out, as yargs' strict mode would reject it (`HOARD_MAX_SIZE=5GB`
 * exported in a shell must not break `hoard status`).
 */
const NETWORK_ENV = ['retries', 'retry-delay', 'connect-timeout', 'response-timeout', 'stall-timeout'];
const COMMAND_ENV: Record<string, readonly string[]> = {
  init: ['output'],
  add: ['name', 'path', 'image', 'sha256', 'output', 'link', 'executable', 'images', 'engine', 'checksum-url', 'release-type', 'token-env', 'from-clab', ...NETWORK_ENV],
  sync: ['force', 'dry-run', 'frozen', 'output', 'link', 'jobs', 'verify', 'images', 'engine', 'max-size', 'token-env', ...NETWORK_ENV],
  push: ['jobs', ...NETWORK_ENV],
  status: ['output', 'verify', 'images', 'engine'],
  verify: ['output'],
  gc: ['dry-run', 'max-size', 'fetch-retention'],
  store: [],
  ui: ['output', 'jobs', 'images', 'engine', ...NETWORK_ENV],
  fetch: ['output-file', 'sha256', 'refresh', 'force', 'link', 'executable', ...NETWORK_ENV],
  config: [],
  outdated: ['token-env'],
  update: ['latest', 'token-env', 'output', 'images', 'engine', ...NETWORK_ENV],
  versions: ['branch', 'release-type', 'token-env'],
  'merge-driver': [],
};
const GLOBAL_ENV = ['manifest', 'store', 'cache-dir', 'json', 'verbose', 'quiet', 'color', 'lock-timeout'];

/** The command named on the command line (the first word that is not an option or its value). */
function commandOf(argv: readonly string[]): string | undefined {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') return undefined;
    if (/^(-m|--manifest|--store|--cache-dir)$/.test(a)) i++;
    else if (!a.startsWith('-')) return a;
  }
  return undefined;
}

const MAX_SIZE_OPTION = {
  type: 'string',
  requiresArg: true,
  describe: 'size limit for the store: evict least recently used blobs until it fits (5GB, 500MB, 2GiB, or bytes)',
} as const;

/** --max-size (or HOARD_MAX_SIZE) in bytes; undefined when not given. */
function maxSizeOf(value: unknown): number | undefined {
  if (value === undefined || value === '') return undefined;
  const bytes = parseSize(String(value));
  if (bytes === null) {
    throw new HoardError('E_USAGE', `--max-size ${JSON.stringify(String(value))} is not a size`, {
      hint: 'give bytes (5000000000) or a number with a unit: KB, MB, GB, TB (powers of 1000) or KiB, MiB, GiB, TiB (powers of 1024), e.g. --max-size 5GB (also HOARD_MAX_SIZE)',
    });
  }
  return bytes;
}

const BOOLEAN_ENV = new Set(
  ['json', 'verbose', 'quiet', 'color', 'force', 'dry-run', 'frozen', 'verify', 'images', 'executable', 'refresh', 'latest'].map((o) => `HOARD_${o.toUpperCase().replace(/-/g, '_')}`),
);

async function main(argv: string[]): Promise<number> {
  // Header values may use any variable, so they read this copy; yargs reads process.env for HOARD_*.
  const env: Record<string, string | undefined> = { ...process.env };
  const command = commandOf(argv);
  const forCommand = command !== undefined && command in COMMAND_ENV ? [...GLOBAL_ENV, ...COMMAND_ENV[command]!] : ENV_OPTIONS;
  const known = new Set(forCommand.map((o) => `HOARD_${o.toUpperCase().replace(/-/g, '_')}`));
  let badEnv: HoardError | null = null;
  // The settings the configuration file can also hold are resolved in one place (config.ts),
  // which must tell a flag from a variable: yargs sees only the command line for them.
  const settingVariables = new Set<string>(SETTING_VARIABLES);
  for (const k of Object.keys(process.env)) {
    if (!k.startsWith('HOARD_')) continue;
    // Booleans as people write them in CI files: 1/0, yes/no, on/off; anything else is an
    // error, as a malformed HOARD_JOBS is, whichever command runs (not a silent "true").
    const v = process.env[k]!;
    if (BOOLEAN_ENV.has(k) && v !== '' && !/^(1|yes|on|true|0|no|off|false)$/i.test(v)) {
      badEnv = new HoardError('E_USAGE', `${k}=${v}: expected true or false (or 1/0, yes/no, on/off)`, { hint: `fix or unset ${k}`, details: { variable: k } });
    }
    if (!known.has(k) || settingVariables.has(k)) delete process.env[k];
    else if (BOOLEAN_ENV.has(k) && /^(1|yes|on)$/i.test(v)) process.env[k] = 'true';
    else if (BOOLEAN_ENV.has(k) && /^(0|no|off)$/i.test(v)) process.env[k] = 'false';
  }
  // `hoard status | head -1`: a closed pipe ends the output quietly, as for any Unix tool.
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  });
  let printer: Printer | null = null;
  // stdout is written in batches (one write per event-loop turn, not per line): a no-op sync
  // of a thousand artifacts prints a thousand lines. stderr flushes stdout first, keeping order.
  let pending = '';
  const flushOut = () => {
    if (pending) process.stdout.write(pending);
    pending = '';
  };
  const out = (s: string) => {
    if (!pending) setImmediate(flushOut);
    pending += s;
  };
  const errOut = (s: string) => {
    flushOut();
    process.stderr.write(s);
  };
  let verbose = argv.includes('-v') || argv.includes('--verbose');
  const makePrinter = (g: GlobalOptions) => {
    verbose = g.verbose;
    printer = createPrinter({
      json: g.json,
      verbose: g.verbose,
      quiet: g.quiet,
      color: g.color && !env.NO_COLOR && process.stdout.isTTY === true,
      progress: !g.json && !g.quiet && process.stderr.isTTY === true,
      // No terminal on stderr (CI, a pipe), or --json: progress as lines at a steady pace.
      ...(g.json || process.stderr.isTTY !== true ? { steady: progressPace(env) } : {}),
      out,
      err: errOut,
      cwd: process.cwd(),
    });
    return printer;
  };
  // Set by the middleware below, before any command runs.
  let resolved: ResolvedSettings | null = null;
  /** How every wait for a lock ends: Ctrl-C, and --lock-timeout; handed to each command. */
  let lockWait: LockWait = {};
  const context = (args: Record<string, unknown>) => {
    const { settings, origins } = resolved!;
    // No -m (or HOARD_MANIFEST): hoard.json here or in the closest folder above (init: here).
    const named = argv.some((a) => /^(-m|--manifest)(=|$)/.test(a)) || env.HOARD_MANIFEST !== undefined;
    const found = named || !MANIFEST_COMMANDS.includes(command ?? '') ? null : findManifest(process.cwd());
    const g: GlobalOptions = {
      manifest: found ?? String(args.manifest),
      store: settings.store,
      noStore: !settings.enabled,
      // --link and HOARD_LINK apply to every artifact (args.link); the file's "link" is the
      // user's default, for entries that do not choose one (a VM disk's "copy" stays a copy).
      ...(origins.link.kind === 'file' ? { defaultLink: settings.link } : {}),
      lockWait,
      json: Boolean(args.json),
      verbose: Boolean(args.verbose),
      quiet: Boolean(args.quiet),
      color: Boolean(args.color),
    };
    const p = makePrinter(g);
    if (found && path.dirname(found) !== process.cwd()) p.note(`using ${path.relative(process.cwd(), found)}`);
    return { g, printer: p, env, settings };
  };

  let code = 0;
  const controller = new AbortController();
  // Every download in flight listens for Ctrl-C (--jobs of them, and more with retries), and
  // so does every wait for a lock (see lockWait below).
  setMaxListeners(0, controller.signal);
  let stoppedBy: NodeJS.Signals | null = null;
  const onSignal = (signal: NodeJS.Signals) => {
    if (stoppedBy) {
      // A second signal: leave now. Locks this process holds are released first, so that
      // nobody waits for a dead process; partial downloads stay where they are (they resume).
      // (After the other listeners of this signal: `hoard ui` restores the screen first.)
      const first = stoppedBy;
      setImmediate(() => {
        releaseHeldLocksSync();
        flushOut();
        process.exit(signalExit(first));
      });
      return;
    }
    stoppedBy = signal;
    code = signalExit(signal);
    controller.abort(new HoardError('E_INTERRUPTED', `interrupted (${signal})`));
  };
  // SIGHUP (the terminal closed, an ssh session dropped) is a request to stop, like SIGTERM.
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(sig, onSignal);

  const y = yargs(argv);
  // yargs renders the whole help text after starting any command, in case that command fails
  // later; that costs ~20 ms of string measuring on every run. Our .fail() never shows it.
  const usage = (y as unknown as { getInternalMethods?: () => { getUsageInstance?: () => { cacheHelpMessage?: () => void } } })
    .getInternalMethods?.()
    .getUsageInstance?.();
  if (usage?.cacheHelpMessage) usage.cacheHelpMessage = () => {};

  try {
    await globals(y)
      .scriptName('hoard')
      .env('HOARD')
      // Flag > HOARD_* > config file > default, for the options the file can set; commands
      // read the effective values from args as if they had been given.
      .middleware((args) => {
        if (badEnv) throw badEnv;
        // A malformed proxy variable is an error naming it, before anything is downloaded.
        proxySettings(env);
        const lockTimeout = parseDuration(String(args.lockTimeout));
        if (lockTimeout === null) {
          throw new HoardError('E_USAGE', `--lock-timeout ${JSON.stringify(String(args.lockTimeout))} is not a duration`, {
            hint: 'give 30s, 5m, 1h, 500ms or a number of seconds; 0 waits forever (also HOARD_LOCK_TIMEOUT)',
          });
        }
        lockWait = { signal: controller.signal, timeoutMs: lockTimeout };
        resolved = resolveSettings(
          {
            store: args.store as string | false | undefined, jobs: typed(argv, ['--jobs', '-j'], args.jobs), link: args.link as string | undefined, engine: args.engine as string | undefined, maxSize: args.maxSize as string | undefined,
            fetchRetention: args.fetchRetention as string | undefined,
            remote: args.remote as string | false | undefined, push: args.push as boolean | undefined,
          },
          env,
        );
        const { settings, origins } = resolved;
        args.jobs = settings.jobs;
        args.engine = settings.engine;
        if (origins.link.kind === 'flag' || origins.link.kind === 'env') args.link = settings.link;
        if (settings.maxSize !== undefined) args.maxSize = args['max-size'] = settings.maxSize;
      })
      .usage('$0 <command> [options]\n\nDownload big artifacts once, verify them by SHA-256, keep them in a shared store and link them into your project.')
      .command(
        'init',
        'write a starter hoard.json and ignore the output folder in .gitignore',
        (y) => y.option('output', { type: 'string', default: 'artifacts', describe: 'output folder to record' }).example('$0 init', 'start a manifest here'),
        async (args) => {
          const c = context(args);
          code = await runInit(c.g, c.printer, { output: String(args.output) });
        },
      )
      .command(
        'add [url]',
        'download, verify and record an artifact (an http(s) URL, or arista:<format>@<version> — see docs/arista.md)',
        (y) =>
          y
            .positional('url', { type: 'string', describe: 'http(s) URL of the artifact, or arista:<format>@<version|latest|branch>, or arista:<file name>' })
            .option('from-clab', { type: 'string', requiresArg: true, describe: 'add every Arista image a containerlab topology uses (kinds.*.image, nodes.*.image)' })
            .option('name', { type: 'string', describe: 'artifact name [default: the URL\'s file name]' })
            .option('path', { type: 'string', describe: 'file path inside the output folder [default: the URL\'s file name]' })
            .option('image', { type: 'string', describe: 'container image reference to import it as (name[:tag]); for arista:cEOS… given without a value: arista/ceos:<version>' })
            .option('sha256', { type: 'string', describe: 'expected SHA-256 (hex); the download must match' })
            .option('output', { type: 'string', describe: 'output folder (overrides the manifest\'s "output")' })
            .option('link', { choices: ['auto', 'reflink', 'hardlink', 'copy'] as const, describe: 'how the output is made from the blob' })
            .option('executable', { type: 'boolean', describe: 'set the executable bit on the output' })
            .options(IMAGE_OPTIONS)
            .options(NETWORK_OPTIONS)
            .option('release-type', { type: 'string', requiresArg: true, describe: 'arista: with @latest or a branch, F (feature, default) or M (maintenance)' })
            .option('token-env', { type: 'string', requiresArg: true, describe: 'arista: the variable holding your API token [default: ARISTA_TOKEN]' })
            .option('checksum-url', {
              type: 'string', requiresArg: true,
              describe: 'published checksum file (coreutils "<hex>  <file>", BSD, or bare hex; sha512/sha256/sha1/md5): verified and recorded',
            })
            .option('header', {
              alias: 'H', type: 'string', array: true, requiresArg: true,
              describe: 'request header "Name: value", recorded in hoard.json; write secrets as ${VAR}, expanded at request time',
            })
            .example('$0 add https://downloads.example.com/cEOS-lab-4.32.1F.tar.xz --image arista/ceos:4.32.1F', 'record a cEOS image')
            .example('$0 add https://example.com/tool.run --executable --sha256 <hex>', 'an installer, verified against a published digest')
            .example('$0 add arista:cEOS@latest --image', 'the newest cEOS-lab F release from arista.com (ARISTA_TOKEN), imported as arista/ceos:<version>')
            .example('$0 add arista:cEOS@4.32 --image ceos:4.32', 'the newest of a branch, under your own tag')
            .example('$0 add arista:vEOS-lab@latest --release-type M', 'the newest maintenance release')
            .example('$0 add arista:EOS64-4.32.1F.swi', 'an exact file name')
            .example('$0 add --from-clab lab.clab.yml', 'ceos:4.32.1F in the topology → arista:cEOS@4.32.1F, imported under that exact tag')
            .example("$0 add https://vendor.example/img.tar.xz -H 'Authorization: Bearer ${VENDOR_TOKEN}'", 'a download that needs a token (quote it: hoard expands it)'),
        async (args) => {
          const c = context(args);
          if (args.fromClab !== undefined) {
            if (args.url !== undefined) throw new HoardError('E_USAGE', 'give either a URL or --from-clab, not both');
            code = await runAddFromClab(c.g, c.printer, c.env, controller.signal, {
              file: String(args.fromClab), ...(args.tokenEnv ? { tokenEnv: String(args.tokenEnv) } : {}),
              images: args.images, engine: c.settings.engine, network: networkOptions(args), ...(args.output ? { output: args.output } : {}),
            });
            return;
          }
          if (args.url === undefined) throw new HoardError('E_USAGE', 'name what to add: a URL, arista:<format>@<version>, or --from-clab <file>', { hint: 'see `hoard add --help`' });
          if (String(args.url).startsWith('arista:')) {
            const unfit = (['sha256', 'checksum-url', 'header'] as const).filter((f) => args[f] !== undefined);
            if (unfit.length) {
              throw new HoardError('E_USAGE', `--${unfit[0]} does not apply to arista: sources`, { hint: "Arista's own .sha512sum is fetched, verified and recorded; the token comes from ARISTA_TOKEN (or --token-env)" });
            }
            code = await runAddArista(c.g, c.printer, c.env, controller.signal, {
              spec: String(args.url), name: args.name, path: args.path, image: args.image, link: args.link, executable: args.executable,
              ...(args.releaseType !== undefined ? { releaseType: releaseTypeOption(args.releaseType) } : {}),
              ...(args.tokenEnv ? { tokenEnv: String(args.tokenEnv) } : {}),
              images: args.images, engine: c.settings.engine, network: networkOptions(args), ...(args.output ? { output: args.output } : {}),
            });
            return;
          }
          code = await runAdd(c.g, c.printer, c.env, controller.signal, {
            url: String(args.url),
            name: args.name, path: args.path, image: args.image, sha256: args.sha256, output: args.output,
            link: args.link, executable: args.executable, headers: parseHeaders((args.header as string[] | undefined) ?? []),
            images: args.images, engine: c.settings.engine, checksumUrl: args.checksumUrl, network: networkOptions(args),
          });
        },
      )
      .command(
        'sync [names..]',
        'reconcile the manifest with the store and the output folder',
        (y) =>
          y
            .positional('names', { type: 'string', array: true, describe: 'only these artifacts' })
            .option('force', { type: 'boolean', default: false, describe: 're-download and replace outputs, even someone else\'s files' })
            .option('dry-run', { alias: 'n', type: 'boolean', default: false, describe: 'print the plan; change nothing anywhere' })
            .option('frozen', { type: 'boolean', default: false, describe: 'fail (exit 2) if an entry has no digest; never write hoard.json' })
            .option('output', { alias: 'o', type: 'string', describe: 'output folder (overrides the manifest\'s "output")' })
            .option('link', { choices: ['auto', 'reflink', 'hardlink', 'copy'] as const, describe: 'link mode for every artifact' })
            .option('jobs', { alias: 'j', type: 'number', defaultDescription: '4', describe: 'parallel downloads' })
            .option('verify', { type: 'boolean', default: false, describe: 're-hash blobs and outputs instead of trusting fingerprints' })
            .option('max-size', MAX_SIZE_OPTION)
            .options(REMOTE_OPTION)
            .option('push', { type: 'boolean', describe: 'push what this sync downloaded from elsewhere to the team cache (HOARD_PUSH=1, config "push": true; for CI)' })
            .option('token-env', { type: 'string', requiresArg: true, describe: 'the variable holding your Arista API token, for arista: artifacts [default: ARISTA_TOKEN]' })
            .options(IMAGE_OPTIONS)
            .options(NETWORK_OPTIONS)
            .example('$0 sync', 'download what is missing, link everything')
            .example('$0 sync --push', 'in CI: fill the team cache with what had to come from the vendor')
            .example('$0 sync --max-size 50GB', 'then evict least recently used blobs of other projects until the store fits')
            .example('$0 sync --frozen', 'in CI: fail if hoard.json is not locked')
            .example('$0 sync ceos-lab --dry-run', 'show what would happen to one artifact'),
        async (args) => {
          const c = context(args);
          const jobs = jobsOption(args);
          const network = networkOptions(args);
          const maxSize = maxSizeOf(args.maxSize);
          const run = (printer: Printer) => runSync(c.g, printer, c.env, controller.signal, {
            names: (args.names as string[] | undefined) ?? [],
            force: Boolean(args.force), dryRun: Boolean(args.dryRun), frozen: Boolean(args.frozen), output: args.output,
            link: args.link, jobs, verify: Boolean(args.verify), images: args.images, engine: c.settings.engine, network,
            ...(maxSize !== undefined ? { maxSize } : {}),
            teamCache: teamCacheFor(resolved!, c.env, network), push: c.settings.push,
            ...(args.tokenEnv ? { tokenEnv: String(args.tokenEnv) } : {}),
          });
          // On a terminal: the same lines, with live progress drawn by Ink (loaded only then).
          code = wantsLive(c.g, Boolean(args.dryRun)) ? await runLive(c.g, c.env, run) : await run(c.printer);
        },
      )
      .command(
        'status [names..]',
        'show what sync would do; exit 0 in sync, 3 out of sync',
        (y) =>
          y
            .positional('names', { type: 'string', array: true, describe: 'only these artifacts' })
            .option('output', { alias: 'o', type: 'string', describe: 'output folder (overrides the manifest\'s "output")' })
            .option('verify', { type: 'boolean', default: false, describe: 're-hash instead of trusting fingerprints' })
            .options(REMOTE_OPTION)
            .options(IMAGE_OPTIONS)
            .example('$0 status || hoard sync', 'sync only when something drifted')
            .example('$0 status -v', 'also: which missing blobs the team cache holds'),
        async (args) => {
          const c = context(args);
          code = await runStatus(c.g, c.printer, c.env, {
            names: (args.names as string[] | undefined) ?? [], output: args.output, verify: Boolean(args.verify), images: args.images, engine: c.settings.engine,
            teamCache: teamCacheFor(resolved!, c.env),
          });
        },
      )
      .command(
        'push [names..]',
        'upload the manifest\'s blobs that the team cache lacks (HEAD first; mount when the registry can)',
        (y) =>
          y
            .positional('names', { type: 'string', array: true, describe: 'only these artifacts' })
            .option('jobs', { alias: 'j', type: 'number', defaultDescription: '4', describe: 'parallel uploads' })
            .options(REMOTE_OPTION)
            .options(NETWORK_OPTIONS)
            .example('$0 push', 'every artifact of hoard.json that the local store holds, to hoard.json\'s "remote"')
            .example('$0 push ceos-lab --remote oci://registry.example.com/lab/hoard-cache', 'one artifact, to another team cache')
            .example('HOARD_REMOTE_USERNAME=ci HOARD_REMOTE_PASSWORD=$TOKEN $0 push', 'credentials from the environment (else docker/podman logins)')
            .epilog(
              'Each blob is stored as the single layer of an OCI artifact manifest tagged sha256-<hex>, so registry garbage collection keeps it.\n' +
                'Credentials: HOARD_REMOTE_USERNAME/HOARD_REMOTE_PASSWORD, else $REGISTRY_AUTH_FILE, $XDG_RUNTIME_DIR/containers/auth.json,\n' +
                '~/.config/containers/auth.json, $DOCKER_CONFIG/config.json or ~/.docker/config.json (auths, credHelpers, credsStore).\n' +
                'Exit codes: 0 all pushed or present, 1 a push failed, 2 usage. See docs/team-cache.md.',
            ),
        async (args) => {
          const c = context(args);
          const network = networkOptions(args);
          code = await runPush(c.g, c.printer, controller.signal, {
            names: (args.names as string[] | undefined) ?? [], jobs: jobsOption(args), teamCache: teamCacheFor(resolved!, c.env, network),
          });
        },
      )
      .command(
        'verify',
        're-hash every blob in the store (and the outputs of the manifest); remove corrupt blobs',
        (y) => y.option('output', { alias: 'o', type: 'string', describe: 'output folder' }).example('$0 verify', 'check everything, bytes for bytes'),
        async (args) => {
          const c = context(args);
          code = await runVerify(c.g, c.printer, { output: args.output });
        },
      )
      .command(
        'gc',
        'remove blobs no known manifest names, and temp files and locks of processes that are gone; --max-size evicts least recently used blobs',
        (y) =>
          y
            .option('dry-run', { alias: 'n', type: 'boolean', default: false, describe: 'list what would be removed, and how many bytes; remove nothing' })
            .option('max-size', MAX_SIZE_OPTION)
            .option('fetch-retention', {
              type: 'string', requiresArg: true,
              describe: 'keep blobs `hoard fetch` wanted while used within this long (7d, 12h, 30m; 0: do not keep them) [default: 30d]',
            })
            .example('$0 gc --dry-run', 'see what would go')
            .example('$0 gc', 'remove blobs that no manifest synced with this store names any more')
            .example('$0 gc --max-size 20GB', 'then evict least recently used blobs, referenced ones too, until the store fits')
            .epilog(
              'Known manifests are those synced with this store (v1/state/manifests.json). One that no longer exists is forgotten; ' +
                'one that is not valid keeps every blob its text mentions; one that cannot be read stops the sweep. ' +
                'A blob a running hoard holds is left alone.',
            ),
        async (args) => {
          const c = context(args);
          const maxSize = maxSizeOf(args.maxSize);
          const fetchRetentionMs = parseDuration(c.settings.fetchRetention);
          if (fetchRetentionMs === null) {
            const o = resolved!.origins.fetchRetention;
            throw new HoardError('E_USAGE', `${o.kind === 'flag' ? '--fetch-retention' : o.kind === 'env' ? 'HOARD_FETCH_RETENTION' : `"fetchRetention" in ${o.source}`} ${JSON.stringify(c.settings.fetchRetention)} is not a duration`, {
              hint: 'give 30d, 12h, 30m, 90s or a number of seconds; 0 keeps no fetched blob (--fetch-retention, HOARD_FETCH_RETENTION, config "fetchRetention")',
            });
          }
          code = await runGc(c.g, c.printer, { dryRun: Boolean(args.dryRun), fetchRetentionMs, ...(maxSize !== undefined ? { maxSize } : {}) });
        },
      )
      .command('store', 'look into and manage the store: path, ls, du, add, rm', (y) =>
        y
          .command(
            'path',
            'print the store folder',
            (y) => y.example('$0 store path', 'where blobs live').example('du -sh "$(hoard store path)"', 'in a script'),
            async (args) => {
              const c = context(args);
              code = await runStorePath(c.g, c.printer);
            },
          )
          .command(
            'ls',
            'list blobs: digest, size, last used, and the manifests (artifact names) that reference each',
            (y) => y.example('$0 store ls', 'most recently used first; "-" when no known manifest names it').example('$0 store ls --json', 'one "blob" event per blob, then a summary'),
            async (args) => {
              const c = context(args);
              code = await runStoreLs(c.g, c.printer);
            },
          )
          .command(
            'du',
            'how much the store holds: bytes and blob count, and temp files',
            (y) => y.example('$0 store du', 'total size of the blobs').example('$0 store du --json', 'the same as one JSON object'),
            async (args) => {
              const c = context(args);
              code = await runStoreDu(c.g, c.printer);
            },
          )
          .command(
            'add <file>',
            'copy a local file into the store (verified, read-only) and print its digest',
            (y) =>
              y
                .positional('file', { type: 'string', demandOption: true, describe: 'a local file' })
                .example('$0 store add ./cEOS-lab-4.32.1F.tar.xz', 'a file downloaded by hand: a manifest entry with this digest now syncs without a download')
                .epilog('A blob that no known manifest names is removed by the next `hoard gc`.'),
            async (args) => {
              const c = context(args);
              code = await runStoreAdd(c.g, c.printer, { file: String(args.file) });
            },
          )
          .command(
            'rm <digest>',
            'remove one blob (sha256:<hex> or the bare hex); waits while a running hoard uses it',
            (y) =>
              y
                .positional('digest', { type: 'string', demandOption: true, describe: 'sha256:<64 hex> or <64 hex>' })
                .example('$0 store rm sha256:3d429cea431f0de3d2e0ca9f9189a3542cdf56bfc1b5d8dcc0352f025a00f8f0', '')
                .epilog('A sync of a manifest that names the blob downloads it again. Unknown digest: exit 1.'),
            async (args) => {
              const c = context(args);
              code = await runStoreRm(c.g, c.printer, { digest: String(args.digest) });
            },
          )
          .demandCommand(1, 'name a store command: path, ls, du, add or rm')
          .example('$0 store ls', 'every blob, its size, when it was last used, and who references it')
          .example('$0 store du', 'how big the store is')
          .example('$0 store add ./cEOS-lab-4.32.1F.tar.xz', 'put a file downloaded by hand into the store; prints its digest')
          .example('$0 store rm <digest>', 'remove one blob'),
      )
      .command(
        'ui',
        'the interactive terminal interface: every artifact and its state; sync, force-sync and verify with a key',
        (y) =>
          y
            .option('output', { alias: 'o', type: 'string', describe: 'output folder (overrides the manifest\'s "output")' })
            .option('jobs', { alias: 'j', type: 'number', defaultDescription: '4', describe: 'parallel downloads' })
            .options(REMOTE_OPTION)
            .options(IMAGE_OPTIONS)
            .options(NETWORK_OPTIONS)
            .example('$0 ui', 'keys: ↑/↓ or j/k move, space selects, a all, s or Enter syncs, f force-syncs, v verifies, / filters, ? help, q quits'),
        async (args) => {
          const c = context(args);
          const jobs = jobsOption(args);
          const network = networkOptions(args);
          // No --max-size flag here, but a configured maxSize (file or HOARD_MAX_SIZE) applies to its syncs.
          const maxSize = maxSizeOf(args.maxSize);
          code = await runUiCommand(c.g, c.env, controller.signal, {
            output: args.output, jobs, images: args.images, engine: c.settings.engine, network, ...(maxSize !== undefined ? { maxSize } : {}),
            teamCache: teamCacheFor(resolved!, c.env, network),
          });
        },
      )
      .command(
        'fetch <url>',
        'download a URL once into the store, verified, without a manifest; print the file\'s path',
        (y) =>
          y
            .positional('url', { type: 'string', demandOption: true, describe: 'http(s) URL, or a vendor file: arista:<file name>, arista:<format>@<version> (ARISTA_TOKEN)' })
            .option('output-file', {
              alias: 'o', type: 'string', requiresArg: true,
              describe: 'put the file here too (made from the blob like sync\'s outputs, atomically) and print this path instead of the blob\'s',
            })
            .option('sha256', { type: 'string', requiresArg: true, describe: 'expected SHA-256 (hex): the download must match; with a blob of that digest in the store, no request at all' })
            .option('refresh', { type: 'boolean', default: false, describe: 'ask the server whether the URL changed since it was fetched (ETag / Last-Modified); download only if so' })
            .option('force', { type: 'boolean', default: false, describe: 'replace a file at -o that hoard did not write, or that was changed since' })
            .option('link', { choices: ['auto', 'reflink', 'hardlink', 'copy'] as const, defaultDescription: '"link" of the config file, else auto', describe: 'how the -o file is made from the blob' })
            .option('executable', { type: 'boolean', default: false, describe: 'make the -o file executable (a copy or reflink of its own)' })
            .options(NETWORK_OPTIONS)
            .option('header', {
              alias: 'H', type: 'string', array: true, requiresArg: true,
              describe: 'request header "Name: value"; write secrets as ${VAR}, expanded from the environment (never stored)',
            })
            .example('$0 fetch https://example.com/tool-1.2.tar.gz', 'the first time: download; then: no request. Prints the blob\'s path')
            .example('tar xf "$($0 fetch https://example.com/tool-1.2.tar.gz)"', 'use it in a script')
            .example('$0 fetch https://example.com/tool.run -o bin/tool.run --executable', 'put it into a file as well')
            .example('$0 fetch https://example.com/latest.iso --refresh -o latest.iso', 'download again only if the server has a new one')
            .example('$0 fetch https://example.com/x.tar.xz --sha256 <hex>', 'the digest decides: no request when the store has it')
            .example('$0 fetch arista:cEOS-lab-4.32.1F.tar.xz -o cEOS-lab-4.32.1F.tar.xz', 'an Arista download (a fresh signed link for each attempt)')
            .example("$0 fetch https://vendor.example/img.tar.xz -H 'Authorization: Bearer ${VENDOR_TOKEN}'", 'a download that needs a token (quote it: hoard expands it)')
            .epilog(
              'Progress and a one-line note go to stderr; stdout is only the path.\n' +
                'An existing -o file with other content is not overwritten without --force\n' +
                '(a file hoard wrote there, unchanged since, is replaced when the URL gives new bytes).\n' +
                'Exit codes: 0 ok, 1 download, verification or conflict, 2 usage.',
            ),
        async (args) => {
          const c = context(args);
          code = await runFetch(c.g, c.printer, c.env, controller.signal, {
            url: String(args.url), refresh: Boolean(args.refresh), force: Boolean(args.force), executable: Boolean(args.executable),
            ...(args.outputFile !== undefined ? { output: String(args.outputFile) } : {}),
            ...(args.sha256 !== undefined ? { sha256: String(args.sha256) } : {}),
            ...(args.link ? { link: args.link as LinkMode } : {}),
            ...(args.header ? { headers: parseHeaders(args.header as string[]) ?? {} } : {}),
            network: networkOptions(args),
          });
        },
      )
      .command(
        'outdated [names..]',
        'newer vendor releases: each arista: artifact\'s version, the newest of its branch and the newest overall; exit 3 when one is behind',
        (y) =>
          y
            .positional('names', { type: 'string', array: true, describe: 'only these artifacts' })
            .option('token-env', { type: 'string', requiresArg: true, describe: 'the variable holding your Arista API token [default: ARISTA_TOKEN]' })
            .example('$0 outdated', 'NAME CURRENT BRANCH LATEST for every arista: artifact')
            .example('$0 outdated || $0 update', 'in CI: move to the newest of each branch when something is behind')
            .epilog('"latest" is the highest version under Active Releases of the same release type (F or M); versions compare numerically (4.32.10F > 4.32.9F).\nExit codes: 0 up to date, 3 something is outdated, 1 Arista could not be asked, 2 usage.'),
        async (args) => {
          const c = context(args);
          code = await runOutdated(c.g, c.printer, c.env, controller.signal, {
            names: (args.names as string[] | undefined) ?? [], ...(args.tokenEnv ? { tokenEnv: String(args.tokenEnv) } : {}),
          });
        },
      )
      .command(
        'update [names..]',
        'move arista: artifacts to the newest release of their branch (or --latest): download, verify, lock, and record',
        (y) =>
          y
            .positional('names', { type: 'string', array: true, describe: 'only these artifacts' })
            .option('latest', { type: 'boolean', default: false, describe: 'the newest release overall (Active Releases, same release type), not just of the branch' })
            .option('token-env', { type: 'string', requiresArg: true, describe: 'the variable holding your Arista API token [default: ARISTA_TOKEN]' })
            .option('output', { alias: 'o', type: 'string', describe: 'output folder (overrides the manifest\'s "output")' })
            .options(IMAGE_OPTIONS)
            .options(NETWORK_OPTIONS)
            .example('$0 update', '4.32.1F → 4.32.10F: every arista: artifact, within its branch')
            .example('$0 update cEOS --latest', 'one artifact, to the newest release (4.33.1F)')
            .epilog('The url, arista.path, checksums, digest and size change; a "path" or an image tag holding the old version gets the new one.\nAn update that fails leaves its entry as it was.'),
        async (args) => {
          const c = context(args);
          code = await runUpdate(c.g, c.printer, c.env, controller.signal, {
            names: (args.names as string[] | undefined) ?? [], latest: Boolean(args.latest), ...(args.tokenEnv ? { tokenEnv: String(args.tokenEnv) } : {}),
            images: args.images, engine: c.settings.engine, network: networkOptions(args), ...(args.output ? { output: args.output } : {}),
          });
        },
      )
      .command(
        'versions <spec>',
        'list the versions Arista offers of a format (arista:cEOS, arista:vEOS-lab, …), newest first',
        (y) =>
          y
            .positional('spec', { type: 'string', demandOption: true, describe: 'arista:<format>' })
            .option('branch', { type: 'string', requiresArg: true, describe: 'only this branch (4.32)' })
            .option('release-type', { type: 'string', requiresArg: true, describe: 'only F (feature) or M (maintenance) releases' })
            .option('token-env', { type: 'string', requiresArg: true, describe: 'the variable holding your Arista API token [default: ARISTA_TOKEN]' })
            .example('$0 versions arista:cEOS', 'every cEOS-lab version, and where it is (Active Releases, Support Only Releases, …)')
            .example('$0 versions arista:cEOS --branch 4.32', 'the versions of one branch')
            .example('$0 versions arista:vEOS-lab --release-type M --json', 'one JSON "version" event per line'),
        async (args) => {
          const c = context(args);
          code = await runVersions(c.g, c.printer, c.env, controller.signal, {
            spec: String(args.spec), ...(args.branch !== undefined ? { branch: String(args.branch) } : {}),
            ...(args.releaseType !== undefined ? { releaseType: releaseTypeOption(args.releaseType) } : {}),
            ...(args.tokenEnv ? { tokenEnv: String(args.tokenEnv) } : {}),
          });
        },
      )
      .command(
        'merge-driver <base> <ours> <theirs> [path]',
        'git merge driver for hoard.json: three-way merge by artifact name (git runs it as `hoard merge-driver %O %A %B`)',
        (y) =>
          y
            .positional('base', { type: 'string', demandOption: true, describe: 'the common ancestor (%O; an empty file when there is none)' })
            .positional('ours', { type: 'string', demandOption: true, describe: 'our version (%A): the merged manifest is written here' })
            .positional('theirs', { type: 'string', demandOption: true, describe: 'their version (%B)' })
            .positional('path', { type: 'string', describe: 'the file\'s name in messages (%P)' })
            .example('$0 merge-driver base.json ours.json theirs.json', 'merge by hand: the result replaces ours.json')
            .epilog(
              'Set up once per clone (`hoard init` prints these and writes .gitattributes when there is none):\n' +
                `${MERGE_DRIVER_CONFIG.map((l) => `  ${l}`).join('\n')}\n` +
                "  echo 'hoard.json merge=hoard' >> .gitattributes\n\n" +
                'Artifacts added on both sides are all kept; an entry changed or deleted on one side takes that change; the same change on both sides is fine. ' +
                'An entry both sides changed differently is left between <<<<<<< ours, ======= and >>>>>>> theirs (exit 1); ' +
                'otherwise the canonical merged manifest is written (exit 0). See docs/merge-driver.md.',
            ),
        async (args) => {
          const c = context(args);
          code = await runMergeDriver(c.printer, {
            base: String(args.base), ours: String(args.ours), theirs: String(args.theirs), ...(args.path ? { path: String(args.path) } : {}),
          });
        },
      )
      .command(
        'config',
        'show the effective settings and where each comes from: flag, HOARD_* variable, config file or default',
        (y) =>
          y
            .option('jobs', { alias: 'j', type: 'number', describe: 'as for sync' })
            .option('link', { choices: ['auto', 'reflink', 'hardlink', 'copy'] as const, describe: 'as for sync' })
            .option('engine', { choices: ENGINES, describe: 'as for sync' })
            .option('max-size', { type: 'string', requiresArg: true, describe: 'as for sync and gc' })
            .example('$0 config', 'the settings, and where each comes from')
            .example('HOARD_JOBS=8 $0 config --json', 'as one JSON object')
            .epilog(
              'The configuration file is $XDG_CONFIG_HOME/hoard/config.json, else ~/.config/hoard/config.json:\n' +
                '  {"store": "~/big-disk/hoard", "maxSize": "50GiB", "jobs": 8, "link": "copy"}\n' +
                'Keys: store, maxSize, fetchRetention, jobs, link, engine, enabled, remote, push, remotes; every one is optional.\n' +
                '"remote": "oci://host/repository" is the team cache when neither --remote, HOARD_REMOTE nor hoard.json names one;\n' +
                '"remotes": {"host:port": {"insecure": true, "chunkSize": "8MiB", "mountFrom": ["other/repo"]}} (see docs/team-cache.md).\n' +
                'A flag wins over a HOARD_* variable, which wins over the file.\n' +
                '"link" in the file applies to artifacts whose entry has no "link"; --link and HOARD_LINK to all.\n' +
                '"enabled": false is --no-store (HOARD_NO_STORE=1): downloads go straight to the outputs.',
            ),
        async (args) => {
          const c = context(args);
          code = runConfig(c.printer, resolved!);
        },
      )
      .demandCommand(1, `name a command: ${COMMANDS.join(', ')}`)
      .recommendCommands()
      .strict()
      .epilog(EPILOG)
      .alias('h', 'help')
      .version(typeof HOARD_VERSION === 'string' ? HOARD_VERSION : 'dev')
      .wrap(Math.min(100, process.stdout.columns || 100))
      .fail((msg, err) => {
        if (err) throw err;
        throw usageError(msg, argv);
      })
      .parseAsync();
  } catch (err) {
    const p: Printer =
      printer ??
      createPrinter({
        json: argv.includes('--json'), verbose, quiet: false, color: false, progress: false,
        out, err: errOut, cwd: process.cwd(),
      });
    p.fatal(errorInfo(err), verbose || isBug(err) ? (err as Error)?.stack : undefined);
    code = stoppedBy ? signalExit(stoppedBy) : exitCodeFor(err);
  } finally {
    (printer as Printer | null)?.finish();
    flushOut();
  }
  // A command stopped by a signal exits with that signal's status, whatever it returned.
  return stoppedBy ? signalExit(stoppedBy) : code;
}

/**
 * How often progress is reported without a terminal: a line every 10 s, a --json event every
 * second. HOARD_PROGRESS_INTERVAL_MS (internal, for tests) sets both.
 */
function progressPace(env: Record<string, string | undefined>): { everyMs: number; jsonEveryMs: number } {
  const ms = Number(env.HOARD_PROGRESS_INTERVAL_MS);
  return Number.isFinite(ms) && ms >= 0 && env.HOARD_PROGRESS_INTERVAL_MS !== '' ? { everyMs: ms, jsonEveryMs: ms } : { everyMs: 10_000, jsonEveryMs: 1000 };
}

/** The commands that read a manifest (init writes one, in the working folder). */
const MANIFEST_COMMANDS = ['add', 'sync', 'status', 'verify', 'ui'];
const COMMANDS = ['init', 'add', 'sync', 'status', 'verify', 'fetch', 'gc', 'store', 'config', 'merge-driver', 'ui'];
const STORE_COMMANDS = ['path', 'ls', 'du', 'add', 'rm'];

/** yargs' complaint, naming what was typed: `unknown command "snyc"`, not only "Did you mean sync?". */
function usageError(msg: string, argv: readonly string[]): HoardError {
  const suggestion = /^Did you mean (\S+)\?$/.exec(msg)?.[1];
  const command = commandOf(argv);
  if (command === 'store') {
    const sub = commandOf(argv.slice(argv.indexOf('store') + 1));
    if (sub !== undefined && !STORE_COMMANDS.includes(sub)) {
      return new HoardError('E_USAGE', `unknown store command "${sub}"`, { hint: `name one of: ${STORE_COMMANDS.map((c) => `hoard store ${c}`).join(', ')}` });
    }
  }
  if (command !== undefined && !COMMANDS.includes(command)) {
    return new HoardError('E_USAGE', `unknown command "${command}"${suggestion ? `; did you mean ${suggestion}?` : ''}`, {
      hint: `the commands are ${COMMANDS.join(', ')} (see \`hoard --help\`)`,
    });
  }
  return new HoardError('E_USAGE', msg, { hint: 'see `hoard --help`' });
}

/** What was typed for a flag that yargs turned into a number (`--jobs abc` is NaN to yargs). */
function typed(argv: readonly string[], flags: readonly string[], parsed: unknown): unknown {
  if (!(typeof parsed === 'number' && Number.isNaN(parsed))) return parsed;
  for (let i = argv.length - 1; i >= 0; i--) {
    const a = argv[i]!;
    for (const f of flags) {
      if (a === f) return argv[i + 1] ?? '';
      if (a.startsWith(`${f}=`)) return a.slice(f.length + 1);
    }
  }
  return parsed;
}

function parseHeaders(values: string[]): Record<string, string> | undefined {
  if (values.length === 0) return undefined;
  const headers: Record<string, string> = {};
  for (const v of values) {
    const i = v.indexOf(':');
    if (i <= 0) throw new HoardError('E_USAGE', `--header ${JSON.stringify(v)} is not "Name: value"`, { hint: "for example -H 'Authorization: Bearer ${TOKEN}'" });
    headers[v.slice(0, i).trim()] = v.slice(i + 1).trim();
  }
  return headers;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err) => {
    process.stderr.write(`hoard: internal error: ${(err as Error)?.stack ?? err}\n`);
    process.exitCode = 1;
  },
);
