// Durations as people write them on a command line: 5m, 30s, 1h, 7d, 500ms, 1.5s, or bare seconds.

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, min: 60_000, h: 3_600_000, d: 86_400_000 };

/** Milliseconds for "5m", "30s", "1h", "7d", "500ms", "1.5s" or "90" (seconds); null when it is not one. */
export function parseDuration(text: string): number | null {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|min|h|d)?\s*$/i.exec(text);
  if (!m) return null;
  const ms = Number(m[1]) * UNITS[(m[2] ?? 's').toLowerCase()]!;
  return Number.isFinite(ms) ? Math.round(ms) : null;
}

/** "30 d", "5 min", "1 s", "1.5 s", "250 ms". */
export function describeDuration(ms: number): string {
  if (ms >= 86_400_000 && ms % 86_400_000 === 0) return `${ms / 86_400_000} d`;
  if (ms >= 3_600_000 && ms % 3_600_000 === 0) return `${ms / 3_600_000} h`;
  if (ms >= 60_000 && ms % 60_000 === 0) return `${ms / 60_000} min`;
  if (ms >= 1000) return `${Number((ms / 1000).toFixed(1))} s`;
  return `${ms} ms`;
}

/** "3 days ago", "5 hours ago", "just now": how long ago `ms` (since the epoch) was, for people. */
export function describeAgo(ms: number, now = Date.now()): string {
  const d = Math.max(0, now - ms);
  const n = (v: number, unit: string) => `${v} ${unit}${v === 1 ? '' : 's'} ago`;
  if (d >= 86_400_000) return n(Math.floor(d / 86_400_000), 'day');
  if (d >= 3_600_000) return n(Math.floor(d / 3_600_000), 'hour');
  if (d >= 60_000) return n(Math.floor(d / 60_000), 'minute');
  return 'just now';
}
