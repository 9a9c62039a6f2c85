// undici is imported only here, and this module only when something must be downloaded.
import { setFlagsFromString } from 'node:v8';
import { Agent, errors as undiciErrors, type Dispatcher } from 'undici';
import { HoardError } from '../core/errors.ts';
import type { BlobWriter } from '../store/store.ts';
import { redactUrl } from './headers.ts';

// Two V8 settings for a process that moves many bytes. Neither changes what is computed,
// only when V8 spends CPU on it, and only from now on (this module is loaded when something
// must be downloaded):
// - undici parses HTTP/1.1 with llhttp compiled to WebAssembly, compiled when the first
//   connection is made. V8's baseline compiler, Liftoff, is fast enough for it: a download's
//   time goes to hashing and the disk. Without this V8 also re-compiles the parser with
//   TurboFan in the background (~70 ms of CPU, often while the process exits) and a
//   download's peak memory grows by ~25-35 MiB.
// - Every socket read is a new 64 KiB buffer, outside V8's heap, dead a moment later. The
//   scavenges that free them hand the freeing to a background thread; until it has run, V8
//   still counts those bytes as allocated and starts a full mark-compact right after almost
//   every scavenge (~30 per GiB, ~0.4 s of CPU on two cores). Freeing them in the scavenge
//   itself costs little and avoids that.
setFlagsFromString('--liftoff-only');
setFlagsFromString('--no-concurrent-array-buffer-sweeping');

export interface Source {
  url: string;
  /**
   * Already expanded; sent only to the URL's own origin, dropped after a redirect elsewhere.
   * May hold If-None-Match / If-Modified-Since: a 304 answer is then `notModified`.
   */
  headers: Record<string, string>;
}

/** What a fetch got: the bytes written, and the validators to make the next request conditional. */
export interface FetchResult {
  bytes: number;
  total: number | null;
  /** The server answered 304 to a conditional request: nothing was written. */
  notModified?: boolean;
  etag?: string;
  lastModified?: string;
}

export interface FetchProgress {
  received: number;
  total: number | null;
}

export interface Fetcher {
  /** Streams the body of `source` into `writer`; resolves with the bytes received. */
  fetch(source: Source, writer: BlobWriter, onProgress?: (p: FetchProgress) => void, signal?: AbortSignal): Promise<FetchResult>;
  close(): Promise<void>;
}

export interface FetcherOptions {
  connectTimeoutMs?: number;
  headersTimeoutMs?: number;
  /** A body that sends nothing for this long is abandoned. */
  stallTimeoutMs?: number;
  maxRedirects?: number;
  userAgent?: string;
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);
/** Progress is reported at most this often (and once at the end). */
const PROGRESS_MS = 100;
/** The body of a redirect or an error answer is read (to keep the connection) up to this size. */
const DISCARD_LIMIT = 64 * 1024;

/** One GET: either its body went into the writer (status 200), or it was discarded. */
type Answer = { status: number; location: string | undefined; received: number; total: number | null; etag?: string; lastModified?: string };

export function createFetcher(opts: FetcherOptions = {}): Fetcher {
  const agent = new Agent({
    connectTimeout: opts.connectTimeoutMs ?? 30_000,
    headersTimeout: opts.headersTimeoutMs ?? 60_000,
    bodyTimeout: opts.stallTimeoutMs ?? 60_000,
    keepAliveTimeout: 4_000,
  });
  const maxRedirects = opts.maxRedirects ?? 10;

  return {
    async fetch(source, writer, onProgress, signal) {
      let url = source.url;
      const origin = new URL(url).origin;
      for (let hop = 0; ; hop++) {
        const sameOrigin = new URL(url).origin === origin;
        const headers: Record<string, string> = {
          'user-agent': opts.userAgent ?? 'hoard',
          'accept-encoding': 'identity',
          ...(sameOrigin ? source.headers : {}),
        };
        const res = await get(agent, url, headers, writer, onProgress, signal);
        if (REDIRECTS.has(res.status)) {
          if (res.location === undefined || hop >= maxRedirects) {
            throw new HoardError('E_HTTP', `GET ${redactUrl(url)}: ${hop >= maxRedirects ? 'too many redirects' : `${res.status} without a Location header`}`, {
              details: { url: redactUrl(url), status: res.status },
            });
          }
          url = new URL(res.location, url).toString();
          continue;
        }
        const validators = { ...(res.etag ? { etag: res.etag } : {}), ...(res.lastModified ? { lastModified: res.lastModified } : {}) };
        if (res.status === 304) return { bytes: 0, total: null, notModified: true, ...validators };
        if (res.status !== 200) throw httpError(url, res.status);
        const { received, total } = res;
        if (total !== null && received !== total) {
          throw new HoardError('E_NETWORK', `GET ${redactUrl(url)}: connection closed after ${received} of ${total} bytes`, {
            hint: 'the transfer was cut short; run the command again',
            details: { url: redactUrl(url), received, total },
          });
        }
        onProgress?.({ received, total });
        return { bytes: received, total, ...validators };
      }
    },
    close: () => agent.close(),
  };
}

/**
 * One GET through undici's lowest level: a handler that gets the body's chunks as the parser
 * produces them (no streams, no async iteration). A 200 body goes straight into `writer`;
 * while the writer is behind (its write() returned a promise) the socket is paused.
 */
function get(
  agent: Agent,
  url: string,
  headers: Record<string, string>,
  writer: BlobWriter,
  onProgress: ((p: FetchProgress) => void) | undefined,
  signal: AbortSignal | undefined,
): Promise<Answer> {
  if (signal?.aborted) return Promise.reject(interrupted(url, signal.reason));
  const target = new URL(url);
  return new Promise<Answer>((resolve, reject) => {
    let controller: Dispatcher.DispatchController | null = null;
    let status = 0;
    let location: string | undefined;
    let total: number | null = null;
    let etag: string | undefined;
    let lastModified: string | undefined;
    let received = 0;
    let lastReport = 0;
    let settled = false;
    /** Set when hoard itself ends the request: the error to report instead of undici's. */
    let cause: HoardError | null = null;

    const settle = (err: unknown, answer?: Answer) => {
      if (settled) return;
      settled = true;
      signal?.removeEventListener('abort', onAbort);
      if (err) reject(err);
      else resolve(answer!);
    };
    const stop = (err: HoardError) => {
      cause ??= err;
      if (controller && !controller.aborted) controller.abort(err);
      else settle(err);
    };
    const onAbort = () => stop(interrupted(url, signal?.reason));
    signal?.addEventListener('abort', onAbort, { once: true });

    const resume = () => {
      if (!settled) controller?.resume();
    };
    const failWrite = (err: unknown) => stop(err instanceof HoardError ? err : new HoardError('E_STORE', (err as Error).message, { cause: err }));

    const handler: Dispatcher.DispatchHandler = {
      onRequestStart(c) {
        controller = c;
        if (cause) c.abort(cause);
      },
      onResponseStart(_c, statusCode, resHeaders) {
        status = statusCode;
        const loc = resHeaders.location;
        location = typeof loc === 'string' ? loc : undefined;
        const length = resHeaders['content-length'];
        total = typeof length === 'string' && /^\d+$/.test(length) ? Number(length) : null;
        etag = typeof resHeaders.etag === 'string' ? resHeaders.etag : undefined;
        lastModified = typeof resHeaders['last-modified'] === 'string' ? resHeaders['last-modified'] : undefined;
      },
      onResponseData(c, chunk) {
        if (status !== 200) {
          // A redirect or an error page: read (and drop) a little of it, so the connection
          // can be reused; a large one is not worth the time.
          received += chunk.byteLength;
          if (received > DISCARD_LIMIT) {
            settle(null, { status, location, received, total });
            c.abort(new Error('discarded'));
          }
          return;
        }
        let wait: Promise<void> | void;
        try {
          wait = writer.write(chunk);
        } catch (err) {
          failWrite(err);
          return;
        }
        received += chunk.byteLength;
        if (wait) {
          c.pause();
          wait.then(resume, failWrite);
        }
        if (onProgress) {
          const now = Date.now();
          if (now - lastReport >= PROGRESS_MS) {
            lastReport = now;
            onProgress({ received, total });
          }
        }
      },
      onResponseEnd() {
        settle(null, { status, location, received, total, etag, lastModified });
      },
      onResponseError(_c, err) {
        settle(cause ?? (status !== 0 && status !== 200 ? null : networkError(url, err, received, total)), { status, location, received, total });
      },
    };
    try {
      agent.dispatch({ origin: target.origin, path: target.pathname + target.search, method: 'GET', headers }, handler);
    } catch (err) {
      settle(networkError(url, err, 0));
    }
  });
}

function interrupted(url: string, reason: unknown): HoardError {
  return new HoardError('E_INTERRUPTED', `GET ${redactUrl(url)}: interrupted`, { cause: reason });
}

function httpError(url: string, status: number): HoardError {
  const hints: Record<number, string> = {
    401: 'the server wants credentials: set "headers" for this artifact (for example "Authorization": "Bearer ${TOKEN}") and export the variable',
    403: 'the server refused access: check the credentials in "headers" and that your account may download this file',
    404: 'the URL does not exist (any more): check it, or add a mirror',
  };
  return new HoardError('E_HTTP', `GET ${redactUrl(url)}: HTTP ${status}`, {
    hint: hints[status] ?? (status >= 500 ? 'the server failed; try again later or add a mirror' : undefined),
    details: { url: redactUrl(url), status },
  });
}

function networkError(url: string, err: unknown, received: number, total: number | null = null): HoardError {
  if (err instanceof HoardError) return err;
  if (err instanceof Error && err.name === 'AbortError') {
    return new HoardError('E_INTERRUPTED', `GET ${redactUrl(url)}: interrupted`, { cause: err });
  }
  const e = err as Error & { code?: string };
  let what = e.code ? `${e.code}: ${e.message}` : e.message;
  if (err instanceof undiciErrors.BodyTimeoutError) what = 'no data received for too long (stalled)';
  else if (err instanceof undiciErrors.HeadersTimeoutError) what = 'the server did not answer in time';
  else if (err instanceof undiciErrors.ConnectTimeoutError) what = 'connection timed out';
  else if (e.code === 'ECONNREFUSED') what = 'connection refused';
  const progress = received > 0 ? ` after ${received}${total !== null ? ` of ${total}` : ''} bytes` : '';
  return new HoardError('E_NETWORK', `GET ${redactUrl(url)}: ${what}${progress}`, {
    hint: 'check the network and the URL, then run the command again',
    cause: err,
    details: { url: redactUrl(url), received },
  });
}
