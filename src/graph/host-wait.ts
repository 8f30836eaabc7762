/**
 * Waiting for the GPU without spinning a CPU core (Node).
 *
 * Dawn's Node binding settles its promises (mapAsync, onSubmittedWorkDone, popErrorScope) by polling the
 * device from a `setImmediate` loop for as long as any of them is pending, so the Node thread runs at
 * 100% while it waits. With a GPU that costs a core a server could use; with a software adapter
 * (lavapipe) it takes a core from the adapter's own worker threads, and on a two-core machine the
 * kernels ran 1.3-1.8x slower (inference at 256 px, batch 8: 2.1-2.5 s spinning, 1.2-1.8 s not).
 *
 * While a wait is pending, `waitQuietly` puts the thread to sleep between the binding's polls, in
 * slices of 1/20 of the time the youngest pending wait has waited (50 us to 4 ms): a short wait is seen
 * almost at once, a long one at most 5% late, and the thread is asleep nearly all the time (a turn of
 * the loop with the binding's poll costs ~0.15 ms of CPU on lavapipe, so the slices must not stay
 * short: 1 ms slices cost 11% of a 0.4 s wait, 4 ms ones 6-8%). The binding's polls and every other
 * callback still run on each turn of the event loop, and a turn that had other work to do (a server's
 * requests) does not sleep.
 *
 * Browsers do not poll from JavaScript, and forbid blocking their main thread: the runtime waits this
 * way only for a device that `createDevice` got from the `webgpu` package (RuntimeOptions.hostWait).
 */

/** How a thread waits for the GPU: sleeping between polls (`waitQuietly`), or as the implementation does. */
export type HostWait = 'sleep' | 'poll';

/** `Atomics.wait` on a cell nobody notifies is a sleep; Node allows it on the main thread. */
let sleepCell = typeof SharedArrayBuffer === 'function' ? new Int32Array(new SharedArrayBuffer(4)) : null;

const MIN_SLICE_MS = 0.05;
const MAX_SLICE_MS = 4;
/** The share of the time waited so far that the next sleep may add to the wait. */
const SLICE_FRACTION = 1 / 20;

/**
 * A turn of the event loop that took longer than this besides our sleep ran other callbacks (requests,
 * decoding): the thread has work, so that turn does not sleep.
 */
const BUSY_TURN_MS = 1;

let pending = 0;
let since = 0;
let ticking = false;
let lastTick = 0;

function tick(): void {
  if (pending === 0) {
    ticking = false;
    return;
  }
  const now = performance.now();
  if (now - lastTick < BUSY_TURN_MS) {
    try {
      if (sleepCell) Atomics.wait(sleepCell, 0, 0, Math.min(MAX_SLICE_MS, Math.max(MIN_SLICE_MS, (now - since) * SLICE_FRACTION)));
    } catch {
      sleepCell = null; // a thread that may not block (an Electron renderer): poll as the binding does
    }
  }
  lastTick = performance.now();
  setImmediate(tick);
}

/**
 * Settles as `promise` does; while it is pending the thread sleeps between the event loop's turns. For
 * promises of a device from Dawn's Node binding (`createDevice` in Node); anywhere else it only delays.
 */
export function waitQuietly<T>(promise: Promise<T>): Promise<T> {
  if (!sleepCell || typeof setImmediate !== 'function') return promise;
  // The slices follow the youngest wait: under a stream of overlapping waits (a busy server on a fast
  // GPU) each new one is seen as promptly as a lone one, not one long slice late.
  pending++;
  since = performance.now();
  if (!ticking) {
    ticking = true;
    setImmediate(tick);
  }
  return promise.finally(() => {
    pending--;
  });
}

/** Awaits a GPU promise as `mode` says. */
export function waitAs<T>(mode: HostWait, promise: Promise<T>): Promise<T> {
  return mode === 'sleep' ? waitQuietly(promise) : promise;
}
