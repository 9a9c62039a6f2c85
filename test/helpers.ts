// Shared test fixtures: temp folders, a real HTTP server on 127.0.0.1:0, and the built CLI
// run as a child process. Nothing here is mocked.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes, createHash } from 'node:crypto';
import { mkdtempSync, promises as fs, rmSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const CLI = path.join(ROOT, 'dist', 'hoard.cjs');

/** An empty XDG_CONFIG_HOME for every CLI run of this test process. */
export const NO_CONFIG = mkdtempSync(path.join(os.tmpdir(), 'hoard-test-config-'));
process.on('exit', () => rmSync(NO_CONFIG, { recursive: true, force: true }));

export function tmpDir(t: TestContext, prefix = 'hoard-test-'): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

export function sha256(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

export function randomData(size: number): Buffer {
  return randomBytes(size);
}

export interface Route {
  body: Buffer;
  /** Send this many bytes of the body (of this response, ranged or not), then destroy the socket. */
  dropAfter?: number;
  status?: number;
  /** Sent with the answer. An `etag` or `last-modified` here makes a matching conditional request a 304. */
  headers?: Record<string, string>;
  /** Wait before answering (ms). */
  delay?: number;
  /** Answer only once this settles: a test holds a transfer open until it has seen what it needs. */
  until?: Promise<unknown>;
  /** Answer `Range: bytes=N-` with 206, as long as an `If-Range` matches the ETag or Last-Modified in `headers`. */
  ranges?: boolean;
}

/** A route that answers by itself; `hit` counts this path's requests, from 1. */
export type Handler = (req: http.IncomingMessage, res: http.ServerResponse, hit: number) => void;

/** Sends `route` as a well-behaved file server would (Range, If-Range), or misbehaves as it says. */
export function serveRoute(req: http.IncomingMessage, res: http.ServerResponse, route: Route): void {
  let body = route.body;
  let status = route.status ?? 200;
  const headers: Record<string, string> = { ...(route.headers ?? {}) };
  const { etag, 'last-modified': lastModified } = headers;
  const ifNoneMatch = req.headers['if-none-match'];
  // As HTTP says: If-None-Match decides when present, else If-Modified-Since (exact match here).
  if (status === 200 && (ifNoneMatch !== undefined ? etag !== undefined && ifNoneMatch === etag : lastModified !== undefined && req.headers['if-modified-since'] === lastModified)) {
    res.writeHead(304, { ...(etag ? { etag } : {}), ...(lastModified ? { 'last-modified': lastModified } : {}) }).end();
    return;
  }
  const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
  const ifRange = req.headers['if-range'] as string | undefined;
  const validators = [headers.etag, headers['last-modified']].filter(Boolean);
  if (route.ranges && status === 200 && range && (ifRange === undefined || validators.includes(ifRange))) {
    const start = Number(range[1]);
    if (start >= body.length) {
      res.writeHead(416, { 'content-range': `bytes */${body.length}`, 'content-length': '0' }).end();
      return;
    }
    status = 206;
    headers['content-range'] = `bytes ${start}-${body.length - 1}/${body.length}`;
    body = body.subarray(start);
  }
  res.writeHead(status, { 'content-length': String(body.length), ...headers });
  if (route.dropAfter !== undefined) {
    res.write(body.subarray(0, route.dropAfter), () => setTimeout(() => req.socket.destroy(), 20));
    return;
  }
  res.end(body);
}

export interface TestServer {
  origin: string;
  url(p: string): string;
  routes: Map<string, Route | Handler>;
  /** Requests seen per path (GET only), and every request's headers. */
  hits: Map<string, number>;
  log: Array<{ path: string; headers: http.IncomingHttpHeaders }>;
  total(): number;
}

/** A gate for Route.until: answers wait until `open()` (called at the end of the test at the latest). */
export function gate(t: TestContext): { until: Promise<void>; open: () => void } {
  let open!: () => void;
  const until = new Promise<void>((resolve) => (open = resolve));
  t.after(() => open());
  return { until, open };
}

/** A real HTTP server on 127.0.0.1:0 serving `routes`; closed after the test. */
export async function startServer(t: TestContext, routes: Record<string, Route | Buffer | Handler> = {}): Promise<TestServer> {
  const map = new Map<string, Route | Handler>();
  for (const [p, r] of Object.entries(routes)) map.set(p, Buffer.isBuffer(r) ? { body: r } : r);
  const hits = new Map<string, number>();
  const log: TestServer['log'] = [];
  const server = http.createServer((req, res) => {
    const p = new URL(req.url ?? '/', 'http://x').pathname;
    log.push({ path: p, headers: req.headers });
    hits.set(p, (hits.get(p) ?? 0) + 1);
    const route = map.get(p);
    if (typeof route === 'function') return route(req, res, hits.get(p)!);
    const answer = () => {
      if (!route) res.writeHead(404).end('not found');
      else serveRoute(req, res, route);
    };
    const later = () => (route?.delay ? void setTimeout(answer, route.delay) : answer());
    if (route?.until) void route.until.then(later, later);
    else later();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => {
    server.closeAllConnections();
    server.close(() => resolve());
  }));
  const { port } = server.address() as AddressInfo;
  const origin = `http://127.0.0.1:${port}`;
  return {
    origin,
    url: (p) => `${origin}${p}`,
    routes: map,
    hits,
    log,
    total: () => [...hits.values()].reduce((a, b) => a + b, 0),
  };
}

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/**
 * The environment every CLI run of the tests gets: the test process's own, without any HOARD_*
 * variable of the developer's shell, no colour, an empty configuration folder, and no retry
 * back-off (HOARD_RETRY_DELAY=0: a test about the delay passes its own). `extra` wins; an
 * undefined value removes the variable.
 */
export function cliEnv(extra: Record<string, string | undefined> = {}, store?: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith('HOARD_')) env[k] = v;
  env.NO_COLOR = '1';
  // Never the developer's own ~/.config/hoard/config.json: a folder with no configuration,
  // unless the test passes its own XDG_CONFIG_HOME.
  env.XDG_CONFIG_HOME = NO_CONFIG;
  env.HOARD_RETRY_DELAY = '0';
  if (store) env.HOARD_STORE = store;
  for (const [k, v] of Object.entries(extra)) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  return env;
}

/** A CLI run in the background: signal it, watch its output as it comes. */
export interface RunningHoard {
  child: ChildProcess;
  pid: number;
  done: Promise<RunResult>;
  stdout(): string;
  stderr(): string;
  /** Resolves once stdout or stderr matches (rejects if the process ends first). */
  until(pattern: RegExp, stream?: 'stdout' | 'stderr'): Promise<void>;
}

/** Starts the built CLI (with cliEnv) and returns at once. */
export function startHoard(args: string[], opts: { cwd: string; env?: Record<string, string | undefined>; store?: string; nodeArgs?: string[] }): RunningHoard {
  const child = spawn(process.execPath, [...(opts.nodeArgs ?? []), CLI, ...args], { cwd: opts.cwd, env: cliEnv(opts.env, opts.store), stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  const waiters: Array<() => void> = [];
  const poke = () => waiters.splice(0).forEach((w) => w());
  child.stdout!.on('data', (d: Buffer) => ((stdout += d), poke()));
  child.stderr!.on('data', (d: Buffer) => ((stderr += d), poke()));
  let ended = false;
  const done = new Promise<RunResult>((resolve, reject) => {
    child.on('error', (err) => {
      ended = true;
      reject(err);
      poke();
    });
    child.on('close', (code, signal) => {
      ended = true;
      resolve({ code, signal, stdout, stderr });
      poke();
    });
  });
  return {
    child, pid: child.pid!, done, stdout: () => stdout, stderr: () => stderr,
    until(pattern, stream) {
      return new Promise<void>((resolve, reject) => {
        const check = () => {
          const text = stream === 'stdout' ? stdout : stream === 'stderr' ? stderr : stdout + stderr;
          if (pattern.test(text)) return resolve();
          if (ended) return reject(new Error(`hoard ended without printing ${pattern}:\n${stdout}\n${stderr}`));
          waiters.push(check);
        };
        check();
      });
    },
  };
}

/** Runs the built CLI as a child process (asynchronously, so an in-process server keeps serving). */
export function hoard(args: string[], opts: { cwd: string; env?: Record<string, string | undefined>; store?: string }): Promise<RunResult> {
  return startHoard(args, opts).done;
}

/** A project folder with a hoard.json and its own store. */
export async function project(t: TestContext, manifest: unknown): Promise<{ dir: string; store: string; manifestPath: string; run: (...args: string[]) => Promise<RunResult> }> {
  const base = tmpDir(t);
  const dir = path.join(base, 'project');
  const store = path.join(base, 'store');
  await fs.mkdir(dir);
  const manifestPath = path.join(dir, 'hoard.json');
  await fs.writeFile(manifestPath, typeof manifest === 'string' ? manifest : `${JSON.stringify(manifest, null, 2)}\n`);
  return { dir, store, manifestPath, run: (...args) => hoard(args, { cwd: dir, store }) };
}

/** Every file and folder below `dir` (relative), for "nothing was written" assertions. */
export async function listTree(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string) => {
    let entries;
    try {
      entries = await fs.readdir(d, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const p = path.join(d, e.name);
      out.push(path.relative(dir, p));
      if (e.isDirectory()) await walk(p);
    }
  };
  await walk(dir);
  return out.sort();
}

export function jsonLines(stdout: string): Array<Record<string, unknown>> {
  return stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** Why the tests that drive podman for real are skipped, or false when podman is here (.ci/run installs it). */
export const podmanSkip: string | false = (() => {
  try {
    execFileSync('podman', ['version', '--format', '{{.Client.Version}}'], { stdio: 'ignore' });
    return false;
  } catch {
    return 'podman is not installed (apt-get install podman; .ci/run does)';
  }
})();
