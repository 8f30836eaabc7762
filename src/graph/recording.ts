/**
 * A recorded GPU session replayed: the same dispatches, bind groups and parameters, encoded again without
 * running the host code that produced them (autograd, tensor bookkeeping, kernel parameter packing), as
 * ONNX Runtime's WebGPU graph capture does. WebGPU command buffers are single-use, so a replay re-encodes
 * the recorded commands; what it saves is everything else: ~45 µs of host work per dispatch becomes the
 * three encoder calls (DESIGN.md, "Runtime": recordings).
 *
 * A recording is valid while the buffers it binds keep their roles. The buffers of the session's
 * temporaries are reserved in the pool (see `BufferPool.reserve`), so nothing else is handed them while
 * the recording lives; long-lived tensors it reads or writes (weights, momentum) must outlive it, and
 * host state the session changes besides GPU memory is the caller's to replay (train/step.ts).
 */
import { BindGroupCache } from './bind-groups.js';
import type { BufferPool } from './buffer-pool.js';
import type { KernelProfiler } from './profiler.js';

export type RecordedOp =
  | {
      kind: 'dispatch';
      op: string;
      /** The kernel's shader (`KernelSpec.shader`): its name in a profile. */
      kernel: string;
      pipeline: GPUComputePipeline;
      layout: GPUBindGroupLayout;
      /** The layout's signature (`CompiledKernel.layoutSignature`), the bind group cache's key. */
      signature: string;
      /** The packed kernel parameters (empty when the kernel has none). */
      params: Uint8Array;
      buffers: GPUBuffer[];
      workgroups: [number, number, number];
    }
  | { kind: 'copy'; src: GPUBuffer; srcOffset: number; dst: GPUBuffer; dstOffset: number; bytes: number }
  | { kind: 'write'; buffer: GPUBuffer; data: Uint8Array };

/** What a recording needs of its runtime. */
export interface RecordingHost {
  readonly device: GPUDevice;
  readonly pool: BufferPool;
  /** Submits work recorded before the replay, so that it runs first. */
  flush(): void;
  /** Throws if the device is lost. */
  checkAlive(): void;
  /** The open profile (`Runtime.profile`), which times a replay's dispatches too. */
  readonly profiler: KernelProfiler | null;
}

interface ReplayDispatch {
  kind: 'dispatch';
  kernel: string;
  pipeline: GPUComputePipeline;
  bindGroup: GPUBindGroup;
  offsets: number[];
  workgroups: [number, number, number];
}
type ReplayCommand = ReplayDispatch | Extract<RecordedOp, { kind: 'copy' }>;
/** Queue writes, then commands: one submit each. A write recorded after commands starts a new segment. */
interface Segment {
  writes: Array<{ buffer: GPUBuffer; data: Uint8Array }>;
  commands: ReplayCommand[];
}

export class Recording {
  private readonly segments: Segment[] = [];
  private readonly arena: GPUBuffer | null;
  private readonly reserved: GPUBuffer[];
  private disposed = false;
  readonly dispatchCount: number;

  constructor(
    private readonly host: RecordingHost,
    ops: readonly RecordedOp[],
  ) {
    const { device } = host;
    const align = device.limits.minUniformBufferOffsetAlignment;
    // one uniform arena for every dispatch's parameters, written once: they are the same at every replay
    const slot = (bytes: number) => Math.ceil(bytes / align) * align;
    const dispatches = ops.filter((o) => o.kind === 'dispatch');
    this.dispatchCount = dispatches.length;
    const arenaBytes = dispatches.reduce((sum, d) => sum + slot(d.params.byteLength), 0);
    this.arena = arenaBytes > 0 ? device.createBuffer({ size: arenaBytes, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST, label: 'recording-params' }) : null;
    const arenaCpu = new Uint8Array(arenaBytes);
    // the arena is bound with a dynamic offset, so a group depends on the layout and buffers only, as in
    // the command stream; this cache is the recording's own (its groups bind its arena)
    const groups = new BindGroupCache(device);
    let offset = 0;
    let segment: Segment = { writes: [], commands: [] };
    for (const o of ops) {
      if (o.kind === 'write') {
        if (segment.commands.length > 0) {
          this.segments.push(segment);
          segment = { writes: [], commands: [] };
        }
        segment.writes.push({ buffer: o.buffer, data: o.data });
        continue;
      }
      if (o.kind === 'copy') {
        segment.commands.push(o);
        continue;
      }
      const size = o.params.byteLength;
      arenaCpu.set(o.params, offset);
      const bindGroup = groups.get(o.layout, o.signature, size > 0 ? { buffer: this.arena!, size } : null, o.buffers);
      segment.commands.push({ kind: 'dispatch', kernel: o.kernel, pipeline: o.pipeline, bindGroup, offsets: size > 0 ? [offset] : [], workgroups: o.workgroups });
      offset += slot(size);
    }
    if (segment.writes.length > 0 || segment.commands.length > 0) this.segments.push(segment);
    if (this.arena) device.queue.writeBuffer(this.arena, 0, arenaCpu);
    const referenced = new Set<GPUBuffer>();
    for (const o of ops) {
      if (o.kind === 'dispatch') o.buffers.forEach((b) => referenced.add(b));
      else if (o.kind === 'copy') (referenced.add(o.src), referenced.add(o.dst));
      else referenced.add(o.buffer);
    }
    this.reserved = [...referenced];
    host.pool.reserve(this.reserved);
  }

  /** The buffers the session wrote from the host, in order: what `replay` can be given new contents for. */
  inputs(): GPUBuffer[] {
    return [...new Set(this.segments.flatMap((s) => s.writes.map((w) => w.buffer)))];
  }

  /**
   * Runs the recorded session again. `inputs` gives new contents for buffers the session wrote from the
   * host (a batch of images): each must be one the session wrote, with as many bytes.
   */
  replay(inputs: ReadonlyArray<readonly [GPUBuffer, ArrayBufferView]> = []): void {
    if (this.disposed) throw new Error('replay: this recording was disposed');
    this.host.checkAlive();
    const replaced = new Map<GPUBuffer, Uint8Array>();
    for (const [buffer, view] of inputs) {
      const bytes = new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
      const recorded = this.segments.flatMap((s) => s.writes).filter((w) => w.buffer === buffer);
      if (recorded.length === 0) throw new Error(`replay: buffer '${buffer.label}' was not written from the host when the session was recorded, so it is not an input`);
      if (recorded.some((w) => w.data.byteLength !== bytes.byteLength)) {
        throw new Error(`replay: input '${buffer.label}' has ${bytes.byteLength} bytes, the recorded session wrote ${recorded[0].data.byteLength}`);
      }
      replaced.set(buffer, bytes);
    }
    this.host.flush();
    const { device } = this.host;
    // encode every segment first: the GPU (on a software adapter, the same CPU cores) starts on the first
    // submit only when all the host-side encoding is done
    const encoded = this.segments.map((s) => this.encode(s.commands));
    this.segments.forEach((s, i) => {
      for (const w of s.writes) {
        const data = replaced.get(w.buffer) ?? w.data;
        device.queue.writeBuffer(w.buffer, 0, data.buffer, data.byteOffset, data.byteLength);
      }
      for (const { commands, afterSubmit } of encoded[i]) {
        device.queue.submit([commands]);
        afterSubmit?.();
      }
    });
  }

  /**
   * A segment's commands as command buffers: one, or under a profile (each dispatch in a timestamped pass
   * of its own) as many as the profiler's query set needs, each with the profiler's call for after its submit.
   */
  private encode(commands: readonly ReplayCommand[]): Array<{ commands: GPUCommandBuffer; afterSubmit: (() => void) | null }> {
    const profiler = this.host.profiler;
    const out: Array<{ commands: GPUCommandBuffer; afterSubmit: (() => void) | null }> = [];
    if (commands.length === 0) return out;
    let encoder = this.host.device.createCommandEncoder({ label: 'replay' });
    const finish = () => {
      const afterSubmit = profiler?.beforeSubmit(encoder) ?? null;
      out.push({ commands: encoder.finish(), afterSubmit });
    };
    let pass: GPUComputePassEncoder | null = null;
    for (const c of commands) {
      if (c.kind === 'copy') {
        pass?.end();
        pass = null;
        encoder.copyBufferToBuffer(c.src, c.srcOffset, c.dst, c.dstOffset, c.bytes);
        continue;
      }
      if (profiler) {
        pass?.end();
        if (profiler.full) {
          finish();
          encoder = this.host.device.createCommandEncoder({ label: 'replay' });
        }
        pass = encoder.beginComputePass(profiler.passFor(c.kernel));
      }
      pass ??= encoder.beginComputePass();
      pass.setPipeline(c.pipeline);
      pass.setBindGroup(0, c.bindGroup, c.offsets);
      pass.dispatchWorkgroups(...c.workgroups);
      if (profiler) {
        pass.end();
        pass = null;
      }
    }
    pass?.end();
    finish();
    return out;
  }

  /** Frees the parameter arena and hands the reserved buffers back to the pool. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.arena?.destroy();
    this.host.pool.unreserve(this.reserved);
  }
}


/**
 * Recordings by key (a batch shape), at most `capacity`: adding one more disposes the least recently used
 * entry (its recording and whatever the entry holds for it). Each recording holds its own reserved
 * working set of buffers, so only the few in use are kept.
 */
export class RecordingCache<K, V extends { dispose(): void }> {
  /** Least recently used first. */
  private readonly entries = new Map<K, V>();

  constructor(private readonly capacity: number) {}

  get size(): number {
    return this.entries.size;
  }

  has(key: K): boolean {
    return this.entries.has(key);
  }

  /** The entry for `key`, which becomes the most recently used. */
  use(key: K): V | undefined {
    const entry = this.entries.get(key);
    if (entry) {
      this.entries.delete(key);
      this.entries.set(key, entry);
    }
    return entry;
  }

  add(key: K, entry: V): void {
    this.entries.get(key)?.dispose();
    this.entries.delete(key);
    this.entries.set(key, entry);
    if (this.entries.size > this.capacity) {
      const [oldest, dropped] = this.entries.entries().next().value!;
      dropped.dispose();
      this.entries.delete(oldest);
    }
  }

  /** Disposes every recording. */
  clear(): void {
    for (const e of this.entries.values()) e.dispose();
    this.entries.clear();
  }
}
