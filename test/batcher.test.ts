/** The dynamic batcher of `dcam serve`: when batches start, how big they are, the bound on the queue. */
import { describe, expect, it } from 'vitest';
import { DynamicBatcher, QueueFullError } from '../src/serve/batcher.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A batcher whose "GPU" doubles numbers in `ms` and records the batches it saw. */
function doubler(o: { maxBatch: number; maxWaitMs: number; queueLimit?: number }, ms = 20) {
  const batches: number[][] = [];
  const b = new DynamicBatcher<number, number>(async (xs) => {
    batches.push(xs);
    await sleep(ms);
    return xs.map((x) => 2 * x);
  }, { queueLimit: 100, ...o });
  return { b, batches };
}

describe('dynamic batching', () => {
  it('a full batch starts at once; a partial one after the window; results in order', async () => {
    const { b, batches } = doubler({ maxBatch: 4, maxWaitMs: 1000 });
    const t0 = performance.now();
    const out = await Promise.all([1, 2, 3, 4].map((x) => b.submit(x)));
    expect(out).toEqual([2, 4, 6, 8]);
    expect(performance.now() - t0).toBeLessThan(500); // did not wait for the 1000 ms window
    expect(batches).toEqual([[1, 2, 3, 4]]);
    const { b: b2, batches: batches2 } = doubler({ maxBatch: 8, maxWaitMs: 50 });
    const t1 = performance.now();
    expect(await Promise.all([5, 6].map((x) => b2.submit(x)))).toEqual([10, 12]);
    expect(performance.now() - t1).toBeGreaterThanOrEqual(45);
    expect(batches2).toEqual([[5, 6]]);
  });

  it('one batch at a time; what arrives meanwhile forms the next, capped at maxBatch', async () => {
    const { b, batches } = doubler({ maxBatch: 3, maxWaitMs: 0 }, 40);
    const first = b.submit(0); // starts alone (window 0)
    await sleep(5);
    const rest = [1, 2, 3, 4, 5].map((x) => b.submit(x)); // arrive while the first runs
    expect(b.busy).toBe(true);
    expect(b.depth).toBe(5);
    await Promise.all([first, ...rest]);
    expect(batches).toEqual([[0], [1, 2, 3], [4, 5]]);
  });

  it('refuses past the queue limit at once, answers everything accepted, and drains', async () => {
    const { b } = doubler({ maxBatch: 2, maxWaitMs: 200, queueLimit: 2 });
    const accepted = [b.submit(1), b.submit(2)]; // a full batch: starts, the queue empties
    const waiting = [b.submit(3), b.submit(4)];
    await expect(b.submit(5)).rejects.toBeInstanceOf(QueueFullError);
    await b.drain();
    expect(await Promise.all([...accepted, ...waiting])).toEqual([2, 4, 6, 8]);
    expect(b.depth).toBe(0);
  });

  it('a failing batch rejects its own requests only', async () => {
    let calls = 0;
    const b = new DynamicBatcher<number, number>(async (xs) => {
      if (calls++ === 0) throw new Error('device lost');
      return xs;
    }, { maxBatch: 2, maxWaitMs: 0, queueLimit: 10 });
    const first = b.submit(1);
    const second = b.submit(2);
    await expect(first).rejects.toThrow(/device lost/);
    expect(await second).toBe(2);
  });
});
