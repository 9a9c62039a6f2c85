// Small pure helpers for fixed-width terminal text.

/** Cuts `s` to `width` columns, ending with … when cut. */
export function fit(s: string, width: number): string {
  if (width <= 0) return '';
  const chars = [...s];
  return chars.length <= width ? s : `${chars.slice(0, Math.max(0, width - 1)).join('')}…`;
}

/** `s` cut or padded to exactly `width` columns. */
export function cell(s: string, width: number, align: 'left' | 'right' = 'left'): string {
  const t = fit(s, width);
  const pad = ' '.repeat(Math.max(0, width - [...t].length));
  return align === 'left' ? t + pad : pad + t;
}

/** A bar of `width` cells, `fraction` (0..1) of them full. */
export function bar(fraction: number, width: number): string {
  const f = Number.isFinite(fraction) ? Math.min(1, Math.max(0, fraction)) : 0;
  const full = Math.round(f * width);
  return '█'.repeat(full) + '░'.repeat(Math.max(0, width - full));
}

export const SPINNER = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

/** The spinner frame at time `now` (ms). */
export function spinner(now: number): string {
  return SPINNER[Math.floor(now / 100) % SPINNER.length]!;
}

/** Word-wraps `text` into lines of at most `width` columns (a word longer than that is cut). */
export function wrap(text: string, width: number): string[] {
  if (width <= 0) return [];
  const out: string[] = [];
  let line = '';
  for (const word of text.split(/(?<= )/)) {
    // `word` keeps its trailing space; it is dropped where a line ends.
    if ([...line].length + [...word.trimEnd()].length <= width) {
      line += word;
      continue;
    }
    if (line.trimEnd()) out.push(line.trimEnd());
    line = '';
    let w = [...word];
    while (w.length > width) {
      out.push(w.slice(0, width).join(''));
      w = w.slice(width);
    }
    line = w.join('');
  }
  if (line.trimEnd() || out.length === 0) out.push(line.trimEnd());
  return out;
}
