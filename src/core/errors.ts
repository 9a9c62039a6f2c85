// Every error code hoard reports, its exit status and what it means: the one table that
// commands, `--json` consumers, the help text and docs/errors.md agree on.

/** Exit statuses (docs/errors.md). A signal adds its number to 128, as shells do. */
export const EXIT = {
  ok: 0,
  failed: 1,
  usage: 2,
  drift: 3,
  /** SIGHUP (128 + 1). */
  hangup: 129,
  /** SIGINT, Ctrl-C (128 + 2). */
  interrupted: 130,
  /** SIGTERM (128 + 15). */
  terminated: 143,
} as const;
export type ExitStatus = (typeof EXIT)[keyof typeof EXIT];

/** What each exit status means, in the words of `hoard --help`; commands say it more precisely. */
const EXIT_MEANS: ReadonlyArray<[ExitStatus[], string]> = [
  [[EXIT.ok], 'ok'],
  [[EXIT.failed], 'failed'],
  [[EXIT.usage], 'usage or manifest error'],
  [[EXIT.drift], 'drift (status)'],
  [[EXIT.hangup, EXIT.interrupted, EXIT.terminated], 'SIGHUP/Ctrl-C/SIGTERM'],
];

/**
 * The exit statuses in words, for help epilogs: every status, or (given `means`) the ones a
 * command uses, each in that command's words: `exitText({ 0: 'up to date', 3: 'outdated' })`.
 */
export function exitText(means?: Partial<Record<ExitStatus, string>>): string {
  if (!means) return EXIT_MEANS.map(([codes, words]) => `${codes.join('/')} ${words}`).join(', ');
  return Object.entries(means).map(([code, words]) => `${code} ${words}`).join(', ');
}

/** The exit statuses in words, for the help epilog. */
export const EXIT_TEXT = exitText();

interface CodeInfo {
  exit: number;
  /** What it means, in a line. */
  means: string;
  /** The usual fix. */
  fix: string;
}

/**
 * The error codes. `exit` is the status of a command that this error ends; one artifact's
 * error in a sync makes the run exit 1 whatever its code (the other artifacts went on).
 */
export const ERROR_CODES = {
  E_USAGE: { exit: 2, means: 'a flag, an argument or a HOARD_* / proxy variable is wrong', fix: 'see `hoard <command> --help`; fix or unset the variable named' },
  E_MANIFEST: { exit: 2, means: 'hoard.json cannot be read, parsed or validated', fix: 'fix the file at the line and JSON pointer named' },
  E_CONFIG: { exit: 2, means: 'the configuration file cannot be read, parsed or validated', fix: 'fix ~/.config/hoard/config.json (see `hoard config --help`), or move it away' },
  E_PATH: { exit: 2, means: 'a path escapes its folder, or leads somewhere hoard must not write', fix: 'use a relative path inside the project, or pass --output' },
  E_FROZEN: { exit: 2, means: '--frozen, and an entry has no digest yet', fix: 'run `hoard sync` without --frozen and commit hoard.json' },
  E_ENV: { exit: 2, means: 'a ${VAR} in a header is not set', fix: 'export the variable named' },
  E_TTY: { exit: 2, means: 'the command needs a terminal', fix: 'use `hoard status` / `hoard sync` in scripts' },
  E_INTEGRITY: { exit: 1, means: 'bytes do not match the expected digest, size or checksum', fix: 'check the URL and the digest; the file was not kept' },
  E_HTTP: { exit: 1, means: 'the server answered with an error status', fix: 'check the URL and credentials ("headers"); add a mirror' },
  E_RANGE: { exit: 1, means: 'the server answers range requests with other bytes than asked for', fix: 'the server ignores Range: remove the .partial (`hoard gc`) or use another mirror' },
  E_NETWORK: { exit: 1, means: 'the connection failed, was reset, or timed out', fix: 'check the network, the proxy variables and the URL; run again (downloads resume)' },
  E_CONFLICT: { exit: 1, means: 'an output file that is not hoard\'s is in the way', fix: 'move the file away, or `hoard sync --force`' },
  E_STORE: { exit: 1, means: 'the store cannot be used (it is not a folder, or out of space)', fix: 'point --store / HOARD_STORE at a writable folder with room' },
  E_NOTDIR: { exit: 1, means: 'a folder hoard needs is a file (the output folder, a parent of -o, the store)', fix: 'move the file away, or choose another folder' },
  E_NOSPACE: { exit: 1, means: 'no space left on the device (ENOSPC, EDQUOT)', fix: 'free some space, or use another disk' },
  E_READONLY: { exit: 1, means: 'the filesystem is read-only (EROFS)', fix: 'use a writable folder' },
  E_PERMISSION: { exit: 1, means: 'the operating system refused access (EACCES, EPERM)', fix: 'fix the permissions of the path named, or run as its owner' },
  E_LIMIT: { exit: 1, means: 'too many open files (EMFILE, ENFILE)', fix: 'raise `ulimit -n`, or lower --jobs' },
  E_IO: { exit: 1, means: 'another filesystem error (EIO, ELOOP, ENAMETOOLONG, …)', fix: 'see the message; check the disk' },
  E_CWD: { exit: 1, means: 'the working directory was deleted', fix: '`cd` into an existing folder and run again' },
  E_LOCKED: { exit: 1, means: 'another hoard held a lock for longer than --lock-timeout', fix: 'wait for the process named, or stop it; raise --lock-timeout (0 waits forever)' },
  E_LINK: { exit: 1, means: 'a link mode cannot be used here', fix: 'use --link auto or copy' },
  E_ENGINE: { exit: 1, means: 'docker or podman is missing, not answering, or failed', fix: 'start the engine, pass --engine, or --no-images' },
  E_REMOTE: { exit: 1, means: 'the team cache (an OCI registry) refused or failed a request', fix: 'check --remote / HOARD_REMOTE and the registry; a sync the origin can serve goes on without it' },
  E_AUTH: { exit: 1, means: "credentials are missing, wrong, or may not do this: the team cache's, or a vendor's API token (ARISTA_TOKEN)", fix: 'log in to the registry (docker/podman login) or set its credentials; for Arista, create a token on your arista.com profile page and export ARISTA_TOKEN' },
  E_INTERRUPTED: { exit: 130, means: 'interrupted by Ctrl-C, SIGTERM or SIGHUP', fix: 'run the command again: downloads resume' },
  E_INTERNAL: { exit: 1, means: 'a bug in hoard (printed with its stack trace)', fix: 'please report it with the output of the command run with -v' },
} as const satisfies Record<string, CodeInfo>;

export type ErrorCode = keyof typeof ERROR_CODES;

export interface HoardErrorOptions {
  hint?: string;
  cause?: unknown;
  /** Extra fields tests and --json consumers can rely on (expected/found, url, status, …). */
  details?: Record<string, unknown>;
}

/** One error base for everything hoard reports to a person. */
export class HoardError extends Error {
  readonly code: ErrorCode;
  readonly hint: string | undefined;
  readonly details: Record<string, unknown>;

  constructor(code: ErrorCode, message: string, options: HoardErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'HoardError';
    this.code = code;
    this.hint = options.hint;
    this.details = options.details ?? {};
  }
}

/** An error as it is reported: in an event, in `--json`, and by the error printer. */
export interface ErrorInfo {
  code: string;
  message: string;
  hint?: string;
  /** The operating system's code behind it (ENOSPC, EROFS, …), when there is one. */
  errno?: string;
}

/** Raw operating-system codes and the documented code each is reported as. */
const ERRNO_CODES: Record<string, ErrorCode> = {
  ENOSPC: 'E_NOSPACE', EDQUOT: 'E_NOSPACE',
  EROFS: 'E_READONLY',
  EACCES: 'E_PERMISSION', EPERM: 'E_PERMISSION',
  EMFILE: 'E_LIMIT', ENFILE: 'E_LIMIT',
  ENOTDIR: 'E_NOTDIR',
  EIO: 'E_IO', ELOOP: 'E_IO', ENAMETOOLONG: 'E_IO', EISDIR: 'E_IO', EEXIST: 'E_IO', ENOENT: 'E_IO', EXDEV: 'E_IO', EBUSY: 'E_IO', ETXTBSY: 'E_IO',
};

const ERRNO_WORDS: Record<string, string> = {
  ENOSPC: 'no space left on the device', EDQUOT: 'disk quota exceeded', EROFS: 'read-only filesystem', EACCES: 'permission denied',
  EPERM: 'operation not permitted', EMFILE: 'too many open files', ENFILE: 'too many open files in the system', ENOTDIR: 'a part of the path is a file, not a folder',
  EISDIR: 'is a folder', ENOENT: 'no such file or folder', ELOOP: 'too many levels of symbolic links', ENAMETOOLONG: 'file name too long',
};

/** A raw errno error (from node:fs) as a documented error naming its path; null for anything else. */
export function fromErrno(err: unknown): HoardError | null {
  if (!(err instanceof Error) || err instanceof HoardError) return null;
  const e = err as NodeJS.ErrnoException & { dest?: string };
  const code = e.code !== undefined ? ERRNO_CODES[e.code] : undefined;
  if (!code || typeof e.syscall !== 'string') return null;
  const where = e.path ? `${e.path}${e.dest ? ` → ${e.dest}` : ''}` : e.syscall;
  return new HoardError(code, `${e.syscall} ${where}: ${ERRNO_WORDS[e.code!] ?? e.message} (${e.code})`, {
    hint: ERROR_CODES[code].fix,
    cause: err,
    details: { errno: e.code },
  });
}

/** What an error says, for events and the error printer: a documented code, never a bare errno. */
export function errorInfo(err: unknown): ErrorInfo {
  const e = err instanceof HoardError ? err : fromErrno(err);
  if (e) {
    const errno = (e.details.errno as string | undefined) ?? (isErrno(e.cause, ...Object.keys(ERRNO_CODES)) ? e.cause.code : undefined);
    return { code: e.code, message: e.message, ...(e.hint ? { hint: e.hint } : {}), ...(errno ? { errno } : {}) };
  }
  const message = err instanceof RangeError && /call stack/.test(err.message) ? 'input nested too deeply' : ((err as Error)?.message ?? String(err));
  return { code: 'E_INTERNAL', message: message || String((err as Error)?.name ?? err), hint: ERROR_CODES.E_INTERNAL.fix };
}

/** Whether an error is a bug in hoard (its stack trace is shown) rather than a reported condition. */
export function isBug(err: unknown): boolean {
  return errorInfo(err).code === 'E_INTERNAL';
}

/** Exit status for an error that ends the whole command. */
export function exitCodeFor(err: unknown): number {
  const code = errorInfo(err).code;
  return code in ERROR_CODES ? ERROR_CODES[code as ErrorCode].exit : EXIT.failed;
}

/** The exit status of a finished run from its summary (the one rule for every command). */
export function exitCode(
  s: { failed: number; conflicts?: number; outOfSync?: number; manifestError?: unknown; manifestConflicts?: number },
  mode: 'sync' | 'dry-run' | 'status' | 'verify',
): number {
  if (s.failed > 0) return EXIT.failed;
  if (mode === 'status') return (s.outOfSync ?? 0) > 0 ? EXIT.drift : EXIT.ok;
  if (mode === 'dry-run') return EXIT.ok;
  return (s.conflicts ?? 0) > 0 || (s.manifestConflicts ?? 0) > 0 || s.manifestError ? EXIT.failed : EXIT.ok;
}

/** The exit status for a run stopped by a signal: 128 + its number. */
export function signalExit(signal: string): number {
  return signal === 'SIGTERM' ? EXIT.terminated : signal === 'SIGHUP' ? EXIT.hangup : EXIT.interrupted;
}

export function isErrno(err: unknown, ...codes: string[]): err is NodeJS.ErrnoException {
  return typeof err === 'object' && err !== null && codes.includes((err as NodeJS.ErrnoException).code ?? '');
}
