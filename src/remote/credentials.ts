// Registry credentials, found where docker, podman and skopeo keep them, in their order.
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { HoardError, isErrno } from '../core/errors.ts';

export interface Credentials {
  username: string;
  password: string;
  /** Where they came from, for messages: a variable, a file, or a helper. Never the secret. */
  source: string;
  /**
   * An OAuth2 refresh token (`docker login` stores one as `identitytoken` for registries that
   * hand them out; a credential helper answers with the user name `<token>`): exchanged at the
   * realm for an access token instead of sending a password.
   */
  identityToken?: string;
}

type Env = Record<string, string | undefined>;

/** The auth files to look in, first that names the registry wins (as podman, then docker). */
export function authFiles(env: Env): string[] {
  const home = env.HOME ?? '.';
  const files: string[] = [];
  if (env.REGISTRY_AUTH_FILE) files.push(env.REGISTRY_AUTH_FILE);
  if (env.XDG_RUNTIME_DIR) files.push(path.join(env.XDG_RUNTIME_DIR, 'containers', 'auth.json'));
  files.push(path.join(env.XDG_CONFIG_HOME || path.join(home, '.config'), 'containers', 'auth.json'));
  files.push(path.join(env.DOCKER_CONFIG || path.join(home, '.docker'), 'config.json'));
  return files;
}

interface AuthFile {
  auths?: Record<string, { auth?: string; username?: string; password?: string; identitytoken?: string }>;
  credHelpers?: Record<string, string>;
  credsStore?: string;
}

function readAuthFile(file: string): AuthFile | null {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if (isErrno(err, 'ENOENT', 'ENOTDIR', 'EACCES')) return null;
    throw err;
  }
  try {
    const doc = JSON.parse(text) as unknown;
    return doc && typeof doc === 'object' ? (doc as AuthFile) : null;
  } catch {
    throw new HoardError('E_AUTH', `${file} is not valid JSON`, { hint: 'fix or move the file (it holds registry credentials)' });
  }
}

/** An auths key as docker and podman write them: `host`, `https://host`, `host/namespace`. */
function keyMatches(key: string, host: string, repository: string): number {
  const k = key.replace(/^[a-z]+:\/\//i, '').replace(/\/+$/, '').replace(/\/v[12]$/, '').toLowerCase();
  if (k === host) return 1;
  // podman: a key with a path applies to repositories below it; the longest one wins.
  if (k.startsWith(`${host}/`) && `${host}/${repository}/`.startsWith(`${k}/`)) return k.length;
  return 0;
}

/** Runs `docker-credential-<name> get` with the registry on stdin, as docker does. */
function fromHelper(name: string, host: string, file: string, env: Env): Promise<Credentials | null> {
  const program = `docker-credential-${name}`;
  return new Promise((resolve, reject) => {
    const child = execFile(program, ['get'], { timeout: 30_000, env: env as NodeJS.ProcessEnv }, (err, stdout, stderr) => {
      if (err) {
        const text = `${stdout}${stderr}`;
        // The protocol's "not found" is a miss, not a failure.
        if (/credentials not found/i.test(text)) return resolve(null);
        if (isErrno(err, 'ENOENT')) {
          return reject(new HoardError('E_AUTH', `${program} (named in ${file}) is not installed`, { hint: `install ${program}, or remove it from ${file}` }));
        }
        return reject(new HoardError('E_AUTH', `${program} get failed for ${host}: ${text.trim().split('\n')[0] || err.message}`, { hint: `run \`echo ${host} | ${program} get\` to see why` }));
      }
      try {
        const r = JSON.parse(stdout) as { Username?: string; Secret?: string };
        if (!r.Secret) return resolve(null);
        // The helpers' convention: the user name "<token>" marks the secret as an identity token.
        if (r.Username === '<token>') return resolve({ username: '', password: '', identityToken: r.Secret, source: `${program} (${file})` });
        resolve({ username: r.Username ?? '', password: r.Secret, source: `${program} (${file})` });
      } catch {
        reject(new HoardError('E_AUTH', `${program} get answered something that is not JSON`, { hint: `run \`echo ${host} | ${program} get\`` }));
      }
    });
    child.stdin?.end(`${host}\n`);
  });
}

/**
 * The credentials for a registry: HOARD_REMOTE_USERNAME/HOARD_REMOTE_PASSWORD, else the first
 * auth file that names it (auths[host].identitytoken or .auth, credHelpers[host], credsStore);
 * null: anonymous.
 */
export async function findCredentials(host: string, repository: string, env: Env): Promise<Credentials | null> {
  if (env.HOARD_REMOTE_USERNAME || env.HOARD_REMOTE_PASSWORD) {
    return { username: env.HOARD_REMOTE_USERNAME ?? '', password: env.HOARD_REMOTE_PASSWORD ?? '', source: 'HOARD_REMOTE_USERNAME/HOARD_REMOTE_PASSWORD' };
  }
  for (const file of authFiles(env)) {
    const doc = readAuthFile(file);
    if (!doc) continue;
    const helper = Object.entries(doc.credHelpers ?? {}).find(([k]) => keyMatches(k, host, repository) > 0)?.[1];
    if (helper) return fromHelper(helper, host, file, env);
    const entry = Object.entries(doc.auths ?? {})
      .map(([k, v]) => ({ score: keyMatches(k, host, repository), v }))
      .filter((e) => e.score > 0)
      .sort((a, b) => b.score - a.score)[0]?.v;
    if (entry?.identitytoken) {
      // docker login's "auth" beside it is "user:" (no password); the token is what counts.
      const user = entry.auth ? Buffer.from(entry.auth, 'base64').toString('utf8').split(':')[0] ?? '' : (entry.username ?? '');
      return { username: user, password: '', identityToken: entry.identitytoken, source: file };
    }
    if (entry?.auth) {
      const plain = Buffer.from(entry.auth, 'base64').toString('utf8');
      const i = plain.indexOf(':');
      if (i < 0) throw new HoardError('E_AUTH', `${file}: the "auth" of ${host} is not base64 of user:password`, { hint: `log in again (docker login ${host})` });
      return { username: plain.slice(0, i), password: plain.slice(i + 1), source: file };
    }
    if (entry?.username && entry.password) return { username: entry.username, password: entry.password, source: file };
    if (doc.credsStore) {
      const got = await fromHelper(doc.credsStore, host, file, env);
      if (got) return got;
    }
  }
  return null;
}
