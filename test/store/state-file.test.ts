// The store's shared JSON maps (state/*.json): changes made while a flush is writing are kept,
// and flushes that overlap all land.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { StateFile } from '../../src/store/state-file.ts';
import { tmpDir } from '../helpers.ts';

const open = (dir: string) => new StateFile<number>(path.join(dir, 'state', 'map.json'), path.join(dir, 'locks', 'map.lock'));
const inFile = (dir: string) => JSON.parse(readFileSync(path.join(dir, 'state', 'map.json'), 'utf8')) as Record<string, number>;
const turn = () => new Promise<void>((resolve) => setImmediate(resolve));

test('state file: 300 values, each set and flushed while earlier flushes are still writing, are all in the file', async (t) => {
  const dir = tmpDir(t);
  const map = open(dir);
  // As a sync's downloads record their URLs: set, then flush without waiting for the others.
  const flushes: Array<Promise<void>> = [];
  for (let i = 0; i < 300; i++) {
    map.set(`k${i}`, i);
    flushes.push(map.flush());
    if (i % 3 === 0) await turn(); // let earlier flushes get part of the way (their lock, their write)
  }
  await Promise.all(flushes);
  const written = inFile(dir);
  assert.equal(Object.keys(written).length, 300, 'a value set while a flush was writing was lost');
  for (let i = 0; i < 300; i++) assert.equal(written[`k${i}`], i);
  // What another process sees: a fresh reader of the same file.
  assert.equal(open(dir).get('k299'), 299);
});

test('state file: a value changed again while its first flush writes keeps the later value, in memory and in the file', async (t) => {
  const dir = tmpDir(t);
  const map = open(dir);
  map.set('k', 1);
  const first = map.flush();
  map.set('k', 2);
  const second = map.flush();
  await Promise.all([first, second]);
  assert.equal(map.get('k'), 2);
  assert.equal(inFile(dir).k, 2);
  map.set('k', undefined);
  await map.flush();
  assert.deepEqual(inFile(dir), {});
});
