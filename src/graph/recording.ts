/**
 * A recorded GPU session replayed: the same dispatches, bind groups and parameters, encoded again without
 * running the host code that produced them (autograd, tensor bookkeeping, kernel parameter packing), as
 * ONNX Runtime's WebGPU graph capture does. WebGPU command buffers are single-use, so a replay re-encodes
 * the recorded commands; what it saves is everything else: ~45 µs of host work per dispatch becomes the
 * three encoder calls (DESIGN.md, "Recorded steps").
 *
 * A recording is valid while the buffers it binds keep their roles. The buffers of the session's
 * temporaries are reserved in the pool (see `BufferPool.reserve`), so nothing else is handed them while
 * the recording lives; long-lived tensors it reads or writes (weights, momentum) must outlive it, and
 * host state the session changes besides GPU memory is the caller's to replay (train/step.ts).
 */
import type { BufferPool } from './buffer-pool.js';

export type CapturedOp =
  | {
      kind: 'dispatch';
      op: string;
      pipeline: GPUComputePipeline;
      layout: GPUBindGroupLayout;
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
}

interface ReplayDispatch {
  kind: 'dispatch';
  pipeline: GPUComputePipeline;
  bindGroup: GPUBindGroup;
  offsets: number[];
  workgroups: [number, number, number];
}
type ReplayCommand = ReplayDispatch | Extract<CapturedOp, { kind: 'copy' }>;
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
    ops: readonly CapturedOp[],
  ) {
    const { device } = host;
    const align = device.limits.minUniformBufferOffsetAlignment;
    // one uniform arena for every dispatch's parameters, written once: they are the same at every replay
    const dispatches = ops.filter((o) => o.kind === 'dispatch');
    this.dispatchCount = dispatches.length;
    const slots = dispatches.map((d) => Math.ceil(d.params.byteLength / align) * align);
    const arenaBytes = slots.reduce((a, b) => a + b, 0);
    this.arena = arenaBytes > 0 ? device.createBuffer({ size: arenaBytes, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST, label: 'recording-params' }) : null;
    const arenaCpu = new Uint8Array(arenaBytes);
    const groups = new Map<string, GPUBindGroup>();
    const ids = new Map<GPUBuffer, number>();
    const idOf = (b: GPUBuffer) => ids.get(b) ?? (ids.set(b, ids.size), ids.size - 1);
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
      // the arena is bound with a dynamic offset, so a group depends on the layout and buffers only
      const key = `${layoutIds.id(o.layout)}|${size}|${o.buffers.map(idOf).join(',')}`;
      const group = this.bindGroup(o.layout, size, o.buffers, groups, key);
      segment.commands.push({ kind: 'dispatch', pipeline: o.pipeline, bindGroup: group, offsets: size > 0 ? [offset] : [], workgroups: o.workgroups });
      offset += Math.ceil(size / align) * align;
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

  private bindGroup(layout: GPUBindGroupLayout, uniformBytes: number, buffers: GPUBuffer[], cache: Map<string, GPUBindGroup>, key: string): GPUBindGroup {
    const hit = cache.get(key);
    if (hit) return hit;
    const entries: GPUBindGroupEntry[] = [];
    if (uniformBytes > 0) entries.push({ binding: 0, resource: { buffer: this.arena!, offset: 0, size: uniformBytes } });
    buffers.forEach((buffer, i) => entries.push({ binding: i + 1, resource: { buffer } }));
    const group = this.host.device.createBindGroup({ layout, entries, label: 'recording' });
    cache.set(key, group);
    return group;
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
    const buffers = this.segments.map((s) => (s.commands.length > 0 ? this.encode(s.commands) : null));
    this.segments.forEach((s, i) => {
      for (const w of s.writes) {
        const data = replaced.get(w.buffer) ?? w.data;
        device.queue.writeBuffer(w.buffer, 0, data.buffer, data.byteOffset, data.byteLength);
      }
      const commands = buffers[i];
      if (commands) device.queue.submit([commands]);
    });
  }

  private encode(commands: readonly ReplayCommand[]): GPUCommandBuffer {
    const encoder = this.host.device.createCommandEncoder({ label: 'replay' });
    let pass: GPUComputePassEncoder | null = null;
    for (const c of commands) {
      if (c.kind === 'copy') {
        pass?.end();
        pass = null;
        encoder.copyBufferToBuffer(c.src, c.srcOffset, c.dst, c.dstOffset, c.bytes);
        continue;
      }
      pass ??= encoder.beginComputePass();
      pass.setPipeline(c.pipeline);
      pass.setBindGroup(0, c.bindGroup, c.offsets);
      pass.dispatchWorkgroups(...c.workgroups);
    }
    pass?.end();
    return encoder.finish();
  }

  /** Frees the parameter arena and hands the reserved buffers back to the pool. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.arena?.destroy();
    this.host.pool.unreserve(this.reserved);
  }
}

/** Small ids for layouts (bind group keys). */
const layoutIds = (() => {
  const ids = new WeakMap<GPUBindGroupLayout, number>();
  let next = 0;
  return { id: (l: GPUBindGroupLayout) => ids.get(l) ?? (ids.set(l, next), next++) };
})();
