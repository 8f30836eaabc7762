/**
 * Differentiable ops: each runs its GPU forward and attaches the rule that gives its inputs' gradients.
 * The kernels themselves (forward and backward side by side) live in src/kernels.
 */
import type { Tensor } from '../graph/tensor.js';
import { shapeStr } from '../graph/tensor.js';
import { batchNormBackward, batchNormForward, type BatchNormActivation } from '../kernels/batchnorm.js';
import { conv2dBackwardBias, conv2dBackwardData, conv2dBackwardWeight, conv2dForward, convGeometry, type Conv2dOptions } from '../kernels/conv2d.js';
import { cosineBackward, cosineForward, type CosineAxis } from '../kernels/cosine.js';
import { affineForward, binaryForward, fill, broadcastShape, reluForward, sigmoidForward, unaryBackward, unbroadcast } from '../kernels/elementwise.js';
import {
  channelPoolBackward, channelPoolForward, globalPoolBackward, globalPoolForward, maxPool2dBackward, maxPool2dForward,
  type ChannelPoolKinds, type MaxPoolOptions,
} from '../kernels/pool.js';
import { sumAll, sumToShape } from '../kernels/reduce.js';
import { klSpatialBackward, klSpatialForward, softmaxBackward, softmaxForward } from '../kernels/softmax.js';
import { upsampleBilinearBackward, upsampleBilinearForward } from '../kernels/upsample.js';
import { attachBackward } from './engine.js';

// ---- convolution and linear -----------------------------------------------------------------------

export function conv2d(x: Tensor, weight: Tensor, bias: Tensor | null = null, opts: Conv2dOptions = {}): Tensor {
  const rt = x.runtime;
  const g = convGeometry(x, weight, opts);
  const y = conv2dForward(rt, x, weight, bias, opts);
  return attachBackward('conv2d', [x, weight, bias], y, (dy, [xs, ws], [needX, needW, needB]) => [
    needX ? conv2dBackwardData(rt, dy, ws, g) : null,
    needW ? conv2dBackwardWeight(rt, dy, xs, g) : null,
    needB ? conv2dBackwardBias(rt, dy) : null,
  ], { save: [x, weight] });
}

/** y = x W^T without bias: x [B, I], W [O, I] -> [B, O] (a 1x1 convolution over a 1x1 image). */
export function linear(x: Tensor, weight: Tensor): Tensor {
  if (x.rank !== 2 || weight.rank !== 2 || x.shape[1] !== weight.shape[1]) {
    throw new Error(`linear: input ${shapeStr(x.shape)} and weight ${shapeStr(weight.shape)} do not match ([B, I] and [O, I])`);
  }
  const [B, I] = x.shape;
  const O = weight.shape[0];
  const y = conv2d(reshape(x, [B, I, 1, 1]), reshape(weight, [O, I, 1, 1]));
  return reshape(y, [B, O]);
}

// ---- batch norm -----------------------------------------------------------------------------------

export interface BatchNormState {
  weight: Tensor;
  bias: Tensor;
  runningMean: Tensor;
  runningVar: Tensor;
}

/**
 * BatchNorm2d, optionally followed by a ResNet block's shortcut add and ReLU in the same passes:
 * relu?(bn(x) + residual?). Fused, the forward writes one map instead of three, and the backward takes the
 * ReLU's mask from the saved output inside the BN's own two passes.
 */
export function batchNorm2d(x: Tensor, s: BatchNormState, opts: { training: boolean; momentum?: number; eps?: number } & BatchNormActivation): Tensor {
  const rt = x.runtime;
  const { residual = null, relu = false } = opts;
  const { y, saved } = batchNormForward(rt, x, s.weight, s.bias, s.runningMean, s.runningVar, opts, { residual, relu });
  return attachBackward('batchnorm2d', [x, s.weight, s.bias, residual], y, (dy, [xs, gamma, ...rest], needs) => {
    const ys = relu ? rest[0] : null;
    const stats = rest[rest.length - 1];
    // One kernel pair makes them all (dx needs dgamma and dbeta in training anyway); unwanted ones are dropped.
    const { dx, dgamma, dbeta, dres } = batchNormBackward(rt, xs, dy, gamma, stats, opts.training, { y: ys, residualGrad: needs[3] });
    return [...[dx, dgamma, dbeta].map((g, i) => (needs[i] ? g : (g.dispose(), null))), dres];
  }, { save: relu ? [x, s.weight, y] : [x, s.weight], own: [saved] });
}

// ---- elementwise ----------------------------------------------------------------------------------

export function relu(x: Tensor): Tensor {
  const y = reluForward(x.runtime, x);
  return attachBackward('relu', [x], y, (dy, [ys]) => [unaryBackward(x.runtime, 'relu', ys, dy)], { save: [y] });
}

export function sigmoid(x: Tensor): Tensor {
  const y = sigmoidForward(x.runtime, x);
  return attachBackward('sigmoid', [x], y, (dy, [ys]) => [unaryBackward(x.runtime, 'sigmoid', ys, dy)], { save: [y] });
}

/** a * x + b */
export function affine(x: Tensor, a: number, b = 0): Tensor {
  const y = affineForward(x.runtime, x, a, b);
  return attachBackward('affine', [x], y, (dy) => [affineForward(x.runtime, dy, a, 0)]);
}

export const scale = (x: Tensor, a: number): Tensor => affine(x, a, 0);

/** a + b with broadcasting (per-channel [N,C,1,1], per-pixel [N,1,H,W], scalars). */
export function add(a: Tensor, b: Tensor): Tensor {
  const rt = a.runtime;
  const y = binaryForward(rt, 'add', a, b);
  return attachBackward('add', [a, b], y, (dy, _, [needA, needB]) => [
    needA ? unbroadcast(rt, dy, a.shape) : null,
    needB ? unbroadcast(rt, dy, b.shape) : null,
  ]);
}

/** a - b with broadcasting, as one node. */
export function sub(a: Tensor, b: Tensor): Tensor {
  const rt = a.runtime;
  const nb = affineForward(rt, b, -1, 0);
  const y = binaryForward(rt, 'add', a, nb);
  nb.dispose();
  return attachBackward('sub', [a, b], y, (dy, _, [needA, needB]) => {
    let db: Tensor | null = null;
    if (needB) {
      const g = unbroadcast(rt, dy, b.shape);
      db = affineForward(rt, g, -1, 0);
      g.dispose();
    }
    return [needA ? unbroadcast(rt, dy, a.shape) : null, db];
  });
}

/** a * b with broadcasting (attention gates). */
export function mul(a: Tensor, b: Tensor): Tensor {
  const rt = a.runtime;
  broadcastShape('mul', a.shape, b.shape);
  const y = binaryForward(rt, 'mul', a, b);
  return attachBackward('mul', [a, b], y, (dy, [as, bs], [needA, needB]) => {
    const grad = (other: Tensor, shape: readonly number[]) => {
      const full = binaryForward(rt, 'mul', dy, other);
      const g = unbroadcast(rt, full, shape);
      full.dispose();
      return g;
    };
    return [needA ? grad(bs, a.shape) : null, needB ? grad(as, b.shape) : null];
  }, { save: [a, b] });
}

/** A view with another shape; the gradient is viewed back. */
/** The same values as a constant: a view of `x` that no gradient flows back through (torch's detach). */
export function detach(x: Tensor): Tensor {
  return x.reshape(x.shape);
}

export function reshape(x: Tensor, shape: readonly number[]): Tensor {
  const y = x.reshape(shape);
  return attachBackward('reshape', [x], y, (dy) => [dy.reshape(x.shape)]);
}

// ---- pooling --------------------------------------------------------------------------------------

export function maxPool2d(x: Tensor, opts: MaxPoolOptions = { kernel: 3, stride: 2, padding: 1 }): Tensor {
  const { y, argmax } = maxPool2dForward(x.runtime, x, opts);
  const shape = x.shape;
  return attachBackward('maxpool2d', [x], y, (dy, [am]) => [maxPool2dBackward(x.runtime, dy, am, shape, opts)], { own: [argmax] });
}

function globalPool(x: Tensor, kind: 'avg' | 'max'): Tensor {
  const { y, argmax } = globalPoolForward(x.runtime, x, kind);
  const shape = x.shape;
  return attachBackward(`global ${kind} pool`, [x], y, (dy, [am]) => [globalPoolBackward(x.runtime, dy, am ?? null, shape)], {
    own: argmax ? [argmax] : [],
  });
}

/** [N, C, H, W] -> [N, C, 1, 1] */
export const globalAvgPool2d = (x: Tensor) => globalPool(x, 'avg');
export const globalMaxPool2d = (x: Tensor) => globalPool(x, 'max');

function channelPool(x: Tensor, kinds: ChannelPoolKinds): Tensor {
  const { y, argmax } = channelPoolForward(x.runtime, x, kinds);
  const shape = x.shape;
  return attachBackward('channel pool', [x], y, (dy, [am]) => [channelPoolBackward(x.runtime, dy, am ?? null, shape, kinds)], {
    own: argmax ? [argmax] : [],
  });
}

/** [N, C, H, W] -> [N, 1, H, W] */
export const channelMean = (x: Tensor) => channelPool(x, { mean: true, max: false });
export const channelMax = (x: Tensor) => channelPool(x, { mean: false, max: true });
/** [N, C, H, W] -> [N, 2, H, W]: channel 0 the mean, channel 1 the max (spatial attention input). */
export const channelMeanMax = (x: Tensor) => channelPool(x, { mean: true, max: true });

// ---- similarities, distributions, losses --------------------------------------------------------

/** Cosine similarity along channels ([N,1,H,W]) or along space ([N,C]): dot / (|a| |b| + eps). */
export function cosineSimilarity(a: Tensor, b: Tensor, axis: CosineAxis, eps = 1e-8): Tensor {
  const rt = a.runtime;
  const { y, saved } = cosineForward(rt, a, b, axis, eps);
  return attachBackward(`cosine (${axis})`, [a, b], y, (dy, [as, bs, sv], [needA, needB]) => {
    const { da, db } = cosineBackward(rt, as, bs, dy, sv, axis, eps, { a: needA, b: needB });
    return [da, db];
  }, { save: [a, b], own: [saved] });
}

/** Softmax over H x W for each (n, c). */
export function softmaxSpatial(x: Tensor): Tensor {
  const y = softmaxForward(x.runtime, x, false);
  return attachBackward('softmax', [x], y, (dy, [ys]) => [softmaxBackward(x.runtime, ys, dy, false)], { save: [y] });
}

/** Log-softmax over H x W for each (n, c). */
export function logSoftmaxSpatial(x: Tensor): Tensor {
  const y = softmaxForward(x.runtime, x, true);
  return attachBackward('log_softmax', [x], y, (dy, [ys]) => [softmaxBackward(x.runtime, ys, dy, true)], { save: [y] });
}

/** KL(softmax(t/T) || softmax(s/T)) over H x W for each (n, c): [N, C]. */
export function klDivSpatial(t: Tensor, s: Tensor, temperature = 1): Tensor {
  const rt = t.runtime;
  const { kl, saved } = klSpatialForward(rt, t, s, temperature);
  return attachBackward('spatial KL', [t, s], kl, (dy, [ts, ss, kls, sv], [needT, needS]) => {
    const { dt, ds } = klSpatialBackward(rt, ts, ss, dy, kls, sv, temperature, { t: needT, s: needS });
    return [dt, ds];
  }, { save: [t, s, kl], own: [saved] });
}

export function sum(x: Tensor): Tensor {
  const y = sumAll(x.runtime, x);
  return attachBackward('sum', [x], y, (dy) => [broadcastTo(dy, x.shape, 1)]);
}

export function mean(x: Tensor): Tensor {
  const y = sumAll(x.runtime, x, 1 / x.size);
  return attachBackward('mean', [x], y, (dy) => [broadcastTo(dy, x.shape, 1 / x.size)]);
}

/** Sum over the axes where `shape` has extent 1 (same rank as x). */
export function sumTo(x: Tensor, shape: readonly number[]): Tensor {
  const y = sumToShape(x.runtime, x, shape);
  return attachBackward('sumTo', [x], y, (dy) => [broadcastTo(dy, x.shape, 1)]);
}

/** scale * dy broadcast to `shape` (dy has one element or broadcastable extent). */
function broadcastTo(dy: Tensor, shape: readonly number[], s: number): Tensor {
  const rt = dy.runtime;
  const target = fill(rt, rt.empty(shape), s);
  const g = binaryForward(rt, 'mul', target, dy);
  target.dispose();
  return g;
}

export function upsampleBilinear(x: Tensor, size: readonly [number, number]): Tensor {
  const y = upsampleBilinearForward(x.runtime, x, size);
  const shape = x.shape;
  return attachBackward('upsample_bilinear', [x], y, (dy) => [upsampleBilinearBackward(x.runtime, dy, shape)]);
}
