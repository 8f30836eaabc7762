/** Timing method shared by every case: warm-ups excluded, the queue drained around each run, median with min/max. */

export interface Timing {
  median: number;
  min: number;
  max: number;
  runs: number;
}

export interface TimingOptions {
  warmup: number;
  runs: number;
}

/**
 * Times `run` (which must finish its GPU work before resolving, e.g. by reading its result back or by
 * `drain`) in milliseconds. `drain` is awaited before each run so that earlier work is never counted.
 */
export async function time(run: () => unknown, drain: () => Promise<void>, o: TimingOptions): Promise<Timing> {
  for (let i = 0; i < o.warmup; i++) {
    await run();
    await drain();
  }
  const ms: number[] = [];
  for (let i = 0; i < o.runs; i++) {
    await drain();
    const t0 = performance.now();
    await run();
    await drain();
    ms.push(performance.now() - t0);
  }
  ms.sort((a, b) => a - b);
  const t = { median: ms[Math.floor(ms.length / 2)], min: ms[0], max: ms[ms.length - 1], runs: ms.length };
  if (!Number.isFinite(t.median) || t.median <= 0) throw new Error(`timing is not a positive finite number: ${t.median}`);
  return t;
}

export const fmtMs = (t: Timing, digits = 1): string => `${t.median.toFixed(digits)} (${t.min.toFixed(digits)}-${t.max.toFixed(digits)})`;

export function geomean(xs: readonly number[]): number {
  return Math.exp(xs.reduce((a, x) => a + Math.log(x), 0) / xs.length);
}

/** A peer's figure, or why there is none. */
export type PeerResult<T> = { ok: T } | { na: string };

export async function tryPeer<T>(what: string, f: () => Promise<T>): Promise<PeerResult<T>> {
  try {
    return { ok: await f() };
  } catch (e) {
    const msg = (e as Error).message.split('\n')[0];
    console.warn(`  ${what}: n/a (${msg})`);
    return { na: msg };
  }
}
