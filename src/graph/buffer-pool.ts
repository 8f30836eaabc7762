/**
 * Size-bucketed pool of storage buffers.
 *
 * A released buffer may still be read or written by commands that are recorded but not yet submitted;
 * `queue.writeBuffer` on a recycled buffer would then overtake those commands on the queue timeline.
 * So a released buffer waits in `pending` until the next submit, and only then becomes reusable.
 *
 * Reuse is deterministic: a bucket hands out its oldest free buffer (lowest creation number), not the
 * last one released. A training step then gets the same buffer for the same tensor every step (the free
 * set is the same at each step's start), which is what lets bind groups be cached by buffer. Handing out
 * the last released one permuted the buffers from step to step and left two thirds of a step's bind
 * groups to be created anew every time.
 */

const ALIGN = 256;

/** Rounds a byte size up to a bucket: multiples of 256 B, then four buckets per power of two. */
export function bucketSize(bytes: number): number {
  const b = Math.max(ALIGN, Math.ceil(bytes / ALIGN) * ALIGN);
  if (b <= 4 * ALIGN) return b;
  const pow = 2 ** Math.floor(Math.log2(b));
  const step = pow / 4;
  return Math.ceil(b / step) * step;
}

export interface MemoryStats {
  /** Bytes of buffers currently held by tensors (or other live users). */
  liveBytes: number;
  liveBuffers: number;
  /** Bytes of buffers kept for reuse (free or waiting for the next submit). */
  pooledBytes: number;
  pooledBuffers: number;
  /** Largest `liveBytes` seen since the last `resetPeak()`. */
  peakLiveBytes: number;
}

export class BufferPool {
  /** Free buffers per bucket, sorted by creation number, highest first (`pop` gives the oldest). */
  private readonly free = new Map<number, GPUBuffer[]>();
  private readonly born = new WeakMap<GPUBuffer, number>();
  private births = 0;
  private pending: GPUBuffer[] = [];
  /** Buffers bound by live recordings (graph/recording.ts), with how many recordings bind each. */
  private readonly reserved = new Map<GPUBuffer, number>();
  /** Reserved buffers no tensor holds: kept for their recordings, never handed out. */
  private readonly held = new Set<GPUBuffer>();
  private live = 0;
  private liveCount = 0;
  private pooled = 0;
  private pooledCount = 0;
  private peak = 0;

  constructor(
    private readonly device: GPUDevice,
    private readonly maxBufferSize: number,
    /** Told about each buffer before it is destroyed (the bind group cache drops its groups). */
    private readonly onDestroy: (buffer: GPUBuffer) => void = () => {},
    private readonly usage: GPUBufferUsageFlags = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST,
  ) {}

  acquire(bytes: number, what = 'tensor'): GPUBuffer {
    const size = bucketSize(bytes);
    if (size > this.maxBufferSize) {
      throw new Error(
        `${what}: a buffer of ${bytes} bytes exceeds the device limit maxBufferSize = ${this.maxBufferSize} bytes`,
      );
    }
    const list = this.free.get(size);
    let buffer = list?.pop();
    if (buffer) {
      this.pooled -= size;
      this.pooledCount--;
    } else {
      buffer = this.device.createBuffer({ size, usage: this.usage, label: what });
      this.born.set(buffer, this.births++);
    }
    this.live += size;
    this.liveCount++;
    if (this.live > this.peak) this.peak = this.live;
    return buffer;
  }

  /** Hands a buffer back; it becomes reusable after the next submit (see `onSubmit`). */
  release(buffer: GPUBuffer): void {
    this.live -= buffer.size;
    this.liveCount--;
    this.pooled += buffer.size;
    this.pooledCount++;
    if (this.reserved.has(buffer)) this.held.add(buffer);
    else this.pending.push(buffer);
  }

  /**
   * Keeps `buffers` for a recording that binds them: those free now leave the free lists, and those a
   * tensor holds now are kept when it lets them go, so no other tensor is handed a buffer a replay writes.
   */
  reserve(buffers: Iterable<GPUBuffer>): void {
    for (const b of buffers) {
      const count = this.reserved.get(b) ?? 0;
      this.reserved.set(b, count + 1);
      if (count > 0) continue;
      const list = this.free.get(b.size);
      const i = list?.indexOf(b) ?? -1;
      if (i >= 0) list!.splice(i, 1);
      const j = i >= 0 ? -1 : this.pending.indexOf(b);
      if (j >= 0) this.pending.splice(j, 1);
      if (i >= 0 || j >= 0) this.held.add(b);
    }
  }

  /** A recording is done with `buffers`: those no tensor holds become reusable after the next submit. */
  unreserve(buffers: Iterable<GPUBuffer>): void {
    for (const b of buffers) {
      const count = this.reserved.get(b) ?? 0;
      if (count > 1) {
        this.reserved.set(b, count - 1);
        continue;
      }
      this.reserved.delete(b);
      if (this.held.delete(b)) this.pending.push(b);
    }
  }

  /** Called right after `queue.submit`: buffers released before it may now be reused. */
  onSubmit(): void {
    if (this.pending.length === 0) return;
    const touched = new Set<GPUBuffer[]>();
    for (const b of this.pending) {
      let list = this.free.get(b.size);
      if (!list) this.free.set(b.size, (list = []));
      list.push(b);
      touched.add(list);
    }
    this.pending = [];
    const born = (b: GPUBuffer) => this.born.get(b) ?? 0;
    for (const list of touched) list.sort((a, b) => born(b) - born(a));
  }

  /** Destroys every free buffer (pending ones stay until they are safe to reuse). */
  trim(): void {
    for (const list of this.free.values()) {
      for (const b of list) {
        this.pooled -= b.size;
        this.pooledCount--;
        this.onDestroy(b);
        b.destroy();
      }
    }
    this.free.clear();
  }

  stats(): MemoryStats {
    return {
      liveBytes: this.live,
      liveBuffers: this.liveCount,
      pooledBytes: this.pooled,
      pooledBuffers: this.pooledCount,
      peakLiveBytes: this.peak,
    };
  }

  resetPeak(): void {
    this.peak = this.live;
  }

  destroy(): void {
    this.trim();
    for (const b of [...this.pending, ...this.held]) {
      this.onDestroy(b);
      b.destroy();
    }
    this.pending = [];
    this.held.clear();
    this.reserved.clear();
  }
}
