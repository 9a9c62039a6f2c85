// docker and podman behind one Engine: the two CLIs take the same arguments for everything
// hoard does (image inspect, import, load, tag) and differ only in their messages, so one
// adapter serves both, with a small table of what differs.
import type { Digest } from '../core/digest.ts';
import { HoardError, isErrno } from '../core/errors.ts';
import { DIGEST_LABEL, type Engine, type EngineChoice, type EngineName, type ImageInfo, type RunResult, type Runner } from './types.ts';

export interface EngineOptions {
  /** Limit for queries (image inspect, tag, the `auto` probe). Default 5000 ms. */
  queryTimeoutMs?: number;
  /** Limit for `import` and `load`, which may take minutes for 500 MB images. Default: none. */
  importTimeoutMs?: number;
  /** Environment of the engine commands (DOCKER_HOST, CONTAINER_HOST, PATH, …). */
  env?: Record<string, string | undefined>;
}

const DEFAULT_QUERY_TIMEOUT_MS = 5000;

const PER_ENGINE: Record<EngineName, { install: string; other: EngineName }> = {
  docker: { install: 'install docker (https://docs.docker.com/engine/install/)', other: 'podman' },
  podman: { install: 'install podman (apt-get install podman)', other: 'docker' },
};

/** Lines an engine prints for a ref it does not have (docker: old and new daemons; podman). */
const NOT_FOUND = /no such (image|object)|image not known/i;
/** Progress and warnings on stderr, never the reason of a failure. */
const NOISE = /^(Getting image source signatures|Copying (blob|config)|Writing manifest|Storing signatures|WARN\[|time="[^"]*" level=(warning|info))/;

/**
 * What went wrong, from stderr: the last `Error: …` line (podman may follow it with a list of
 * details), else the last line that is not progress or a warning; without the `Error: `.
 */
function lastMeaningfulLine(stderr: string): string {
  const lines = stderr.split('\n').map((l) => l.trim()).filter((l) => l && !NOISE.test(l));
  const line = lines.filter((l) => /^error\b/i.test(l)).at(-1) ?? lines.at(-1) ?? '';
  return line.replace(/^Error:\s*/i, '').replace(/\.?\s*Is the docker daemon running\?$|:$/, '');
}

function seconds(ms: number | undefined): string {
  return ms === undefined ? '' : `${Math.round(ms / 100) / 10} s`;
}

/** One clear error for a command that could not run or failed: what happened, and the fix. */
function engineError(engine: EngineName, action: string, failure: { thrown: unknown; timeoutMs?: number } | RunResult): HoardError {
  const details = { engine, action };
  const skip = 'or pass --no-images to sync the files without images';
  if ('thrown' in failure) {
    const err = failure.thrown;
    if (isErrno(err, 'ENOENT')) {
      return new HoardError('E_ENGINE', `${engine} is not installed (no \`${engine}\` command on PATH)`, {
        hint: `${PER_ENGINE[engine].install}, use --engine ${PER_ENGINE[engine].other}, ${skip}`,
        cause: err,
        details,
      });
    }
    if ((err as { timedOut?: boolean } | null)?.timedOut) {
      return new HoardError('E_ENGINE', `${engine} ${action} did not answer within ${seconds(failure.timeoutMs)}`, {
        hint: `check that ${engine} works (\`${engine} info\`)${engine === 'docker' ? ' and restart its daemon if it hangs' : ''}, ${skip}`,
        cause: err,
        details: { ...details, timeoutMs: failure.timeoutMs },
      });
    }
    return new HoardError('E_ENGINE', `${engine} could not be run: ${(err as Error)?.message ?? String(err)}`, { hint: `check the ${engine} installation, ${skip}`, cause: err, details });
  }
  const { stderr, exitCode } = failure;
  const line = lastMeaningfulLine(stderr) || `exit code ${exitCode}`;
  const more = { ...details, exitCode, stderr: stderr.slice(-2000) };
  if (/cannot connect to the docker daemon|is the docker daemon running|error during connect/i.test(stderr)) {
    return new HoardError('E_ENGINE', `${engine}: the docker daemon is not running (${line})`, {
      hint: `start the daemon (systemctl start docker), use --engine ${PER_ENGINE[engine].other}, ${skip}`,
      details: more,
    });
  }
  if (/permission denied/i.test(stderr) && /docker\.sock|daemon socket/i.test(stderr)) {
    return new HoardError('E_ENGINE', `${engine}: permission denied on the docker daemon's socket`, {
      hint: `add yourself to the docker group (sudo usermod -aG docker "$USER", then log in again), use --engine podman, ${skip}`,
      details: more,
    });
  }
  if (/cannot connect to podman/i.test(stderr)) {
    return new HoardError('E_ENGINE', `${engine}: the podman service is not answering (${line})`, {
      hint: `start it (podman machine start, or systemctl --user start podman.socket), ${skip}`,
      details: more,
    });
  }
  return new HoardError('E_ENGINE', `${engine} ${action} failed: ${line}`, { details: more });
}

interface InspectEntry {
  Id?: string;
  RepoTags?: string[] | null;
  RepoDigests?: string[] | null;
  Config?: { Labels?: Record<string, string> | null } | null;
  Labels?: Record<string, string> | null;
}

/**
 * The fully qualified names a reference can stand for, so that the names an engine reports
 * can be matched with the one asked about: docker keeps `name:tag` (meaning
 * `docker.io/library/name:tag`), podman `localhost/name:tag`; no tag means `:latest`; with a
 * digest, the digest is what counts (it matches RepoDigests).
 */
export function referenceKeys(ref: string): string[] {
  const at = ref.indexOf('@');
  let name = at >= 0 ? ref.slice(0, at) : ref;
  const digest = at >= 0 ? ref.slice(at + 1) : '';
  let tag = 'latest';
  const colon = name.lastIndexOf(':');
  if (colon > name.lastIndexOf('/')) {
    tag = name.slice(colon + 1);
    name = name.slice(0, colon);
  }
  const suffix = digest ? `@${digest}` : `:${tag}`;
  const slash = name.indexOf('/');
  const first = slash >= 0 ? name.slice(0, slash) : '';
  if (first.includes('.') || first.includes(':') || first === 'localhost') {
    const domain = first === 'index.docker.io' || first === 'registry-1.docker.io' ? 'docker.io' : first;
    let repo = name.slice(slash + 1);
    if (domain === 'docker.io' && !repo.includes('/')) repo = `library/${repo}`;
    return [`${domain}/${repo}${suffix}`];
  }
  return [`docker.io/${slash >= 0 ? name : `library/${name}`}${suffix}`, `localhost/${name}${suffix}`];
}

function toInfo(ref: string, entry: InspectEntry): ImageInfo {
  const id = entry.Id ?? '';
  return { ref, id: id.startsWith('sha256:') ? id : `sha256:${id}`, labels: { ...(entry.Config?.Labels ?? entry.Labels ?? {}) } };
}

/** `Loaded image: x`, `Loaded image(s): x,y` (older podman), `Loaded image ID: sha256:…` (docker). */
export function loadedImages(output: string): string[] {
  const names: string[] = [];
  for (const line of output.split('\n')) {
    const m = /^Loaded image(?:\(s\))?(?: ID)?:\s*(.+)$/.exec(line.trim());
    if (m) names.push(...m[1]!.split(',').map((s) => s.trim()).filter(Boolean));
  }
  return names;
}

/** An Engine driving `name` (the docker or podman command) through `runner`. */
export function createEngine(name: EngineName, runner: Runner, opts: EngineOptions = {}): Engine {
  const queryTimeoutMs = opts.queryTimeoutMs ?? DEFAULT_QUERY_TIMEOUT_MS;

  async function run(action: string, args: readonly string[], timeoutMs: number | undefined): Promise<RunResult> {
    try {
      return await runner(name, args, { ...(timeoutMs !== undefined ? { timeoutMs } : {}), ...(opts.env ? { env: opts.env } : {}) });
    } catch (thrown) {
      throw engineError(name, action, { thrown, timeoutMs });
    }
  }

  /** Runs a command that must succeed. */
  async function must(action: string, args: readonly string[], timeoutMs: number | undefined): Promise<RunResult> {
    const result = await run(action, args, timeoutMs);
    if (result.exitCode !== 0) throw engineError(name, action, result);
    return result;
  }

  async function inspect(refs: readonly string[]): Promise<Map<string, ImageInfo>> {
    const found = new Map<string, ImageInfo>();
    const unique = [...new Set(refs)];
    if (unique.length === 0) return found;
    const result = await run('image inspect', ['image', 'inspect', ...unique], queryTimeoutMs);
    // Refs that do not exist make the command fail, but the others are still printed: the
    // failure matters only when stderr says something other than "no such image".
    if (result.exitCode !== 0) {
      const lines = result.stderr.split('\n').map((l) => l.trim()).filter((l) => l && !NOISE.test(l));
      if (lines.length === 0 || lines.some((l) => !NOT_FOUND.test(l))) throw engineError(name, 'image inspect', result);
    }
    let entries: InspectEntry[];
    try {
      const parsed: unknown = JSON.parse(result.stdout.trim() || '[]');
      if (!Array.isArray(parsed)) throw new Error('not a JSON array');
      entries = parsed as InspectEntry[];
    } catch (cause) {
      throw new HoardError('E_ENGINE', `${name} image inspect printed something that is not a JSON array`, { cause, details: { engine: name, stdout: result.stdout.slice(0, 500) } });
    }
    const wanted = unique.map((ref) => ({ ref, keys: new Set(referenceKeys(ref)) }));
    for (const entry of entries) {
      const names = [...(entry.RepoTags ?? []), ...(entry.RepoDigests ?? [])].flatMap(referenceKeys);
      for (const w of wanted) {
        if (!found.has(w.ref) && names.some((k) => w.keys.has(k))) found.set(w.ref, toInfo(w.ref, entry));
      }
    }
    // Both engines print the images in the order asked. When all were found, that order maps
    // them even where the names could not (a podman short-name alias, say).
    if (entries.length === unique.length) {
      unique.forEach((ref, i) => {
        if (!found.has(ref)) found.set(ref, toInfo(ref, entries[i]!));
      });
    }
    return found;
  }

  async function inspectOne(ref: string, after: string): Promise<ImageInfo> {
    const info = (await inspect([ref])).get(ref);
    if (!info) throw new HoardError('E_ENGINE', `${name} has no image ${ref} after ${after}`, { details: { engine: name, ref } });
    return info;
  }

  return {
    name,
    inspect,

    async importRootfs(file: string, ref: string, digest: Digest): Promise<ImageInfo> {
      await must('import', ['import', '--change', `LABEL ${DIGEST_LABEL}=${digest}`, file, ref], opts.importTimeoutMs);
      return inspectOne(ref, `importing ${file}`);
    },

    /**
     * Loads an image archive and tags its image as `ref`. An archive with several images:
     * the first one the engine reports loading is tagged; the others stay loaded as they are.
     */
    async load(file: string, ref: string): Promise<ImageInfo> {
      const result = await must('load', ['load', '-i', file], opts.importTimeoutMs);
      const loaded = loadedImages(`${result.stdout}\n${result.stderr}`)[0];
      if (!loaded) {
        throw new HoardError('E_ENGINE', `${name} load of ${file} did not say which image it loaded`, {
          details: { engine: name, action: 'load', stdout: result.stdout.slice(0, 500) },
        });
      }
      await must('tag', ['tag', loaded, ref], queryTimeoutMs);
      return inspectOne(ref, `loading ${file}`);
    },

    async imageUsers(id: string): Promise<{ tags: string[]; containers: string[] } | null> {
      const result = await run('image inspect', ['image', 'inspect', id], queryTimeoutMs);
      if (result.exitCode !== 0) {
        if (NOT_FOUND.test(result.stderr)) return null;
        throw engineError(name, 'image inspect', result);
      }
      let entry: InspectEntry | undefined;
      try {
        entry = (JSON.parse(result.stdout) as InspectEntry[])[0];
      } catch (cause) {
        throw new HoardError('E_ENGINE', `${name} image inspect printed something that is not a JSON array`, { cause, details: { engine: name, stdout: result.stdout.slice(0, 500) } });
      }
      if (!entry) return null;
      const tags = (entry.RepoTags ?? []).filter((t) => !t.startsWith('<none>'));
      // Every container, running or stopped, made from this image (or from an image built on
      // it). The full hex id: podman's filter matches neither `sha256:…` nor a short id.
      const ps = await must('ps', ['ps', '--all', '--filter', `ancestor=${id.replace(/^sha256:/, '')}`, '--format', '{{.Names}}'], queryTimeoutMs);
      return { tags, containers: ps.stdout.split('\n').map((l) => l.trim()).filter(Boolean) };
    },

    async removeImage(id: string): Promise<void> {
      await must('rmi', ['rmi', id], opts.importTimeoutMs);
    },
  };
}

/**
 * The engine to use. docker or podman as asked (not probed: a problem surfaces on first use,
 * as one clear error); `auto`: docker when its daemon answers within the query timeout, else
 * podman when it runs, else an error naming both. Each is probed at most once.
 */
export async function selectEngine(choice: EngineChoice, runner: Runner, opts: EngineOptions = {}): Promise<Engine> {
  if (choice !== 'auto') return createEngine(choice, runner, opts);
  const timeoutMs = opts.queryTimeoutMs ?? DEFAULT_QUERY_TIMEOUT_MS;
  const probe = async (name: EngineName, args: readonly string[]): Promise<HoardError | null> => {
    let result: RunResult;
    try {
      result = await runner(name, args, { timeoutMs, ...(opts.env ? { env: opts.env } : {}) });
    } catch (thrown) {
      return engineError(name, 'version', { thrown, timeoutMs });
    }
    if (result.exitCode !== 0 || result.stdout.trim() === '') return engineError(name, 'version', result);
    return null;
  };
  const docker = await probe('docker', ['version', '--format', '{{.Server.Version}}']);
  if (!docker) return createEngine('docker', runner, opts);
  const podman = await probe('podman', ['version']);
  if (!podman) return createEngine('podman', runner, opts);
  throw new HoardError('E_ENGINE', `no container engine is usable (${docker.message}; ${podman.message})`, {
    hint: 'start the docker daemon (systemctl start docker), install podman (apt-get install podman), or pass --no-images to sync the files without images',
    details: { engine: 'auto', docker: docker.message, podman: podman.message },
  });
}
