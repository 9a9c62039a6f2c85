import { closeSync, fstatSync, openSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { HoardError, isErrno } from '../core/errors.ts';
import { escapePointer, JsonSyntaxError, parseJsonFast, type Position } from './json.ts';
import type { Artifact, Manifest, ManifestDoc } from './types.ts';
// Compiled from schemas/manifest.schema.json by scripts/build.mjs (ajv standalone).
import validateGenerated from './validate.generated.js';

interface AjvError {
  instancePath: string;
  /** Set on errors about a property name (propertyNames), inner or outer. */
  propertyName?: string;
  schemaPath: string;
  keyword: string;
  params: Record<string, unknown>;
  message?: string;
}
type Validator = ((data: unknown) => boolean) & { errors?: AjvError[] | null };
const validate = validateGenerated as unknown as Validator;

export interface ManifestProblem {
  pointer: string;
  message: string;
  line?: number;
  column?: number;
}

export const DEFAULT_OUTPUT = 'artifacts';
const GIT_PROBLEM = 'is inside a .git folder, where a file could become a git hook or configuration: hoard never writes there; choose another path';
const RELATIVE_PATH_EXPECTED = "a relative path inside the folder: no leading '/', no '..' segment, no backslash, no control character, no trailing '/'";

/** Turns one ajv error into words a person can act on. */
function explain(e: AjvError): { pointer: string; message: string } {
  const p = e.params;
  switch (e.keyword) {
    case 'required':
      return { pointer: `${e.instancePath}/${escapePointer(String(p.missingProperty))}`, message: 'is required but missing' };
    case 'additionalProperty':
    case 'additionalProperties':
      return {
        pointer: `${e.instancePath}/${escapePointer(String(p.additionalProperty))}`,
        message: 'is not a known property (check its spelling against schemas/manifest.schema.json)',
      };
    case 'propertyNames':
      return {
        pointer: `${e.instancePath}/${escapePointer(String(p.propertyName))}`,
        message:
          e.instancePath === '/artifacts'
            ? 'is not a valid artifact name: use letters, digits, ".", "_" or "-", starting with a letter or digit, at most 128'
            : 'is not a valid HTTP header name',
      };
    case 'type':
      return { pointer: e.instancePath, message: `expected ${p.type}` };
    case 'anyOf': // "url": an http(s) URL or a vendor locator (each branch's pattern error says the same)
      return { pointer: e.instancePath, message: 'expected an http:// or https:// URL, or arista:<file name>' };
    case 'maximum':
      return { pointer: e.instancePath, message: `expected at most ${String(p.limit)}${p.limit === Number.MAX_SAFE_INTEGER ? ' (2^53 - 1, the largest size hoard can count exactly)' : ''}` };
    case 'const':
      return { pointer: e.instancePath, message: `expected ${JSON.stringify(p.allowedValue)}` };
    case 'enum':
      return { pointer: e.instancePath, message: `expected one of ${(p.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}` };
    case 'pattern': {
      const field = e.instancePath.split('/').pop() ?? '';
      const expected: Record<string, string> = {
        output: RELATIVE_PATH_EXPECTED,
        path: RELATIVE_PATH_EXPECTED,
        url: 'an http:// or https:// URL (no spaces, no control characters)',
        remote: 'a team cache address: oci://<registry host[:port]>/<lowercase repository>',
        digest: 'sha256: followed by 64 lowercase hex characters',
        image: 'a container image reference: name[:tag][@sha256:digest], lowercase name',
        sha512: '128 lowercase hex characters',
        sha256: '64 lowercase hex characters',
        sha1: '40 lowercase hex characters',
        md5: '32 lowercase hex characters',
      };
      if (/^\/artifacts\/[^/]+\/mirrors\/\d+$/.test(e.instancePath)) return { pointer: e.instancePath, message: `expected ${expected.url}` };
      if (e.schemaPath.includes('artifactName')) {
        return { pointer: e.instancePath, message: 'expected a name of letters, digits, ".", "_" or "-" (starting with a letter or digit, at most 128)' };
      }
      if (e.schemaPath.includes('headers')) return { pointer: e.instancePath, message: 'expected an HTTP header name' };
      return { pointer: e.instancePath, message: `expected ${expected[field] ?? `to match ${String(p.pattern)}`}` };
    }
    default:
      return { pointer: e.instancePath, message: e.message ?? e.keyword };
  }
}

/** One line per problem, `  file:line:column: /pointer message`, as E_MANIFEST errors list them. */
export function problemLines(file: string, problems: readonly ManifestProblem[]): string {
  const rel = path.relative(process.cwd(), file) || file;
  return problems
    .map((pr) => {
      const where = pr.line ? `${rel}:${pr.line}:${pr.column}` : rel;
      return `  ${where}: ${pr.pointer || '(root)'} ${pr.message}`;
    })
    .join('\n');
}

function manifestError(file: string, problems: ManifestProblem[]): HoardError {
  const rel = path.relative(process.cwd(), file) || file;
  return new HoardError('E_MANIFEST', `${rel} is not a valid manifest:\n${problemLines(file, problems)}`, {
    hint: `fix ${rel} and run the command again; the file was not changed`,
    details: { file, problems },
  });
}

/** The last segment of a URL's path, decoded, or null when there is none usable. */
export function fileNameFromUrl(url: string): string | null {
  // A vendor locator (arista:cEOS-lab-4.32.1F.tar.xz) is its file name.
  if (url.startsWith('arista:')) return /^arista:([^/\\\0]+)$/.exec(url)?.[1] ?? null;
  // String work, not new URL(): this runs for every artifact on every start.
  const m = /^[a-zA-Z][a-zA-Z0-9+.-]*:\/\/[^/?#]*([^?#]*)/.exec(url);
  if (!m) return null;
  const last = (m[1] ?? '').slice((m[1] ?? '').lastIndexOf('/') + 1);
  let name = last;
  if (last.includes('%')) {
    try {
      name = decodeURIComponent(last);
    } catch {
      return null;
    }
  }
  if (name === '' || name === '.' || name === '..' || /[/\\\0]/.test(name)) return null;
  return name;
}

/** C0 controls (TAB, CR, LF, ESC, BEL…), DEL and C1 controls: never in a name hoard writes or prints. */
export const CONTROL_CHARACTER = /[\u0000-\u001f\u007f-\u009f]/;

/** Whether a URL carries a user name or password (`https://user:pass@host/`). */
export function hasUserInfo(url: string): boolean {
  return url.includes('@') && /^[a-zA-Z][a-zA-Z0-9+.-]*:\/\/[^/?#]*@/.test(url);
}

/** What to say about credentials in a URL: they would be committed with hoard.json. */
export const USER_INFO_PROBLEM =
  'has a user name or password in it ("user:pass@"), which would be committed with hoard.json (and is not sent); ' +
  'put the credentials in "headers" from an environment variable instead: "headers": {"Authorization": "Basic ${VENDOR_BASIC}"} ' +
  'with VENDOR_BASIC=$(printf %s user:pass | base64), or "Bearer ${VENDOR_TOKEN}"';

const SECRET_QUERY_KEYS = new Set(['token', 'access_token', 'auth', 'key', 'api_key', 'apikey', 'sig', 'signature', 'password', 'passwd', 'secret', 'x-amz-signature', 'x-amz-credential', 'x-goog-signature']);

/** The query keys of a URL that look like secrets (`?token=…`, `X-Amz-Signature=…`); empty when none. */
export function secretQueryKeys(url: string): string[] {
  const q = url.indexOf('?');
  if (q < 0) return [];
  const keys: string[] = [];
  for (const pair of url.slice(q + 1).split('#')[0]!.split('&')) {
    let key = pair.split('=')[0] ?? '';
    try {
      key = decodeURIComponent(key);
    } catch {}
    if (SECRET_QUERY_KEYS.has(key.toLowerCase())) keys.push(key);
  }
  return keys;
}

/** True when a relative path goes through (or is) a `.git` folder, in any letter case. */
export function inGitFolder(rel: string): boolean {
  return /\.git/i.test(rel) && rel.split('/').some((seg) => seg.toLowerCase() === '.git');
}

/** A segment `.` or `..`, or an empty one (`a//b`): only then does path.posix.normalize change a relative path. */
const NOT_NORMAL = /(^|\/)\.{1,2}(\/|$)|\/\//;

/** path.posix.normalize(rel), without its work for the usual path that is normal already. */
export function normalizeRel(rel: string): string {
  return NOT_NORMAL.test(rel) ? path.posix.normalize(rel) : rel;
}

/** How two output paths are compared: case-insensitively and Unicode-normalised, as macOS and Windows do. */
const fold = (p: string) => p.normalize('NFC').toLowerCase();

/** Validates parsed JSON as a manifest; every problem is reported at once. */
export function checkManifest(
  file: string,
  value: unknown,
  positionsOf: Map<string, Position> | (() => Map<string, Position>) = new Map(),
): ManifestDoc {
  const problems: ManifestProblem[] = [];
  const at = (pointer: string, message: string) => {
    const positions = typeof positionsOf === 'function' ? positionsOf() : positionsOf;
    // Point at the closest value we know the position of.
    let p = pointer;
    while (!positions.has(p) && p !== '') p = p.slice(0, p.lastIndexOf('/'));
    const pos = positions.get(p);
    problems.push({ pointer, message, ...(pos ? { line: pos.line, column: pos.column } : {}) });
  };

  if (!validate(value)) {
    const seen = new Set<string>();
    for (const e of validate.errors ?? []) {
      // A bad property name is reported twice by ajv (the inner pattern, then propertyNames); keep the outer one.
      if (e.keyword !== 'propertyNames' && e.propertyName !== undefined) continue;
      // A branch of an anyOf ("url") failing is said once, by the anyOf.
      if (e.keyword !== 'anyOf' && /^\/artifacts\/[^/]+\/url$/.test(e.instancePath)) continue;
      const { pointer, message } = explain(e);
      const key = `${pointer} ${message}`;
      if (seen.has(key)) continue;
      seen.add(key);
      at(pointer, message);
    }
    throw manifestError(file, problems);
  }

  const doc = value as ManifestDoc;
  if (doc.output !== undefined && inGitFolder(doc.output)) at('/output', GIT_PROBLEM);
  // Output paths (folded: equal ignoring case is the same file on macOS and Windows) → the
  // pointer of the entry that has it, as a file and as a folder above a file. (Pointers are
  // made only for a message: a valid manifest of 10,000 entries needs none of them.)
  const files = new Map<string, { where: Where; rel: string }>();
  const folders = new Map<string, Where>();
  type Where = { name: string; field: 'url' | 'path' };
  const pointer = (w: Where) => `/artifacts/${escapePointer(w.name)}/${w.field}`;
  for (const name in doc.artifacts) {
    const entry = doc.artifacts[name]!;
    const base = () => `/artifacts/${escapePointer(name)}`;
    if (hasUserInfo(entry.url)) at(`${base()}/url`, USER_INFO_PROBLEM);
    entry.mirrors?.forEach((m, i) => hasUserInfo(m) && at(`${base()}/mirrors/${i}`, USER_INFO_PROBLEM));
    const rel = entry.path ?? fileNameFromUrl(entry.url);
    if (rel === null) {
      at(`${base()}/url`, 'has no file name in its last path segment; set "path"');
      continue;
    }
    const here: Where = { name, field: entry.path === undefined ? 'url' : 'path' };
    const where = () => pointer(here);
    if (entry.path === undefined && CONTROL_CHARACTER.test(rel)) {
      at(where(), `has a file name with a control character once decoded (${JSON.stringify(rel)}); set "path"`);
      continue;
    }
    if (inGitFolder(rel)) {
      at(where(), GIT_PROBLEM);
      continue;
    }
    const same = fold(normalizeRel(rel));
    const other = files.get(same);
    if (other !== undefined) {
      at(where(), other.rel === rel || path.posix.normalize(other.rel) === path.posix.normalize(rel)
        ? `is the same output path as ${pointer(other.where)} (${rel})`
        : `is the same output path as ${pointer(other.where)} but for letter case (${other.rel}, ${rel}): one file on macOS and Windows`);
    } else if (folders.has(same)) {
      at(where(), `is a file, but ${pointer(folders.get(same)!)} needs a folder there (${rel}/…)`);
    } else {
      const parts = same.split('/');
      let clash: string | undefined;
      for (let i = 1; i < parts.length && !clash; i++) {
        const dir = parts.slice(0, i).join('/');
        if (files.has(dir)) clash = dir;
      }
      if (clash !== undefined) at(where(), `needs a folder where ${pointer(files.get(clash)!.where)} has its file (${files.get(clash)!.rel})`);
      else {
        files.set(same, { where: here, rel });
        for (let i = 1; i < parts.length; i++) {
          const dir = parts.slice(0, i).join('/');
          if (!folders.has(dir)) folders.set(dir, here);
        }
      }
    }
    if (entry.arista && !entry.url.startsWith('arista:')) at(`${base()}/arista`, 'is only for an "url" of the form "arista:<file name>"');
    if (entry.link === 'hardlink' && entry.executable) {
      at(`${base()}/link`, 'cannot be "hardlink" with "executable": true (a hard link shares the read-only blob); use "auto" or "copy"');
    }
    if (entry.checksums?.sha256 && entry.digest && entry.checksums.sha256 !== entry.digest.slice(7)) {
      at(`${base()}/checksums/sha256`, 'disagrees with "digest"');
    }
  }
  if (problems.length > 0) throw manifestError(file, problems);
  return doc;
}

export function parseManifest(file: string, text: string): ManifestDoc {
  let parsed;
  try {
    parsed = parseJsonFast(text);
  } catch (err) {
    if (err instanceof JsonSyntaxError) {
      throw manifestError(file, [{ pointer: err.pointer ?? '', message: err.message, ...err.position }]);
    }
    throw err;
  }
  return checkManifest(file, parsed.value, parsed.positions);
}

declare const HOARD_MANIFEST_RULES: string | undefined; // set by scripts/build.mjs

/**
 * What a manifest file is like now (inode, size, mtime, ctime) and which rules checked it: equal
 * stamps mean the same content, checked by the same rules. (ctime moves on any change and no
 * user but root can set it back: the same trust as a blob's fingerprint, docs/safety.md.)
 */
export function manifestStamp(st: { ino: number; size: number; mtimeMs: number; ctimeMs: number }): string {
  const rules = typeof HOARD_MANIFEST_RULES === 'string' ? HOARD_MANIFEST_RULES : 'dev';
  return `${rules}:${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}`;
}

/**
 * Reads and checks a manifest. `validStamp`: the stamp it had when last found valid (the store
 * records it, see src/sync/known.ts); if it still has it, and kept it while it was read, its
 * content is what was checked then, and it is only parsed (checking 10,000 entries takes longer
 * than the rest of a no-op sync).
 */
export async function loadManifest(file: string, opts: { validStamp?: string | undefined } = {}): Promise<Manifest> {
  const abs = path.resolve(file);
  let text: string;
  let stamp: string;
  let unchanged: boolean;
  // Synchronous: one small file, read before anything runs in parallel (and a no-op sync then
  // never loads fs/promises).
  let fd: number | undefined;
  try {
    fd = openSync(abs, 'r');
    stamp = manifestStamp(fstatSync(fd));
    text = readFileSync(fd, 'utf8');
    unchanged = opts.validStamp === stamp && manifestStamp(fstatSync(fd)) === stamp;
  } catch (err) {
    if (isErrno(err, 'ENOENT')) {
      throw new HoardError('E_MANIFEST', `no manifest at ${abs}`, {
        hint: 'run `hoard init` to create one, or pass -m <file>',
        details: { file: abs },
      });
    }
    if (isErrno(err, 'EISDIR')) throw new HoardError('E_MANIFEST', `${abs} is a folder, not a manifest file`, { details: { file: abs } });
    throw err;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
  const doc = unchanged ? (JSON.parse(text.charCodeAt(0) === 0xfeff ? text.slice(1) : text) as ManifestDoc) : parseManifest(abs, text);
  return { file: abs, dir: path.dirname(abs), doc, text, stamp };
}

/** Every artifact with its defaults applied, sorted by name. */
export function resolveArtifacts(doc: ManifestDoc): Artifact[] {
  // (Built property by property, not with spreads: a no-op sync of 10,000 entries runs this once for each.)
  return Object.keys(doc.artifacts)
    .sort()
    .map((name) => {
      const e = doc.artifacts[name]!;
      // (keys in the order the type lists them, as JSON shows them)
      const a = { name, url: e.url } as Artifact;
      if (e.arista) a.arista = e.arista;
      a.mirrors = e.mirrors ?? [];
      a.path = e.path ?? fileNameFromUrl(e.url)!;
      if (e.digest) a.digest = e.digest;
      if (e.size !== undefined) a.size = e.size;
      a.checksums = e.checksums ?? {};
      if (e.image) a.image = e.image;
      a.headers = e.headers ?? {};
      a.link = e.link ?? 'auto';
      a.executable = e.executable ?? false;
      return a;
    });
}
