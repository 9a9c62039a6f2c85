// undici is imported only here, and this module only when something must be downloaded.
import { Agent, request, errors as undiciErrors } from 'undici';
import { HoardError } from '../core/errors.ts';
import type { BlobWriter } from '../store/store.ts';
import { redactUrl } from './headers.ts';

export interface Source {
  url: string;
  /** Already expanded; sent only to the URL's own origin, dropped after a redirect elsewhere. */
  headers: Record<string, string>;
}

export interface FetchProgress {
  received: number;
  total: number | null;
}

export interface Fetcher {
  /** Streams the body of `source` into `writer`; resolves with the bytes received. */
  fetch(source: Source, writer: BlobWriter, onProgress?: (p: FetchProgress) => void, signal?: AbortSignal): Promise<{ bytes: number; total: number | null }>;
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
        let res;
        try {
          res = await request(url, { method: 'GET', headers, dispatcher: agent, signal });
        } catch (err) {
          throw networkError(url, err, 0);
        }
        if (REDIRECTS.has(res.statusCode)) {
          await res.body.dump().catch(() => {});
          const location = res.headers.location;
          if (typeof location !== 'string' || hop >= maxRedirects) {
            throw new HoardError('E_HTTP', `GET ${redactUrl(url)}: ${hop >= maxRedirects ? 'too many redirects' : `${res.statusCode} without a Location header`}`, {
              details: { url: redactUrl(url), status: res.statusCode },
            });
          }
          url = new URL(location, url).toString();
          continue;
        }
        if (res.statusCode !== 200) {
          await res.body.dump().catch(() => {});
          throw httpError(url, res.statusCode);
        }
        const lengthHeader = res.headers['content-length'];
        const total = typeof lengthHeader === 'string' && /^\d+$/.test(lengthHeader) ? Number(lengthHeader) : null;
        let received = 0;
        let lastReport = 0;
        try {
          for await (const chunk of res.body) {
            const wait = writer.write(chunk as Buffer);
            if (wait) await wait;
            received += (chunk as Buffer).byteLength;
            if (onProgress) {
              const now = Date.now();
              if (now - lastReport >= 100) {
                lastReport = now;
                onProgress({ received, total });
              }
            }
          }
        } catch (err) {
          if (err instanceof HoardError) throw err;
          throw networkError(url, err, received, total);
        }
        if (total !== null && received !== total) {
          throw new HoardError('E_NETWORK', `GET ${redactUrl(url)}: connection closed after ${received} of ${total} bytes`, {
            hint: 'the transfer was cut short; run the command again',
            details: { url: redactUrl(url), received, total },
          });
        }
        onProgress?.({ received, total });
        return { bytes: received, total };
      }
    },
    close: () => agent.close(),
  };
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
