// The bounded pool: at most `limit` at a time, results in order, and `inOrder` called with each
// result as soon as it and every one before it are in (verify reports outputs this way).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { pool } from '../../src/sync/concurrency.ts';

test('pool: results in order, at most `limit` running, inOrder called once per item in order as soon as its turn comes', async () => {
  const opened = new Map<number, () => void>();
  const started: number[] = [];
  const reported: number[] = [];
  let running = 0;
  let most = 0;
  const seen = (n: number) => new Promise<void>((resolve) => {
    const poll = () => (started.length >= n ? resolve() : setImmediate(poll));
    poll();
  });
  const run = pool([0, 1, 2, 3], 2, (i) => {
    started.push(i);
    running++;
    most = Math.max(most, running);
    return new Promise<number>((resolve) => opened.set(i, () => {
      running--;
      resolve(i * 10);
    }));
  }, (r, item) => reported.push(item, r));

  await seen(2);
  opened.get(1)!(); // 1 finishes before 0: nothing can be reported yet
  await seen(3);
  assert.deepEqual(reported, []);
  opened.get(0)!(); // now 0 and 1, in that order
  await seen(4);
  assert.deepEqual(reported, [0, 0, 1, 10]);
  opened.get(3)!();
  opened.get(2)!();
  assert.deepEqual(await run, [0, 10, 20, 30]);
  assert.deepEqual(reported, [0, 0, 1, 10, 2, 20, 3, 30]);
  assert.equal(most, 2);
});
