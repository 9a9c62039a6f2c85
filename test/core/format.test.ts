// Sizes as people write them (--max-size, HOARD_MAX_SIZE), and back.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatBytes, parseSize } from '../../src/core/format.ts';

test('parseSize: plain bytes, decimal units (powers of 1000) and binary units (powers of 1024), any case, optional space', () => {
  const cases: Array<[string | number, number]> = [
    ['0', 0], ['1000', 1000], ['1000B', 1000], ['1000 b', 1000], [4096, 4096],
    ['5KB', 5_000], ['5kb', 5_000], ['1.5MB', 1_500_000], ['5GB', 5_000_000_000], ['2 TB', 2e12],
    ['5KiB', 5 * 1024], ['1.5 MiB', 1.5 * 1024 ** 2], ['2GiB', 2 * 1024 ** 3], ['1tib', 1024 ** 4], ['.5GB', 500_000_000],
  ];
  for (const [input, bytes] of cases) assert.equal(parseSize(input), bytes, String(input));
});

test('parseSize: anything else is null (the CLI turns that into exit 2)', () => {
  for (const bad of ['', 'GB', '5 gigs', '5G', '-1GB', '1e9', '5GB extra', '1,5GB', 'Infinity', '9'.repeat(30), -5, Number.NaN]) {
    assert.equal(parseSize(bad), null, String(bad));
  }
});

test('formatBytes stays binary, as ls -lh', () => {
  assert.equal(formatBytes(25_000), '24.4 KiB');
  assert.equal(formatBytes(1023), '1023 B');
});
