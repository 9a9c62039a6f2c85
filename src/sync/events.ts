import type { Digest } from '../core/digest.ts';
import { describeHolder, type LockWaitInfo } from '../store/lock.ts';
import type { LinkMethod } from '../materialize/materialize.ts';
import type { BlobAction, ImageAction, OutputAction } from './plan.ts';

/** What happened to an artifact's blob in the store. */
export type BlobOutcome =
  | 'cached' // already in the store, verified (by fingerprint or re-hash)
  | 'downloaded'
  | 'redownloaded' // the stored blob was corrupt, or --force
  | 'adopted' // put back into the store from a verified output file, no network
  | 'failed'
  | 'skipped' // --dry-run
  | 'none'; // the store is disabled, and the output was already right: nothing fetched, nothing kept

/** What happened to its container image. */
export type ImageOutcome =
  | 'present' // the engine has it, built from this digest: nothing run
  | 'imported' // a root filesystem tarball, `import`ed with the digest as a label
  | 'loaded' // a docker-save or OCI archive, `load`ed and tagged
  | 'reimported' // the tag pointed at an image built from another file (or --force)
  | 'failed'
  | 'skipped'; // --no-images, or the artifact itself failed

/**
 * The image a tag pointed at before sync moved the tag to a new one (a stale tag, --force):
 * removed when hoard had built it and nothing else used it; otherwise kept, and why.
 */
export interface OldImage {
  /** `sha256:<hex>`. */
  id: string;
  removed: boolean;
  /** Why it was kept: still tagged, used by a container, not built by hoard, or the engine's refusal. */
  reason?: string;
}

/** What happened to its output file. */
export type OutputOutcome =
  | 'present' // already in place, nothing done
  | 'linked' // created
  | 'relinked' // replaced hoard's older or damaged file
  | 'replaced' // replaced someone else's file, with --force
  | 'written' // the store is disabled: downloaded straight to the output
  | 'conflict' // someone else's file is in the way
  | 'failed'
  | 'skipped';

export type { ErrorInfo } from '../core/errors.ts';
import type { ErrorInfo } from '../core/errors.ts';

/**
 * Something gc (or a sync with a size limit, or `hoard store rm`) removed, or with --dry-run
 * would remove: a blob no known manifest names, a blob evicted as least recently used, a
 * temp file or lock left by a process that is gone, a blob removed by hand.
 */
export interface RemovedEvent {
  type: 'removed';
  subject: 'blob' | 'tmp' | 'lock';
  path: string;
  digest?: Digest;
  bytes: number;
  reason: 'unreferenced' | 'lru' | 'dead-process' | 'rm';
  /** For blobs: when it was last used (ISO 8601). */
  lastUsed?: string;
  dryRun: boolean;
}

/**
 * A blob gc would have removed but left alone. in-use: a running hoard holds its lock or a pin.
 * fetched: `hoard fetch` wanted it and it was used within the fetch retention.
 */
export interface KeptEvent {
  type: 'kept';
  digest: Digest;
  path: string;
  reason: 'in-use' | 'fetched';
  /** fetched: when it was last used (ISO 8601), and until when it is kept unless used again. */
  lastUsed?: string;
  keptUntil?: string;
}

export type SyncEvent =
  /** `noStore`: the store is disabled (--no-store); `store` is where it would be. */
  | { type: 'start'; artifacts: number; store: string; output: string; dryRun: boolean; noStore?: boolean }
  | {
      type: 'plan';
      name: string;
      path: string;
      inSync: boolean;
      blob: BlobAction;
      output: OutputAction;
      blobReason?: string;
      outputReason?: string;
      /** The locked size, when known (the entry has one). */
      size?: number;
      /** The locked digest, when the entry has one. */
      digest?: Digest;
      image?: ImageAction;
      imageRef?: string;
      imageReason?: string;
    }
  | {
      type: 'check'; name: string; subject: 'blob' | 'output' | 'image'; path: string; result: string;
      /** For content found right: trusted on its stat fingerprint, or read and hashed. */
      trusted?: 'fingerprint' | 'hashed';
      /** A blob looked up in the team cache (`path` is the remote): whether the remote holds it. */
      inTeamCache?: boolean;
    }
  /**
   * A download starts (again for each mirror); `resumeFrom`: bytes kept from an interrupted one.
   * reason `refresh`: hoard fetch --refresh asks whether the URL changed (a conditional request).
   */
  | { type: 'download'; name: string; url: string; size: number | null; reason: 'missing' | 'corrupt' | 'force' | 'unlocked' | 'refresh'; resumeFrom?: number }
  /** A request failed and is tried again after `delayMs` (`left` more retries after this one). */
  | { type: 'retry'; name: string; url: string; attempt: number; left: number; delayMs: number; message: string }
  | { type: 'progress'; name: string; received: number; total: number | null }
  /** hoard push (or sync --push): a blob's upload to the team cache starts. */
  | { type: 'upload'; name: string; url: string; size: number }
  /** A blob's push finished: uploaded, mounted from another repository, already there, or failed. */
  | { type: 'pushed'; name: string; digest: Digest; outcome: 'pushed' | 'mounted' | 'present' | 'failed'; bytes: number; error?: ErrorInfo }
  | {
      type: 'push-summary';
      remote: string;
      pushed: number;
      mounted: number;
      present: number;
      failed: number;
      /** Artifacts whose blob the local store does not hold (nothing to push). */
      skipped: number;
      bytesPushed: number;
      elapsedMs: number;
    }
  /** An engine command that makes an image starts (import of a rootfs, load of an archive). */
  | { type: 'image'; name: string; ref: string; action: 'import' | 'load' }
  /**
   * Another process holds a lock this run needs (printed once per wait). `holder` in words;
   * `pid`/`host`/`since` when the lock says; `timeoutMs`: when this run gives up (0: never).
   */
  | { type: 'waiting'; name: string; lockFile: string; holder: string; pid?: number; host?: string; since?: string | null; timeoutMs?: number }
  /** `severity` says how to show it; `code` names the condition (E_ENGINE: the engine could not be reached). */
  | { type: 'warning'; name?: string; message: string; hint?: string; severity?: 'warning' | 'error'; code?: string }
  | RemovedEvent
  | KeptEvent
  | {
      type: 'artifact';
      name: string;
      path: string;
      digest: Digest | null;
      size: number | null;
      blob: BlobOutcome;
      output: OutputOutcome;
      method?: LinkMethod;
      /** Why, in words, for people (a corrupt blob's fault, --force). */
      reason?: string;
      /** With blob `redownloaded`: why the stored blob was fetched again. */
      redownload?: 'force' | 'corrupt';
      bytesDownloaded: number;
      /** The blob was pulled from the team cache (the remote), not from the artifact's url. */
      fromCache?: true;
      /** hoard fetch --refresh: the server answered 304, the stored copy is current. */
      notModified?: true;
      /** A vendor source found the file under a new locator (`arista.path` `from` answered Not Found); sync records `to` in hoard.json. */
      moved?: { from: string; to: string };
      error?: ErrorInfo;
      /** Only for artifacts with an `image`. */
      image?: ImageOutcome;
      imageRef?: string;
      imageError?: ErrorInfo;
      /** The image the tag pointed at before this sync replaced it (see OldImage). */
      oldImage?: OldImage;
    }
  | {
      type: 'summary';
      artifacts: number;
      hits: number;
      misses: number;
      failed: number;
      conflicts: number;
      bytesDownloaded: number;
      /** Of bytesDownloaded: bytes pulled from the team cache. */
      bytesFromCache?: number;
      bytesSaved: number;
      elapsedMs: number;
      manifestUpdated: boolean;
      /** hoard.json could not be written (a full disk, a read-only folder): the new digests were not recorded. */
      manifestError?: ErrorInfo;
      /** Entries this run locked or added that someone else changed meanwhile: not recorded (see the warnings). */
      manifestConflicts?: number;
      /** status and --dry-run: how many artifacts are not in sync. */
      outOfSync?: number;
      imagesPresent: number;
      /** Imported, loaded or re-imported. */
      imagesImported: number;
      /** With a size limit (--max-size): blobs evicted after the sync, and their bytes. */
      evicted?: number;
      bytesEvicted?: number;
    };

export type Emit = (event: SyncEvent) => void;

/** The `waiting` event for a lock held by another process. */
export function waitingEvent(name: string, info: LockWaitInfo): Extract<SyncEvent, { type: 'waiting' }> {
  return {
    type: 'waiting', name, lockFile: info.file, holder: describeHolder(info),
    ...(info.owner ? { pid: info.owner.pid, host: info.owner.host } : {}), since: info.since, timeoutMs: info.timeoutMs,
  };
}

/** The `retry` event for a fetcher's retry report (`url` as it may be shown). */
export function retryEvent(name: string, url: string, r: { attempt: number; left: number; delayMs: number; error: Error }): Extract<SyncEvent, { type: 'retry' }> {
  return { type: 'retry', name, url, attempt: r.attempt, left: r.left, delayMs: r.delayMs, message: r.error.message };
}
