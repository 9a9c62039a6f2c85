/** One error base for everything hoard reports to a person. */
export type ErrorCode =
  | 'E_USAGE' // bad flags or arguments
  | 'E_MANIFEST' // hoard.json cannot be read, parsed or validated
  | 'E_CONFIG' // the configuration file cannot be read, parsed or validated
  | 'E_PATH' // a path escapes its folder
  | 'E_FROZEN' // --frozen and an entry has no digest
  | 'E_INTEGRITY' // bytes do not match the expected digest, size or checksum
  | 'E_HTTP' // the server answered with an error status
  | 'E_NETWORK' // connection failed, reset, timed out
  | 'E_ENV' // a ${VAR} in a header is not set
  | 'E_CONFLICT' // an output file that is not hoard's is in the way
  | 'E_STORE' // the store cannot be used (permissions, disk)
  | 'E_LINK' // a link mode cannot be used here
  | 'E_TTY' // the command needs a terminal
  | 'E_ENGINE' // docker or podman is missing, not answering, or failed
  | 'E_AUTH' // a vendor's API token is missing or was refused
  | 'E_INTERRUPTED';

export interface HoardErrorOptions {
  hint?: string;
  cause?: unknown;
  /** Extra fields tests and --json consumers can rely on (expected/found, url, status, …). */
  details?: Record<string, unknown>;
}

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

/** Exit status for an error that ends the whole command (see DESIGN: exit codes). */
export function exitCodeFor(err: unknown): number {
  if (err instanceof HoardError) {
    switch (err.code) {
      case 'E_USAGE':
      case 'E_MANIFEST':
      case 'E_CONFIG':
      case 'E_PATH':
      case 'E_FROZEN':
      case 'E_ENV':
      case 'E_TTY':
        return 2;
      case 'E_INTERRUPTED':
        return 130;
      default:
        return 1;
    }
  }
  return 1;
}

export function isErrno(err: unknown, ...codes: string[]): err is NodeJS.ErrnoException {
  return typeof err === 'object' && err !== null && codes.includes((err as NodeJS.ErrnoException).code ?? '');
}
