// The proxy variables, read as curl reads them: lower case first, a value without a scheme is
// an http:// proxy ("proxy:3128"). A value that is not a proxy URL is a usage error naming the
// variable, before anything is downloaded (not an "Invalid URL" stack trace mid-sync).
import { HoardError } from '../core/errors.ts';

type Env = Record<string, string | undefined>;

export interface ProxySettings {
  httpProxy: string;
  httpsProxy: string;
  noProxy: string;
}

const SCHEMES = new Set(['http:', 'https:', 'socks:', 'socks5:']);

function proxyUrl(name: string, value: string): string {
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(value) ? value : `http://${value}`;
  let url: URL | null = null;
  try {
    url = new URL(withScheme);
  } catch {
    // reported below
  }
  if (!url || !SCHEMES.has(url.protocol) || !url.hostname || /\s/.test(value)) {
    throw new HoardError('E_USAGE', `${name}=${JSON.stringify(value)} is not a proxy URL`, {
      hint: `set ${name} to http://host:port (or https://, socks5://), or unset it`,
      details: { variable: name },
    });
  }
  return withScheme;
}

/** HTTP_PROXY, HTTPS_PROXY and NO_PROXY (either case); null when no proxy is set. Throws E_USAGE naming a bad one. */
export function proxySettings(env: Env): ProxySettings | null {
  const pick = (name: string): [string, string] => {
    const lower = name.toLowerCase();
    const upper = name.toUpperCase();
    return env[lower] !== undefined && env[lower] !== '' ? [lower, env[lower]!] : [upper, env[upper] ?? ''];
  };
  const [httpName, http] = pick('http_proxy');
  const [httpsName, https] = pick('https_proxy');
  if (!http && !https) return null;
  return {
    httpProxy: http ? proxyUrl(httpName, http) : '',
    httpsProxy: https ? proxyUrl(httpsName, https) : '',
    noProxy: pick('no_proxy')[1],
  };
}
