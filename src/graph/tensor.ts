/**
 * Tensors: a shape, an element type and a reference-counted GPU storage.
 *
 * Memory layout is NCHW, row-major, contiguous (see docs/DESIGN.md for why). A reshape is a view that
 * shares the storage; the storage goes back to the buffer pool when its last holder lets go (tensors,
 * and autograd nodes that saved it for the backward pass).
 */
import type { Runtime } from './runtime.js';

export type DType = 'f32' | 'u32';
export type Shape = readonly number[];

export function sizeOf(shape: Shape): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export function shapeStr(shape: Shape): string {
  return `[${shape.join(', ')}]`;
}

export class Storage {
  private refs = 1;
  constructor(
    private readonly runtime: Runtime,
    readonly buffer: GPUBuffer,
    readonly bytes: number,
  ) {}

  retain(): this {
    if (this.refs <= 0) throw new Error('internal: retain() on a released storage');
    this.refs++;
    return this;
  }

  release(): void {
    if (this.refs <= 0) throw new Error('internal: storage released twice');
    if (--this.refs === 0) this.runtime.pool.release(this.buffer);
  }
}

/** What autograd records on a tensor produced by a differentiable op. */
export interface GradNode {
  readonly op: string;
  readonly inputs: ReadonlyArray<Tensor | null>;
  /** Gradients for each input (null where none is needed), given the gradient of the output. */
  backward(gradOutput: Tensor): Array<Tensor | null>;
  /** Drops tensors saved for the backward pass and lets go of its inputs' nodes. Idempotent. */
  release(): void;
}

export class Tensor {
  readonly size: number;
  requiresGrad = false;
  grad: Tensor | null = null;
  gradFn: GradNode | null = null;
  /** Set while the tensor is tracked by a `tidy` scope. */
  scope: Set<Tensor> | null = null;
  /**
   * Live graph nodes that take this tensor as an input. While any does, disposing the tensor frees its
   * storage but keeps its own node, so the gradient still flows through it (see autograd/engine.ts).
   */
  graphUses = 0;
  private disposed = false;

  constructor(
    readonly runtime: Runtime,
    readonly shape: Shape,
    readonly storage: Storage,
    readonly dtype: DType = 'f32',
  ) {
    this.size = sizeOf(shape);
    runtime.scopes.track(this);
  }

  get buffer(): GPUBuffer {
    if (this.disposed) throw new Error(`use of a disposed tensor ${shapeStr(this.shape)}`);
    return this.storage.buffer;
  }

  get isDisposed(): boolean {
    return this.disposed;
  }

  get rank(): number {
    return this.shape.length;
  }

  /** A view with another shape of the same number of elements (shares storage). */
  reshape(shape: Shape): Tensor {
    if (sizeOf(shape) !== this.size) {
      throw new Error(`reshape: cannot view ${shapeStr(this.shape)} (${this.size} elements) as ${shapeStr(shape)}`);
    }
    return new Tensor(this.runtime, [...shape], this.storage.retain(), this.dtype);
  }

  /** Another handle on the same storage that no `tidy` scope tracks (autograd saves tensors this way). */
  ref(): Tensor {
    return this.reshape(this.shape).keep();
  }

  /** Like `reshape`, but consumes this handle (the view takes over its reference). */
  asShape(shape: Shape): Tensor {
    const view = this.reshape(shape);
    this.dispose();
    return view;
  }

  /** Copies the tensor to the CPU (waits for every recorded command). */
  async read(): Promise<Float32Array> {
    const raw = await this.runtime.readBuffer(this.buffer, this.size * 4);
    return new Float32Array(raw);
  }

  async readU32(): Promise<Uint32Array> {
    const raw = await this.runtime.readBuffer(this.buffer, this.size * 4);
    return new Uint32Array(raw);
  }

  /** Reads a one-element tensor as a number. */
  async item(): Promise<number> {
    if (this.size !== 1) throw new Error(`item(): tensor has ${this.size} elements, ${shapeStr(this.shape)}`);
    return (await this.read())[0];
  }

  /** Overwrites the contents from the CPU. */
  write(data: ArrayLike<number>): void {
    if (data.length !== this.size) {
      throw new Error(`write: tensor ${shapeStr(this.shape)} has ${this.size} elements, got ${data.length}`);
    }
    this.runtime.writeBuffer(this.buffer, data instanceof Float32Array ? data : Float32Array.from(data));
  }

  /** Removes the tensor from `tidy` tracking so that it outlives the scope. */
  keep(): this {
    this.scope?.delete(this);
    this.scope = null;
    return this;
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.scope?.delete(this);
    this.scope = null;
    if (this.graphUses === 0) {
      this.gradFn?.release();
      this.gradFn = null;
    }
    this.grad?.dispose();
    this.grad = null;
    this.storage.release();
  }
}
