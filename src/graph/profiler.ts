/**
 * Per-kernel GPU time through `timestamp-query`: while a profile is open, every dispatch gets a compute
 * pass of its own whose beginning and end the GPU stamps. Stamps are resolved into a buffer at each
 * submit and read back asynchronously; `stop()` waits for them and sums the time per kernel.
 *
 * One pass per dispatch costs a little (pass boundaries are barriers), so a profile measures where the time
 * goes, not the best total: time totals come from the benchmark's wall-clock runs.
 */

export interface KernelTime {
  /** Shader name (the kernel family and pass, e.g. `conv2d_backward_data`). */
  kernel: string;
  dispatches: number;
  /** Summed GPU time in milliseconds. */
  ms: number;
}

const MAX_DISPATCHES_PER_SUBMIT = 1024;

export class KernelProfiler {
  private readonly querySet: GPUQuerySet;
  private readonly resolveBuffer: GPUBuffer;
  /** Kernel names of the dispatches stamped since the last submit (dispatch i owns queries 2i, 2i+1). */
  private labels: string[] = [];
  private readonly pending: Promise<void>[] = [];
  private readonly totals = new Map<string, KernelTime>();

  constructor(private readonly device: GPUDevice) {
    if (!device.features.has('timestamp-query')) {
      throw new Error('profiling needs the timestamp-query feature, which this adapter does not offer');
    }
    this.querySet = device.createQuerySet({ type: 'timestamp', count: 2 * MAX_DISPATCHES_PER_SUBMIT });
    this.resolveBuffer = device.createBuffer({
      size: 16 * MAX_DISPATCHES_PER_SUBMIT,
      usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC,
      label: 'profiler-resolve',
    });
  }

  /** True when the query set is full and the command stream must submit before the next dispatch. */
  get full(): boolean {
    return this.labels.length >= MAX_DISPATCHES_PER_SUBMIT;
  }

  /** The descriptor of the pass that holds the next dispatch. */
  passFor(kernel: string): GPUComputePassDescriptor {
    const i = this.labels.length;
    this.labels.push(kernel);
    return { timestampWrites: { querySet: this.querySet, beginningOfPassWriteIndex: 2 * i, endOfPassWriteIndex: 2 * i + 1 } };
  }

  /** Records the resolve and the copy to a readable buffer at the end of a batch's encoder. */
  beforeSubmit(encoder: GPUCommandEncoder): (() => void) | null {
    const n = this.labels.length;
    if (n === 0) return null;
    const labels = this.labels;
    this.labels = [];
    const readback = this.device.createBuffer({ size: 16 * n, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST, label: 'profiler-readback' });
    encoder.resolveQuerySet(this.querySet, 0, 2 * n, this.resolveBuffer, 0);
    encoder.copyBufferToBuffer(this.resolveBuffer, 0, readback, 0, 16 * n);
    // Called after the submit: map the stamps once the GPU has written them.
    return () => {
      this.pending.push(
        readback.mapAsync(GPUMapMode.READ).then(() => {
          const stamps = new BigUint64Array(readback.getMappedRange().slice(0));
          readback.destroy();
          labels.forEach((kernel, i) => {
            const ns = stamps[2 * i + 1] - stamps[2 * i];
            const entry = this.totals.get(kernel) ?? { kernel, dispatches: 0, ms: 0 };
            entry.dispatches++;
            entry.ms += ns > 0n ? Number(ns) / 1e6 : 0;
            this.totals.set(kernel, entry);
          });
        }),
      );
    };
  }

  /** Waits for every stamp; per-kernel totals, the most expensive first. */
  async results(): Promise<KernelTime[]> {
    await Promise.all(this.pending);
    return [...this.totals.values()].sort((a, b) => b.ms - a.ms);
  }

  destroy(): void {
    this.querySet.destroy();
    this.resolveBuffer.destroy();
  }
}
