// The only module that touches process.argv, process.env and process.exit (with ui.ts, which
// leaves on a second Ctrl-C while Ink holds the terminal).
import { setMaxListeners } from 'node:events';
import path from 'node:path';
import yargs from 'yargs';
import { errorInfo, EXIT_TEXT, exitCodeFor, HoardError, isBug, signalExit } from '../core/errors.ts';
import { parseDuration } from '../core/duration.ts';
import { proxySettings } from '../download/proxy.ts';
import { findManifest } from '../manifest/find.ts';
import { releaseHeldLocksSync, type LockWait } from '../store/lock.ts';
import type { GlobalOptions } from './commands.ts';
import type { Args, Context } from './commands/common.ts';
import { typed } from './commands/common.ts';
import { addCommand, COMMANDS, listed, wordOf } from './commands/index.ts';
import { STORE_COMMAND_NAMES } from './commands/store.ts';
import { resolveSettings, SETTING_VARIABLES, type ResolvedSettings } from './config.ts';
import { helpWidth, keepHelpWordsApart } from './help.ts';
import { OPTIONS, optionsFor, variablesForYargs } from './options.ts';
import { createOutput } from './output.ts';
import type { Printer } from './print.ts';

declare const HOARD_VERSION: string | undefined; // set by scripts/build.mjs

const COMMAND_WORDS = COMMANDS.map(wordOf);
/** The commands that read a manifest (init writes one, in the working folder). */
const MANIFEST_COMMANDS = ['add', 'sync', 'status', 'verify', 'ui'];

/** The flags the configuration file can also set (the options table's settings that are flags). */
const FILE_FLAGS = Object.entries(OPTIONS).filter(([, d]) => d.setting && d.spec).map(([name]) => name);

const EPILOG = 'Every option can also be set as HOARD_<OPTION> in the environment (e.g. HOARD_STORE=/data/hoard, HOARD_NO_STORE=1);\n' +
  `${listed(FILE_FLAGS, 'and')} also in $XDG_CONFIG_HOME/hoard/config.json (see \`hoard config --help\`).\n` +
  `Docs: README.md · exit codes: ${EXIT_TEXT} · error codes (E_*): docs/errors.md`;

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

async function main(argv: string[]): Promise<number> {
  // Header values may use any variable, so they read this copy; yargs reads process.env for HOARD_*.
  const env: Record<string, string | undefined> = { ...process.env };
  const command = commandOf(argv);
  // yargs sees only the HOARD_* variables of the options the command has, booleans as it reads
  // them; the settings the configuration file can also hold are resolved in one place
  // (config.ts), which must tell a flag from a variable.
  const forYargs = variablesForYargs(env, command);
  for (const k of Object.keys(process.env)) {
    if (k.startsWith('HOARD_')) delete process.env[k];
  }
  Object.assign(process.env, forYargs.values);
  for (const k of SETTING_VARIABLES) delete process.env[k];

  // `hoard status | head -1`: a closed pipe ends the output quietly, as for any Unix tool.
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  });
  const output = createOutput(env);
  let printer: Printer | null = null;
  let verbose = argv.includes('-v') || argv.includes('--verbose');
  // Set by the middleware below, before any command runs.
  let resolved: ResolvedSettings | null = null;
  /** How every wait for a lock ends: Ctrl-C, and --lock-timeout; handed to each command. */
  let lockWait: LockWait = {};
  const controller = new AbortController();
  const context = (args: Args): Context => {
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
    verbose = g.verbose;
    printer = output.printer(g);
    if (found && path.dirname(found) !== process.cwd()) printer.note(`using ${path.relative(process.cwd(), found)}`);
    return { g, printer, env, settings, resolved: resolved!, signal: controller.signal, argv };
  };

  let code = 0;
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
        output.flush();
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

  const width = helpWidth(env, process.stdout);
  keepHelpWordsApart();
  const y = yargs(argv);
  // yargs renders the whole help text after starting any command, in case that command fails
  // later; that costs ~20 ms of string measuring on every run. Our .fail() never shows it.
  const usage = (y as unknown as { getInternalMethods?: () => { getUsageInstance?: () => { cacheHelpMessage?: () => void } } })
    .getInternalMethods?.()
    .getUsageInstance?.();
  if (usage?.cacheHelpMessage) usage.cacheHelpMessage = () => {};

  try {
    y.options(optionsFor('global'))
      .scriptName('hoard')
      .env('HOARD')
      // Flag > HOARD_* > config file > default, for the options the file can set; commands
      // read the effective values from args as if they had been given.
      .middleware((args) => {
        if (forYargs.error) throw forYargs.error;
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
            store: args.store as string | false | undefined, jobs: typed(argv, ['--jobs', '-j'], args.jobs), link: args.link as string | undefined,
            engine: args.engine as string | undefined, maxSize: args.maxSize as string | undefined, fetchRetention: args.fetchRetention as string | undefined,
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
      .usage('$0 <command> [options]\n\nDownload big artifacts once, verify them by SHA-256, keep them in a shared store and link them into your project.');
    for (const def of COMMANDS) {
      addCommand(y, def, width, async (d, args) => {
        code = await d.run!(args, context(args));
      });
    }
    await y
      .demandCommand(1, `name a command: ${COMMAND_WORDS.join(', ')}`)
      .recommendCommands()
      .strict()
      .epilog(EPILOG)
      .alias('h', 'help')
      .version(typeof HOARD_VERSION === 'string' ? HOARD_VERSION : 'dev')
      .wrap(width)
      .fail((msg, err) => {
        if (err) throw err;
        throw usageError(msg, argv);
      })
      .parseAsync();
  } catch (err) {
    const p: Printer = printer ?? output.plain(argv.includes('--json'), verbose);
    p.fatal(errorInfo(err), verbose || isBug(err) ? (err as Error)?.stack : undefined);
    code = stoppedBy ? signalExit(stoppedBy) : exitCodeFor(err);
  } finally {
    (printer as Printer | null)?.finish();
    output.flush();
  }
  // A command stopped by a signal exits with that signal's status, whatever it returned.
  return stoppedBy ? signalExit(stoppedBy) : code;
}

/** yargs' complaint, naming what was typed: `unknown command "snyc"`, not only "Did you mean sync?". */
function usageError(msg: string, argv: readonly string[]): HoardError {
  const suggestion = /^Did you mean (\S+)\?$/.exec(msg)?.[1];
  const command = commandOf(argv);
  if (command === 'store') {
    const sub = commandOf(argv.slice(argv.indexOf('store') + 1));
    if (sub !== undefined && !STORE_COMMAND_NAMES.includes(sub)) {
      return new HoardError('E_USAGE', `unknown store command "${sub}"`, { hint: `name one of: ${STORE_COMMAND_NAMES.map((c) => `hoard store ${c}`).join(', ')}` });
    }
  }
  if (command !== undefined && !COMMAND_WORDS.includes(command)) {
    return new HoardError('E_USAGE', `unknown command "${command}"${suggestion ? `; did you mean ${suggestion}?` : ''}`, {
      hint: `the commands are ${COMMAND_WORDS.join(', ')} (see \`hoard --help\`)`,
    });
  }
  return new HoardError('E_USAGE', msg, { hint: 'see `hoard --help`' });
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
