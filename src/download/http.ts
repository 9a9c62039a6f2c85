// undici is imported only here (through ./undici.ts), and this module only when something must be downloaded.
import type { Dispatcher } from 'undici';
import { Agent, EnvHttpProxyAgent, errors as undiciErrors } from './undici.ts';
import { proxySettings } from './proxy.ts';
import { HoardError } from '../core/errors.ts';
import type { BlobWriter } from '../store/store.ts';
import { redactUrl } from './headers.ts';
import { reclaimAfter, useDownloadFlags } from './v8-flags.ts';

useDownloadFlags();

export interface Source {
  url: string;
  /**
   * Already expanded; sent only to the URL's own origin, dropped after a redirect elsewhere.
   * May hold If-None-Match / If-Modified-Since: a 304 answer is then `notModified`.
   */
  headers: Record<string, string>;
  /**
   * A source that moves (src/sources/: a vendor's short-lived signed link): asked before every
   * attempt for the URL and headers to request; `url` above then only names the bytes (a
   * partial file's origin, If-Range), and is never requested.
   */
  resolve?: (attempt: number) => Promise<{ url: string; headers: Record<string, string> }>;
  /** With `resolve`: a 403 means the link expired; resolve again and resume instead of failing. */
  expiring?: boolean;
}

export interface FetchProgress {
  /** Bytes of the file so far, including those resumed from an earlier attempt. */
  received: number;
  total: number | null;
}

export interface RetryInfo {
  /** The attempt that failed (1 is the first request). */
  attempt: number;
  /** Retries left after this one. */
  left: number;
  delayMs: number;
  error: HoardError;
}

export interface FetchOptions {
  onProgress?: (p: FetchProgress) => void;
  /** Called before each retry (for --verbose). */
  onRetry?: (r: RetryInfo) => void;
  signal?: AbortSignal;
  /**
   * The caller verifies the result against a known digest: bytes from an earlier attempt may
   * be resumed even when the server gave no validator to check them with (If-Range).
   */
  verified?: boolean;
  /**
   * The locked size: an answer that announces a longer file, or a body that grows past it,
   * is refused at once (E_INTEGRITY) rather than transferred in full.
   */
  size?: number;
}

export interface FetchResult {
  /** Bytes received over the network by this call (all attempts). */
  bytes: number;
  total: number | null;
  /** Bytes that were already in the writer and were kept (a resumed download). */
  resumedFrom: number;
  /** The server answered 304 to a conditional request: nothing was written. */
  notModified?: boolean;
  /** The validators of the answer, to make a later request conditional. */
  etag?: string;
  lastModified?: string;
}

/** Where a fetch puts the body: a store writer, or anything with the same four members. */
export type Sink = Pick<BlobWriter, 'bytesWritten' | 'source' | 'write' | 'restart'>;

export interface Fetcher {
  /**
   * Streams the body of `source` into `writer`, retrying and resuming as needed. Bytes the
   * writer already holds (a partial file from an earlier run) are continued with a Range request.
   */
  fetch(source: Source, writer: Sink, opts?: FetchOptions): Promise<FetchResult>;
  close(): Promise<void>;
}

export interface FetcherOptions {
  connectTimeoutMs?: number;
  headersTimeoutMs?: number;
  /** A body that sends nothing for this long is abandoned (and retried). */
  stallTimeoutMs?: number;
  /** Retries after a failure that got no further into the file than before (default 5); 0: none at all. */
  retries?: number;
  /** The first retry's delay; each next one doubles, up to 30 s, with jitter (default 1 s). */
  retryDelayMs?: number;
  maxRedirects?: number;
  userAgent?: string;
  /** Where HTTP_PROXY, HTTPS_PROXY and NO_PROXY are read (either case); default: no proxy. */
  env?: Record<string, string | undefined>;
}

export const DEFAULT_RETRIES = 5;
const REDIRECTS = new Set([301, 302, 303, 307, 308]);
/** Progress is reported at most this often (and once at the end). */
const PROGRESS_MS = 100;
/** The body of a redirect or an error answer is read (to keep the connection) up to this size. */
const DISCARD_LIMIT = 64 * 1024;
const MAX_BACKOFF_MS = 30_000;
/** A Retry-After longer than this is not waited for: the error is reported instead. */
const MAX_RETRY_AFTER_MS = 5 * 60_000;
/** However much progress each attempt makes, a download stops after this many. */
const MAX_ATTEMPTS = 100;

/** What the server said about a response before its body. */
interface Head {
  status: number;
  location: string | undefined;
  /** Content-Length of this response. */
  length: number | null;
  etag: string | undefined;
  lastModified: string | undefined;
  /** Content-Range of a 206 or 416: first byte (null for `*`) and the file's full size. */
  range: { start: number | null; size: number | null } | null;
  retryAfter: string | undefined;
}

/** One GET: its head, and how many body bytes came (into the writer, or discarded). */
type Answer = Head & { received: number; took: boolean };

/** What to do with a response's body, decided from its head. */
type Decision = 'write' | 'discard' | 'stop';

export function createFetcher(opts: FetcherOptions = {}): Fetcher {
  const agentOptions = {
    connectTimeout: opts.connectTimeoutMs ?? 30_000,
    headersTimeout: opts.headersTimeoutMs ?? 60_000,
    bodyTimeout: opts.stallTimeoutMs ?? 60_000,
    keepAliveTimeout: 4_000,
  };
  const proxy = proxySettings(opts.env ?? {});
  // proxyTunnel false: an http:// URL is forwarded to the proxy (absolute-form request line), as
  // curl does; https:// still goes through a CONNECT tunnel.
  const agent: Dispatcher = proxy ? new EnvHttpProxyAgent({ ...agentOptions, ...proxy, proxyTunnel: false }) : new Agent(agentOptions);
  const maxRedirects = opts.maxRedirects ?? 10;
  const retries = opts.retries ?? DEFAULT_RETRIES;
  const baseDelay = opts.retryDelayMs ?? 1000;

  /** One request and its redirects; the body goes into the writer. Throws what went wrong. */
  const attempt = async (source: Source, writer: Sink, o: FetchOptions, counted: { bytes: number }, n: number): Promise<Omit<FetchResult, 'bytes' | 'resumedFrom'>> => {
    const target = source.resolve ? await source.resolve(n) : source;
    let url = target.url;
    const origin = new URL(url).origin;
    for (let hop = 0; ; hop++) {
      const headers: Record<string, string> = {
        'user-agent': opts.userAgent ?? 'hoard',
        'accept-encoding': 'identity',
        ...(new URL(url).origin === origin ? target.headers : {}),
      };
      // Continue from what the writer holds: with If-Range when the server gave a validator
      // (it answers 200 and the whole file when that changed); without one only when a
      // digest will check the result.
      const offset = writer.bytesWritten;
      const known = writer.source?.url === source.url ? writer.source : null;
      const validator = known && (strongEtag(known.etag) ?? known.lastModified);
      if (offset > 0 && (validator || o.verified)) {
        headers.range = `bytes=${offset}-`;
        if (validator) headers['if-range'] = validator;
      }
      let total: number | null = null;
      let refused: HoardError | null = null;
      const decide = (h: Head): Decision => {
        const announced = h.status === 200 ? h.length : h.status === 206 ? (h.range?.size ?? null) : null;
        if (o.size !== undefined && announced !== null && announced > o.size) {
          refused = tooLong(url, announced, o.size);
          return 'stop';
        }
        if (h.status === 200) {
          total = h.length;
          // The whole file, from its first byte (a fresh start, a server that ignores Range,
          // or a validator that changed): whatever the writer held goes.
          writer.restart({ url: source.url, ...(h.etag ? { etag: h.etag } : {}), ...(h.lastModified ? { lastModified: h.lastModified } : {}) }).catch(() => {});
          return 'write';
        }
        if (h.status === 206 && headers.range) {
          const sameFile = !known?.etag || !h.etag || h.etag === known.etag;
          if (h.range?.start === offset && sameFile) {
            total = h.range.size ?? (h.length !== null ? offset + h.length : null);
            return 'write';
          }
          return 'stop';
        }
        return REDIRECTS.has(h.status) || h.status === 304 || h.status >= 400 ? 'discard' : 'stop';
      };
      const progress = o.onProgress && ((received: number) => o.onProgress!({ received, total }));
      const res = await get(agent, url, headers, writer, decide, progress, o.signal, counted, o.size ?? null);
      if (refused) throw refused;
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
      if (res.status === 304) return { total: null, notModified: true, ...validators };
      if (res.status === 416 && headers.range && res.range?.size === offset) return { total: offset }; // it was all there
      if (!res.took) {
        if (res.status === 206 || res.status === 416) {
          // A range other than the one asked for, or another file behind the same URL: start over.
          await writer.restart({ url: source.url });
          throw new Restart();
        }
        throw httpError(url, res.status, res.retryAfter, source.expiring);
      }
      const received = writer.bytesWritten;
      if (total !== null && received !== total) {
        throw new HoardError('E_NETWORK', `GET ${redactUrl(url)}: connection closed after ${received} of ${total} bytes`, {
          hint: 'the transfer was cut short; run the command again',
          details: { url: redactUrl(url), received, total },
        });
      }
      o.onProgress?.({ received, total });
      return { total, ...validators };
    }
  };

  return {
    async fetch(source, writer, o = {}) {
      const resumedFrom = writer.bytesWritten;
      const counted = { bytes: 0 };
      let failures = 0;
      let restarts = 0;
      /** The furthest into the file any attempt got. */
      let furthest = writer.bytesWritten;
      for (let n = 1; ; n++) {
        try {
          const got = await attempt(source, writer, o, counted, n);
          return { ...got, bytes: counted.bytes, resumedFrom: Math.min(resumedFrom, writer.bytesWritten) };
        } catch (err) {
          if (err instanceof Restart && restarts++ < 2) continue;
          if (err instanceof Restart) {
            throw new HoardError('E_RANGE', `GET ${redactUrl(source.url)}: the server ignores range requests (3 answers with other bytes than asked for)`, {
              hint: 'it cannot resume: remove the partial download (`hoard gc` removes temp files of processes that are gone) and try again, or use a mirror',
              details: { url: redactUrl(source.url) },
            });
          }
          if (!(err instanceof HoardError) || !(isRetryable(err) || (source.expiring && err.details.status === 403))) throw err;
          // A failure after getting further into the file than ever before does not use up a
          // retry: a long download over a flaky link keeps going as long as it makes progress.
          failures = writer.bytesWritten > furthest ? 0 : failures + 1;
          furthest = Math.max(furthest, writer.bytesWritten);
          if (retries === 0 || failures > retries || n >= MAX_ATTEMPTS) throw err;
          const delayMs = retryDelay(err, failures, baseDelay);
          if (delayMs === null) throw err;
          o.onRetry?.({ attempt: n, left: retries - failures, delayMs, error: err });
          await sleep(delayMs, o.signal, source.url);
        }
      }
    },
    close: () => agent.close(),
  };
}

/** Thrown inside a fetch when the bytes so far had to be dropped: the next request starts over. */
class Restart extends Error {}

/** Network failures, 408, 429 and 5xx are worth another try; other answers are not. */
function isRetryable(err: HoardError): boolean {
  if (err.code === 'E_NETWORK') return true;
  const status = err.details.status;
  return err.code === 'E_HTTP' && typeof status === 'number' && (status === 408 || status === 429 || status >= 500);
}

/** The wait before retry number `n`: Retry-After when the server sent one, else backoff with jitter. */
function retryDelay(err: HoardError, n: number, base: number): number | null {
  const after = parseRetryAfter(err.details.retryAfter);
  if (after !== null) return after > MAX_RETRY_AFTER_MS ? null : after;
  const ceiling = Math.min(MAX_BACKOFF_MS, base * 2 ** (n - 1));
  return Math.round(ceiling / 2 + Math.random() * (ceiling / 2));
}

function parseRetryAfter(value: unknown): number | null {
  if (typeof value !== 'string') return null;
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000;
  const at = Date.parse(value);
  return Number.isNaN(at) ? null : Math.max(0, at - Date.now());
}

/** An ETag If-Range may use: weak ones (W/"…") may not be compared byte for byte. */
function strongEtag(etag: string | undefined): string | undefined {
  return etag && !etag.startsWith('W/') ? etag : undefined;
}

function sleep(ms: number, signal: AbortSignal | undefined, url: string): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(interrupted(url, signal.reason));
    const onAbort = () => {
      clearTimeout(timer);
      reject(interrupted(url, signal?.reason));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

function header(h: Record<string, string | string[] | undefined>, name: string): string | undefined {
  const v = h[name];
  return typeof v === 'string' ? v : undefined;
}

function parseHead(status: number, h: Record<string, string | string[] | undefined>): Head {
  const length = header(h, 'content-length');
  const range = /^bytes (?:(\d+)-\d+|\*)\/(\d+|\*)$/.exec(header(h, 'content-range')?.trim() ?? '');
  return {
    status,
    location: header(h, 'location'),
    length: length !== undefined && /^\d+$/.test(length) ? Number(length) : null,
    etag: header(h, 'etag'),
    lastModified: header(h, 'last-modified'),
    range: range ? { start: range[1] !== undefined ? Number(range[1]) : null, size: range[2] !== '*' ? Number(range[2]) : null } : null,
    retryAfter: header(h, 'retry-after'),
  };
}

/**
 * One GET through undici's lowest level: a handler that gets the body's chunks as the parser
 * produces them (no streams, no async iteration). `decide` looks at the head: a body to keep
 * goes straight into `writer` (the socket paused while the writer is behind), another is read
 * a little and dropped, or the request is ended there.
 */
function get(
  agent: Dispatcher,
  url: string,
  headers: Record<string, string>,
  writer: Sink,
  decide: (h: Head) => Decision,
  onProgress: ((received: number) => void) | undefined,
  signal: AbortSignal | undefined,
  counted: { bytes: number },
  /** The most bytes the file may have (its locked size); null: no limit. */
  limit: number | null,
): Promise<Answer> {
  if (signal?.aborted) return Promise.reject(interrupted(url, signal.reason));
  const target = new URL(url);
  return new Promise<Answer>((resolve, reject) => {
    let controller: Dispatcher.DispatchController | null = null;
    let head: Head | null = null;
    let took = false;
    let received = 0;
    let lastReport = 0;
    let settled = false;
    /** Set when hoard itself ends the request: the error to report instead of undici's. */
    let cause: HoardError | null = null;

    const answer = (): Answer => ({ ...(head ?? parseHead(0, {})), received, took });
    const settle = (err: unknown) => {
      if (settled) return;
      settled = true;
      signal?.removeEventListener('abort', onAbort);
      if (err) reject(err);
      else resolve(answer());
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
      onResponseStart(c, statusCode, resHeaders) {
        head = parseHead(statusCode, resHeaders);
        const decision = decide(head);
        took = decision === 'write';
        if (decision === 'stop') {
          settle(null);
          c.abort(new Error('not wanted'));
        }
      },
      onResponseData(c, chunk) {
        if (!took) {
          // A redirect or an error page: read (and drop) a little of it, so the connection
          // can be reused; a large one is not worth the time.
          received += chunk.byteLength;
          if (received > DISCARD_LIMIT) {
            settle(null);
            c.abort(new Error('discarded'));
          }
          return;
        }
        if (limit !== null && writer.bytesWritten + chunk.byteLength > limit) {
          stop(tooLong(url, writer.bytesWritten + chunk.byteLength, limit, true));
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
        counted.bytes += chunk.byteLength;
        reclaimAfter(chunk.byteLength);
        if (wait) {
          c.pause();
          wait.then(resume, failWrite);
        }
        if (onProgress) {
          const now = Date.now();
          if (now - lastReport >= PROGRESS_MS) {
            lastReport = now;
            onProgress(writer.bytesWritten);
          }
        }
      },
      onResponseEnd() {
        settle(null);
      },
      onResponseError(_c, err) {
        // An error page cut short is still an error page; a body we wanted, cut short, is a network error.
        settle(cause ?? (head && !took ? null : networkError(url, err, received, head?.length ?? null)));
      },
    };
    try {
      agent.dispatch({ origin: target.origin, path: target.pathname + target.search, method: 'GET', headers }, handler);
    } catch (err) {
      settle(networkError(url, err, 0));
    }
  });
}

/** An answer longer than the locked size: refused before (or as soon as) the extra bytes come. */
function tooLong(url: string, found: number, size: number, received = false): HoardError {
  return new HoardError('E_INTEGRITY', `download is too long: ${received ? `the server sent at least ${found} bytes` : `the server announces ${found} bytes`}, the manifest locks ${size}`, {
    hint: `the server at ${redactUrl(url)} serves another file than the manifest records; if the artifact really changed upstream, remove its digest and size from hoard.json and sync again`,
    details: { url: redactUrl(url), expectedSize: size, foundSize: found },
  });
}

function interrupted(url: string, reason: unknown): HoardError {
  return new HoardError('E_INTERRUPTED', `GET ${redactUrl(url)}: interrupted`, { cause: reason });
}

function httpError(url: string, status: number, retryAfter?: string, expiring = false): HoardError {
  const hints: Record<number, string> = {
    401: 'the server wants credentials: set "headers" for this artifact (for example "Authorization": "Bearer ${TOKEN}") and export the variable',
    403: 'the server refused access: check the credentials in "headers" and that your account may download this file',
    404: 'the URL does not exist (any more): check it',
    // A vendor's signed link: fresh ones were refused too.
    ...(expiring ? { 403: 'the download host refused fresh links too: check that your account may download this file' } : {}),
  };
  return new HoardError('E_HTTP', `GET ${redactUrl(url)}: HTTP ${status}`, {
    hint: hints[status] ?? (status >= 500 ? 'the server failed; try again later' : undefined),
    details: { url: redactUrl(url), status, ...(retryAfter !== undefined ? { retryAfter } : {}) },
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
