/**
 * A strict JSON parser that, unlike JSON.parse, rejects duplicate object keys and
 * remembers where each value starts, so errors can name a line and column.
 */
export interface Position {
  line: number; // 1-based
  column: number; // 1-based
}

export class JsonSyntaxError extends Error {
  constructor(
    message: string,
    readonly position: Position,
    readonly pointer?: string,
  ) {
    super(message);
  }
}

export interface ParsedJson {
  value: unknown;
  /** JSON pointer ('' for the root) → where its value starts. */
  positions: Map<string, Position>;
}

export function escapePointer(segment: string): string {
  return segment.replace(/~/g, '~0').replace(/\//g, '~1');
}

const LITERAL = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?|true|false|null/y;

export function parseJson(text: string): ParsedJson {
  let i = 0;
  const positions = new Map<string, Position>();
  // Line starts, for turning offsets into line/column only when needed.
  const lineStarts = [0];
  for (let k = 0; k < text.length; k++) if (text.charCodeAt(k) === 10) lineStarts.push(k + 1);

  const posAt = (offset: number): Position => {
    let lo = 0;
    let hi = lineStarts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (lineStarts[mid]! <= offset) lo = mid;
      else hi = mid - 1;
    }
    return { line: lo + 1, column: offset - lineStarts[lo]! + 1 };
  };
  const fail = (message: string, at = i, pointer?: string): never => {
    throw new JsonSyntaxError(message, posAt(at), pointer);
  };
  const ws = () => {
    for (;;) {
      const c = text.charCodeAt(i);
      if (c === 32 || c === 10 || c === 13 || c === 9) i++;
      else break;
    }
  };
  const describe = (at: number) => (at >= text.length ? 'end of file' : JSON.stringify(text[at]));

  const parseString = (): string => {
    const start = i;
    i++; // opening quote
    let simple = true;
    for (;;) {
      if (i >= text.length) fail('unterminated string', start);
      const c = text.charCodeAt(i);
      if (c === 34) break;
      if (c < 0x20) fail('control character in string');
      if (c === 92) {
        simple = false;
        i += 2;
        continue;
      }
      i++;
    }
    i++;
    const raw = text.slice(start, i);
    if (simple) return raw.slice(1, -1);
    try {
      return JSON.parse(raw) as string;
    } catch {
      return fail('invalid escape in string', start);
    }
  };

  /** `depth`: the arrays and objects around this value. */
  const parseValue = (pointer: string, depth: number): unknown => {
    ws();
    positions.set(pointer, posAt(i));
    const c = text[i];
    if ((c === '{' || c === '[') && depth >= MAX_DEPTH) fail(`nested more than ${MAX_DEPTH} levels deep`);
    if (c === '{') {
      i++;
      const obj: Record<string, unknown> = {};
      const seen = new Set<string>();
      ws();
      if (text[i] === '}') {
        i++;
        return obj;
      }
      for (;;) {
        ws();
        if (text[i] !== '"') fail(`expected a property name in double quotes, found ${describe(i)}`);
        const keyAt = i;
        const key = parseString();
        const child = `${pointer}/${escapePointer(key)}`;
        if (seen.has(key)) fail(`duplicate key ${JSON.stringify(key)}`, keyAt, child);
        seen.add(key);
        ws();
        if (text[i] !== ':') fail(`expected ':' after ${JSON.stringify(key)}, found ${describe(i)}`);
        i++;
        const v = parseValue(child, depth + 1);
        Object.defineProperty(obj, key, { value: v, enumerable: true, writable: true, configurable: true });
        ws();
        if (text[i] === ',') {
          i++;
          continue;
        }
        if (text[i] === '}') {
          i++;
          return obj;
        }
        fail(`expected ',' or '}', found ${describe(i)}`);
      }
    }
    if (c === '[') {
      i++;
      const arr: unknown[] = [];
      ws();
      if (text[i] === ']') {
        i++;
        return arr;
      }
      for (;;) {
        arr.push(parseValue(`${pointer}/${arr.length}`, depth + 1));
        ws();
        if (text[i] === ',') {
          i++;
          continue;
        }
        if (text[i] === ']') {
          i++;
          return arr;
        }
        fail(`expected ',' or ']', found ${describe(i)}`);
      }
    }
    if (c === '"') return parseString();
    LITERAL.lastIndex = i;
    const m = LITERAL.exec(text);
    if (!m) return fail(`unexpected ${describe(i)}`);
    i += m[0].length;
    return JSON.parse(m[0]);
  };

  if (text.charCodeAt(0) === 0xfeff) i = 1; // tolerate a BOM
  const value = parseValue('', 0);
  ws();
  if (i < text.length) fail(`unexpected ${describe(i)} after the end of the document`);
  return { value, positions };
}

/** Thrown by countKeys at an array or object nested deeper than MAX_DEPTH (checkDepth then says where). */
class TooDeep extends Error {}

/** Number of object keys in a parsed JSON value (`depth`: the arrays and objects around it); throws TooDeep beyond MAX_DEPTH. */
function countKeys(value: unknown, depth: number): number {
  if (value === null || typeof value !== 'object') return 0;
  if (depth >= MAX_DEPTH) throw new TooDeep();
  let n = 0;
  if (Array.isArray(value)) {
    for (const v of value) n += countKeys(v, depth + 1);
    return n;
  }
  for (const k of Object.keys(value)) n += 1 + countKeys((value as Record<string, unknown>)[k], depth + 1);
  return n;
}

/** Number of keys written in a JSON text that JSON.parse accepted. */
function countKeysInText(text: string): number {
  // In valid JSON every quote outside a string opens one, so hopping from string to string
  // stays aligned; a string followed by ':' is a key. indexOf is far faster than a regex here.
  let n = 0;
  let i = text.indexOf('"');
  while (i !== -1) {
    let end = text.indexOf('"', i + 1);
    for (;;) {
      let slashes = 0;
      while (text.charCodeAt(end - 1 - slashes) === 92) slashes++;
      if (slashes % 2 === 0) break;
      end = text.indexOf('"', end + 1);
    }
    let k = end + 1;
    for (let c = text.charCodeAt(k); c === 32 || c === 10 || c === 13 || c === 9; c = text.charCodeAt(++k));
    if (text.charCodeAt(k) === 58) n++;
    i = text.indexOf('"', k);
  }
  return n;
}

/** Arrays and objects nested deeper than this are refused (far deeper than any manifest or configuration needs). */
export const MAX_DEPTH = 256;

/** Throws a JsonSyntaxError at the first bracket nested deeper than MAX_DEPTH (strings skipped); a linear scan, run only for a document found too deep. */
function checkDepth(text: string): void {
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 34) {
      // Skip the string: to the next quote not escaped.
      for (i++; i < text.length && text.charCodeAt(i) !== 34; i++) if (text.charCodeAt(i) === 92) i++;
    } else if (c === 91 || c === 123) {
      if (++depth > MAX_DEPTH) {
        const before = text.slice(0, i);
        const line = before.split('\n').length;
        throw new JsonSyntaxError(`nested more than ${MAX_DEPTH} levels deep`, { line, column: i - before.lastIndexOf('\n') });
      }
    } else if (c === 93 || c === 125) depth--;
  }
}

/**
 * The fast path for the common case: JSON.parse (native) plus a check that no key was
 * written twice. Only a document that fails either falls back to the positional parser,
 * which finds and locates the problem. Positions are computed lazily.
 */
export function parseJsonFast(text: string): { value: unknown; positions: () => Map<string, Position> } {
  try {
    return parseJsonFastUnchecked(text);
  } catch (err) {
    // Nested deeper than MAX_DEPTH (found by the key count's walk), or deep enough to overflow
    // a recursive walk (50,000 levels of [): found and named here, at no cost to the common case.
    if (err instanceof TooDeep || err instanceof RangeError) checkDepth(text);
    if (err instanceof TooDeep) throw new JsonSyntaxError(`nested more than ${MAX_DEPTH} levels deep`, { line: 1, column: 1 });
    throw err;
  }
}

function parseJsonFastUnchecked(text: string): { value: unknown; positions: () => Map<string, Position> } {
  let value: unknown;
  try {
    value = JSON.parse(text.charCodeAt(0) === 0xfeff ? text.slice(1) : text);
  } catch {
    const full = parseJson(text); // throws JsonSyntaxError with a position
    return { value: full.value, positions: () => full.positions };
  }
  if (countKeysInText(text) !== countKeys(value, 0)) {
    const full = parseJson(text); // throws on the duplicate key, with its position
    return { value: full.value, positions: () => full.positions };
  }
  let positions: Map<string, Position> | null = null;
  return { value, positions: () => (positions ??= parseJson(text).positions) };
}
