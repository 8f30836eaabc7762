/** Bilinear resize of NCHW tensors, align_corners = false (PyTorch semantics), forward and backward. */
import { read, write, type KernelSpec } from '../graph/kernel.js';
import type { Runtime } from '../graph/runtime.js';
import type { Tensor } from '../graph/tensor.js';
import { assertRank, grid1d } from './util.js';

const WG = 256;
const PARAMS = [
  ['n', 'u32'], ['IH', 'u32'], ['IW', 'u32'], ['OH', 'u32'], ['OW', 'u32'], ['scaleH', 'f32'], ['scaleW', 'f32'],
] as const;
const forwardSpec: KernelSpec = { shader: 'upsample_bilinear', params: PARAMS, bindings: [read('x'), write('y')], workgroupSize: [WG] };
const backwardSpec: KernelSpec = { shader: 'upsample_bilinear_backward', params: PARAMS, bindings: [read('dy'), write('dx')], workgroupSize: [WG] };

export function upsampleBilinearForward(rt: Runtime, x: Tensor, size: readonly [number, number]): Tensor {
  assertRank('upsample_bilinear', x, 4);
  const [N, C, IH, IW] = x.shape;
  const [OH, OW] = size;
  if (!(OH >= 1 && OW >= 1 && Number.isInteger(OH) && Number.isInteger(OW))) {
    throw new Error(`upsample_bilinear: output size must be positive integers, got [${OH}, ${OW}]`);
  }
  const y = rt.empty([N, C, OH, OW], 'f32', 'upsample output');
  rt.dispatch('upsample_bilinear', forwardSpec, { n: y.size, IH, IW, OH, OW, scaleH: IH / OH, scaleW: IW / OW }, { x, y }, grid1d(y.size, WG));
  return y;
}

export function upsampleBilinearBackward(rt: Runtime, dy: Tensor, inputShape: readonly number[]): Tensor {
  const [, , IH, IW] = inputShape;
  const [, , OH, OW] = dy.shape;
  const dx = rt.empty(inputShape, 'f32', 'upsample gradient');
  rt.dispatch('upsample_bilinear backward', backwardSpec, { n: dx.size, IH, IW, OH, OW, scaleH: IH / OH, scaleW: IW / OW }, { dy, dx }, grid1d(dx.size, WG));
  return dx;
}
