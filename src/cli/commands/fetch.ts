// hoard fetch.
import { runFetch } from '../commands.ts';
import { linkOf, networkOptions, parseHeaders, type CommandDef } from './common.ts';

export const fetch: CommandDef = {
  name: 'fetch',
  command: 'fetch <url>',
  describe: 'download a URL once into the store, verified, without a manifest; print the file\'s path',
  positionals: { url: { type: 'string', demandOption: true, describe: 'http(s) URL, or a vendor file: arista:<file name>, arista:<format>@<version> (ARISTA_TOKEN)' } },
  examples: [
    ['$0 fetch https://example.com/tool-1.2.tar.gz', 'the first time: download; then: no request. Prints the blob\'s path'],
    ['tar xf "$($0 fetch https://example.com/tool-1.2.tar.gz)"', 'use it in a script'],
    ['$0 fetch https://example.com/tool.run -o bin/tool.run --executable', 'put it into a file as well'],
    ['$0 fetch https://example.com/latest.iso --refresh -o latest.iso', 'download again only if the server has a new one'],
    ['$0 fetch https://example.com/x.tar.xz --sha256 <hex>', 'the digest decides: no request when the store has it'],
    ['$0 fetch arista:cEOS-lab-4.32.1F.tar.xz -o cEOS-lab-4.32.1F.tar.xz', 'an Arista download (a fresh signed link for each attempt)'],
    ["$0 fetch https://vendor.example/img.tar.xz -H 'Authorization: Bearer ${VENDOR_TOKEN}'", 'a download that needs a token (quote it: hoard expands it)'],
  ],
  epilog:
    'Progress and a one-line note go to stderr; stdout is only the path.\n' +
    'An existing -o file with other content is not overwritten without --force\n' +
    '(a file hoard wrote there, unchanged since, is replaced when the URL gives new bytes).',
  exits: { 0: 'ok', 1: 'download, verification or conflict', 2: 'usage' },
  run: (args, c) =>
    runFetch(c.g, c.printer, c.env, c.signal, {
      url: String(args.url), refresh: Boolean(args.refresh), force: Boolean(args.force), executable: Boolean(args.executable),
      ...(args.outputFile !== undefined ? { output: String(args.outputFile) } : {}),
      ...(args.sha256 !== undefined ? { sha256: String(args.sha256) } : {}),
      ...(args.link ? { link: linkOf(args)! } : {}),
      ...(args.header ? { headers: parseHeaders(args.header as string[]) ?? {} } : {}),
      network: networkOptions(args, c.argv),
    }),
};
