// The candidates of each artifact, chosen once per command: plain URLs, or a vendor's source
// (loaded only when an artifact names one, so a sync without vendor artifacts never loads it).
import { expandHeaders } from '../download/headers.ts';
import type { Artifact } from '../manifest/types.ts';
import type { AristaClient } from './arista.ts';
import { urlCandidate, type Candidate } from './types.ts';

export type { Candidate, Resolved } from './types.ts';

/** The artifact's url, then its mirrors; its headers go to the url's origin only. */
export function urlCandidates(a: Artifact, env: Record<string, string | undefined>): Candidate[] {
  const headers = expandHeaders(a.headers, env, a.name);
  const origin = new URL(a.url).origin;
  return [a.url, ...a.mirrors].map((url) => urlCandidate(url, new URL(url).origin === origin ? headers : {}));
}

export function isVendorUrl(url: string): boolean {
  return /^arista:/.test(url);
}

export interface Sources {
  candidates(a: Artifact): Promise<Candidate[]>;
  /** The Arista client of this command (one session for the whole run). */
  arista(): Promise<AristaClient>;
}

export interface SourcesOptions {
  env: Record<string, string | undefined>;
  /** The store's root: where vendor answers are cached; null with --no-store. */
  storeRoot: string | null;
  /** The variable holding Arista's token (--token-env); default ARISTA_TOKEN. */
  tokenEnv?: string;
  signal?: AbortSignal;
  onRequest?: (what: string) => void;
}

export function createSources(o: SourcesOptions): Sources {
  let arista: Promise<AristaClient> | null = null;
  const sources: Sources = {
    arista: () =>
      (arista ??= Promise.all([import('./arista.ts'), import('../store/paths.ts')]).then(([m, paths]) =>
        m.createAristaClient({
          ...m.aristaOptionsFrom(o.env, {
            ...(o.tokenEnv ? { tokenEnv: o.tokenEnv } : {}),
            cacheDir: o.storeRoot ? paths.storeLayout(o.storeRoot).cache : null,
            ...(o.signal ? { signal: o.signal } : {}),
          }),
          ...(o.onRequest ? { onRequest: o.onRequest } : {}),
        }),
      )),
    async candidates(a) {
      if (!isVendorUrl(a.url)) return urlCandidates(a, o.env);
      const vendor = (await sources.arista()).candidate(a);
      return [vendor, ...a.mirrors.map((url) => urlCandidate(url, {}))];
    },
  };
  return sources;
}
