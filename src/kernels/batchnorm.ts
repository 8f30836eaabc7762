/**
 * BatchNorm2d with PyTorch semantics. Training: normalise with the batch mean and biased variance, update
 * running statistics with momentum and the unbiased variance. Eval: normalise with the running statistics.
 * The forward saves [mean, invstd] per channel for the backward pass.
 */
import { kernelVariants, read, write, type KernelSpec } from '../graph/kernel.js';
import type { Runtime } from '../graph/runtime.js';
import { shapeStr, type Tensor } from '../graph/tensor.js';
import {
  assertRank, assertSameShape, elementwiseDefines, elementwiseLaunch, ELEMENTWISE_WORKGROUP, reduceRowPerInvocation, ROW_PER_INVOCATION_WORKGROUP,
  rowReductionGroups, unitType,
} from './util.js';

const WG = 256;

export interface BatchNormOptions {
  training: boolean;
  momentum?: number;
  eps?: number;
}

/**
 * What follows the BN in a ResNet block, fused into its passes: the shortcut added to its output
 * (`residual`, the output's shape) and a ReLU. The backward then reads the saved output for the ReLU's
 * mask and writes the shortcut's gradient, instead of a ReLU and an add of their own each way.
 */
export interface BatchNormActivation {
  residual?: Tensor | null;
  relu?: boolean;
}

const statsSpec = kernelVariants((train: boolean, vec4: boolean, wg: number, perThread: boolean): KernelSpec => {
  // Training reads the batch and updates the running statistics; eval only reads them.
  const running = train ? write : read;
  return {
    shader: 'batchnorm_stats',
    defines: { TRAIN: train, VEC4: vec4, PER_THREAD: perThread },
    params: [['N', 'u32'], ['C', 'u32'], ['HW', 'u32'], ['eps', 'f32'], ['momentum', 'f32']],
    bindings: [read('x', unitType(vec4), 'TRAIN'), write('saved'), running('runningMean'), running('runningVar')],
    workgroupSize: [wg],
  };
});

const applySpec = kernelVariants((vec4: boolean, residual: boolean, relu: boolean): KernelSpec => ({
  shader: 'batchnorm_apply',
  defines: { RESIDUAL: residual, RELU: relu, ...elementwiseDefines(vec4) },
  params: [['units', 'u32'], ['C', 'u32'], ['HW', 'u32']],
  bindings: [
    read('x', unitType(vec4)), read('saved'), read('gamma'), read('beta'), read('res', unitType(vec4), 'RESIDUAL'),
    write('y', unitType(vec4)),
  ],
  workgroupSize: [ELEMENTWISE_WORKGROUP],
}));

const backwardReduceSpec = kernelVariants((vec4: boolean, wg: number, perThread: boolean, relu: boolean): KernelSpec => ({
  shader: 'batchnorm_backward_reduce',
  defines: { VEC4: vec4, PER_THREAD: perThread, RELU: relu },
  params: [['N', 'u32'], ['C', 'u32'], ['HW', 'u32']],
  bindings: [
    read('x', unitType(vec4)), read('dy', unitType(vec4)), read('y', unitType(vec4), 'RELU'), read('saved'),
    write('dgamma'), write('dbeta'), write('masked', unitType(vec4), 'RELU'),
  ],
  workgroupSize: [wg],
}));

/** Every pass reads vec4 units where a plane divides by 4, so that a unit lies in one channel. */
const channelUnits = (HW: number) => HW % 4 === 0;

/**
 * How the per-channel reductions (statistics, backward sums) run: on a software adapter one invocation per
 * channel (`reduceRowPerInvocation`: the trunk has 64 channels or more, enough for its few SIMD lanes, and
 * a tree's barriers each switch every invocation of the workgroup; at batch 8 the pair of reductions ran
 * 1.2-1.7x faster on the stem's 64 x 128 x 128 and 4-19x on layer2/layer3 maps on lavapipe); elsewhere
 * one workgroup per channel, whose tree needs log2(size) barriers: channels of a few hundred units take a
 * smaller workgroup than long ones.
 */
function channelReduction(rt: Runtime, N: number, C: number, HW: number): { wg: number; perThread: boolean; groups: [number, number] } {
  const perThread = reduceRowPerInvocation(rt, C);
  if (perThread) return { wg: ROW_PER_INVOCATION_WORKGROUP, perThread, groups: rowReductionGroups(true, C) };
  const units = (N * HW) / (channelUnits(HW) ? 4 : 1);
  return { wg: units >= 4 * WG ? WG : 64, perThread, groups: [C, 1] };
}

const backwardApplySpec = kernelVariants((train: boolean, vec4: boolean): KernelSpec => ({
  shader: 'batchnorm_backward_apply',
  defines: { TRAIN: train, ...elementwiseDefines(vec4) },
  params: [['units', 'u32'], ['C', 'u32'], ['HW', 'u32']],
  // With batch statistics, dx depends on the whole batch through the mean and variance (dgamma, dbeta).
  bindings: [
    read('x', unitType(vec4), 'TRAIN'), read('dy', unitType(vec4)), read('saved'), read('gamma'),
    read('dgamma', 'f32', 'TRAIN'), read('dbeta', 'f32', 'TRAIN'), write('dx', unitType(vec4)),
  ],
  workgroupSize: [ELEMENTWISE_WORKGROUP],
}));

export interface BatchNormForward {
  y: Tensor;
  /** [mean, invstd] per channel, for the backward pass. */
  saved: Tensor;
}

export function batchNormForward(
  rt: Runtime,
  x: Tensor,
  gamma: Tensor,
  beta: Tensor,
  runningMean: Tensor,
  runningVar: Tensor,
  opts: BatchNormOptions,
  act: BatchNormActivation = {},
): BatchNormForward {
  assertRank('batchnorm2d', x, 4);
  const res = act.residual ?? null;
  if (res) assertSameShape('batchnorm2d (residual)', x, res);
  const [N, C, H, W] = x.shape;
  for (const [name, t] of [['weight', gamma], ['bias', beta], ['running_mean', runningMean], ['running_var', runningVar]] as const) {
    if (t.rank !== 1 || t.shape[0] !== C) {
      throw new Error(`batchnorm2d: ${name} must have shape [${C}] for input ${shapeStr(x.shape)}, got ${shapeStr(t.shape)}`);
    }
  }
  if (opts.training && N * H * W < 2) {
    throw new Error(`batchnorm2d: training needs more than 1 value per channel, got input ${shapeStr(x.shape)}`);
  }
  const eps = opts.eps ?? 1e-5;
  const momentum = opts.momentum ?? 0.1;
  const saved = rt.empty([2 * C], 'f32', 'batchnorm statistics');
  const HW = H * W;
  const batch = opts.training ? x : null;
  const vec4 = channelUnits(HW);
  const red = channelReduction(rt, N, C, HW);
  rt.dispatch('batchnorm2d', statsSpec(opts.training, vec4, red.wg, red.perThread), { N, C, HW, eps, momentum }, { x: batch, saved, runningMean, runningVar }, red.groups);
  const y = rt.empty(x.shape, 'f32', 'batchnorm2d output');
  const { units, groups } = elementwiseLaunch(x.size, vec4);
  rt.dispatch('batchnorm2d', applySpec(vec4, !!res, !!act.relu), { units, C, HW }, { x, saved, gamma, beta, res, y }, groups);
  return { y, saved };
}

export interface BatchNormGradients {
  dx: Tensor;
  dgamma: Tensor;
  dbeta: Tensor;
  /** The shortcut's gradient, when asked for (`residualGrad`). */
  dres: Tensor | null;
}

/** The fused activation's side of the backward: the forward's output `y` if it had a ReLU, and whether the shortcut wants a gradient. */
export interface BatchNormActivationBackward {
  y?: Tensor | null;
  residualGrad?: boolean;
}

export function batchNormBackward(
  rt: Runtime,
  x: Tensor,
  dy: Tensor,
  gamma: Tensor,
  saved: Tensor,
  training: boolean,
  act: BatchNormActivationBackward = {},
): BatchNormGradients {
  assertSameShape('batchnorm2d backward', x, dy);
  const y = act.y ?? null;
  if (y) assertSameShape('batchnorm2d backward (ReLU)', x, y);
  const [N, C, H, W] = x.shape;
  const dgamma = rt.empty([C], 'f32', 'batchnorm weight gradient');
  const dbeta = rt.empty([C], 'f32', 'batchnorm bias gradient');
  const HW = H * W;
  const vec4 = channelUnits(HW);
  // With a ReLU, the reduction also writes the masked gradient: the apply pass reads it in place of dy, and
  // it is the shortcut's gradient (the add passes it through).
  const masked = y ? rt.empty(x.shape, 'f32', 'batchnorm2d output gradient (ReLU applied)') : null;
  const red = channelReduction(rt, N, C, HW);
  rt.dispatch('batchnorm2d backward', backwardReduceSpec(vec4, red.wg, red.perThread, !!y), { N, C, HW }, { x, dy, y, saved, dgamma, dbeta, masked }, red.groups);
  const dx = rt.empty(x.shape, 'f32', 'batchnorm input gradient');
  const batch = training ? { x, dgamma, dbeta } : {};
  const { units, groups } = elementwiseLaunch(x.size, vec4);
  rt.dispatch('batchnorm2d backward', backwardApplySpec(training, vec4), { units, C, HW }, { ...batch, dy: masked ?? dy, saved, gamma, dx }, groups);
  if (!act.residualGrad) {
    masked?.dispose();
    return { dx, dgamma, dbeta, dres: null };
  }
  // without a ReLU the shortcut's gradient is dy itself (a view of its own, as the add's rule returns)
  return { dx, dgamma, dbeta, dres: masked ?? dy.reshape(dy.shape) };
}
