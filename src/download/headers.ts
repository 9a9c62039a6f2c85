import { HoardError } from '../core/errors.ts';

const VAR_RE = /\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g;

/** Expands `${NAME}` in header values from `env`. A missing variable is an error naming it. */
export function expandHeaders(headers: Record<string, string>, env: Record<string, string | undefined>, artifact: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    out[name] = value.replace(VAR_RE, (_, v: string) => {
      const got = env[v];
      if (got === undefined || got === '') {
        throw new HoardError('E_ENV', `environment variable ${v} is not set (header ${name} of artifact "${artifact}")`, {
          hint: `export ${v}=… before running hoard`,
          details: { variable: v, artifact, header: name },
        });
      }
      return got;
    });
  }
  return out;
}

/** A URL as it may be shown: no user:password, no query string (tokens live there). */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.username || u.password) {
      u.username = u.username ? '***' : '';
      u.password = u.password ? '***' : '';
    }
    if (u.search) u.search = '?…';
    return u.toString();
  } catch {
    return url;
  }
}
