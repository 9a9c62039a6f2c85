// hoard sync, hoard status, hoard push.
import { runStatus, runSync } from '../commands.ts';
import type { Printer } from '../print.ts';
import { runPush, teamCacheFor } from '../push.ts';
import { runLive, wantsLive } from '../ui.ts';
import { jobsOption, linkOf, maxSizeOf, names, networkOptions, str, type CommandDef } from './common.ts';

const NAMES = { names: { type: 'string', array: true, describe: 'only these artifacts' } } as const;

export const sync: CommandDef = {
  name: 'sync',
  command: 'sync [names..]',
  describe: 'reconcile the manifest with the store and the output folder',
  positionals: NAMES,
  examples: [
    ['$0 sync', 'download what is missing, link everything'],
    ['$0 sync --push', 'in CI: fill the team cache with what had to come from the vendor'],
    ['$0 sync --max-size 50GB', 'then evict least recently used blobs of other projects until the store fits'],
    ['$0 sync --frozen', 'in CI: fail if hoard.json is not locked'],
    ['$0 sync ceos-lab --dry-run', 'show what would happen to one artifact'],
  ],
  exits: { 0: 'in sync', 1: 'an artifact failed', 2: 'usage, manifest, or --frozen and an entry not locked' },
  run: async (args, c) => {
    const jobs = jobsOption(args);
    const network = networkOptions(args, c.argv);
    const maxSize = maxSizeOf(args.maxSize);
    const run = (printer: Printer) => runSync(c.g, printer, c.env, c.signal, {
      names: names(args),
      force: Boolean(args.force), dryRun: Boolean(args.dryRun), frozen: Boolean(args.frozen), output: str(args.output),
      link: linkOf(args), jobs, verify: Boolean(args.verify), images: Boolean(args.images), engine: c.settings.engine, network,
      ...(maxSize !== undefined ? { maxSize } : {}),
      teamCache: teamCacheFor(c.resolved, c.env, network), push: c.settings.push,
      ...(args.tokenEnv ? { tokenEnv: String(args.tokenEnv) } : {}),
    });
    // On a terminal: the same lines, with live progress drawn by Ink (loaded only then).
    return wantsLive(c.g, Boolean(args.dryRun)) ? runLive(c.g, c.env, run) : run(c.printer);
  },
};

export const status: CommandDef = {
  name: 'status',
  command: 'status [names..]',
  describe: 'show what sync would do; exit 0 in sync, 3 out of sync',
  positionals: NAMES,
  examples: [
    ['$0 status || hoard sync', 'sync only when something drifted'],
    ['$0 status -v', 'also: which missing blobs the team cache holds'],
  ],
  exits: { 0: 'in sync', 3: 'out of sync', 1: 'failed', 2: 'usage or manifest error' },
  run: (args, c) =>
    runStatus(c.g, c.printer, c.env, {
      names: names(args), output: str(args.output), verify: Boolean(args.verify), images: Boolean(args.images), engine: c.settings.engine,
      teamCache: teamCacheFor(c.resolved, c.env),
    }),
};

export const push: CommandDef = {
  name: 'push',
  command: 'push [names..]',
  describe: 'upload the manifest\'s blobs that the team cache lacks (HEAD first; mount when the registry can)',
  positionals: NAMES,
  examples: [
    ['$0 push', 'every artifact of hoard.json that the local store holds, to hoard.json\'s "remote"'],
    ['$0 push ceos-lab --remote oci://registry.example.com/lab/hoard-cache', 'one artifact, to another team cache'],
    ['HOARD_REMOTE_USERNAME=ci HOARD_REMOTE_PASSWORD=$TOKEN $0 push', 'credentials from the environment (else docker/podman logins)'],
  ],
  epilog:
    'Each blob is stored as the single layer of an OCI artifact manifest tagged sha256-<hex>, so registry garbage collection keeps it.\n' +
    'Credentials: HOARD_REMOTE_USERNAME/HOARD_REMOTE_PASSWORD, else $REGISTRY_AUTH_FILE, $XDG_RUNTIME_DIR/containers/auth.json,\n' +
    '~/.config/containers/auth.json, $DOCKER_CONFIG/config.json or ~/.docker/config.json (auths, credHelpers, credsStore).\n' +
    'See docs/team-cache.md.',
  exits: { 0: 'all pushed or present', 1: 'a push failed', 2: 'usage' },
  run: (args, c) => {
    const network = networkOptions(args, c.argv);
    return runPush(c.g, c.printer, c.signal, { names: names(args), jobs: jobsOption(args), teamCache: teamCacheFor(c.resolved, c.env, network) });
  },
};
