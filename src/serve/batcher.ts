/**
 * Dynamic batching: requests that arrive within a short window go through the GPU together. A batch
 * starts when `maxBatch` items wait, or `maxWaitMs` after the first of them arrived, whichever is first;
 * one batch runs at a time (the GPU is one queue anyway), and items arriving meanwhile form the next.
 * The queue is bounded: past `queueLimit` waiting items, `submit` refuses at once (the server answers
 * 503 with Retry-After) instead of letting memory grow with the backlog.
 */

export class QueueFullError extends Error {}

export interface BatcherOptions {
  maxBatch: number;
  maxWaitMs: number;
  queueLimit: number;
}

interface Waiting<I, O> {
  item: I;
  arrived: number;
  resolve: (out: O) => void;
  reject: (e: unknown) => void;
}

export class DynamicBatcher<I, O> {
  private readonly queue: Array<Waiting<I, O>> = [];
  private timer: ReturnType<typeof setTimeout> | null = null;
  private running: Promise<void> | null = null;
  /** Sizes of the batches run so far are reported here (metrics). */
  onBatch: ((size: number, ms: number) => void) | null = null;

  constructor(
    private readonly run: (items: I[]) => Promise<O[]>,
    readonly options: BatcherOptions,
  ) {
    if (!(options.maxBatch >= 1) || !(options.maxWaitMs >= 0) || !(options.queueLimit >= 1)) {
      throw new Error(`batcher: maxBatch >= 1, maxWaitMs >= 0 and queueLimit >= 1, got ${JSON.stringify(options)}`);
    }
  }

  /** Items waiting for a batch (not counting the one running). */
  get depth(): number {
    return this.queue.length;
  }

  get busy(): boolean {
    return this.running !== null;
  }

  submit(item: I): Promise<O> {
    if (this.queue.length >= this.options.queueLimit) {
      return Promise.reject(new QueueFullError(`the queue is full (${this.options.queueLimit} requests waiting)`));
    }
    return new Promise<O>((resolve, reject) => {
      this.queue.push({ item, arrived: performance.now(), resolve, reject });
      this.schedule();
    });
  }

  /** Resolves when every item submitted so far has been answered. */
  async drain(): Promise<void> {
    while (this.running || this.queue.length > 0) {
      if (!this.running) this.startBatch();
      await this.running;
    }
  }

  /** Starts a batch if one is full or its oldest item has waited its window; else sets the timer for it. */
  private schedule(): void {
    if (this.running || this.queue.length === 0) return; // a running batch calls this when it ends
    const waited = performance.now() - this.queue[0].arrived;
    if (this.queue.length >= this.options.maxBatch || waited >= this.options.maxWaitMs) this.startBatch();
    else this.timer ??= setTimeout(() => this.startBatch(), this.options.maxWaitMs - waited);
  }

  private startBatch(): void {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    if (this.running || this.queue.length === 0) return;
    const batch = this.queue.splice(0, this.options.maxBatch);
    const t0 = performance.now();
    this.running = (async () => {
      try {
        const out = await this.run(batch.map((w) => w.item));
        if (out.length !== batch.length) throw new Error(`batcher: ${out.length} results for ${batch.length} items`);
        batch.forEach((w, i) => w.resolve(out[i]));
      } catch (e) {
        for (const w of batch) w.reject(e);
      } finally {
        this.onBatch?.(batch.length, performance.now() - t0);
        this.running = null;
        this.schedule(); // what arrived while the GPU was busy has been waiting already

      }
    })();
  }
}
