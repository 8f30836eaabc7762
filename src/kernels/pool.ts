/**
 * Pooling: max pool 2d (k x k, stride, padding), global average / max over H x W, and mean / max over
 * channels (the inputs of CBAM-style spatial attention). Max variants save their argmax for the backward.
 */
import { kernelVariants, read, write, type KernelSpec } from '../graph/kernel.js';
import type { Runtime } from '../graph/runtime.js';
import { shapeStr, type Tensor } from '../graph/tensor.js';
import { assertRank, grid1d, reduceRowPerInvocation, ROW_PER_INVOCATION_WORKGROUP, rowReductionGroups } from './util.js';

const WG = 256;

// ---- max pool 2d ----------------------------------------------------------------------------------

export interface MaxPoolOptions {
  kernel: number;
  stride: number;
  padding: number;
}

/** Outputs of a row per max-pool invocation (OUTS in maxpool2d.wgsl). */
const POOL_OUTPUTS = 4;

const maxPoolSpec = kernelVariants((kernel: number, stride: number, withArgmax: boolean): KernelSpec => ({
  shader: 'maxpool2d',
  defines: { K: kernel, STRIDE: stride, ARGMAX: withArgmax },
  params: [['rows', 'u32'], ['H', 'u32'], ['W', 'u32'], ['OH', 'u32'], ['OW', 'u32'], ['pad', 'u32']],
  bindings: [read('x'), write('y'), write('argmax', 'u32', 'ARGMAX')],
  workgroupSize: [WG],
}));
const maxPoolBackwardSpec = kernelVariants((stride: number): KernelSpec => ({
  shader: 'maxpool2d_backward',
  defines: { STRIDE: stride },
  params: [['blocks', 'u32'], ['H', 'u32'], ['W', 'u32'], ['OH', 'u32'], ['OW', 'u32'], ['K', 'u32'], ['pad', 'u32'], ['BH', 'u32'], ['BW', 'u32']],
  bindings: [read('dy'), read('argmax', 'u32'), write('dx')],
  workgroupSize: [WG],
}));

export function maxPoolOutputSize(op: string, x: Tensor, o: MaxPoolOptions): [number, number] {
  assertRank(op, x, 4);
  const [, , H, W] = x.shape;
  if (o.padding * 2 > o.kernel) {
    throw new Error(`${op}: padding ${o.padding} must be at most half the kernel size ${o.kernel}`);
  }
  const OH = Math.floor((H + 2 * o.padding - o.kernel) / o.stride) + 1;
  const OW = Math.floor((W + 2 * o.padding - o.kernel) / o.stride) + 1;
  if (OH < 1 || OW < 1) throw new Error(`${op}: window ${o.kernel} does not fit input ${shapeStr(x.shape)}`);
  return [OH, OW];
}

/** Max pooling and its argmax (for the backward). */
export function maxPool2dForward(rt: Runtime, x: Tensor, o: MaxPoolOptions): { y: Tensor; argmax: Tensor };
/** Inference (`argmax: false`): the pooled map only. */
export function maxPool2dForward(rt: Runtime, x: Tensor, o: MaxPoolOptions, withArgmax: false): { y: Tensor; argmax: null };
export function maxPool2dForward(rt: Runtime, x: Tensor, o: MaxPoolOptions, withArgmax = true): { y: Tensor; argmax: Tensor | null } {
  const [OH, OW] = maxPoolOutputSize('maxpool2d', x, o);
  const [N, C, H, W] = x.shape;
  const y = rt.empty([N, C, OH, OW], 'f32', 'maxpool2d output');
  const argmax = withArgmax ? rt.empty([N, C, OH, OW], 'u32', 'maxpool2d argmax') : null;
  const rows = N * C * OH;
  const params = { rows, H, W, OH, OW, pad: o.padding };
  rt.dispatch('maxpool2d', maxPoolSpec(o.kernel, o.stride, withArgmax), params, { x, y, argmax }, grid1d(rows * Math.ceil(OW / POOL_OUTPUTS), WG));
  return { y, argmax };
}

export function maxPool2dBackward(rt: Runtime, dy: Tensor, argmax: Tensor, inputShape: readonly number[], o: MaxPoolOptions): Tensor {
  const [N, C, H, W] = inputShape;
  const [, , OH, OW] = dy.shape;
  const dx = rt.empty(inputShape, 'f32', 'maxpool2d gradient');
  // one invocation per stride x stride block of input pixels
  const BH = Math.ceil(H / o.stride);
  const BW = Math.ceil(W / o.stride);
  const blocks = N * C * BH * BW;
  const params = { blocks, H, W, OH, OW, K: o.kernel, pad: o.padding, BH, BW };
  rt.dispatch('maxpool2d backward', maxPoolBackwardSpec(o.stride), params, { dy, argmax, dx }, grid1d(blocks, WG));
  return dx;
}

// ---- global pooling over H x W --------------------------------------------------------------------

const globalSpec = kernelVariants((max: boolean, perThread: boolean): KernelSpec => ({
  shader: 'global_pool',
  defines: { MAX: max, PER_THREAD: perThread },
  params: [['planes', 'u32'], ['HW', 'u32']],
  bindings: [read('x'), write('y'), write('argmax', 'u32', 'MAX')],
  workgroupSize: [perThread ? ROW_PER_INVOCATION_WORKGROUP : WG],
}));
const globalBackwardSpec = kernelVariants((max: boolean): KernelSpec => ({
  shader: 'global_pool_backward',
  defines: { MAX: max },
  params: [['n', 'u32'], ['HW', 'u32']],
  bindings: [read('dy'), read('argmax', 'u32', 'MAX'), write('dx')],
  workgroupSize: [WG],
}));

/** [N, C, H, W] -> [N, C, 1, 1]; `argmax` is set for max pooling. */
export function globalPoolForward(rt: Runtime, x: Tensor, kind: 'avg' | 'max'): { y: Tensor; argmax: Tensor | null } {
  assertRank(`global ${kind} pool`, x, 4);
  const [N, C, H, W] = x.shape;
  const y = rt.empty([N, C, 1, 1], 'f32', `global ${kind} pool output`);
  const argmax = kind === 'max' ? rt.empty([N, C], 'u32', 'global max pool argmax') : null;
  const perThread = reduceRowPerInvocation(rt, N * C);
  rt.dispatch(`global ${kind} pool`, globalSpec(kind === 'max', perThread), { planes: N * C, HW: H * W }, { x, y, argmax }, rowReductionGroups(perThread, N * C));
  return { y, argmax };
}

export function globalPoolBackward(rt: Runtime, dy: Tensor, argmax: Tensor | null, inputShape: readonly number[]): Tensor {
  const [, , H, W] = inputShape;
  const dx = rt.empty(inputShape, 'f32', 'global pool gradient');
  rt.dispatch('global pool backward', globalBackwardSpec(!!argmax), { n: dx.size, HW: H * W }, { dy, argmax, dx }, grid1d(dx.size, WG));
  return dx;
}

// ---- mean / max over channels ---------------------------------------------------------------------

export interface ChannelPoolKinds {
  mean: boolean;
  max: boolean;
}

const channelSpec = kernelVariants((mean: boolean, max: boolean): KernelSpec => ({
  shader: 'channel_pool',
  defines: { MEAN: mean, MAX: max },
  params: [['n', 'u32'], ['C', 'u32'], ['HW', 'u32'], ['outC', 'u32']],
  bindings: [read('x'), write('y'), write('argmax', 'u32', 'MAX')],
  workgroupSize: [WG],
}));
const channelBackwardSpec = kernelVariants((mean: boolean, max: boolean): KernelSpec => ({
  shader: 'channel_pool_backward',
  defines: { MEAN: mean, MAX: max },
  params: [['n', 'u32'], ['C', 'u32'], ['HW', 'u32'], ['outC', 'u32']],
  bindings: [read('dy'), read('argmax', 'u32', 'MAX'), write('dx')],
  workgroupSize: [WG],
}));

/** [N, C, H, W] -> [N, k, H, W] with channels [mean][, max] (mean first, as DCAM's spatial attention). */
export function channelPoolForward(rt: Runtime, x: Tensor, k: ChannelPoolKinds): { y: Tensor; argmax: Tensor | null } {
  assertRank('channel pool', x, 4);
  if (!k.mean && !k.max) throw new Error('channel pool: choose mean, max or both');
  const [N, C, H, W] = x.shape;
  const outC = (k.mean ? 1 : 0) + (k.max ? 1 : 0);
  const y = rt.empty([N, outC, H, W], 'f32', 'channel pool output');
  const argmax = k.max ? rt.empty([N, H, W], 'u32', 'channel max argmax') : null;
  rt.dispatch('channel pool', channelSpec(k.mean, k.max), { n: N * H * W, C, HW: H * W, outC }, { x, y, argmax }, grid1d(N * H * W, WG));
  return { y, argmax };
}

export function channelPoolBackward(rt: Runtime, dy: Tensor, argmax: Tensor | null, inputShape: readonly number[], k: ChannelPoolKinds): Tensor {
  const [, C, H, W] = inputShape;
  const dx = rt.empty(inputShape, 'f32', 'channel pool gradient');
  rt.dispatch('channel pool backward', channelBackwardSpec(k.mean, k.max), { n: dx.size, C, HW: H * W, outC: dy.shape[1] }, { dy, argmax, dx }, grid1d(dx.size, WG));
  return dx;
}
