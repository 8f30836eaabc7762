/**
 * Layers that hold parameters: Conv2d and BatchNorm2d with PyTorch's parameter names and layouts, so a
 * state_dict maps onto them one to one.
 */
import { batchNorm2d, conv2d } from '../autograd/ops.js';
import type { Runtime } from '../graph/runtime.js';
import type { Tensor } from '../graph/tensor.js';
import type { BatchNormActivation } from '../kernels/batchnorm.js';
import { kaimingNormalFanOut, type Rng } from './init.js';

/** A trainable tensor: requires a gradient and outlives `tidy` scopes. */
export function parameter(rt: Runtime, data: ArrayLike<number>, shape: readonly number[]): Tensor {
  const t = rt.tensor(data, shape).keep();
  t.requiresGrad = true;
  return t;
}

export interface Layer {
  /** Named tensors in PyTorch state_dict order and naming (relative to the layer). */
  stateDict(): Array<[string, Tensor]>;
  parameters(): Tensor[];
}

export class Conv2d implements Layer {
  constructor(
    readonly weight: Tensor,
    readonly bias: Tensor | null,
    readonly stride = 1,
    readonly padding = 0,
  ) {}

  static create(rt: Runtime, cin: number, cout: number, kernel: number, o: { stride?: number; padding?: number; rng: Rng }): Conv2d {
    const shape = [cout, cin, kernel, kernel];
    return new Conv2d(parameter(rt, kaimingNormalFanOut(shape, o.rng), shape), null, o.stride ?? 1, o.padding ?? 0);
  }

  forward(x: Tensor): Tensor {
    return conv2d(x, this.weight, this.bias, { stride: this.stride, padding: this.padding });
  }

  stateDict(): Array<[string, Tensor]> {
    return this.bias ? [['weight', this.weight], ['bias', this.bias]] : [['weight', this.weight]];
  }

  parameters(): Tensor[] {
    return this.bias ? [this.weight, this.bias] : [this.weight];
  }
}

export class BatchNorm2d implements Layer {
  training = true;
  /** Training forwards so far (PyTorch's num_batches_tracked). */
  batchesTracked = 0;
  constructor(
    readonly weight: Tensor,
    readonly bias: Tensor,
    readonly runningMean: Tensor,
    readonly runningVar: Tensor,
    readonly momentum = 0.1,
    readonly eps = 1e-5,
  ) {}

  static create(rt: Runtime, channels: number): BatchNorm2d {
    return new BatchNorm2d(
      parameter(rt, new Float32Array(channels).fill(1), [channels]),
      parameter(rt, new Float32Array(channels), [channels]),
      rt.zeros([channels]).keep(),
      rt.full([channels], 1).keep(),
    );
  }

  /** `act`: the shortcut add and ReLU that follow in a ResNet block, fused into the BN's passes. */
  forward(x: Tensor, act: BatchNormActivation = {}): Tensor {
    if (this.training) this.batchesTracked++;
    return batchNorm2d(x, this, { training: this.training, momentum: this.momentum, eps: this.eps, ...act });
  }

  stateDict(): Array<[string, Tensor]> {
    return [['weight', this.weight], ['bias', this.bias], ['running_mean', this.runningMean], ['running_var', this.runningVar]];
  }

  parameters(): Tensor[] {
    return [this.weight, this.bias];
  }
}
