import { promises as fs } from 'node:fs';
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
const RELATIVE_PATH_EXPECTED = "a relative path inside the folder: no leading '/', no '..' segment, no backslash, no NUL, no trailing '/'";

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
    case 'const':
      return { pointer: e.instancePath, message: `expected ${JSON.stringify(p.allowedValue)}` };
    case 'enum':
      return { pointer: e.instancePath, message: `expected one of ${(p.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}` };
    case 'pattern': {
      const field = e.instancePath.split('/').pop() ?? '';
      const expected: Record<string, string> = {
        output: RELATIVE_PATH_EXPECTED,
        path: RELATIVE_PATH_EXPECTED,
        url: 'an http:// or https:// URL',
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

function manifestError(file: string, problems: ManifestProblem[]): HoardError {
  const rel = path.relative(process.cwd(), file) || file;
  const lines = problems.map((pr) => {
    const where = pr.line ? `${rel}:${pr.line}:${pr.column}` : rel;
    return `  ${where}: ${pr.pointer || '(root)'} ${pr.message}`;
  });
  return new HoardError('E_MANIFEST', `${rel} is not a valid manifest:\n${lines.join('\n')}`, {
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
  let name: string;
  try {
    name = decodeURIComponent(last);
  } catch {
    return null;
  }
  if (name === '' || name === '.' || name === '..' || /[/\\\0]/.test(name)) return null;
  return name;
}

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
  const outputs = new Map<string, string>();
  for (const [name, entry] of Object.entries(doc.artifacts)) {
    const base = `/artifacts/${escapePointer(name)}`;
    const rel = entry.path ?? fileNameFromUrl(entry.url);
    if (rel === null) {
      at(`${base}/url`, 'has no file name in its last path segment; set "path"');
      continue;
    }
    const same = path.posix.normalize(rel);
    const other = outputs.get(same);
    if (other !== undefined) at(`${base}/path`, `is the same output path as artifact "${other}" (${rel})`);
    else outputs.set(same, name);
    if (entry.arista && !entry.url.startsWith('arista:')) at(`${base}/arista`, 'is only for an "url" of the form "arista:<file name>"');
    if (entry.link === 'hardlink' && entry.executable) {
      at(`${base}/link`, 'cannot be "hardlink" with "executable": true (a hard link shares the read-only blob); use "auto" or "copy"');
    }
    if (entry.checksums?.sha256 && entry.digest && entry.checksums.sha256 !== entry.digest.slice(7)) {
      at(`${base}/checksums/sha256`, 'disagrees with "digest"');
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

export async function loadManifest(file: string): Promise<Manifest> {
  const abs = path.resolve(file);
  let text: string;
  try {
    text = await fs.readFile(abs, 'utf8');
  } catch (err) {
    if (isErrno(err, 'ENOENT')) {
      throw new HoardError('E_MANIFEST', `no manifest at ${abs}`, {
        hint: 'run `hoard init` to create one, or pass -m <file>',
        details: { file: abs },
      });
    }
    if (isErrno(err, 'EISDIR')) throw new HoardError('E_MANIFEST', `${abs} is a folder, not a manifest file`, { details: { file: abs } });
    throw err;
  }
  return { file: abs, dir: path.dirname(abs), doc: parseManifest(abs, text), text };
}

/** Every artifact with its defaults applied, sorted by name. */
export function resolveArtifacts(doc: ManifestDoc): Artifact[] {
  return Object.keys(doc.artifacts)
    .sort()
    .map((name) => {
      const e = doc.artifacts[name]!;
      return {
        name,
        url: e.url,
        ...(e.arista ? { arista: e.arista } : {}),
        mirrors: e.mirrors ?? [],
        path: e.path ?? fileNameFromUrl(e.url)!,
        ...(e.digest ? { digest: e.digest } : {}),
        ...(e.size !== undefined ? { size: e.size } : {}),
        checksums: e.checksums ?? {},
        ...(e.image ? { image: e.image } : {}),
        headers: e.headers ?? {},
        link: e.link ?? 'auto',
        executable: e.executable ?? false,
      };
    });
}
