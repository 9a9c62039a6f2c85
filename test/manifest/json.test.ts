import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { escapePointer, JsonSyntaxError, MAX_DEPTH, parseJson, parseJsonFast, type Position } from '../../src/manifest/json.ts';

/** Parses `text`, expecting a JsonSyntaxError, and returns it. */
function syntaxError(text: string): JsonSyntaxError {
  let caught: unknown;
  try {
    parseJson(text);
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof JsonSyntaxError, `expected a JsonSyntaxError for ${JSON.stringify(text)}, got ${String(caught)}`);
  return caught;
}

const at = (line: number, column: number): Position => ({ line, column });

describe('parseJson: valid documents', () => {
  const documents: Record<string, string> = {
    'empty object': '{}',
    'empty array': '[]',
    'object with every value type': '{"s": "x", "n": 1, "t": true, "f": false, "z": null, "a": [], "o": {}}',
    'top-level scalars': '"just a string"',
    'top-level number': '42',
    'top-level null': 'null',
    'string escapes': String.raw`"quote \" backslash \\ slash \/ b\b f\f n\n r\r t\t"`,
    'unicode escapes incl. a surrogate pair': String.raw`"caf\u00e9 \ud83d\ude00 \u0000"`,
    'raw unicode text': '"Grüße 😀 日本語"',
    numbers: '[0, -0, 1, -1, 0.5, -1.5E-2, 1e3, 1E+3, 123456789012345, 1e400]',
    nested: '{"a": {"b": {"c": [1, [2, [3, {"d": [true, false, null]}]]]}}, "e": [{"f": "g"}, {}]}',
    'whitespace everywhere': ' \t\r\n{ \n "a" \t:\r\n [ 1 , 2 ] \n} \n',
    'keys that need pointer escaping': '{"a/b": 1, "m~n": 2, "": 3, " ": 4}',
  };
  for (const [name, text] of Object.entries(documents)) {
    test(`${name} parse exactly like JSON.parse`, () => {
      assert.deepEqual(parseJson(text).value, JSON.parse(text));
    });
  }

  test('a byte-order mark before the document is tolerated', () => {
    assert.deepEqual(parseJson('\ufeff{"a": 1}').value, { a: 1 });
  });

  test(
    'numbers longer than 64 characters parse like JSON.parse instead of failing',
    () => {
      const text = `[1.${'0'.repeat(70)}1]`;
      assert.deepEqual(parseJson(text).value, JSON.parse(text));
    },
  );
});

describe('parseJson: duplicate keys', () => {
  test('a duplicate top-level key is an error at the second key, not "last one wins"', () => {
    const err = syntaxError('{"a": 1, "a": 2}');
    assert.equal(err.pointer, '/a');
    assert.deepEqual(err.position, at(1, 10));
  });

  test('a duplicate key deep inside the document names its full pointer and line/column', () => {
    const text = [
      '{', //
      '  "artifacts": {',
      '    "x": {',
      '      "url": "https://a.example/x",',
      '      "url": "https://b.example/x"',
      '    }',
      '  }',
      '}',
    ].join('\n');
    const err = syntaxError(text);
    assert.equal(err.pointer, '/artifacts/x/url');
    assert.deepEqual(err.position, at(5, 7));
  });

  test('a duplicate artifact name is an error (two entries under one name)', () => {
    const err = syntaxError('{"artifacts": {\n  "ceos": {},\n  "ceos": {}\n}}');
    assert.equal(err.pointer, '/artifacts/ceos');
    assert.deepEqual(err.position, at(3, 3));
  });

  test('a duplicate key inside an object in an array names the array index', () => {
    const err = syntaxError('[{}, {"k": 1, "k": 2}]');
    assert.equal(err.pointer, '/1/k');
  });

  test('keys spelled differently but equal after unescaping are duplicates, and the pointer is escaped', () => {
    const err = syntaxError(String.raw`{"a/b": 1, "a\/b": 2}`);
    assert.equal(err.pointer, '/a~1b');
    const err2 = syntaxError(String.raw`{"a": 1, "\u0061": 2}`);
    assert.equal(err2.pointer, '/a');
  });

  test('the same key in sibling objects is not a duplicate', () => {
    assert.deepEqual(parseJson('{"a": {"k": 1}, "b": {"k": 2}}').value, { a: { k: 1 }, b: { k: 2 } });
  });
});

describe('parseJson: syntax errors carry the line and column of the mistake', () => {
  const cases: Array<[string, string, Position]> = [
    ['trailing comma in an object', '{\n  "a": 1,\n}', at(3, 1)],
    ['trailing comma in an array', '[1, 2,\n]', at(2, 1)],
    ['line comment', '{\n  // note\n  "a": 1\n}', at(2, 3)],
    ['block comment', '/* c */ {}', at(1, 1)],
    ['single-quoted key', "{'a': 1}", at(1, 2)],
    ['single-quoted value', "{\"a\": 'x'}", at(1, 7)],
    ['unquoted key', '{a: 1}', at(1, 2)],
    ['missing colon', '{"a" 1}', at(1, 6)],
    ['missing comma between members', '{"a": 1\n "b": 2}', at(2, 2)],
    ['unterminated string at end of file (points at its opening quote)', '["ok", "abc', at(1, 8)],
    ['raw newline inside a string', '{\n  "a": "abc\n"}', at(2, 12)],
    ['invalid escape', '["\\x41"]', at(1, 2)],
    ['garbage after the document', '{"a": 1}\n}', at(2, 1)],
    ['a second value after the document', '{} x', at(1, 4)],
    ['empty input', '', at(1, 1)],
    ['whitespace only', '\n\n  ', at(3, 3)],
    ['unclosed object', '{"a": 1', at(1, 8)],
    ['leading zero', '[01]', at(1, 3)],
    ['NaN', '[NaN]', at(1, 2)],
    ['bare minus', '[-]', at(1, 2)],
    ['misspelled literal', '[tru]', at(1, 2)],
  ];
  for (const [name, text, position] of cases) {
    test(`${name} is rejected at ${position.line}:${position.column}`, () => {
      assert.deepEqual(syntaxError(text).position, position);
    });
  }

  test('columns are counted from 1 on every line, also after CRLF line ends', () => {
    assert.deepEqual(syntaxError('{\r\n  "a": 1,\r\n  x\r\n}').position, at(3, 3));
  });
});

describe('nesting depth: MAX_DEPTH (256) levels of arrays and objects, no more', () => {
  const nested = (levels: number) => `${'[{"a":'.repeat(levels / 2)}1${'}]'.repeat(levels / 2)}`;
  const refusal = (parse: (text: string) => unknown, text: string): JsonSyntaxError => {
    try {
      parse(text);
    } catch (err) {
      if (err instanceof JsonSyntaxError) return err;
      throw err;
    }
    return assert.fail('parsed');
  };
  for (const [name, parse] of [['parseJson', parseJson], ['parseJsonFast', parseJsonFast]] as const) {
    test(`${name}: ${MAX_DEPTH} levels parse; ${MAX_DEPTH + 2} are refused at the first bracket too deep`, () => {
      assert.equal(MAX_DEPTH, 256);
      assert.deepEqual(JSON.stringify((parse(nested(MAX_DEPTH)) as { value: unknown }).value), nested(MAX_DEPTH));
      const err = refusal(parse, nested(MAX_DEPTH + 2));
      assert.match(err.message, /nested more than 256 levels deep/);
      // The 257th level: the 129th '[', after 128 × '[{"a":' (6 characters each).
      assert.deepEqual(err.position, at(1, 128 * 6 + 1));
    });
  }
});

describe('parseJson: __proto__ and prototype pollution', () => {
  test('"__proto__" is kept as an own, plain property and does not change any prototype', () => {
    const text = '{"__proto__": {"polluted": true}, "nested": {"__proto__": {"polluted": true}}}';
    const value = parseJson(text).value as Record<string, Record<string, unknown>>;
    assert.equal(Object.getPrototypeOf(value), Object.prototype);
    assert.deepEqual(Object.keys(value), ['__proto__', 'nested']);
    assert.ok(Object.prototype.hasOwnProperty.call(value, '__proto__'));
    assert.deepEqual(Object.getOwnPropertyDescriptor(value, '__proto__')?.value, { polluted: true });
    assert.equal(Object.getPrototypeOf(value.nested), Object.prototype);
    assert.equal(value.polluted, undefined);
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
    assert.deepEqual(value, JSON.parse(text));
  });

  test('a repeated "__proto__" key is still a duplicate', () => {
    assert.equal(syntaxError('{"__proto__": 1, "__proto__": 2}').pointer, '/__proto__');
  });
});

describe('parseJson: positions', () => {
  test('maps every JSON pointer to the line and column where its value starts', () => {
    const text = '{\n  "a": [1, {"b": null}],\n  "c/d": "x"\n}';
    const { positions } = parseJson(text);
    assert.deepEqual(
      Object.fromEntries(positions),
      {
        '': at(1, 1),
        '/a': at(2, 8),
        '/a/0': at(2, 9),
        '/a/1': at(2, 12),
        '/a/1/b': at(2, 18),
        '/c~1d': at(3, 10),
      },
    );
  });

  test('escapePointer escapes "~" before "/" (RFC 6901)', () => {
    assert.equal(escapePointer('a~/b'), 'a~0~1b');
    assert.equal(escapePointer('~1'), '~01');
  });
});
