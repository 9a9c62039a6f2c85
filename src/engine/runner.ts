// The real Runner: execa with argument arrays (never a shell). execa is imported on the first
// run, so that commands which never talk to an engine do not pay for loading it.
import os from 'node:os';
import type { RunResult, Runner } from './types.ts';

/** After a timeout's SIGTERM, how long a command may take to exit before it gets SIGKILL. */
const FORCE_KILL_AFTER_MS = 2000;

/** Process groups of commands started with a timeout that are still running. */
const liveGroups = new Set<number>();

function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // already gone (ESRCH), or no process groups on this platform
  }
}

// Detached commands escape execa's `cleanup` (it only kills attached ones): end them when hoard exits.
const killLiveGroups = () => {
  for (const pid of liveGroups) killGroup(pid, 'SIGTERM');
};

/**
 * Runs `command args` and resolves with its exit code and output, whatever the exit code.
 * Rejects with `code: 'ENOENT'` when the command is not installed, and with `timedOut: true`
 * when it ran longer than `timeoutMs`.
 *
 * A command with a timeout runs in its own process group, and the timeout kills the whole
 * group (SIGTERM, then SIGKILL after 2 s): a wrapper script's children (`sleep`, a helper)
 * would otherwise keep the output pipes open and hold hoard until they finish. A command
 * without a timeout (a long import) stays in hoard's process group, so that Ctrl-C in a
 * terminal reaches it directly.
 */
export const execaRunner: Runner = async (command, args, opts) => {
  const { execa } = await import('execa');
  const timeoutMs = opts.timeoutMs;
  const detached = timeoutMs !== undefined;
  const subprocess = execa(command, [...args], {
    reject: false,
    stdin: 'ignore',
    ...(timeoutMs !== undefined ? { timeout: timeoutMs } : {}),
    forceKillAfterDelay: FORCE_KILL_AFTER_MS,
    detached,
    ...(opts.env ? { env: opts.env } : {}),
  });

  const pid = subprocess.pid;
  let settled = false;
  let timedOut = false;
  let timer: NodeJS.Timeout | undefined;
  if (detached && pid !== undefined) {
    if (liveGroups.size === 0) process.on('exit', killLiveGroups);
    liveGroups.add(pid);
    timer = setTimeout(() => {
      timedOut = true;
      killGroup(pid, 'SIGTERM');
      setTimeout(() => {
        if (!settled) killGroup(pid, 'SIGKILL');
      }, FORCE_KILL_AFTER_MS).unref();
    }, timeoutMs);
  }

  let result: Awaited<typeof subprocess>;
  try {
    result = await subprocess;
  } finally {
    settled = true;
    clearTimeout(timer);
    if (pid !== undefined && liveGroups.delete(pid) && liveGroups.size === 0) process.off('exit', killLiveGroups);
  }

  if (result.timedOut || timedOut) {
    throw Object.assign(new Error(`${command} did not finish within ${timeoutMs} ms`), { code: 'ETIMEDOUT', timedOut: true, cause: result });
  }
  if (result.exitCode === undefined && result.signal === undefined) {
    // Not started at all: missing binary (ENOENT), not executable (EACCES), …
    throw Object.assign(new Error(result.shortMessage), { code: result.code ?? 'ESPAWN', cause: result });
  }
  const signalNumber = result.signal ? os.constants.signals[result.signal] : undefined;
  const out: RunResult = {
    exitCode: result.exitCode ?? 128 + (signalNumber ?? 0),
    stdout: String(result.stdout ?? ''),
    stderr: String(result.stderr ?? ''),
  };
  return out;
};
