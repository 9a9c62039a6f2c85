// Text that came from a manifest or a server (file names, URLs, server messages, errors that
// carry them) must not drive the terminal it is printed on: an ESC sequence in a file name can
// rewrite the screen, set the window title, or hide what follows. Every control character
// (C0 but line feed and tab, DEL, and C1) is shown as `\xHH`, in a pipe too; the printer and
// the TUI apply this to every event and message before they add their own colours.

// C0 (0x00-0x1f) but \t and \n, DEL (0x7f), C1 (0x80-0x9f).
// eslint-disable-next-line no-control-regex
const CONTROL = /[\x00-\x08\x0b-\x1f\x7f-\x9f]/g;

const hex = (c: string) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`;

/** `s` with every control character but \n and \t written as `\xHH` (ESC → `\x1b`). */
export function escapeControl(s: string): string {
  CONTROL.lastIndex = 0;
  return CONTROL.test(s) ? s.replace(CONTROL, hex) : s;
}

/** A copy of `v` with every string in it escaped (objects and arrays deep); `v` itself when nothing needed it. */
export function escapeStrings<T>(v: T): T {
  if (typeof v === 'string') return escapeControl(v) as T;
  if (v === null || typeof v !== 'object') return v;
  if (Array.isArray(v)) {
    let changed = false;
    const out = v.map((x) => {
      const y = escapeStrings(x);
      if (y !== x) changed = true;
      return y;
    });
    return (changed ? out : v) as T;
  }
  let out: Record<string, unknown> | null = null;
  // (for…in, not Object.entries: a no-op sync prints an event per artifact, and this is on its way)
  for (const k in v) {
    if (!Object.hasOwn(v, k)) continue;
    const x = (v as Record<string, unknown>)[k];
    const y = escapeStrings(x);
    if (y !== x) (out ??= { ...(v as Record<string, unknown>) })[k] = y;
  }
  return (out ?? v) as T;
}

/**
 * One JSON line for `--json`: JSON already escapes C0; DEL and C1, which JSON leaves raw and
 * some terminals obey (U+009B is a CSI), are written as \u escapes too (the same JSON value).
 */
export function jsonLine(v: unknown): string {
  return JSON.stringify(v).replace(/[\x7f-\x9f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}
