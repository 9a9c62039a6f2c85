import type { Artifact } from '../manifest/types.ts';
import type { Observed } from './observe.ts';

export type BlobAction =
  | 'none' // in the store and verified
  | 'fetch' // not in the store
  | 'refetch' // in the store but corrupt: remove, download again
  | 'force' // --force: download again, replace after verifying
  | 'adopt' // not in the store, but the output file is verified: copy it in, no network
  | 'lock'; // no digest yet: download to learn it, then record it in the manifest

export type OutputAction =
  | 'none'
  | 'link' // nothing there
  | 'relink' // hoard's own file is outdated or damaged
  | 'replace' // someone else's file, and --force
  | 'conflict' // someone else's file: left alone
  | 'check'; // a file is there and the digest is not known yet: compare after locking

export interface ArtifactPlan {
  artifact: Artifact;
  observed: Observed;
  blob: BlobAction;
  output: OutputAction;
  inSync: boolean;
}

export interface PlanOptions {
  force: boolean;
}

/** Pure: what sync must do for each artifact, from the manifest and what is on disk. */
export function plan(items: ReadonlyArray<{ artifact: Artifact; observed: Observed }>, opts: PlanOptions): ArtifactPlan[] {
  return items.map(({ artifact, observed }) => {
    let blob: BlobAction;
    if (observed.blob === 'unlocked') blob = 'lock';
    else if (observed.blob === 'corrupt') blob = 'refetch';
    else if (observed.blob === 'missing') blob = observed.output === 'ok' && !opts.force ? 'adopt' : 'fetch';
    else blob = opts.force ? 'force' : 'none';

    let output: OutputAction;
    switch (observed.output) {
      case 'ok':
        output = opts.force ? 'relink' : 'none';
        break;
      case 'missing':
        output = 'link';
        break;
      case 'stale':
        output = 'relink';
        break;
      case 'foreign':
        output = opts.force ? 'replace' : 'conflict';
        break;
      case 'unknown':
        output = 'check';
        break;
    }
    return { artifact, observed, blob, output, inSync: blob === 'none' && output === 'none' };
  });
}
