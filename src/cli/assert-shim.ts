// Replaces node:assert inside the bundle (see scripts/build.mjs): yargs imports two functions
// from it, and loading node:assert costs ~5 ms on every start.
export function strictEqual(actual: unknown, expected: unknown, message?: string): void {
  if (!Object.is(actual, expected)) throw new Error(message ?? `expected ${String(expected)}, got ${String(actual)}`);
}
export function notStrictEqual(actual: unknown, expected: unknown, message?: string): void {
  if (Object.is(actual, expected)) throw new Error(message ?? `expected a value other than ${String(expected)}`);
}
export default { strictEqual, notStrictEqual };
