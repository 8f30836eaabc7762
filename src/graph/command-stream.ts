/**
 * Records dispatches into one open compute pass and submits them in batches.
 *
 * Kernel parameters go into one uniform "arena" per batch (256-byte slots); it is written with a single
 * `queue.writeBuffer` right before the batch is submitted. Reusing the same GPU arena for the next batch
 * is safe because queue writes and submits execute in queue order. Each dispatch binds the arena with a
 * dynamic offset, so its bind group depends on the buffers only and comes from the BindGroupCache.
 */
import { BindGroupCache } from './bind-groups.js';
import { packParams, type CompiledKernel, type ParamValues } from './kernel.js';
import type { KernelProfiler } from './profiler.js';
import type { RecordedOp } from './recording.js';

const ARENA_BYTES = 64 * 1024;

export interface RecorderOptions {
  /** Submit after this many dispatches even if nobody waits (keeps the GPU fed, bounds latency). */
  dispatchesPerSubmit: number;
}

export class CommandStream {
  private encoder: GPUCommandEncoder | null = null;
  private pass: GPUComputePassEncoder | null = null;
  private readonly arenaCpu = new ArrayBuffer(ARENA_BYTES);
  private readonly arenaView = new DataView(this.arenaCpu);
  private readonly arenaGpu: GPUBuffer;
  private arenaUsed = 0;
  private dispatchesInBatch = 0;
  /** Total dispatches and submits since creation (for tests and profiling). */
  dispatchCount = 0;
  submitCount = 0;
  private readonly align: number;
  /** While set, each dispatch runs in a timestamped pass of its own (see KernelProfiler). */
  profiler: KernelProfiler | null = null;
  readonly bindGroups: BindGroupCache;
  /** While set, every dispatch and copy is also appended here (Runtime.record). */
  recordingTo: RecordedOp[] | null = null;
  /** Called right after each submit (the buffer pool frees what was released before it). */
  onSubmit: (() => void) | null = null;

  constructor(
    private readonly device: GPUDevice,
    private readonly options: RecorderOptions,
  ) {
    this.align = device.limits.minUniformBufferOffsetAlignment;
    this.bindGroups = new BindGroupCache(device);
    this.arenaGpu = device.createBuffer({
      size: ARENA_BYTES,
      usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
      label: 'kernel-params-arena',
    });
  }

  dispatch(
    op: string,
    kernel: CompiledKernel,
    pipeline: GPUComputePipeline,
    layout: GPUBindGroupLayout,
    params: ParamValues,
    buffers: readonly GPUBuffer[],
    workgroups: readonly [number, number?, number?],
  ): void {
    const paramBytes = kernel.paramBytes;
    const slot = Math.ceil(paramBytes / this.align) * this.align;
    if (this.arenaUsed + slot > ARENA_BYTES) this.submit();
    const offset = this.arenaUsed;
    this.arenaUsed += slot;
    packParams(kernel, op, params, this.arenaView, offset);
    const uniform = paramBytes > 0 ? { buffer: this.arenaGpu, size: paramBytes } : null;
    const bindGroup = this.bindGroups.get(layout, kernel.layoutSignature, uniform, buffers);
    const [x, y = 1, z = 1] = workgroups;
    if (this.recordingTo) {
      const params = new Uint8Array(this.arenaCpu, offset, paramBytes).slice();
      this.recordingTo.push({ kind: 'dispatch', op, kernel: kernel.spec.shader, pipeline, layout, signature: kernel.layoutSignature, params, buffers: [...buffers], workgroups: [x, y, z] });
    }

    if (this.profiler) {
      this.closePass();
      if (this.profiler.full) this.submit();
      this.pass = this.openEncoder().beginComputePass(this.profiler.passFor(kernel.spec.shader));
    }
    const pass = this.openPass();
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, bindGroup, paramBytes > 0 ? [offset] : []);
    pass.dispatchWorkgroups(x, y, z);
    if (this.profiler) this.closePass();
    this.dispatchCount++;
    if (++this.dispatchesInBatch >= this.options.dispatchesPerSubmit) this.submit();
  }

  /** A buffer copy; `recorded` false for read-backs into a staging buffer, which are not part of a session. */
  copy(src: GPUBuffer, srcOffset: number, dst: GPUBuffer, dstOffset: number, bytes: number, recorded = true): void {
    if (recorded) this.recordingTo?.push({ kind: 'copy', src, srcOffset, dst, dstOffset, bytes });
    this.closePass();
    this.openEncoder().copyBufferToBuffer(src, srcOffset, dst, dstOffset, bytes);
  }

  /** Submits everything recorded so far (no-op when nothing is recorded). */
  submit(): void {
    if (!this.encoder) return;
    this.closePass();
    const afterSubmit = this.profiler?.beforeSubmit(this.encoder);
    if (this.arenaUsed > 0) this.device.queue.writeBuffer(this.arenaGpu, 0, this.arenaCpu, 0, this.arenaUsed);
    this.device.queue.submit([this.encoder.finish()]);
    afterSubmit?.();
    this.encoder = null;
    this.arenaUsed = 0;
    this.dispatchesInBatch = 0;
    this.submitCount++;
    this.onSubmit?.();
  }

  destroy(): void {
    this.arenaGpu.destroy();
  }

  private openEncoder(): GPUCommandEncoder {
    if (!this.encoder) this.encoder = this.device.createCommandEncoder();
    return this.encoder;
  }

  private openPass(): GPUComputePassEncoder {
    if (!this.pass) this.pass = this.openEncoder().beginComputePass();
    return this.pass;
  }

  private closePass(): void {
    if (this.pass) {
      this.pass.end();
      this.pass = null;
    }
  }
}
