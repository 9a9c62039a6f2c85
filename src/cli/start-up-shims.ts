// Start-up shims: light stand-ins, inside the CLI bundle only (scripts/build.mjs aliases both
// `string-width` and `assert` to this module), for two packages yargs loads on every start to
// lay out its help. test/cli/help.test.ts renders every help screen with them and with the real
// packages, and checks that they agree. Measured, on Node 20 and 24 (see the README's notes):
// - string-width builds an Intl.Segmenter and a large emoji regex when it loads, only to
//   measure help text. This is the classic wcwidth rule: ANSI escapes and combining marks take
//   no column, East Asian wide and fullwidth characters and emoji take two, the rest one.
// - node:assert: yargs imports two functions from it.
const ANSI = /\x1b\[[0-9;]*[A-Za-z]|\x1b\][^\x07]*\x07/g;
const ZERO = /[\p{Mn}\p{Me}\p{Cf}\u200b]/u;

function isWide(cp: number): boolean {
  return (
    (cp >= 0x1100 && cp <= 0x115f) ||
    (cp >= 0x2e80 && cp <= 0xa4cf && cp !== 0x303f) ||
    (cp >= 0xac00 && cp <= 0xd7a3) ||
    (cp >= 0xf900 && cp <= 0xfaff) ||
    (cp >= 0xfe30 && cp <= 0xfe4f) ||
    (cp >= 0xff00 && cp <= 0xff60) ||
    (cp >= 0xffe0 && cp <= 0xffe6) ||
    (cp >= 0x1f300 && cp <= 0x1f64f) ||
    (cp >= 0x1f900 && cp <= 0x1f9ff) ||
    (cp >= 0x20000 && cp <= 0x3fffd)
  );
}

export default function stringWidth(input: string, options: { countAnsiEscapeCodes?: boolean } = {}): number {
  if (typeof input !== 'string' || input.length === 0) return 0;
  const s = options.countAnsiEscapeCodes ? input : input.replace(ANSI, '');
  let width = 0;
  for (const ch of s) {
    const cp = ch.codePointAt(0)!;
    if (cp < 0x20 || (cp >= 0x7f && cp < 0xa0)) continue;
    if (cp < 0x300) {
      width++;
      continue;
    }
    if (ZERO.test(ch)) continue;
    width += isWide(cp) ? 2 : 1;
  }
  return width;
}

export function strictEqual(actual: unknown, expected: unknown, message?: string): void {
  if (!Object.is(actual, expected)) throw new Error(message ?? `expected ${String(expected)}, got ${String(actual)}`);
}
export function notStrictEqual(actual: unknown, expected: unknown, message?: string): void {
  if (Object.is(actual, expected)) throw new Error(message ?? `expected a value other than ${String(expected)}`);
}
