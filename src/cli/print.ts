import path from 'node:path';
import { formatBytes, formatDuration, formatTime, shortImageId } from '../core/format.ts';
import { describeAgo, describeDuration } from '../core/duration.ts';
import { escapeControl, escapeStrings, jsonLine } from '../core/terminal.ts';
import type { ErrorInfo, SyncEvent } from '../sync/events.ts';
import type { Tone } from '../tui/types.ts';
import { stateOf } from '../sync/states.ts';

export interface PrinterOptions {
  json: boolean;
  verbose: boolean;
  quiet: boolean;
  color: boolean;
  /** Show a live progress line on stderr (a terminal, not --json, not --quiet). */
  progress: boolean;
  /** Where text goes; `tone` says what a line is (the TUI colours by it). */
  out: (s: string, tone?: Tone) => void;
  err: (s: string, tone?: Tone) => void;
  cwd: string;
  /**
   * Progress without a terminal (CI, pipes): a start line per download and a progress line at
   * most every `everyMs` on stderr; with --json, `progress` events at most every `jsonEveryMs`.
   */
  steady?: { everyMs: number; jsonEveryMs: number };
}

/** `212/470 MiB`: both numbers in the unit of the larger. */
export function formatPair(received: number, total: number | null): string {
  if (total === null) return formatBytes(received);
  const [value, unit] = formatBytes(Math.max(total, received)).split(' ') as [string, string];
  if (unit === 'B') return `${received}/${total} B`;
  const scale = Math.max(total, received) / Number(value);
  const digits = value.includes('.') ? 1 : 0;
  return `${(received / scale).toFixed(digits)}/${(total / scale).toFixed(digits)} ${unit}`;
}

/** `ceos-lab  212/470 MiB  18 MiB/s  ETA 14s`: one download's progress as a line of its own. */
export function formatProgressLine(name: string, received: number, total: number | null, bytesPerSecond: number): string {
  const eta = total !== null && bytesPerSecond > 0 ? Math.max(0, total - received) / bytesPerSecond : null;
  const etaText = eta === null ? '' : eta < 60 ? `  ETA ${Math.ceil(eta)}s` : `  ETA ${Math.floor(eta / 60)}m${String(Math.ceil(eta % 60)).padStart(2, '0')}s`;
  return `${name}  ${formatPair(received, total)}  ${formatBytes(Math.round(bytesPerSecond))}/s${etaText}`;
}

/** The host a download comes from, for the start line (the URL is already redacted). */
function hostOf(url: string): string {
  try {
    // A vendor's locator (arista:<file>) has no host: it is shown as it is.
    return new URL(url).host || url;
  } catch {
    return url;
  }
}

/** Any event the commands emit, sync's and verify's. */
export type PrintableEvent = SyncEvent | { type: string; [k: string]: unknown };

const paint = (on: boolean) => (code: number) => (s: string) => (on ? `\x1b[${code}m${s}\x1b[0m` : s);

export function createPrinter(o: PrinterOptions) {
  const c = paint(o.color);
  const green = c(32);
  const red = c(31);
  const yellow = c(33);
  const dim = c(2);
  const bold = c(1);
  // Output paths as the user would type them: relative to the working folder when inside it.
  let outputPrefix = '';
  const shown = (p: string) => outputPrefix + p;
  const rel = (p: string) => {
    const r = path.relative(o.cwd, p);
    return r && !r.startsWith('..') ? r : p;
  };

  // One progress line on stderr, rewritten in place; cleared before any other output.
  const active = new Map<string, { received: number; total: number | null; started: number; from: number }>();
  let progressShown = false;
  let lastDraw = 0;
  const clearProgress = () => {
    if (progressShown) {
      o.err('\r\x1b[2K');
      progressShown = false;
    }
  };
  const drawProgress = () => {
    const now = Date.now();
    if (now - lastDraw < 100) return;
    lastDraw = now;
    const parts = [...active].map(([name, p]) => {
      const rate = (p.received - p.from) / Math.max(0.001, (now - p.started) / 1000);
      const pct = p.total ? ` ${Math.floor((p.received / p.total) * 100)}%` : '';
      const eta = p.total && rate > 0 ? ` ETA ${formatDuration(((p.total - p.received) / rate) * 1000)}` : '';
      return `${name} ${formatBytes(p.received)}${p.total ? `/${formatBytes(p.total)}` : ''}${pct} ${formatBytes(rate)}/s${eta}`;
    });
    const cols = process.stderr.columns || 100;
    o.err(`\r\x1b[2K${dim(`↓ ${parts.join(' · ')}`.slice(0, cols - 1))}`);
    progressShown = true;
  };

  // Without a terminal: when each download last printed a line (or a --json progress event).
  const steadyAt = new Map<string, { at: number; started: number; from: number }>();

  // `status` and `--dry-run`: one line per artifact, in columns, printed with the summary.
  let planRows: Array<{ name: string; state: string; bad: boolean; ok: boolean; path: string; detail?: string }> = [];
  const flushPlan = () => {
    const wn = Math.max(0, ...planRows.map((r) => r.name.length));
    const ws = Math.max(0, ...planRows.map((r) => r.state.length));
    for (const r of planRows) {
      const state = r.state.padEnd(ws);
      line(`${bold(r.name.padEnd(wn))}  ${r.ok ? green(state) : r.bad ? red(state) : yellow(state)}  ${dim(r.path)}${r.detail ? dim(`  (${r.detail})`) : ''}`, r.bad ? 'error' : undefined);
    }
    planRows = [];
  };

  let engineErrorShown = false;
  const printError = (e: ErrorInfo, indent: string) => {
    o.err(`${indent}${red('error:')} ${e.message}\n`, 'error');
    if (e.hint) o.err(`${indent}${dim('hint:')} ${e.hint}\n`, 'hint');
  };

  const line = (s: string, tone?: Tone) => {
    clearProgress();
    o.out(`${s}\n`, tone);
  };

  return {
    event(ev: PrintableEvent) {
      if (o.json) {
        if (ev.type === 'check' && !o.verbose) return;
        if (o.steady && ev.type === 'download') steadyAt.set(String(ev.name), { at: Date.now(), started: Date.now(), from: 0 });
        if (o.steady && ev.type === 'progress') {
          // A bounded rate: one event a second per download is plenty for a machine.
          const s = steadyAt.get(String(ev.name));
          const now = Date.now();
          if (s && (ev.received === s.from || (now - s.at < o.steady.jsonEveryMs && ev.received !== ev.total))) return;
          if (s) Object.assign(s, { at: now, from: ev.received }); // (`from`: the last count sent)
        }
        o.out(`${jsonLine(ev)}\n`);
        return;
      }
      // The common line of a no-op sync (one per artifact) first: it prints only a name and a path.
      const a = ev as SyncEvent;
      if (a.type === 'artifact' && a.blob === 'cached' && a.output === 'present' && (a.image === undefined || a.image === 'present') && !a.error && !a.imageError) {
        active.delete(a.name);
        steadyAt.delete(a.name);
        if (o.quiet) return;
        line(`${bold(escapeControl(a.name))}  ${green(a.image ? 'cached, up to date, image present' : 'cached, up to date')}  ${dim(shown(escapeControl(a.path)))}`);
        return;
      }
      // Names, paths, URLs and messages may come from a manifest or a server: no control
      // characters reach the terminal (see core/terminal.ts).
      const e = escapeStrings(ev) as SyncEvent;
      switch (e.type) {
        case 'start':
          outputPrefix = `${rel(e.output)}${path.sep}`;
          if (o.verbose) line(dim(`${e.noStore ? 'no store' : `store ${e.store}`}, output ${rel(e.output)}, ${e.artifacts} artifact${e.artifacts === 1 ? '' : 's'}`));
          return;
        case 'check':
          if (o.verbose) line(dim(`  check ${e.name} ${e.subject} ${/^[a-z]+:\/\//.test(e.path) ? e.path : rel(e.path)}: ${e.result}`));
          return;
        case 'upload':
          if (o.progress) active.set(e.name, { received: 0, total: e.size, started: Date.now(), from: 0 });
          if (o.verbose) line(dim(`  PUT ${e.url} (${formatBytes(e.size)})`));
          return;
        case 'pushed': {
          active.delete(e.name);
          if (o.quiet && !e.error) return;
          const words = { pushed: `pushed ${formatBytes(e.bytes)}`, mounted: 'mounted from another repository', present: 'already in the team cache', failed: 'push failed' } as const;
          line(`${bold(e.name)}  ${e.outcome === 'failed' ? red(words.failed) : e.outcome === 'present' ? green(words.present) : words[e.outcome]}  ${dim(e.digest)}`);
          if (e.error) printError(e.error, '  ');
          return;
        }
        case 'push-summary':
          if (o.quiet) return;
          line(
            `push to ${e.remote}: ${e.pushed} pushed (${formatBytes(e.bytesPushed)}), ${e.mounted ? `${e.mounted} mounted, ` : ''}${e.present} already there` +
              `${e.failed ? `, ${red(`${e.failed} failed`)}` : ''}${e.skipped ? `, ${e.skipped} not in the local store` : ''} in ${formatDuration(e.elapsedMs)}`,
          );
          return;
        case 'download':
          if (o.progress) active.set(e.name, { received: e.resumeFrom ?? 0, total: e.size, started: Date.now(), from: e.resumeFrom ?? 0 });
          if (o.steady && !o.quiet) {
            steadyAt.set(e.name, { at: Date.now(), started: Date.now(), from: e.resumeFrom ?? 0 });
            const resume = e.resumeFrom ? ` (resuming at ${formatBytes(e.resumeFrom)})` : '';
            o.err(`${e.name}  downloading ${e.size !== null ? `${formatBytes(e.size)} ` : ''}from ${hostOf(e.url)}${resume}\n`);
          }
          if (o.verbose) {
            const resume = e.resumeFrom ? `, resuming at ${formatBytes(e.resumeFrom)}` : '';
            line(dim(`  GET ${e.url} (${e.reason}${e.size !== null ? `, ${formatBytes(e.size)}` : ''}${resume})`));
          }
          return;
        case 'retry':
          if (o.verbose) {
            clearProgress();
            o.err(`${yellow('retry')} ${e.name}: attempt ${e.attempt} failed (${e.message}); trying again in ${(e.delayMs / 1000).toFixed(1)} s, ${e.left} ${e.left === 1 ? 'retry' : 'retries'} left\n`, 'warn');
          }
          return;
        case 'progress': {
          const s = o.steady && !o.quiet ? steadyAt.get(e.name) : undefined;
          if (s) {
            const now = Date.now();
            if (now - s.at >= o.steady!.everyMs) {
              s.at = now;
              // Only bytes moved in this run make the speed (not those kept from an earlier one).
              const rate = (e.received - s.from) / Math.max(0.001, (now - s.started) / 1000);
              o.err(`${formatProgressLine(e.name, e.received, e.total, rate)}\n`);
            }
          }
          const p = active.get(e.name);
          if (!p || !o.progress) return;
          p.received = e.received;
          p.total = e.total;
          drawProgress();
          return;
        }
        case 'image':
          if (o.verbose) line(dim(`  ${e.action} ${e.ref} (${e.name})`));
          return;
        case 'waiting': {
          clearProgress();
          const limit = e.timeoutMs ? `giving up after ${describeDuration(e.timeoutMs)} (--lock-timeout)` : 'waiting without a time limit (--lock-timeout 0)';
          o.err(`${yellow('waiting')} for ${e.lockFile}: held by ${e.holder} (another hoard is using ${e.name}); ${limit}; Ctrl-C stops\n`, 'warn');
          return;
        }
        case 'warning':
          clearProgress();
          if (!o.quiet || o.verbose) o.err(`${e.severity === 'error' ? red('error:') : yellow('warning:')} ${e.name ? `${e.name}: ` : ''}${e.message}\n`, e.severity === 'error' ? 'error' : 'warn');
          if (e.hint && (!o.quiet || o.verbose)) o.err(`${dim('hint:')} ${e.hint}\n`, 'hint');
          if (e.code === 'E_ENGINE') engineErrorShown = true;
          return;
        case 'plan': {
          if (o.quiet && e.inSync) return;
          const { state, detail } = e.inSync ? { state: 'in sync' as const, detail: undefined } : stateOf(e);
          planRows.push({ name: e.name, state, ok: e.inSync, bad: state === 'conflict' || state === 'corrupt' || state === 'not an image archive', path: shown(e.path), ...(detail ? { detail } : {}) });
          return;
        }
        case 'artifact': {
          active.delete(e.name);
          steadyAt.delete(e.name);
          if (o.quiet && !e.error && !e.imageError) return;
          let text: string;
          if (e.blob === 'downloaded' && e.fromCache) text = `pulled from cache ${formatBytes(e.bytesDownloaded)}`;
          else if (e.blob === 'downloaded') text = `downloaded ${formatBytes(e.bytesDownloaded)}`;
          else if (e.blob === 'redownloaded') text = `re-downloaded ${formatBytes(e.bytesDownloaded)} (${e.redownload === 'force' ? '--force' : 'corrupt blob'})`;
          else if (e.blob === 'adopted') text = 'restored to the store from the output';
          else if (e.blob === 'none') text = e.output === 'present' ? 'up to date (no store)' : 'not downloaded';
          else text = e.blob;
          if (e.output === 'linked' || e.output === 'relinked' || e.output === 'replaced') text += `, ${e.output} (${e.method})`;
          else if (e.output === 'written') text += ', written (no store)';
          else if (e.output === 'present' && e.blob !== 'none') text += ', up to date';
          else if (e.output === 'conflict') text += ', conflict';
          if (e.image === 'imported' || e.image === 'loaded') text += `, ${e.image} as ${e.imageRef}`;
          else if (e.image === 'reimported') text += `, re-imported ${e.imageRef} (stale tag)`;
          else if (e.image === 'present') text += ', image present';
          else if (e.image === 'failed') text += `, image ${e.imageRef} failed`;
          if (e.oldImage?.removed) text += `, removed old image ${shortImageId(e.oldImage.id)}`;
          const bad = e.blob === 'failed' || e.output === 'failed' || e.output === 'conflict' || e.image === 'failed';
          line(`${bold(e.name)}  ${bad ? red(text) : text}  ${dim(shown(e.path))}`, bad ? 'error' : undefined);
          if (e.moved) line(`  ${yellow('moved:')} the recorded arista.path answered Not Found; found at ${e.moved.to}`);
          if (o.verbose && e.oldImage && !e.oldImage.removed) line(dim(`  kept old image ${shortImageId(e.oldImage.id)} (${e.oldImage.reason ?? 'in use'})`));
          if (e.error) printError(e.error, '  ');
          // The engine's own error is printed once, as a warning, not under every artifact.
          if (e.imageError && e.imageError.code !== 'E_ENGINE') printError(e.imageError, '  ');
          else if (e.imageError && !engineErrorShown) {
            engineErrorShown = true;
            printError(e.imageError, '  ');
          }
          return;
        }
        case 'removed': {
          if (o.quiet) return;
          const verb = e.reason === 'lru' ? (e.dryRun ? 'would evict' : 'evicted') : e.dryRun ? 'would remove' : 'removed';
          const when = e.lastUsed ? `last used ${formatTime(Date.parse(e.lastUsed))}` : '';
          if (e.subject === 'blob') {
            const why = e.reason === 'unreferenced' ? `no known manifest names it, ${when}` : e.reason === 'lru' ? `least recently used: ${when}` : when;
            line(`${verb} ${e.digest}  ${formatBytes(e.bytes)}  ${dim(`(${why})`)}`);
          } else if (e.subject === 'tmp') line(`${verb} temp file ${e.path}  ${formatBytes(e.bytes)}  ${dim('(its process is gone)')}`);
          else line(`${verb} lock ${e.path}  ${dim('(its process is gone)')}`);
          return;
        }
        case 'kept':
          if (o.quiet) return;
          if (e.reason === 'fetched') line(`kept ${e.digest}  ${dim(`(fetched, used ${e.lastUsed ? describeAgo(Date.parse(e.lastUsed)) : 'recently'})`)}`);
          else line(`kept ${e.digest}  ${dim('(in use by a running hoard)')}`);
          return;
        case 'summary': {
          flushPlan();
          if (o.quiet) return;
          const s = e;
          if (s.outOfSync !== undefined) {
            line(
              `${s.artifacts} artifact${s.artifacts === 1 ? '' : 's'}: ${s.outOfSync === 0 ? green('all in sync') : yellow(`${s.outOfSync} out of sync`)}` +
                `${s.conflicts ? `, ${red(`${s.conflicts} conflict${s.conflicts === 1 ? '' : 's'}`)}` : ''} ${dim(`(${formatDuration(s.elapsedMs)})`)}`,
            );
            return;
          }
          const bits = [
            `${s.hits} hit${s.hits === 1 ? '' : 's'}`,
            `${s.misses} miss${s.misses === 1 ? '' : 'es'}`,
            `${formatBytes(s.bytesDownloaded - (s.bytesFromCache ?? 0))} downloaded`,
            ...(s.bytesFromCache ? [`${formatBytes(s.bytesFromCache)} pulled from cache`] : []),
            `${formatBytes(s.bytesSaved)} saved`,
          ];
          if (s.imagesPresent || s.imagesImported) bits.push(`images: ${s.imagesPresent} present, ${s.imagesImported} imported`);
          if (s.failed) bits.push(red(`${s.failed} failed`));
          if (s.conflicts) bits.push(red(`${s.conflicts} conflict${s.conflicts === 1 ? '' : 's'}`));
          if (s.evicted) bits.push(`evicted ${s.evicted} blob${s.evicted === 1 ? '' : 's'} (${formatBytes(s.bytesEvicted ?? 0)})`);
          const manifestNote = s.manifestError ? red(' · hoard.json NOT updated: the new digests were not recorded') : s.manifestUpdated ? dim(' · hoard.json updated') : '';
          line(`${s.artifacts} artifact${s.artifacts === 1 ? '' : 's'}: ${bits.join(', ')} in ${formatDuration(s.elapsedMs)}${manifestNote}`, s.failed || s.manifestError ? 'error' : undefined);
          if (s.failed) {
            o.err(`${dim('hint:')} fix what the errors above say, then run the same command again: what is done is not done twice, and a download that broke off resumes\n`, 'hint');
          }
          return;
        }
        default:
          if (o.verbose || !o.quiet) {
            const g = e as { type: string; text?: string };
            if (g.text) line(g.text);
          }
      }
    },
    /** A fatal error that ends the command. */
    fatal(info: ErrorInfo, stack?: string) {
      clearProgress();
      if (o.json) o.out(`${jsonLine({ type: 'error', ...info })}\n`);
      const e = escapeStrings(info);
      o.err(`${red('hoard: error:')} ${e.message}\n`, 'error');
      if (e.hint) o.err(`${dim('hint:')} ${e.hint}\n`, 'hint');
      if (stack) o.err(`${dim(escapeControl(stack))}\n`, 'note');
    },
    info(text: string) {
      if (o.json || o.quiet) return;
      line(escapeControl(text));
    },
    /** A remark for people on stderr (stdout carries a result, such as hoard fetch's path). */
    note(text: string) {
      if (o.json || o.quiet) return;
      clearProgress();
      o.err(`${escapeControl(text)}\n`, 'note');
    },
    /** The command's result on stdout (a path, a digest, a listing): shown even with --quiet, replaced by events with --json. */
    result(text: string) {
      if (o.json) return;
      line(escapeControl(text));
    },
    finish() {
      flushPlan();
      clearProgress();
    },
  };
}
export type Printer = ReturnType<typeof createPrinter>;
