/** One fused torch.optim.SGD update (momentum, coupled weight decay) of a parameter tensor, in place. */
import { read, write, type KernelSpec } from '../graph/kernel.js';
import type { Runtime } from '../graph/runtime.js';
import type { Tensor } from '../graph/tensor.js';
import { assertSameShape, grid1d } from './util.js';

const spec: KernelSpec = {
  shader: 'sgd',
  params: [['n', 'u32'], ['lr', 'f32'], ['momentum', 'f32'], ['weightDecay', 'f32'], ['firstStep', 'u32']],
  bindings: [write('param'), read('grad'), write('velocity')],
  workgroupSize: [256],
};

export interface SgdHyper {
  lr: number;
  momentum: number;
  weightDecay: number;
}

export function sgdUpdate(rt: Runtime, param: Tensor, grad: Tensor, velocity: Tensor, h: SgdHyper, firstStep: boolean): void {
  assertSameShape('sgd', param, grad);
  assertSameShape('sgd', param, velocity);
  const params = { n: param.size, lr: h.lr, momentum: h.momentum, weightDecay: h.weightDecay, firstStep: firstStep ? 1 : 0 };
  rt.dispatch('sgd', spec, params, { param, grad, velocity }, grid1d(param.size, 256));
}
