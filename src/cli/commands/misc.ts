// hoard ui, hoard merge-driver, hoard config.
import { MERGE_DRIVER_CONFIG, runConfig, runMergeDriver } from '../commands.ts';
import { SETTINGS } from '../options.ts';
import { teamCacheFor } from '../push.ts';
import { runUiCommand } from '../ui.ts';
import { jobsOption, maxSizeOf, networkOptions, str, type CommandDef } from './common.ts';

export const ui: CommandDef = {
  name: 'ui',
  command: 'ui',
  describe: 'the interactive terminal interface: every artifact and its state; sync, force-sync and verify with a key',
  examples: [['$0 ui', 'keys: ↑/↓ or j/k move, space selects, a all, s or Enter syncs, f force-syncs, v verifies, / filters, ? help, q quits']],
  run: (args, c) => {
    const jobs = jobsOption(args);
    const network = networkOptions(args, c.argv);
    // No --max-size flag here, but a configured maxSize (file or HOARD_MAX_SIZE) applies to its syncs.
    const maxSize = maxSizeOf(args.maxSize);
    return runUiCommand(c.g, c.env, c.signal, {
      output: str(args.output), jobs, images: Boolean(args.images), engine: c.settings.engine, network, ...(maxSize !== undefined ? { maxSize } : {}),
      teamCache: teamCacheFor(c.resolved, c.env, network),
    });
  },
};

export const mergeDriver: CommandDef = {
  name: 'merge-driver',
  command: 'merge-driver <base> <ours> <theirs> [path]',
  describe: 'git merge driver for hoard.json: three-way merge by artifact name (git runs it as `hoard merge-driver %O %A %B`)',
  positionals: {
    base: { type: 'string', demandOption: true, describe: 'the common ancestor (%O; an empty file when there is none)' },
    ours: { type: 'string', demandOption: true, describe: 'our version (%A): the merged manifest is written here' },
    theirs: { type: 'string', demandOption: true, describe: 'their version (%B)' },
    path: { type: 'string', describe: 'the file\'s name in messages (%P)' },
  },
  examples: [['$0 merge-driver base.json ours.json theirs.json', 'merge by hand: the result replaces ours.json']],
  epilog:
    'Set up once per clone (`hoard init` prints these and writes .gitattributes when there is none):\n' +
    `${MERGE_DRIVER_CONFIG.map((l) => `  ${l}`).join('\n')}\n` +
    "  echo 'hoard.json merge=hoard' >> .gitattributes\n\n" +
    'Artifacts added on both sides are all kept; an entry changed or deleted on one side takes that change; the same change on both sides is fine. ' +
    'An entry both sides changed differently is left between <<<<<<< ours, ======= and >>>>>>> theirs (exit 1); ' +
    'otherwise the canonical merged manifest is written (exit 0). See docs/merge-driver.md.',
  run: (args, c) =>
    runMergeDriver(c.printer, { base: String(args.base), ours: String(args.ours), theirs: String(args.theirs), ...(args.path ? { path: String(args.path) } : {}) }),
};

export const config: CommandDef = {
  name: 'config',
  command: 'config',
  describe: 'show the effective settings and where each comes from: flag, HOARD_* variable, config file or default',
  examples: [
    ['$0 config', 'the settings, and where each comes from'],
    ['HOARD_JOBS=8 $0 config --json', 'as one JSON object'],
  ],
  epilog:
    'The configuration file is $XDG_CONFIG_HOME/hoard/config.json, else ~/.config/hoard/config.json:\n' +
    '  {"store": "~/big-disk/hoard", "maxSize": "50GiB", "jobs": 8, "link": "copy"}\n' +
    `Keys, and their defaults: ${SETTINGS.map((d) => `${d.key} (${d.defaultDescription})`).join(', ')}; every one is optional.\n` +
    '"remote": "oci://host/repository" is the team cache when neither --remote, HOARD_REMOTE nor hoard.json names one;\n' +
    '"remotes": {"host:port": {"insecure": true, "chunkSize": "8MiB", "mountFrom": ["other/repo"]}} (see docs/team-cache.md).\n' +
    'A flag wins over a HOARD_* variable, which wins over the file.\n' +
    '"link" in the file applies to artifacts whose entry has no "link"; --link and HOARD_LINK to all.\n' +
    '"enabled": false is --no-store (HOARD_NO_STORE=1): downloads go straight to the outputs.',
  run: (_args, c) => runConfig(c.printer, c.resolved),
};
