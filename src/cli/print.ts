import path from 'node:path';
import { formatBytes, formatDuration, formatTime } from '../core/format.ts';
import { describeDuration } from '../core/duration.ts';
import { escapeControl, escapeStrings, jsonLine } from '../core/terminal.ts';
import type { ErrorInfo, SyncEvent } from '../sync/events.ts';
import type { Tone } from '../tui/types.ts';

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
        o.out(`${jsonLine(ev)}\n`);
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
          if (o.verbose) line(dim(`  check ${e.name} ${e.subject} ${rel(e.path)}: ${e.result}`));
          return;
        case 'download':
          if (o.progress) active.set(e.name, { received: e.resumeFrom ?? 0, total: e.size, started: Date.now(), from: e.resumeFrom ?? 0 });
          if (o.verbose) {
            const resume = e.resumeFrom ? `, resuming at ${formatBytes(e.resumeFrom)}` : '';
            line(dim(`  GET ${e.url} (${e.reason}${e.size !== null ? `, ${formatBytes(e.size)}` : ''}${resume})`));
          }
          return;
        case 'retry':
          if (o.verbose) {
            clearProgress();
            o.err(`${yellow('retry')} ${e.name}: attempt ${e.attempt} failed (${e.message}); trying again in ${(e.delayMs / 1000).toFixed(1)} s, ${e.left} ${e.left === 1 ? 'retry' : 'retries'} left\n`);
          }
          return;
        case 'progress': {
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
          const what: string[] = [];
          const blobWords: Record<string, string> = {
            fetch: 'download', refetch: `re-download (corrupt blob: ${e.blobReason ?? '?'})`, force: 're-download (--force)',
            adopt: 'copy the verified output back into the store', lock: 'download and lock (no digest yet)',
          };
          const outWords: Record<string, string> = {
            link: 'link', relink: `relink (${e.outputReason ?? 'outdated'})`, replace: `replace (--force: ${e.outputReason ?? ''})`,
            conflict: `conflict: ${e.outputReason ?? 'someone else\'s file'}`, check: 'compare the existing file once locked',
          };
          if (e.blob !== 'none') what.push(blobWords[e.blob] ?? e.blob);
          if (e.output !== 'none') what.push(outWords[e.output] ?? e.output);
          if (e.image && e.image !== 'none') {
            const imageWords: Record<string, string> = {
              import: `import image ${e.imageRef}`, reimport: `re-import image ${e.imageRef} (stale tag: built from another file)`,
              force: `re-import image ${e.imageRef} (--force)`, unavailable: `image ${e.imageRef}: engine unavailable`,
            };
            what.push(imageWords[e.image] ?? e.image);
          }
          const state = e.inSync ? green('in sync') : e.output === 'conflict' ? red(what.join(', ')) : yellow(what.join(', '));
          line(`${bold(e.name)}  ${state}  ${dim(shown(e.path))}`, e.output === 'conflict' ? 'error' : undefined);
          return;
        }
        case 'artifact': {
          active.delete(e.name);
          if (o.quiet && !e.error && !e.imageError) return;
          // The common line first, built cheaply: a no-op sync prints one per artifact.
          if (e.blob === 'cached' && e.output === 'present' && (e.image === undefined || e.image === 'present')) {
            line(`${bold(e.name)}  ${green(e.image ? 'cached, up to date, image present' : 'cached, up to date')}  ${dim(shown(e.path))}`);
            return;
          }
          let text: string;
          if (e.blob === 'downloaded') text = `downloaded ${formatBytes(e.bytesDownloaded)}`;
          else if (e.blob === 'redownloaded') text = `re-downloaded ${formatBytes(e.bytesDownloaded)} (${e.reason?.startsWith('--force') ? '--force' : 'corrupt blob'})`;
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
          const bad = e.blob === 'failed' || e.output === 'failed' || e.output === 'conflict' || e.image === 'failed';
          line(`${bold(e.name)}  ${bad ? red(text) : text}  ${dim(shown(e.path))}`, bad ? 'error' : undefined);
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
          if (!o.quiet) line(`kept ${e.digest}  ${dim('(in use by a running hoard)')}`);
          return;
        case 'summary': {
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
            `${formatBytes(s.bytesDownloaded)} downloaded`,
            `${formatBytes(s.bytesSaved)} saved`,
          ];
          if (s.imagesPresent || s.imagesImported) bits.push(`images: ${s.imagesPresent} present, ${s.imagesImported} imported`);
          if (s.failed) bits.push(red(`${s.failed} failed`));
          if (s.conflicts) bits.push(red(`${s.conflicts} conflict${s.conflicts === 1 ? '' : 's'}`));
          if (s.evicted) bits.push(`evicted ${s.evicted} blob${s.evicted === 1 ? '' : 's'} (${formatBytes(s.bytesEvicted ?? 0)})`);
          const manifestNote = s.manifestError ? red(' · hoard.json NOT updated: the new digests were not recorded') : s.manifestUpdated ? dim(' · hoard.json updated') : '';
          line(`${s.artifacts} artifact${s.artifacts === 1 ? '' : 's'}: ${bits.join(', ')} in ${formatDuration(s.elapsedMs)}${manifestNote}`, s.failed || s.manifestError ? 'error' : undefined);
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
      clearProgress();
    },
  };
}
export type Printer = ReturnType<typeof createPrinter>;
