/**
 * The runtime ties a GPUDevice to the buffer pool, the pipeline cache, the command stream and the
 * `tidy` scopes. Ops encode work synchronously; reads (`Tensor.read`) and `sync()` are the points where
 * the CPU waits and where asynchronous errors (WGSL validation, device loss, out of memory) surface.
 */
import { waitAs, type HostWait } from './host-wait.js';
import { BufferPool, type MemoryStats } from './buffer-pool.js';
import { compileKernel, type CompiledKernel, type KernelSpec, type ParamValues } from './kernel.js';
import { PipelineCache } from './pipeline-cache.js';
import { KernelProfiler, type KernelTime } from './profiler.js';
import { CommandStream } from './command-stream.js';
import { Recording, type RecordedOp, type RecordingHost } from './recording.js';
import { ScopeStack, type TensorContainer } from './scope.js';
import { Storage, Tensor, shapeStr, sizeOf, type DType, type Shape } from './tensor.js';

/** Buffers of a dispatch by binding name; null or undefined for one the kernel variant does not have. */
export type BufferArgs = Readonly<Record<string, Tensor | GPUBuffer | null | undefined>>;

export interface AdapterDescription {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  features: string[];
  isSoftware: boolean;
}

export interface RuntimeOptions {
  dispatchesPerSubmit?: number;
  /** Fill every new tensor with NaN (tests: an element a kernel forgets to write then shows up). */
  poison?: boolean;
  /**
   * How the thread waits for the GPU (reads, `sync`): `sleep` between polls (graph/host-wait.ts; the
   * default for a device from Dawn's Node binding, whose own waiting spins a core) or `poll`, leaving
   * it to the WebGPU implementation (the default elsewhere; what a browser does).
   */
  hostWait?: HostWait;
}

export class DeviceLostError extends Error {}

export class Runtime {
  readonly pool: BufferPool;
  readonly pipelines: PipelineCache;
  readonly commands: CommandStream;
  readonly scopes = new ScopeStack();
  readonly limits: GPUSupportedLimits;
  readonly features: ReadonlySet<string>;
  private asyncError: Error | null = null;
  private lost: string | null = null;
  /** Objects whose lifetime must match the device's (see createDevice). */
  keepAlive: unknown[] = [];
  /** The tail of the queue of exclusive sessions. */
  private sessions: Promise<void> = Promise.resolve();
  /** Autograd recording switch (see `noGrad`). */
  gradEnabled = true;
  readonly poison: boolean;
  readonly hostWait: HostWait;

  constructor(
    readonly device: GPUDevice,
    readonly adapter: AdapterDescription,
    options: RuntimeOptions = {},
  ) {
    this.poison = options.poison ?? false;
    this.hostWait = options.hostWait ?? 'poll';
    this.limits = device.limits;
    this.features = new Set(device.features as unknown as Iterable<string>);
    this.pipelines = new PipelineCache(device);
    this.commands = new CommandStream(device, { dispatchesPerSubmit: options.dispatchesPerSubmit ?? 128 });
    // A destroyed buffer must leave the bind group cache first (a cached group would keep binding it).
    this.pool = new BufferPool(device, device.limits.maxBufferSize, (b) => this.commands.bindGroups.forget(b));
    this.commands.onSubmit = () => this.pool.onSubmit();
    device.addEventListener('uncapturederror', (ev) => {
      const e = (ev as GPUUncapturedErrorEvent).error;
      this.asyncError ??= new Error(`WebGPU error: ${e.message}`);
    });
    void device.lost.then((info) => {
      if (info.reason !== 'destroyed') this.lost = `WebGPU device lost (${info.reason}): ${info.message}`;
    });
  }

  // ---- tensors -------------------------------------------------------------------------------------

  /** A tensor with uninitialised contents (pooled buffers keep whatever they held; NaN with `poison`). */
  empty(shape: Shape, dtype: DType = 'f32', what = 'tensor'): Tensor {
    const t = this.allocate(shape, dtype, what);
    if (this.poison) this.fillWithNaN(t.buffer, t.size * 4);
    return t;
  }

  /** A buffer of NaNs that `fillWithNaN` copies from (made on first use). */
  private nanSource: GPUBuffer | null = null;

  /**
   * Fills a new buffer with NaN by copies from one NaN buffer (no kernel: the graph layer dispatches none
   * of its own), so that an element a kernel forgets to write shows up in tests.
   */
  private fillWithNaN(buffer: GPUBuffer, bytes: number): void {
    const piece = 4 * 2 ** 20;
    if (!this.nanSource) {
      this.nanSource = this.device.createBuffer({ size: piece, usage: GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST, label: 'poison (NaN)' });
      this.device.queue.writeBuffer(this.nanSource, 0, new Float32Array(piece / 4).fill(NaN));
    }
    for (let at = 0; at < bytes; at += piece) this.commands.copy(this.nanSource, 0, buffer, at, Math.min(piece, bytes - at));
  }

  private allocate(shape: Shape, dtype: DType, what: string): Tensor {
    this.checkAlive();
    for (const d of shape) {
      if (!Number.isInteger(d) || d < 0) throw new Error(`${what}: invalid shape ${shapeStr(shape)}`);
    }
    const bytes = Math.max(4, sizeOf(shape) * 4);
    const buffer = this.pool.acquire(bytes, what);
    return new Tensor(this, [...shape], new Storage(this, buffer, bytes), dtype);
  }

  tensor(data: ArrayLike<number>, shape: Shape): Tensor {
    if (data.length !== sizeOf(shape)) {
      throw new Error(`tensor: ${data.length} values do not fill shape ${shapeStr(shape)} (${sizeOf(shape)} elements)`);
    }
    const t = this.allocate(shape, 'f32', 'tensor');
    // A buffer fresh from the pool has no pending commands, so the queue write needs no flush.
    if (data.length > 0) this.writeBuffer(t.buffer, data instanceof Float32Array ? data : Float32Array.from(data), false);
    return t;
  }

  zeros(shape: Shape): Tensor {
    return this.full(shape, 0);
  }

  full(shape: Shape, value: number): Tensor {
    return this.tensor(new Float32Array(sizeOf(shape)).fill(value), shape);
  }

  /** Writes `data` into `buffer` from `byteOffset` on (0 while recording: a replay rewrites whole buffers). */
  writeBuffer(buffer: GPUBuffer, data: Float32Array | Uint32Array, mayBeInUse = true, byteOffset = 0): void {
    // Recorded commands that touch this buffer must run before the queue write overtakes them.
    if (mayBeInUse) this.commands.submit();
    if (this.commands.recordingTo && byteOffset !== 0) throw new Error('writeBuffer: a write at an offset cannot be recorded');
    this.commands.recordingTo?.push({ kind: 'write', buffer, data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength).slice() });
    this.device.queue.writeBuffer(buffer, byteOffset, data.buffer, data.byteOffset, data.byteLength);
  }

  async readBuffer(buffer: GPUBuffer, bytes: number): Promise<ArrayBuffer> {
    this.checkAlive();
    const staging = this.device.createBuffer({ size: Math.max(4, bytes), usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    try {
      if (bytes > 0) this.commands.copy(buffer, 0, staging, 0, bytes, false);
      this.commands.submit();
      await this.waitFor(this.pipelines.checkErrors());
      await this.waitFor(staging.mapAsync(GPUMapMode.READ));
      this.throwAsyncErrors();
      return staging.getMappedRange(0, bytes).slice(0);
    } catch (e) {
      this.throwAsyncErrors();
      throw e;
    } finally {
      if (staging.mapState === 'mapped') staging.unmap();
      staging.destroy();
    }
  }

  // ---- kernels -------------------------------------------------------------------------------------

  /**
   * Records one kernel dispatch. Parameters and buffers are passed by name and checked against the spec:
   * a missing, unknown or mistyped one is an error naming it (and the calling `op`). A buffer given as
   * null or undefined is absent, which is right only for a buffer the variant does not have.
   */
  dispatch(
    op: string,
    spec: KernelSpec,
    params: ParamValues,
    buffers: BufferArgs,
    workgroups: readonly [number, number?, number?],
  ): void {
    this.checkAlive();
    const kernel = compileKernel(spec);
    const raw = this.resolveBuffers(op, kernel, buffers);
    const maxGroups = this.limits.maxComputeWorkgroupsPerDimension;
    for (const g of workgroups) {
      if (g !== undefined && g > maxGroups) {
        throw new Error(`${op}: ${g} workgroups in one dimension exceed the device limit ${maxGroups}`);
      }
    }
    if (workgroups.some((g) => g === 0)) return; // empty tensors: nothing to do
    const pipeline = this.pipelines.get(spec);
    this.commands.dispatch(op, kernel, pipeline, this.pipelines.layoutOf(kernel), params, raw, workgroups);
  }

  /** The variant's buffers in binding order, each checked: present, of the right element type, within limits, not aliased. */
  private resolveBuffers(op: string, kernel: CompiledKernel, buffers: BufferArgs): GPUBuffer[] {
    const where = `${op}: kernel ${kernel.spec.shader}`;
    const names = () => kernel.bindings.map((b) => b.name).join(', ');
    let given = 0;
    for (const name in buffers) {
      if (buffers[name] === null || buffers[name] === undefined) continue;
      given++;
      if (kernel.inactive.has(name)) throw new Error(`${where}: buffer '${name}' is given, but this variant of the kernel does not have it (takes ${names()})`);
    }
    const maxBinding = this.limits.maxStorageBufferBindingSize;
    const raw = kernel.bindings.map((b) => {
      const t = buffers[b.name];
      if (t === null || t === undefined) throw new Error(`${where}: missing buffer '${b.name}' (takes ${names()})`);
      const buf = t instanceof Tensor ? t.buffer : t;
      const shape = t instanceof Tensor ? ` of shape ${shapeStr(t.shape)}` : '';
      if (t instanceof Tensor && (t.dtype === 'u32') !== (b.type === 'u32')) {
        throw new Error(`${where}: buffer '${b.name}' holds ${b.type ?? 'f32'} values, got a ${t.dtype} tensor${shape}`);
      }
      if (buf.size > maxBinding) {
        throw new Error(`${where}: buffer '${b.name}'${shape} needs ${buf.size} bytes, over the device limit maxStorageBufferBindingSize = ${maxBinding}`);
      }
      return buf;
    });
    if (given !== raw.length) {
      const unknown = Object.keys(buffers).filter((k) => buffers[k] && !kernel.bindings.some((b) => b.name === k));
      throw new Error(`${where}: unknown buffer${unknown.length > 1 ? 's' : ''} ${unknown.map((k) => `'${k}'`).join(', ')} (takes ${names()})`);
    }
    // The same buffer written through one binding and read or written through another is a WebGPU
    // validation error at submit time, far from its cause: name it here.
    for (let i = 0; i < raw.length; i++) {
      for (let j = i + 1; j < raw.length; j++) {
        if (raw[i] === raw[j] && (kernel.bindings[i].access === 'read_write' || kernel.bindings[j].access === 'read_write')) {
          throw new Error(`${where}: buffers '${kernel.bindings[i].name}' and '${kernel.bindings[j].name}' are the same storage, and one of them is written`);
        }
      }
    }
    return raw;
  }

  /**
   * Runs `fn` with every dispatch timed on the GPU (needs `timestamp-query`); returns its result and the
   * GPU time per kernel. Work recorded before is submitted first so that it is not counted.
   */
  async profile<T>(fn: () => Promise<T> | T): Promise<{ result: T; kernels: KernelTime[] }> {
    if (this.commands.profiler) throw new Error('profile: a profile is already open');
    this.commands.submit();
    const profiler = new KernelProfiler(this.device);
    this.commands.profiler = profiler;
    try {
      const result = await fn();
      this.commands.submit();
      return { result, kernels: await profiler.results() };
    } finally {
      this.commands.profiler = null;
      profiler.destroy();
    }
  }

  /**
   * Runs `fn` and records the GPU work it does (dispatches, copies, writes from the host) into a
   * `Recording` that can run it again without `fn` (see graph/recording.ts for what stays valid). Work
   * recorded before is submitted first; read-backs inside `fn` are not part of the recording.
   */
  async record<T>(fn: () => Promise<T>): Promise<{ result: T; recording: Recording }> {
    this.checkAlive();
    if (this.commands.recordingTo) throw new Error('record: a recording is already open on this runtime');
    if (this.commands.profiler) throw new Error('record: not while a profile is open');
    this.commands.submit();
    const ops: RecordedOp[] = [];
    this.commands.recordingTo = ops;
    let result: T;
    try {
      result = await fn();
      this.commands.submit();
    } finally {
      this.commands.recordingTo = null;
    }
    return { result, recording: new Recording(this.recordingHost, ops) };
  }

  private get recordingHost(): RecordingHost {
    const commands = this.commands;
    return {
      device: this.device,
      pool: this.pool,
      flush: () => commands.submit(),
      checkAlive: () => this.checkAlive(),
      get profiler() {
        return commands.profiler;
      },
    };
  }

  /** Waits for a promise of the device's, as `hostWait` says. */
  private waitFor<T>(promise: Promise<T>): Promise<T> {
    return waitAs(this.hostWait, promise);
  }

  /** Submits recorded work. */
  flush(): void {
    this.commands.submit();
  }

  /** Submits recorded work, waits for the GPU to finish it and throws any asynchronous error. */
  async sync(): Promise<void> {
    this.commands.submit();
    await this.waitFor(this.pipelines.checkErrors());
    await this.waitFor(this.device.queue.onSubmittedWorkDone());
    this.throwAsyncErrors();
  }

  // ---- memory and scopes ---------------------------------------------------------------------------

  memory(): MemoryStats {
    return this.pool.stats();
  }

  /** Runs `fn`; disposes every tensor it created except those it returns. */
  tidy<T extends TensorContainer>(fn: () => T): T {
    const scope = this.scopes.begin();
    let result: T | undefined;
    try {
      result = fn();
      return result;
    } finally {
      this.scopes.end(scope, result);
    }
  }

  /**
   * Runs GPU sessions one after another: `fn` starts when every session queued before it has settled.
   * Entry points that await GPU work inside a `tidyAsync` (a training step, an inspection) go through it,
   * so that an inspection requested while a step runs waits instead of interleaving scopes. Not
   * reentrant: an exclusive section that starts another one waits for itself.
   */
  exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.sessions.then(fn);
    this.sessions = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  /** `tidy` for async functions. Two of them interleaved on one runtime is an error (see `exclusive`). */
  async tidyAsync<T extends TensorContainer>(fn: () => Promise<T>): Promise<T> {
    const scope = this.scopes.begin();
    let result: T | undefined;
    try {
      result = await fn();
      return result;
    } finally {
      this.scopes.end(scope, result);
    }
  }

  /** Runs `fn` with autograd recording off (frozen networks, evaluation). */
  noGrad<T>(fn: () => T): T {
    const prev = this.gradEnabled;
    this.gradEnabled = false;
    try {
      return fn();
    } finally {
      this.gradEnabled = prev;
    }
  }

  destroy(): void {
    try {
      this.commands.submit();
    } catch {
      // a lost device cannot submit; destroying is all that is left
    }
    this.pool.destroy();
    this.commands.destroy();
    this.nanSource?.destroy();
    this.device.destroy();
  }

  private checkAlive(): void {
    if (this.lost) throw new DeviceLostError(`${this.lost}. Create a new device (createDevice()) and reload the model.`);
  }

  private throwAsyncErrors(): void {
    this.checkAlive();
    const e = this.asyncError;
    if (e) {
      this.asyncError = null;
      if (/out of memory|OutOfMemory/i.test(e.message)) {
        throw new Error(`${e.message}. The GPU ran out of memory: use a smaller batch or image size.`);
      }
      throw e;
    }
  }
}
