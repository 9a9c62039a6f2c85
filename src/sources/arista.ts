// Arista's download API, as the public client (eos-downloader) uses it: an API token is traded
// for a session code (reused for the whole run), the folder tree lists what the account may
// download (cached in the store for a few minutes, fetched only when needed), and every transfer
// asks for a signed download link of its own, valid for about two minutes. Nothing from the
// token, the session code or a link's signature is ever put into a message or an event.
// Imported lazily: only a command that meets an `arista:` artifact loads it.
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { HoardError } from '../core/errors.ts';
import { writeFileAtomic } from '../core/fsutil.ts';
import { findFile, parseFolderTree, type TreeFile } from './arista-catalog.ts';
import type { Candidate } from './types.ts';

export const DEFAULT_ARISTA_URL = 'https://www.arista.com';
/** The site rejects some default user agents: every request (API and file) sends this one. */
export const BROWSER_USER_AGENT = 'Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0';
/** How long a cached folder tree is used before it is fetched again. */
export const TREE_TTL_MS = 10 * 60_000;
const API = {
  session: '/custom_data/api/cvp/getSessionCode/',
  tree: '/custom_data/api/cvp/getFolderTree/',
  link: '/custom_data/api/cvp/getDownloadLink/',
};
const TOKEN_PAGE = 'https://www.arista.com/en/users/profile';

export interface AristaOptions {
  /** The API's base URL (HOARD_ARISTA_URL; default https://www.arista.com). */
  base: string;
  token: string | undefined;
  /** The variable the token comes from, to name in messages (ARISTA_TOKEN, or --token-env). */
  tokenVar: string;
  /** Where the folder tree is cached (the store's v1/cache); null: not cached (--no-store). */
  cacheDir: string | null;
  signal?: AbortSignal;
  /** Each API request, for --verbose (the endpoint only). */
  onRequest?: (what: string) => void;
  timeoutMs?: number;
}

export interface AristaClient {
  /** Every downloadable file; from the store's cache unless `fresh` or older than TREE_TTL_MS. */
  tree(o?: { fresh?: boolean }): Promise<TreeFile[]>;
  /** A signed download link for a `path` attribute; null when Arista answers Not Found. */
  link(filePath: string): Promise<string | null>;
  /** A small file (a checksum sidecar), through a link of its own. */
  text(filePath: string): Promise<string>;
  /** The download candidate of an `arista:<file>` artifact: a fresh link for every attempt. */
  candidate(a: { url: string; arista?: { path: string } }): Candidate;
}

/** The options from the environment: HOARD_ARISTA_URL, and the token's variable. */
export function aristaOptionsFrom(env: Record<string, string | undefined>, o: { tokenEnv?: string; cacheDir: string | null; signal?: AbortSignal }): AristaOptions {
  const tokenVar = o.tokenEnv || 'ARISTA_TOKEN';
  return {
    base: (env.HOARD_ARISTA_URL || DEFAULT_ARISTA_URL).replace(/\/+$/, ''),
    token: env[tokenVar] || undefined,
    tokenVar,
    cacheDir: o.cacheDir,
    ...(o.signal ? { signal: o.signal } : {}),
  };
}

function authError(message: string, tokenVar: string, arista?: string): HoardError {
  return new HoardError('E_AUTH', message, {
    hint: `create an API token on your arista.com profile page (${TOKEN_PAGE}), then export ${tokenVar}=<token>`,
    details: { variable: tokenVar, ...(arista !== undefined ? { arista } : {}) },
  });
}

interface ApiAnswer {
  status?: { message?: string };
  data?: { session_code?: string; xml?: string; url?: string };
}

export function createAristaClient(o: AristaOptions): AristaClient {
  const timeoutMs = o.timeoutMs ?? 60_000;
  const signalFor = () => (o.signal ? AbortSignal.any([o.signal, AbortSignal.timeout(timeoutMs)]) : AbortSignal.timeout(timeoutMs));

  const post = async (endpoint: string, body: unknown): Promise<{ status: number; text: string; json: ApiAnswer | null }> => {
    o.onRequest?.(`POST ${o.base}${endpoint}`);
    let res: Response;
    try {
      res = await fetch(o.base + endpoint, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json', 'user-agent': BROWSER_USER_AGENT },
        body: JSON.stringify(body),
        signal: signalFor(),
      });
    } catch (err) {
      if (o.signal?.aborted) throw new HoardError('E_INTERRUPTED', `POST ${o.base}${endpoint}: interrupted`, { cause: err });
      const e = err as Error & { cause?: { code?: string; message?: string } };
      throw new HoardError('E_NETWORK', `Arista API ${o.base}${endpoint}: ${e.cause?.code ?? e.name}: ${e.cause?.message ?? e.message}`, {
        hint: 'check the network (or HOARD_ARISTA_URL), then run the command again',
        cause: err,
        details: { url: o.base + endpoint },
      });
    }
    const text = await res.text();
    let json: ApiAnswer | null = null;
    try {
      json = JSON.parse(text) as ApiAnswer;
    } catch {}
    return { status: res.status, text, json };
  };
  const apiError = (endpoint: string, r: { status: number; json: ApiAnswer | null }) =>
    new HoardError('E_HTTP', `Arista API ${o.base}${endpoint}: ${r.json?.status?.message ?? (r.json ? 'an answer without data' : `HTTP ${r.status}, not JSON`)}`, {
      hint: r.status >= 500 ? 'Arista failed; try again later' : 'check HOARD_ARISTA_URL; Arista may have changed its API',
      details: { url: o.base + endpoint, status: r.status },
    });

  let session: Promise<string> | null = null;
  const newSession = async (): Promise<string> => {
    if (!o.token) throw authError(`no Arista API token: ${o.tokenVar} is not set`, o.tokenVar);
    const r = await post(API.session, { accessToken: Buffer.from(o.token).toString('base64') });
    const code = r.json?.data?.session_code;
    if (typeof code === 'string' && code) return code;
    if (r.json?.status?.message) throw authError(`Arista refused the token in ${o.tokenVar}: ${r.json.status.message}`, o.tokenVar, r.json.status.message);
    throw apiError(API.session, r);
  };
  /** A call with the session code; a code that expired during a long run is replaced once. */
  const withSession = async (endpoint: string, body: Record<string, unknown>) => {
    for (let renewed = false; ; renewed = true) {
      const mine = (session ??= newSession());
      mine.catch(() => {
        if (session === mine) session = null;
      });
      const r = await post(endpoint, { sessionCode: await mine, ...body });
      if (!r.json?.data && /session/i.test(r.json?.status?.message ?? '') && !renewed) {
        if (session === mine) session = null;
        continue;
      }
      return r;
    }
  };

  const cacheFile = o.cacheDir
    ? path.join(o.cacheDir, `arista-tree-${createHash('sha256').update(`${o.base}\0${o.token ?? ''}`).digest('hex').slice(0, 16)}.json`)
    : null;
  let tree: Promise<TreeFile[]> | null = null;
  let treeFresh = false;
  const fetchTree = async (): Promise<TreeFile[]> => {
    const r = await withSession(API.tree, {});
    const xml = r.json?.data?.xml;
    if (typeof xml !== 'string') throw apiError(API.tree, r);
    const files = parseFolderTree(xml);
    if (cacheFile) {
      await fs.mkdir(path.dirname(cacheFile), { recursive: true });
      await writeFileAtomic(cacheFile, JSON.stringify({ base: o.base, fetchedAt: Date.now(), files }));
    }
    return files;
  };
  const readCache = async (): Promise<TreeFile[] | null> => {
    if (!cacheFile) return null;
    try {
      const c = JSON.parse(await fs.readFile(cacheFile, 'utf8')) as { fetchedAt: number; files: TreeFile[] };
      const age = Date.now() - c.fetchedAt;
      return age >= 0 && age < TREE_TTL_MS && Array.isArray(c.files) ? c.files : null;
    } catch {
      return null;
    }
  };

  const client: AristaClient = {
    tree(opts = {}) {
      if (opts.fresh && !treeFresh) tree = null;
      if (!tree) {
        const fresh = opts.fresh ?? false;
        treeFresh = fresh;
        const p = (async () => (!fresh && (await readCache())) || ((treeFresh = true), await fetchTree()))();
        p.catch(() => {
          if (tree === p) tree = null;
        });
        tree = p;
      }
      return tree;
    },
    async link(filePath) {
      const r = await withSession(API.link, { filePath });
      const url = r.json?.data?.url;
      if (typeof url === 'string' && url) return url;
      if (/not found/i.test(r.text)) return null;
      throw apiError(API.link, r);
    },
    async text(filePath) {
      const url = await client.link(filePath);
      if (!url) throw new HoardError('E_HTTP', `Arista has no ${filePath} any more (Not Found)`, { details: { path: filePath } });
      let res: Response;
      try {
        res = await fetch(url, { headers: { 'user-agent': BROWSER_USER_AGENT }, signal: signalFor() });
      } catch (err) {
        throw new HoardError('E_NETWORK', `GET ${filePath.slice(filePath.lastIndexOf('/') + 1)} from Arista: ${(err as Error).message}`, { cause: err });
      }
      if (!res.ok) throw new HoardError('E_HTTP', `GET ${filePath.slice(filePath.lastIndexOf('/') + 1)} from Arista: HTTP ${res.status}`, { details: { status: res.status } });
      const text = await res.text();
      if (text.length > 1024 * 1024) throw new HoardError('E_HTTP', `${filePath} is larger than 1 MiB: not a checksum file`);
      return text;
    },
    candidate(a) {
      const name = a.url.replace(/^arista:/, '');
      let known = a.arista?.path;
      const headers = { 'user-agent': BROWSER_USER_AGENT };
      const find = async (fresh: boolean) => findFile(await client.tree({ fresh }), name)?.path;
      return {
        label: a.url,
        key: a.url,
        expiring: true,
        async resolve() {
          let moved: { from: string; to: string } | undefined;
          if (known) {
            const url = await client.link(known);
            if (url) return { url, headers };
            // The locked path answers Not Found: the file moved (another folder, another account's entitlements).
            const from = known;
            known = await find(true);
            if (known && known !== from) moved = { from, to: known };
          } else known = (await find(false)) ?? (await find(true));
          if (!known) {
            throw new HoardError('E_HTTP', `Arista lists no ${name} that your account can download`, {
              hint: 'it may have been withdrawn: pick another version (`hoard versions arista:<format>`, `hoard update`)',
              details: { file: name, status: 404 },
            });
          }
          const url = await client.link(known);
          if (!url) throw new HoardError('E_HTTP', `Arista answered Not Found for ${name}`, { details: { file: name, status: 404 } });
          return { url, headers, ...(moved ? { moved } : {}) };
        },
      };
    },
  };
  return client;
}
