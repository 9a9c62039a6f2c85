// Arista's catalogue, as pure data and functions: the download formats users know from
// `ardl get eos --format`, EOS and CloudVision version numbers and their order, the folder tree
// the API returns (parsed with a small regex walk: one pass over ~3 MB, no XML library), and
// how a spec (`cEOS@4.32.1F`, `vEOS-lab@latest`, `cEOS@4.32`, an exact file name) picks a file.
import { HoardError } from '../core/errors.ts';

export type Product = 'EOS' | 'CloudVision';
export type ReleaseType = 'F' | 'M';

export interface AristaFormat {
  /** As users type it (`ardl get eos --format cEOS`); matched without regard to case. */
  format: string;
  /** The file name, `<v>` standing for the version. */
  template: string;
  product: Product;
  /** The default artifact name of `hoard add arista:<format>@…`. */
  name: string;
  /** The published checksum beside each file, and its algorithm. */
  sidecar: { suffix: string; algorithm: 'sha512' | 'md5' };
  /** A root filesystem for `docker import`: `--image` without a value names it arista/ceos:<version>. */
  ceos?: boolean;
}

const EOS_SUM = { suffix: '.sha512sum', algorithm: 'sha512' } as const;
const CVP_SUM = { suffix: '.md5', algorithm: 'md5' } as const;
const eos = (format: string, template: string, name = format, ceos = false): AristaFormat => ({
  format, template, product: 'EOS', name, sidecar: EOS_SUM, ...(ceos ? { ceos } : {}),
});
const cvp = (format: string, template: string): AristaFormat => ({ format, template, product: 'CloudVision', name: format, sidecar: CVP_SUM });

/** Every format, in the order a file name is matched against them. */
export const FORMATS: readonly AristaFormat[] = [
  eos('cEOS', 'cEOS-lab-<v>.tar.xz', 'cEOS', true),
  eos('cEOS64', 'cEOS64-lab-<v>.tar.xz', 'cEOS64', true),
  eos('cEOSarm', 'cEOSarm-lab-<v>.tar.xz', 'cEOSarm', true),
  eos('vEOS', 'vEOS-<v>.vmdk'),
  eos('vEOS-lab', 'vEOS-lab-<v>.vmdk'),
  eos('vEOS64-lab', 'vEOS64-lab-<v>.vmdk'),
  eos('vEOS64-lab-qcow2', 'vEOS64-lab-<v>.qcow2'),
  eos('vEOS64-lab-swi', 'vEOS64-lab-<v>.swi'),
  eos('64', 'EOS64-<v>.swi', 'EOS64'),
  eos('INT', 'EOS-<v>-INT.swi', 'EOS-INT'),
  eos('2GB-INT', 'EOS-2GB-<v>-INT.swi', 'EOS-2GB-INT'),
  eos('EOS-2GB', 'EOS-2GB-<v>.swi'),
  eos('source', 'EOS-<v>-source.tar', 'EOS-source'),
  eos('EOS', 'EOS-<v>.swi'),
  cvp('cvp-ova', 'cvp-<v>.ova'),
  cvp('cvp-kvm', 'cvp-<v>-kvm.tgz'),
  cvp('cvp-rpm', 'cvp-rpm-installer-<v>'),
  cvp('cvp-upgrade', 'cvp-upgrade-<v>.tgz'),
];

const VERSION_RE: Record<Product, string> = {
  // 4.<minor>.<patch>[.<n>]<F|M>
  EOS: '\\d+\\.\\d+\\.\\d+(?:\\.\\d+)?[FM]',
  // 2024.1.0
  CloudVision: '\\d{4}\\.\\d+\\.\\d+',
};
/** The top folder of the tree each product lives in. */
const TOP: Record<Product, string> = { EOS: 'EOS', CloudVision: 'CloudVision' };

const escapeRe = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const fileRes = new Map<AristaFormat, RegExp>();
function fileRe(f: AristaFormat): RegExp {
  let re = fileRes.get(f);
  if (!re) {
    re = new RegExp(`^${f.template.split('<v>').map(escapeRe).join(`(${VERSION_RE[f.product]})`)}$`);
    fileRes.set(f, re);
  }
  return re;
}

export function findFormat(name: string): AristaFormat | undefined {
  return FORMATS.find((f) => f.format === name) ?? FORMATS.find((f) => f.format.toLowerCase() === name.toLowerCase());
}

export function fileNameOf(f: AristaFormat, version: string): string {
  return f.template.replace('<v>', version);
}

/** The format and version a file name is, or null for a file no format names (a sidecar, a doc). */
export function parseFileName(name: string): { format: AristaFormat; version: string } | null {
  for (const f of FORMATS) {
    const m = fileRe(f).exec(name);
    if (m) return { format: f, version: m[1]! };
  }
  return null;
}

export function isVersion(product: Product, v: string): boolean {
  return new RegExp(`^${VERSION_RE[product]}$`).test(v);
}

/** The numbers of a version, and its release type (EOS). */
function versionParts(v: string): { nums: number[]; type: string } {
  const m = /^([\d.]+?)([FM]?)$/.exec(v);
  return { nums: (m?.[1] ?? v).split('.').map(Number), type: m?.[2] ?? '' };
}

/** Numeric order: 4.32.10F > 4.32.9F; 4.32.2.1F > 4.32.2F. */
export function compareVersions(a: string, b: string): number {
  const x = versionParts(a).nums;
  const y = versionParts(b).nums;
  for (let i = 0; i < Math.max(x.length, y.length); i++) {
    const d = (x[i] ?? -1) - (y[i] ?? -1);
    if (d !== 0) return d;
  }
  return a < b ? -1 : a > b ? 1 : 0;
}

export function releaseTypeOf(v: string): ReleaseType | null {
  const t = versionParts(v).type;
  return t === 'F' || t === 'M' ? t : null;
}

/** The branch of a version: 4.32 for 4.32.1F, 2024.1 for 2024.1.0. */
export function branchOf(v: string): string {
  return versionParts(v).nums.slice(0, 2).join('.');
}

/** One downloadable file of the tree. */
export interface TreeFile {
  name: string;
  /** The `path` attribute, verbatim: what getDownloadLink wants. */
  path: string;
  /** The labels of the folders it is in, from the top (`EOS`, `Active Releases`, `4.32`, …). */
  dirs: string[];
}

const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };
function decode(s: string): string {
  if (!s.includes('&')) return s;
  return s.replace(/&(#x[0-9a-fA-F]+|#\d+|[a-z]+);/g, (all, e: string) =>
    e[0] === '#' ? String.fromCodePoint(e[1] === 'x' ? parseInt(e.slice(2), 16) : Number(e.slice(1))) : (ENTITIES[e] ?? all),
  );
}
const attr = (attrs: string, name: string) => {
  const m = new RegExp(`\\b${name}\\s*=\\s*(?:"([^"]*)"|'([^']*)')`).exec(attrs);
  return m ? decode(m[1] ?? m[2]!) : undefined;
};

/** The files of getFolderTree's XML (`<dir label>` folders, `<file path>NAME</file>`), in document order. */
export function parseFolderTree(xml: string): TreeFile[] {
  const files: TreeFile[] = [];
  const stack: string[] = [];
  const re = /<(dir|folder)\b([^>]*?)(\/?)>|<\/(?:dir|folder)\s*>|<file\b([^>]*?)(?:\/>|>([^<]*)<\/file\s*>)/g;
  for (let m = re.exec(xml); m; m = re.exec(xml)) {
    if (m[1]) {
      if (!m[3]) stack.push(attr(m[2]!, 'label') ?? '');
    } else if (m[4] !== undefined) {
      const p = attr(m[4], 'path');
      const name = decode((m[5] ?? '').trim()) || (p ? p.slice(p.lastIndexOf('/') + 1) : '');
      if (p && name) files.push({ name, path: p, dirs: [...stack] });
    } else stack.pop();
  }
  return files;
}

export type Spec =
  | { kind: 'format'; format: AristaFormat; version: string; selector: 'exact' | 'latest' | 'branch' }
  | { kind: 'file'; name: string };

/** `arista:cEOS@4.32.1F`, `arista:vEOS-lab@latest`, `arista:cEOS@4.32`, `arista:cEOS-lab-4.32.1F.tar.xz`. */
export function parseSpec(spec: string): Spec {
  const body = spec.replace(/^arista:/i, '');
  const usage = (message: string, hint?: string) =>
    new HoardError('E_USAGE', message, { hint: hint ?? 'write arista:<format>@<version|latest|branch> (e.g. arista:cEOS@4.32.1F, arista:cEOS@latest, arista:cEOS@4.32) or arista:<exact file name>' });
  if (!body) throw usage(`"${spec}" names no Arista format or file`);
  const at = body.lastIndexOf('@');
  if (at < 0) {
    if (findFormat(body) && !body.includes('.')) throw usage(`"${spec}" has no version`, `add one: arista:${findFormat(body)!.format}@latest, or @<version> (see \`hoard versions arista:${findFormat(body)!.format}\`)`);
    if (/[/\\\0]/.test(body)) throw usage(`"${spec}" is not a file name`);
    return { kind: 'file', name: body };
  }
  const format = findFormat(body.slice(0, at));
  const version = body.slice(at + 1);
  if (!format) {
    throw usage(`"${body.slice(0, at)}" is not an Arista format`, `formats: ${FORMATS.map((f) => f.format).join(', ')}`);
  }
  if (version === 'latest') return { kind: 'format', format, version, selector: 'latest' };
  if (isVersion(format.product, version)) return { kind: 'format', format, version, selector: 'exact' };
  if (/^\d+\.\d+$/.test(version)) return { kind: 'format', format, version, selector: 'branch' };
  throw usage(`"${version}" is not a version, a branch or "latest"`, format.product === 'EOS' ? 'for example 4.32.1F, 4.32.2.1F (hotfix), 4.31.4M, 4.32 (a branch) or latest' : 'for example 2024.1.0, 2024.1 (a branch) or latest');
}

/** Files by name, those under Active Releases first (an account may see one file in several folders). */
export function findFile(files: readonly TreeFile[], name: string): TreeFile | undefined {
  let found: TreeFile | undefined;
  for (const f of files) {
    if (f.name !== name) continue;
    if (f.dirs.includes('Active Releases')) return f;
    found ??= f;
  }
  return found;
}

export interface VersionInfo {
  version: string;
  file: TreeFile;
  /** `Active Releases`, `Support Only Releases`, … (the folder below the product's). */
  section: string;
}

/** Every version of a format in the tree, oldest first. */
export function versionsOf(files: readonly TreeFile[], format: AristaFormat): VersionInfo[] {
  const re = fileRe(format);
  const byVersion = new Map<string, VersionInfo>();
  for (const f of files) {
    if (f.dirs[0] !== TOP[format.product]) continue;
    const m = re.exec(f.name);
    if (!m) continue;
    const seen = byVersion.get(m[1]!);
    if (!seen || (f.dirs[1] === 'Active Releases' && seen.section !== 'Active Releases')) byVersion.set(m[1]!, { version: m[1]!, file: f, section: f.dirs[1] ?? '' });
  }
  return [...byVersion.values()].sort((a, b) => compareVersions(a.version, b.version));
}

/**
 * The newest version of `format`: "latest" is the highest under Active Releases of the release
 * type; a branch (4.32) the highest of that branch, wherever it is.
 */
export function latestOf(files: readonly TreeFile[], format: AristaFormat, o: { branch?: string; releaseType?: ReleaseType }): VersionInfo | undefined {
  const type = format.product === 'EOS' ? (o.releaseType ?? 'F') : null;
  const fits = versionsOf(files, format).filter(
    (v) => (type === null || releaseTypeOf(v.version) === type) && (o.branch ? branchOf(v.version) === o.branch : v.section === 'Active Releases'),
  );
  return fits.at(-1);
}

export interface Resolution {
  file: TreeFile;
  format?: AristaFormat;
  version?: string;
}

/** Which file of the tree a spec means; a clear error when there is none. */
export function resolveSpec(files: readonly TreeFile[], spec: Spec, releaseType?: ReleaseType): Resolution {
  if (spec.kind === 'file') {
    const file = findFile(files, spec.name);
    if (!file) {
      throw new HoardError('E_USAGE', `no file named ${spec.name} in the Arista downloads your account can see`, {
        hint: 'check the exact name (case matters), or pick by format: hoard versions arista:cEOS',
        details: { file: spec.name },
      });
    }
    const parsed = parseFileName(file.name);
    return { file, ...(parsed ? { format: parsed.format, version: parsed.version } : {}) };
  }
  const { format } = spec;
  if (spec.selector === 'exact') {
    const name = fileNameOf(format, spec.version);
    const file = findFile(files, name);
    if (!file) {
      const near = versionsOf(files, format).filter((v) => branchOf(v.version) === branchOf(spec.version)).map((v) => v.version);
      throw new HoardError('E_USAGE', `Arista has no ${name} (format ${format.format}, version ${spec.version}) that your account can see`, {
        hint: near.length ? `versions of ${branchOf(spec.version)}: ${near.join(', ')}` : `see what exists: hoard versions arista:${format.format}`,
        details: { file: name },
      });
    }
    return { file, format, version: spec.version };
  }
  const type = releaseType ?? 'F';
  const latest = latestOf(files, format, { ...(spec.selector === 'branch' ? { branch: spec.version } : {}), releaseType: type });
  if (!latest) {
    const what = spec.selector === 'branch' ? `in branch ${spec.version}` : 'under Active Releases';
    throw new HoardError('E_USAGE', `Arista has no ${format.format} ${format.product === 'EOS' ? `${type} release ` : ''}${what}`, {
      hint: `see what exists: hoard versions arista:${format.format}${spec.selector === 'branch' ? ` --branch ${spec.version}` : ''}${format.product === 'EOS' && type === 'F' ? ' (or --release-type M)' : ''}`,
    });
  }
  return { file: latest.file, format, version: latest.version };
}

/** The checksum file published beside `file` (`.sha512sum` for EOS, `.md5` for CloudVision). */
export function sidecarOf(files: readonly TreeFile[], file: TreeFile): { file: TreeFile; algorithm: 'sha512' | 'md5' } | null {
  const parsed = parseFileName(file.name);
  const kinds = parsed ? [parsed.format.sidecar] : [EOS_SUM, CVP_SUM];
  for (const k of kinds) {
    const p = file.path + k.suffix;
    const side = files.find((f) => f.path === p) ?? files.find((f) => f.name === file.name + k.suffix && f.dirs.join('/') === file.dirs.join('/'));
    if (side) return { file: side, algorithm: k.algorithm };
  }
  return null;
}
