// hoard verify, hoard gc, hoard store ….
import { parseDuration } from '../../core/duration.ts';
import { HoardError } from '../../core/errors.ts';
import { runGc, runStoreAdd, runStoreDu, runStoreLs, runStorePath, runStoreRm, runVerify } from '../commands.ts';
import { maxSizeOf, str, type CommandDef } from './common.ts';

export const verify: CommandDef = {
  name: 'verify',
  command: 'verify',
  describe: 're-hash every blob in the store (and the outputs of the manifest); remove corrupt blobs',
  examples: [['$0 verify', 'check everything, bytes for bytes']],
  run: (args, c) => runVerify(c.g, c.printer, { output: str(args.output) }),
};

export const gc: CommandDef = {
  name: 'gc',
  command: 'gc',
  describe: 'remove blobs no known manifest names, and temp files and locks of processes that are gone; --max-size evicts least recently used blobs',
  examples: [
    ['$0 gc --dry-run', 'see what would go'],
    ['$0 gc', 'remove blobs that no manifest synced with this store names any more'],
    ['$0 gc --max-size 20GB', 'then evict least recently used blobs, referenced ones too, until the store fits'],
  ],
  epilog:
    'Known manifests are those synced with this store (v1/state/manifests.json). One that no longer exists is forgotten; ' +
    'one that is not valid keeps every blob its text mentions; one that cannot be read stops the sweep. ' +
    'A blob a running hoard holds is left alone.',
  run: (args, c) => {
    const maxSize = maxSizeOf(args.maxSize);
    const fetchRetentionMs = parseDuration(c.settings.fetchRetention);
    if (fetchRetentionMs === null) {
      const o = c.resolved.origins.fetchRetention;
      throw new HoardError('E_USAGE', `${o.kind === 'flag' ? '--fetch-retention' : o.kind === 'env' ? 'HOARD_FETCH_RETENTION' : `"fetchRetention" in ${o.source}`} ${JSON.stringify(c.settings.fetchRetention)} is not a duration`, {
        hint: 'give 30d, 12h, 30m, 90s or a number of seconds; 0 keeps no fetched blob (--fetch-retention, HOARD_FETCH_RETENTION, config "fetchRetention")',
      });
    }
    return runGc(c.g, c.printer, { dryRun: Boolean(args.dryRun), fetchRetentionMs, ...(maxSize !== undefined ? { maxSize } : {}) });
  },
};

const STORE_COMMANDS: readonly CommandDef[] = [
  {
    name: 'store',
    command: 'path',
    describe: 'print the store folder',
    examples: [['$0 store path', 'where blobs live'], ['du -sh "$(hoard store path)"', 'in a script']],
    run: (_args, c) => runStorePath(c.g, c.printer),
  },
  {
    name: 'store',
    command: 'ls',
    describe: 'list blobs: digest, size, last used, and the manifests (artifact names) that reference each',
    examples: [['$0 store ls', 'most recently used first; "-" when no known manifest names it'], ['$0 store ls --json', 'one "blob" event per blob, then a summary']],
    run: (_args, c) => runStoreLs(c.g, c.printer),
  },
  {
    name: 'store',
    command: 'du',
    describe: 'how much the store holds: bytes and blob count, and temp files',
    examples: [['$0 store du', 'total size of the blobs'], ['$0 store du --json', 'the same as one JSON object']],
    run: (_args, c) => runStoreDu(c.g, c.printer),
  },
  {
    name: 'store',
    command: 'add <file>',
    describe: 'copy a local file into the store (verified, read-only) and print its digest',
    positionals: { file: { type: 'string', demandOption: true, describe: 'a local file' } },
    examples: [['$0 store add ./cEOS-lab-4.32.1F.tar.xz', 'a file downloaded by hand: a manifest entry with this digest now syncs without a download']],
    epilog: 'A blob that no known manifest names is removed by the next `hoard gc`.',
    run: (args, c) => runStoreAdd(c.g, c.printer, { file: String(args.file) }),
  },
  {
    name: 'store',
    command: 'rm <digest>',
    describe: 'remove one blob (sha256:<hex> or the bare hex); waits while a running hoard uses it',
    positionals: { digest: { type: 'string', demandOption: true, describe: 'sha256:<64 hex> or <64 hex>' } },
    examples: [['$0 store rm "$(sha256sum old.iso | cut -c1-64)"', 'the blob of a file you have']],
    epilog: 'A sync of a manifest that names the blob downloads it again.',
    exits: { 0: 'removed', 1: 'unknown digest', 2: 'usage' },
    run: (args, c) => runStoreRm(c.g, c.printer, { digest: String(args.digest) }),
  },
];

/** The names of `hoard store`'s commands: `path`, `ls`, …. */
export const STORE_COMMAND_NAMES = STORE_COMMANDS.map((s) => s.command.split(' ')[0]!);

export const store: CommandDef = {
  name: 'store',
  command: 'store',
  describe: 'look into and manage the store: path, ls, du, add, rm',
  subcommands: STORE_COMMANDS,
  examples: [
    ['$0 store ls', 'every blob, its size, when it was last used, and who references it'],
    ['$0 store du', 'how big the store is'],
    ['$0 store add ./cEOS-lab-4.32.1F.tar.xz', 'put a file downloaded by hand into the store; prints its digest'],
    ['$0 store rm <digest>', 'remove one blob'],
  ],
};
