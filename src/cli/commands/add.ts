// hoard init, hoard add.
import { HoardError } from '../../core/errors.ts';
import { runAdd, runInit } from '../commands.ts';
import { releaseTypeOption, runAddArista, runAddFromClab } from '../vendor.ts';
import { linkOf, networkOptions, parseHeaders, str, type CommandDef } from './common.ts';

export const init: CommandDef = {
  name: 'init',
  command: 'init',
  describe: 'write a starter hoard.json and ignore the output folder in .gitignore',
  examples: [['$0 init', 'start a manifest here']],
  run: (args, c) => runInit(c.g, c.printer, { output: String(args.output) }),
};

export const add: CommandDef = {
  name: 'add',
  command: 'add [url]',
  describe: 'download, verify and record an artifact (an http(s) URL, or arista:<format>@<version> — see docs/arista.md)',
  positionals: {
    url: { type: 'string', describe: 'http(s) URL of the artifact, or arista:<format>@<version|latest|branch>, or arista:<file name>' },
  },
  examples: [
    ['$0 add https://downloads.example.com/cEOS-lab-4.32.1F.tar.xz --image arista/ceos:4.32.1F', 'record a cEOS image'],
    ['$0 add https://example.com/tool.run --executable --sha256 <hex>', 'an installer, verified against a published digest'],
    ['$0 add arista:cEOS@latest --image', 'the newest cEOS-lab F release from arista.com (ARISTA_TOKEN), imported as arista/ceos:<version>'],
    ['$0 add arista:cEOS@4.32 --image ceos:4.32', 'the newest of a branch, under your own tag'],
    ['$0 add arista:vEOS-lab@latest --release-type M', 'the newest maintenance release'],
    ['$0 add arista:EOS64-4.32.1F.swi', 'an exact file name'],
    ['$0 add --from-clab lab.clab.yml', 'ceos:4.32.1F in the topology → arista:cEOS@4.32.1F, imported under that exact tag'],
    ["$0 add https://vendor.example/img.tar.xz -H 'Authorization: Bearer ${VENDOR_TOKEN}'", 'a download that needs a token (quote it: hoard expands it)'],
  ],
  run: async (args, c) => {
    const common = {
      images: Boolean(args.images), engine: c.settings.engine, network: networkOptions(args, c.argv),
      ...(args.output ? { output: String(args.output) } : {}),
      ...(args.tokenEnv ? { tokenEnv: String(args.tokenEnv) } : {}),
    };
    if (args.fromClab !== undefined) {
      if (args.url !== undefined) throw new HoardError('E_USAGE', 'give either a URL or --from-clab, not both');
      return runAddFromClab(c.g, c.printer, c.env, c.signal, { file: String(args.fromClab), ...common });
    }
    if (args.url === undefined) throw new HoardError('E_USAGE', 'name what to add: a URL, arista:<format>@<version>, or --from-clab <file>', { hint: 'see `hoard add --help`' });
    if (String(args.url).startsWith('arista:')) {
      const unfit = (['sha256', 'checksum-url', 'header'] as const).filter((f) => args[f] !== undefined);
      if (unfit.length) {
        throw new HoardError('E_USAGE', `--${unfit[0]} does not apply to arista: sources`, { hint: "Arista's own .sha512sum is fetched, verified and recorded; the token comes from ARISTA_TOKEN (or --token-env)" });
      }
      return runAddArista(c.g, c.printer, c.env, c.signal, {
        spec: String(args.url), name: str(args.name), path: str(args.path), image: str(args.image), link: linkOf(args), executable: args.executable as boolean | undefined,
        ...(args.releaseType !== undefined ? { releaseType: releaseTypeOption(args.releaseType) } : {}),
        ...common,
      });
    }
    return runAdd(c.g, c.printer, c.env, c.signal, {
      url: String(args.url),
      name: str(args.name), path: str(args.path), image: str(args.image), sha256: str(args.sha256), output: str(args.output),
      link: linkOf(args), executable: args.executable as boolean | undefined, headers: parseHeaders((args.header as string[] | undefined) ?? []),
      images: Boolean(args.images), engine: c.settings.engine, checksumUrl: str(args.checksumUrl), network: common.network,
    });
  },
};
