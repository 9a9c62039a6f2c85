// hoard outdated, hoard update, hoard versions: newer vendor releases.
import { releaseTypeOption, runOutdated, runUpdate, runVersions } from '../vendor.ts';
import { names, networkOptions, type CommandDef } from './common.ts';

const NAMES = { names: { type: 'string', array: true, describe: 'only these artifacts' } } as const;

export const outdated: CommandDef = {
  name: 'outdated',
  command: 'outdated [names..]',
  describe: 'newer vendor releases: each arista: artifact\'s version, the newest of its branch and the newest overall; exit 3 when one is behind',
  positionals: NAMES,
  examples: [
    ['$0 outdated', 'NAME CURRENT BRANCH LATEST for every arista: artifact'],
    ['$0 outdated || $0 update', 'in CI: move to the newest of each branch when something is behind'],
  ],
  epilog: '"latest" is the highest version under Active Releases of the same release type (F or M); versions compare numerically (4.32.10F > 4.32.9F).',
  exits: { 0: 'up to date', 3: 'something is outdated', 1: 'Arista could not be asked', 2: 'usage' },
  run: (args, c) => runOutdated(c.g, c.printer, c.env, c.signal, { names: names(args), ...(args.tokenEnv ? { tokenEnv: String(args.tokenEnv) } : {}) }),
};

export const update: CommandDef = {
  name: 'update',
  command: 'update [names..]',
  describe: 'move arista: artifacts to the newest release of their branch (or --latest): download, verify, lock, and record',
  positionals: NAMES,
  examples: [
    ['$0 update', '4.32.1F → 4.32.10F: every arista: artifact, within its branch'],
    ['$0 update cEOS --latest', 'one artifact, to the newest release (4.33.1F)'],
  ],
  epilog: 'The url, arista.path, checksums, digest and size change; a "path" or an image tag holding the old version gets the new one.\nAn update that fails leaves its entry as it was.',
  run: (args, c) =>
    runUpdate(c.g, c.printer, c.env, c.signal, {
      names: names(args), latest: Boolean(args.latest), ...(args.tokenEnv ? { tokenEnv: String(args.tokenEnv) } : {}),
      images: Boolean(args.images), engine: c.settings.engine, network: networkOptions(args, c.argv), ...(args.output ? { output: String(args.output) } : {}),
    }),
};

export const versions: CommandDef = {
  name: 'versions',
  command: 'versions <spec>',
  describe: 'list the versions Arista offers of a format (arista:cEOS, arista:vEOS-lab, …), newest first',
  positionals: { spec: { type: 'string', demandOption: true, describe: 'arista:<format>' } },
  examples: [
    ['$0 versions arista:cEOS', 'every cEOS-lab version, and where it is (Active Releases, Support Only Releases, …)'],
    ['$0 versions arista:cEOS --branch 4.32', 'the versions of one branch'],
    ['$0 versions arista:vEOS-lab --release-type M --json', 'one JSON "version" event per line'],
  ],
  run: (args, c) =>
    runVersions(c.g, c.printer, c.env, c.signal, {
      spec: String(args.spec), ...(args.branch !== undefined ? { branch: String(args.branch) } : {}),
      ...(args.releaseType !== undefined ? { releaseType: releaseTypeOption(args.releaseType) } : {}),
      ...(args.tokenEnv ? { tokenEnv: String(args.tokenEnv) } : {}),
    }),
};
