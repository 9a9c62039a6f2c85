// Small concurrency helpers of the sync pipeline: a counting semaphore (--jobs transfers, blob
// steps, output steps), a run-once wrapper, and a bounded pool that keeps results in order.

/** At most `n` holders at a time; acquire() resolves with the function that releases. */
export function semaphore(n: number): { acquire(): Promise<() => void> } {
  let free = n;
  // A queue of thousands (every entry waiting for an output step) is not shifted: O(1) each.
  const queue: Array<(() => void) | undefined> = [];
  let head = 0;
  const release = () => {
    const next = queue[head];
    if (next) {
      queue[head++] = undefined;
      if (head === queue.length) queue.length = head = 0;
      next();
    } else free++;
  };
  return {
    acquire() {
      if (free > 0) {
        free--;
        return Promise.resolve(once(release));
      }
      return new Promise((resolve) => queue.push(() => resolve(once(release))));
    },
  };
}

export type Semaphore = ReturnType<typeof semaphore>;

/** `fn`, called at most once however often the result is called. */
export function once(fn: () => void): () => void {
  let done = false;
  return () => {
    if (!done) {
      done = true;
      fn();
    }
  };
}

/**
 * Runs `fn` over `items` with at most `limit` at a time, keeping order in the results.
 * `inOrder`: called with each result as soon as it and every one before it are in.
 */
export async function pool<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>, inOrder?: (result: R, item: T) => void): Promise<R[]> {
  const results = new Array<R>(items.length);
  const ready = inOrder ? new Array<boolean>(items.length).fill(false) : null;
  let next = 0;
  let reported = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i]!);
      if (ready) {
        ready[i] = true;
        for (; reported < items.length && ready[reported]; reported++) inOrder!(results[reported]!, items[reported]!);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  return results;
}
