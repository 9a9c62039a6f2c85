// The registry client: the few calls of the OCI distribution API the team cache needs, over
// undici (loaded only when a remote is used, from the HTTP client's bundle, dist/hoard-net.cjs).
import { open } from 'node:fs/promises';
import type { Dispatcher } from 'undici';
import { Agent, EnvHttpProxyAgent, errors as undiciErrors } from '../download/undici.ts';
import type { Digest } from '../core/digest.ts';
import { HoardError } from '../core/errors.ts';
import type { Source } from '../download/http.ts';
import { findCredentials, type Credentials } from './credentials.ts';
import { useDownloadFlags } from '../download/v8-flags.ts';
import { artifactManifest, EMPTY_CONFIG, EMPTY_CONFIG_DIGEST, MANIFEST_TYPE, tagOf, type RemoteRef, type RemoteSettings } from './ref.ts';

type Env = Record<string, string | undefined>;

export interface ClientOptions {
  ref: RemoteRef;
  settings?: RemoteSettings;
  env: Env;
  connectTimeoutMs?: number;
  headersTimeoutMs?: number;
  stallTimeoutMs?: number;
  userAgent?: string;
}

export interface UploadOptions {
  onProgress?: (sent: number) => void;
  signal?: AbortSignal;
}

/** How a blob got into the remote. */
export type UploadOutcome = 'uploaded' | 'mounted' | 'present';

export interface RegistryClient {
  readonly ref: RemoteRef;
  /** HEAD of the blob: whether the remote has it (a redirect to object storage counts as yes). */
  hasBlob(digest: Digest, o?: { signal?: AbortSignal }): Promise<boolean>;
  /** Whether the anchoring manifest (tag `sha256-<hex>`) is there: the blob is present and kept. */
  hasAnchor(digest: Digest): Promise<boolean>;
  /**
   * The anchoring tags (`sha256-<hex>`) the repository has, from its tag list (page by page), or
   * null when the list is not to be had (the registry will not list, or it is very long).
   */
  anchors(): Promise<Set<string> | null>;
  /** Where to GET the blob (with a pull token), or null when the remote lacks it. */
  blobSource(digest: Digest): Promise<Source | null>;
  /** Uploads a file as the blob `digest` (mounting it from another repository when it can). */
  uploadBlob(file: string, digest: Digest, size: number, o?: UploadOptions): Promise<UploadOutcome>;
  /** Writes the artifact manifest that anchors the blob, tagged `sha256-<hex>`. */
  putAnchor(blob: { digest: Digest; size: number; title: string }): Promise<void>;
  close(): Promise<void>;
}

/** Tags asked for per page of a tag list, and the most pages read before giving up on it. */
const TAG_PAGE = 1000;
const TAG_PAGES = 20;

/** The next page of a paginated list: `Link: </v2/…/tags/list?n=…&last=…>; rel="next"`. */
function nextPage(link: string | undefined): string | null {
  return link ? (/<([^>]+)>\s*;\s*rel="?next"?/.exec(link)?.[1] ?? null) : null;
}

/** Bytes per read of a file being uploaded. */
const READ_SIZE = 4 * 1024 * 1024;
const MIN_CHUNK = 64 * 1024;
/** The chunk size after a registry refused a whole blob in one PUT (413). */
const DEFAULT_CHUNK = 16 * 1024 * 1024;

type Body = () => AsyncIterable<Uint8Array> | Buffer | null;
interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
}
interface Challenge {
  scheme: 'basic' | 'bearer';
  params: Record<string, string>;
  scopes: string[];
}

function one(h: Answer['headers'], name: string): string | undefined {
  const v = h[name];
  return Array.isArray(v) ? v[0] : v;
}

/** `Bearer realm="…",service="…",scope="…"` (and Basic), as registries send them. */
export function parseChallenge(header: string): Challenge | null {
  const m = /^\s*(Basic|Bearer)\b\s*(.*)$/is.exec(header);
  if (!m) return null;
  const params: Record<string, string> = {};
  const scopes: string[] = [];
  for (const p of m[2]!.matchAll(/([A-Za-z_]+)=(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))/g)) {
    const key = p[1]!.toLowerCase();
    const value = (p[2] ?? p[3] ?? '').replace(/\\(.)/g, '$1');
    if (key === 'scope') scopes.push(...value.split(' ').filter(Boolean));
    else params[key] = value;
  }
  return { scheme: m[1]!.toLowerCase() as 'basic' | 'bearer', params, scopes };
}

/** The registry's error list (`{"errors":[{"code":…,"message":…}]}`) in a few words. */
function registryErrors(text: string): { codes: string[]; message: string } {
  try {
    const doc = JSON.parse(text) as { errors?: Array<{ code?: string; message?: string }> };
    const errs = doc.errors ?? [];
    return { codes: errs.map((e) => e.code ?? ''), message: errs.map((e) => [e.code, e.message].filter(Boolean).join(': ')).join('; ') };
  } catch {
    return { codes: [], message: text.trim().slice(0, 200) };
  }
}

async function* fileSlice(file: string, start: number, end: number, sent: (n: number) => void): AsyncIterable<Uint8Array> {
  const fh = await open(file, 'r');
  try {
    for (let pos = start; pos < end; ) {
      const buf = Buffer.allocUnsafe(Math.min(READ_SIZE, end - pos));
      const { bytesRead } = await fh.read(buf, 0, buf.length, pos);
      if (bytesRead === 0) throw new HoardError('E_STORE', `${file} ended at ${pos} bytes, expected ${end}`);
      pos += bytesRead;
      sent(bytesRead);
      yield bytesRead === buf.length ? buf : buf.subarray(0, bytesRead);
    }
  } finally {
    await fh.close();
  }
}

export function createRegistryClient(o: ClientOptions): RegistryClient {
  // (As for any download: no TurboFan re-compile of undici's parser, which a short command
  // such as a no-op push would otherwise wait for at its exit.)
  useDownloadFlags();
  const { ref, env } = o;
  const settings = o.settings ?? {};
  const agentOptions = {
    connectTimeout: o.connectTimeoutMs ?? 30_000,
    headersTimeout: o.headersTimeoutMs ?? 60_000,
    bodyTimeout: o.stallTimeoutMs ?? 60_000,
    keepAliveTimeout: 4_000,
  };
  const pick = (name: string) => env[name.toLowerCase()] ?? env[name.toUpperCase()] ?? '';
  const proxied = pick('http_proxy') || pick('https_proxy');
  const agent: Dispatcher = proxied
    ? new EnvHttpProxyAgent({ ...agentOptions, httpProxy: pick('http_proxy'), httpsProxy: pick('https_proxy'), noProxy: pick('no_proxy') })
    : new Agent(agentOptions);
  const repo = ref.repository;
  const pullScope = `repository:${repo}:pull`;
  const pushScope = `repository:${repo}:pull,push`;

  // Authentication state, shared by all requests of this client.
  let creds: Credentials | null | undefined; // undefined: not looked up yet
  let basic: string | null = null;
  const tokens = new Map<string, string>();
  const credentials = async () => (creds === undefined ? (creds = await findCredentials(ref.host, repo, env)) : creds);
  const who = () => (creds ? `the credentials from ${creds.source}` : 'anonymous access (no credentials found: set HOARD_REMOTE_USERNAME/HOARD_REMOTE_PASSWORD, or `docker login`)');

  const networkError = (method: string, url: string, err: unknown): HoardError => {
    if (err instanceof HoardError) return err;
    const e = err as Error & { code?: string };
    let what = e.code ? `${e.code}: ${e.message}` : e.message;
    if (e.code === 'ECONNREFUSED') what = 'connection refused';
    else if (err instanceof undiciErrors.ConnectTimeoutError) what = 'connection timed out';
    else if (err instanceof undiciErrors.HeadersTimeoutError) what = 'the registry did not answer in time';
    else if (err instanceof Error && err.name === 'AbortError') return new HoardError('E_INTERRUPTED', `${method} ${url}: interrupted`, { cause: err });
    return new HoardError('E_NETWORK', `team cache ${ref.spec}: ${method} ${new URL(url).pathname}: ${what}`, {
      hint: 'check that the registry is up and reachable',
      cause: err,
      details: { remote: ref.spec },
    });
  };

  /** One request, no auth handling; the body of the answer is read (it is small) or dropped. */
  const raw = async (method: string, url: string, headers: Record<string, string>, body: ReturnType<Body>, signal?: AbortSignal, keepBody = true): Promise<Answer> => {
    const u = new URL(url);
    try {
      const res = await agent.request({
        origin: u.origin, path: u.pathname + u.search, method: method as Dispatcher.HttpMethod,
        headers: { 'user-agent': o.userAgent ?? 'hoard', ...headers }, body: body as Dispatcher.DispatchOptions['body'],
        ...(signal ? { signal } : {}),
      });
      const text = keepBody && method !== 'HEAD' ? await res.body.text() : (await res.body.dump(), '');
      return { status: res.statusCode, headers: res.headers, text };
    } catch (err) {
      throw networkError(method, url, err);
    }
  };

  const scopeKey = (scopes: string[]) => [...new Set(scopes)].sort().join(' ');

  /** The token service refused these credentials: E_AUTH naming the source, never the secret. */
  const refused = (u: URL, status: number, c: Credentials | null): HoardError =>
    new HoardError('E_AUTH', `team cache ${ref.spec}: the registry's token service (${u.origin}) refused ${c?.identityToken ? `the identity token from ${c.source}` : who()}`, {
      hint: c?.identityToken
        ? `the token may have expired or been revoked: log in again (docker login ${ref.host})`
        : creds ? `check the user name and password or token in ${creds.source} (log in again: docker login ${ref.host})` : `log in: docker login ${ref.host}`,
      details: { remote: ref.spec, status, source: creds?.source ?? null },
    });

  /**
   * A token from the realm of a Bearer challenge, for these scopes. With an identity token, the
   * OAuth2 refresh-token grant (a form POST, as docker's token spec has it); otherwise a GET,
   * with the credentials as Basic or anonymously.
   */
  const fetchToken = async (ch: Challenge, scopes: string[], signal?: AbortSignal): Promise<string> => {
    const realm = ch.params.realm;
    if (!realm) throw new HoardError('E_REMOTE', `team cache ${ref.spec}: a Bearer challenge without a realm`);
    const u = new URL(realm);
    const all = [...new Set([...ch.scopes, ...scopes])];
    const c = await credentials();
    const headers: Record<string, string> = { accept: 'application/json' };
    let r: Answer;
    if (c?.identityToken) {
      const form = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: c.identityToken, client_id: 'hoard' });
      if (ch.params.service) form.set('service', ch.params.service);
      if (all.length) form.set('scope', all.join(' '));
      const body = Buffer.from(form.toString());
      r = await raw('POST', u.toString(), { ...headers, 'content-type': 'application/x-www-form-urlencoded', 'content-length': String(body.length) }, body, signal);
      // OAuth2 answers a bad refresh token with 400 invalid_grant.
      if (r.status === 400 || r.status === 401 || r.status === 403) throw refused(u, r.status, c);
    } else {
      if (ch.params.service) u.searchParams.set('service', ch.params.service);
      for (const s of all) u.searchParams.append('scope', s);
      if (c) headers.authorization = `Basic ${Buffer.from(`${c.username}:${c.password}`).toString('base64')}`;
      r = await raw('GET', u.toString(), headers, null, signal);
      if (r.status === 401 || r.status === 403) throw refused(u, r.status, c);
    }
    if (r.status !== 200) throw new HoardError('E_REMOTE', `team cache ${ref.spec}: token service ${u.origin} answered HTTP ${r.status}`, { details: { status: r.status } });
    let token: string | undefined;
    try {
      const doc = JSON.parse(r.text) as { token?: string; access_token?: string };
      token = doc.access_token ?? doc.token;
    } catch {
      /* below */
    }
    if (!token) throw new HoardError('E_REMOTE', `team cache ${ref.spec}: the token service answered without a token`);
    return `Bearer ${token}`;
  };

  /**
   * A request to the registry with authentication as docker does it: as it stands, and on a
   * 401 once more after answering the challenge (Basic with the credentials, or Bearer with a
   * token for the scopes). Any 401 re-authenticates, an upload's too (`body` makes the bytes again).
   */
  const send = async (method: string, pathOrUrl: string, o2: { scopes: string[]; headers?: Record<string, string>; body?: Body; signal?: AbortSignal; keepBody?: boolean }): Promise<Answer> => {
    const url = new URL(pathOrUrl, ref.base).toString();
    const key = scopeKey(o2.scopes);
    for (let reauthed = false; ; reauthed = true) {
      const headers = { ...(o2.headers ?? {}) };
      const auth = basic ?? tokens.get(key);
      if (auth) headers.authorization = auth;
      const r = await raw(method, url, headers, o2.body ? o2.body() : null, o2.signal, o2.keepBody);
      if (r.status !== 401) return r;
      const ch = parseChallenge(one(r.headers, 'www-authenticate') ?? '');
      // Basic credentials do not expire: refused once is refused. A token may have: a new one, once.
      if (reauthed || !ch || (ch.scheme === 'basic' && basic)) {
        const insufficient = ch?.params.error === 'insufficient_scope';
        throw new HoardError('E_AUTH', `team cache ${ref.spec}: the registry refused ${who()}${insufficient ? ` (insufficient_scope: may not ${o2.scopes.some((s) => s.endsWith('push')) ? 'push to' : 'read'} ${repo})` : ''}`, {
          hint: insufficient
            ? `use credentials that may push to ${repo} (a read-only token can only pull)`
            : creds ? `check the user name and password or token in ${creds.source}` : `log in: docker login ${ref.host}`,
          details: { remote: ref.spec, status: 401, source: creds?.source ?? null, ...(insufficient ? { error: 'insufficient_scope' } : {}) },
        });
      }
      if (ch.scheme === 'basic') {
        const c = await credentials();
        if (c?.identityToken) {
          // An identity token is for a token service; a Basic registry wants a password.
          throw new HoardError('E_AUTH', `team cache ${ref.spec}: the registry asks for a password (Basic auth), and ${c.source} holds an identity token for it`, {
            hint: `log in with a user name and password: docker login ${ref.host} (or set HOARD_REMOTE_USERNAME and HOARD_REMOTE_PASSWORD)`,
            details: { remote: ref.spec, status: 401, source: c.source },
          });
        }
        if (!c) {
          throw new HoardError('E_AUTH', `team cache ${ref.spec}: the registry wants credentials and none were found`, {
            hint: `set HOARD_REMOTE_USERNAME and HOARD_REMOTE_PASSWORD, or log in: docker login ${ref.host}`,
            details: { remote: ref.spec, status: 401, source: null },
          });
        }
        basic = `Basic ${Buffer.from(`${c.username}:${c.password}`).toString('base64')}`;
      } else {
        tokens.delete(key);
        tokens.set(key, await fetchToken(ch, o2.scopes, o2.signal));
      }
    }
  };

  const fail = (what: string, r: Answer): HoardError => {
    const e = registryErrors(r.text);
    return new HoardError(r.status === 403 ? 'E_AUTH' : 'E_REMOTE', `team cache ${ref.spec}: ${what}: HTTP ${r.status}${e.message ? ` (${e.message})` : ''}`, {
      hint: r.status === 403 ? `the registry refused ${who()}: check that it may ${what.startsWith('GET') || what.startsWith('HEAD') ? 'read' : 'push to'} ${repo}` : r.status >= 500 ? 'the registry failed; try again later' : undefined,
      details: { remote: ref.spec, status: r.status, codes: e.codes },
    });
  };

  const blobPath = (d: Digest) => `/v2/${repo}/blobs/${d}`;

  const hasBlob = async (digest: Digest, scopes = [pullScope], signal?: AbortSignal): Promise<boolean> => {
    const r = await send('HEAD', blobPath(digest), { scopes, ...(signal ? { signal } : {}) });
    if (r.status === 200 || (r.status >= 300 && r.status < 400)) return true;
    if (r.status === 404) return false;
    throw fail(`HEAD ${blobPath(digest)}`, r);
  };

  const location = (r: Answer, what: string): string => {
    const loc = one(r.headers, 'location');
    if (!loc) throw new HoardError('E_REMOTE', `team cache ${ref.spec}: ${what}: HTTP ${r.status} without a Location`);
    return new URL(loc, ref.base).toString();
  };
  const withDigest = (loc: string, digest: Digest) => {
    const u = new URL(loc);
    u.searchParams.set('digest', digest);
    return u.toString();
  };

  /** Starts an upload session (mounting from `from` when given); the Location, or null when mounted. */
  const startUpload = async (digest: Digest, scopes: string[], from?: string): Promise<string | null> => {
    const q = new URLSearchParams({ mount: digest, ...(from ? { from } : {}) });
    const r = await send('POST', `/v2/${repo}/blobs/uploads/?${q}`, { scopes, headers: { 'content-length': '0' } });
    if (r.status === 201) return null;
    if (r.status === 202) return location(r, 'POST upload');
    throw fail(`POST /v2/${repo}/blobs/uploads/`, r);
  };

  const monolithic = async (loc: string, file: string, digest: Digest, size: number, scopes: string[], o2: UploadOptions, sent: { n: number }): Promise<Answer> => {
    const base = sent.n;
    return send('PUT', withDigest(loc, digest), {
      scopes,
      headers: { 'content-type': 'application/octet-stream', 'content-length': String(size) },
      body: () => {
        sent.n = base;
        return fileSlice(file, 0, size, (n) => {
          sent.n += n;
          o2.onProgress?.(sent.n);
        });
      },
      ...(o2.signal ? { signal: o2.signal } : {}),
    });
  };

  /**
   * PATCH by PATCH: after each one the registry's Range says how far it got (the next chunk
   * starts there) and its Location is where the next goes (Distribution hands out a new one
   * every time). A 413 halves the chunk.
   */
  const chunked = async (loc: string, file: string, digest: Digest, size: number, scopes: string[], chunk: number, o2: UploadOptions, sent: { n: number }): Promise<Answer> => {
    let offset = 0;
    while (offset < size) {
      const end = Math.min(size, offset + chunk);
      const start = offset;
      const r = await send('PATCH', loc, {
        scopes,
        headers: { 'content-type': 'application/octet-stream', 'content-range': `${start}-${end - 1}`, 'content-length': String(end - start) },
        body: () => fileSlice(file, start, end, (n) => {
          sent.n += n;
          o2.onProgress?.(sent.n);
        }),
        ...(o2.signal ? { signal: o2.signal } : {}),
      });
      if (r.status === 413 && chunk > MIN_CHUNK) {
        chunk = Math.max(MIN_CHUNK, Math.floor(chunk / 2));
        continue;
      }
      if (r.status !== 202 && r.status !== 204) throw fail(`PATCH upload (bytes ${start}-${end - 1})`, r);
      loc = location(r, 'PATCH upload');
      const range = /^(?:bytes=)?0-(\d+)$/.exec(one(r.headers, 'range') ?? '');
      offset = range ? Number(range[1]) + 1 : end;
      if (offset > end || offset < start) {
        throw new HoardError('E_REMOTE', `team cache ${ref.spec}: after bytes ${start}-${end - 1} the registry reports Range ${one(r.headers, 'range')}`);
      }
    }
    return send('PUT', withDigest(loc, digest), { scopes, headers: { 'content-length': '0' } });
  };

  let configPresent = false;
  const ensureConfig = async () => {
    if (configPresent) return;
    if (!(await hasBlob(EMPTY_CONFIG_DIGEST, [pushScope]))) {
      const loc = await startUpload(EMPTY_CONFIG_DIGEST, [pushScope]);
      if (loc) {
        const r = await send('PUT', withDigest(loc, EMPTY_CONFIG_DIGEST), {
          scopes: [pushScope], headers: { 'content-type': 'application/octet-stream', 'content-length': String(EMPTY_CONFIG.length) }, body: () => EMPTY_CONFIG,
        });
        if (r.status !== 201) throw fail('PUT of the empty config blob', r);
      }
    }
    configPresent = true;
  };

  return {
    ref,
    hasBlob: (d, o2) => hasBlob(d, [pullScope], o2?.signal),
    async hasAnchor(digest) {
      const r = await send('HEAD', `/v2/${repo}/manifests/${tagOf(digest)}`, { scopes: [pullScope], headers: { accept: MANIFEST_TYPE } });
      if (r.status === 200) return true;
      if (r.status === 404) return false;
      throw fail(`HEAD /v2/${repo}/manifests/${tagOf(digest)}`, r);
    },
    async anchors() {
      const out = new Set<string>();
      let next: string | null = `/v2/${repo}/tags/list?n=${TAG_PAGE}`;
      for (let page = 0; next !== null; page++) {
        if (page === TAG_PAGES) return null;
        const r = await send('GET', next, { scopes: [pullScope] });
        // No such repository yet: nothing is anchored.
        if (r.status === 404) return out;
        if (r.status !== 200) return null;
        let tags: unknown;
        try {
          tags = (JSON.parse(r.text) as { tags?: unknown } | null)?.tags;
        } catch {
          return null;
        }
        if (tags === null || tags === undefined) return out;
        if (!Array.isArray(tags)) return null;
        for (const tag of tags) if (typeof tag === 'string' && tag.startsWith('sha256-')) out.add(tag);
        next = nextPage(one(r.headers, 'link'));
      }
      return out;
    },
    async blobSource(digest) {
      if (!(await hasBlob(digest))) return null;
      const auth = basic ?? tokens.get(scopeKey([pullScope]));
      const headers: Record<string, string> = auth ? { authorization: auth } : {};
      return { url: new URL(blobPath(digest), ref.base).toString(), headers };
    },
    async uploadBlob(file, digest, size, o2 = {}) {
      const from = settings.mountFrom ?? [];
      const scopes = [pushScope, ...from.map((f) => `repository:${f}:pull`)];
      const sent = { n: 0 };
      for (let attempt = 1; ; attempt++) {
        let loc: string | null = null;
        for (const [i, f] of (from.length ? from : [undefined]).entries()) {
          loc = await startUpload(digest, scopes, f);
          if (loc === null) return 'mounted';
          // Not there: that session is dropped unless it is the last try.
          if (i < from.length - 1) await send('DELETE', loc, { scopes }).catch(() => {});
        }
        let r: Answer;
        if (settings.chunkSize) r = await chunked(loc!, file, digest, size, scopes, settings.chunkSize, o2, sent);
        else {
          r = await monolithic(loc!, file, digest, size, scopes, o2, sent);
          if (r.status === 413) {
            // Too big for one request (a proxy's body limit): chunks, in a new session.
            const again = await startUpload(digest, scopes);
            if (again === null) return 'mounted';
            r = await chunked(again, file, digest, size, scopes, DEFAULT_CHUNK, o2, sent);
          }
        }
        if (r.status === 201 || r.status === 204) return 'uploaded';
        // A digest error ends the session; one more try with a new one (the file is the store's, verified).
        if (r.status === 400 && attempt < 2 && registryErrors(r.text).codes.includes('DIGEST_INVALID')) continue;
        throw fail(`PUT of blob ${digest}`, r);
      }
    },
    async putAnchor(blob) {
      await ensureConfig();
      const tag = tagOf(blob.digest);
      for (const legacy of [false, true]) {
        const body = artifactManifest(blob, legacy);
        const r = await send('PUT', `/v2/${repo}/manifests/${tag}`, {
          scopes: [pushScope], headers: { 'content-type': MANIFEST_TYPE, 'content-length': String(body.length) }, body: () => body,
        });
        if (r.status === 201 || r.status === 200) return;
        // A registry that refuses an artifactType (or the empty config): the OCI 1.0 form.
        if (!legacy && (r.status === 400 || r.status === 415)) continue;
        throw fail(`PUT manifest ${tag}`, r);
      }
    },
    close: () => agent.close(),
  };
}
