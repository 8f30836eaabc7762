/**
 * Image decoding off the event loop, for bytes nobody vouches for (`dcam serve`'s uploads). Each image is
 * decoded in a worker thread with a heap limit and a deadline: a file that takes too long costs its
 * worker (terminated and replaced) and its request a 4xx, and one that exhausts the worker's heap the
 * same; the server's own thread never waits, so health checks, other requests and SIGTERM are answered
 * meanwhile. The decoders are bounded themselves (src/data); this is the second wall, for whatever
 * they do not foresee.
 */
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { DecodeReply, DecodeRequest } from './decode-worker.js';

export interface DecodePoolOptions {
  /** Worker threads (default 2). */
  workers: number;
  /** Most milliseconds one image may take to decode (default 5,000). */
  timeoutMs: number;
  /** Each worker's JavaScript heap limit in MiB (default 256). */
  heapMb: number;
}

export const DECODE_POOL_DEFAULTS: DecodePoolOptions = { workers: 2, timeoutMs: 5000, heapMb: 256 };

/** Why an image was not decoded: the file's fault (`status` 400 or 413 to a client). */
export class DecodeRefusedError extends Error {
  constructor(
    message: string,
    readonly status: 400 | 413,
  ) {
    super(message);
  }
}

export interface DecodedImage {
  width: number;
  height: number;
  data: Uint8Array;
}

interface Task {
  id: number;
  bytes: Uint8Array;
  maxPixels: number;
  resolve: (img: DecodedImage) => void;
  reject: (e: Error) => void;
}

interface Slot {
  worker: Worker;
  ready: Promise<void>;
  /** Started (its decoders loaded): only then is it given work, so its start-up never counts against a deadline. */
  started: boolean;
  task: Task | null;
  timer: ReturnType<typeof setTimeout> | null;
}

/**
 * How to start the worker: the compiled module beside this one, or, when running from the TypeScript
 * sources (a checkout, the tests), the source through tsx's loader, registered in the worker first.
 */
function workerSpec(): { source: string | URL; eval: boolean } {
  const here = import.meta.url;
  if (!here.endsWith('.ts')) return { source: new URL('./decode-worker.js', here), eval: false };
  const api = createRequire(here).resolve('tsx/esm/api').replace(/\.cjs$/, '.mjs');
  const target = new URL('./decode-worker.ts', here).href;
  return { source: `import(${JSON.stringify(pathToFileURL(api).href)}).then(({ register }) => { register(); return import(${JSON.stringify(target)}); })`, eval: true };
}

export class DecodePool {
  private readonly slots: Slot[] = [];
  private readonly queue: Task[] = [];
  private nextId = 1;
  private closed = false;
  /** Workers in a row that died before they started: past a few, the pool gives up (a respawn storm otherwise). */
  private failedStarts = 0;
  private broken: Error | null = null;
  private readonly whenBroken: Promise<never>;
  private breakPool!: (e: Error) => void;
  /** Workers replaced after a deadline or a heap overflow (for metrics and tests). */
  replaced = 0;

  constructor(readonly options: DecodePoolOptions = DECODE_POOL_DEFAULTS) {
    this.whenBroken = new Promise<never>((_, reject) => (this.breakPool = reject));
    this.whenBroken.catch(() => {}); // surfaced by ready() and decode()
    for (let i = 0; i < options.workers; i++) this.slots.push(this.spawn());
  }

  /** Resolves when every worker has started (its decoders loaded); rejects if they cannot start. */
  async ready(): Promise<void> {
    await Promise.race([Promise.all(this.slots.map((s) => s.ready)), this.whenBroken]);
  }

  /** Decodes `bytes` (PNG, JPEG, BMP, TIFF) to RGB; rejects with DecodeRefusedError for a file refused. */
  decode(bytes: Uint8Array, maxPixels: number): Promise<DecodedImage> {
    if (this.broken) return Promise.reject(this.broken);
    if (this.closed) return Promise.reject(new Error('the decode pool is closed'));
    return new Promise((resolve, reject) => {
      this.queue.push({ id: this.nextId++, bytes, maxPixels, resolve, reject });
      this.dispatch();
    });
  }

  /** Stops the workers; images queued or in work are rejected. */
  async close(): Promise<void> {
    this.closed = true;
    for (const t of this.queue.splice(0)) t.reject(new Error('the decode pool is closed'));
    await Promise.all(this.slots.map((s) => {
      if (s.timer) clearTimeout(s.timer);
      s.task?.reject(new Error('the decode pool is closed'));
      s.task = null;
      return s.worker.terminate();
    }));
  }

  private spawn(): Slot {
    const { source, eval: isEval } = workerSpec();
    const worker = new Worker(source, { eval: isEval, resourceLimits: { maxOldGenerationSizeMb: this.options.heapMb, maxYoungGenerationSizeMb: 32 } });
    worker.unref(); // an idle pool never keeps the process alive
    let started!: () => void;
    const slot: Slot = { worker, ready: new Promise((r) => (started = r)), started: false, task: null, timer: null };
    worker.on('message', (m: DecodeReply | { ready: true }) => {
      if ('ready' in m) {
        slot.started = true;
        this.failedStarts = 0;
        started();
        this.dispatch();
        return;
      }
      const task = slot.task;
      if (!task || task.id !== m.id) return;
      this.finish(slot);
      if ('error' in m) task.reject(new DecodeRefusedError(m.error, m.tooLarge ? 413 : 400));
      else task.resolve({ width: m.width, height: m.height, data: m.data });
    });
    worker.on('error', (e: Error & { code?: string }) => {
      const task = slot.task;
      if (task) {
        const heap = e.code === 'ERR_WORKER_OUT_OF_MEMORY';
        task.reject(heap ? new DecodeRefusedError(`image: decoding needed more than the ${this.options.heapMb} MiB a worker may use (refused)`, 413) : e);
      }
      this.replace(slot, e);
    });
    worker.on('exit', () => {
      // a worker that ended by itself (not replaced, not closed) takes its task with it
      if (slot.task && this.slots.includes(slot) && !this.closed) {
        slot.task.reject(new Error('the decoding worker stopped'));
        this.replace(slot);
      } else if (!slot.started && this.slots.includes(slot) && !this.closed) {
        this.replace(slot, new Error('it exited before it started'));
      }
    });
    return slot;
  }

  private dispatch(): void {
    for (const slot of this.slots) {
      if (!slot.started || slot.task || this.queue.length === 0) continue;
      const task = this.queue.shift()!;
      slot.task = task;
      slot.timer = setTimeout(() => {
        task.reject(new DecodeRefusedError(`image: not decoded within ${this.options.timeoutMs} ms (refused)`, 400));
        this.replace(slot);
      }, this.options.timeoutMs);
      const request: DecodeRequest = { id: task.id, bytes: task.bytes, maxPixels: task.maxPixels };
      slot.worker.postMessage(request);
    }
  }

  private finish(slot: Slot): void {
    if (slot.timer) clearTimeout(slot.timer);
    slot.timer = null;
    slot.task = null;
    this.dispatch();
  }

  /** Terminates a worker (stuck, or out of memory) and starts another in its place. */
  private replace(slot: Slot, why?: Error): void {
    if (slot.timer) clearTimeout(slot.timer);
    const i = this.slots.indexOf(slot);
    if (i < 0) return;
    this.replaced++;
    slot.task = null;
    void slot.worker.terminate();
    if (this.closed) return;
    if (!slot.started && ++this.failedStarts >= 3) {
      this.broken = new Error(`image decoding workers cannot start${why ? ` (${why.message})` : ''}: check --decode-heap-mb`);
      this.closed = true;
      for (const t of this.queue.splice(0)) t.reject(this.broken);
      this.breakPool(this.broken);
      return;
    }
    this.slots[i] = this.spawn();
    this.dispatch();
  }
}
