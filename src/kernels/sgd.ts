/** One fused torch.optim.SGD update (momentum, coupled weight decay) of a parameter tensor, in place. */
import { kernelVariants, read, write, type KernelSpec } from '../graph/kernel.js';
import type { Runtime } from '../graph/runtime.js';
import type { Tensor } from '../graph/tensor.js';
import { assertSameShape, elementwiseDefines, elementwiseLaunch, ELEMENTWISE_WORKGROUP, unitType } from './util.js';

const spec = kernelVariants((vec4: boolean): KernelSpec => {
  const type = unitType(vec4);
  return {
    shader: 'sgd',
    defines: elementwiseDefines(vec4),
    params: [['units', 'u32'], ['lr', 'f32'], ['momentum', 'f32'], ['weightDecay', 'f32'], ['firstStep', 'u32']],
    bindings: [write('param', type), read('grad', type), write('velocity', type)],
    workgroupSize: [ELEMENTWISE_WORKGROUP],
  };
});

export interface SgdHyper {
  lr: number;
  momentum: number;
  weightDecay: number;
}

export function sgdUpdate(rt: Runtime, param: Tensor, grad: Tensor, velocity: Tensor, h: SgdHyper, firstStep: boolean): void {
  assertSameShape('sgd', param, grad);
  assertSameShape('sgd', param, velocity);
  const { vec4, units, groups } = elementwiseLaunch(param.size);
  const params = { units, lr: h.lr, momentum: h.momentum, weightDecay: h.weightDecay, firstStep: firstStep ? 1 : 0 };
  rt.dispatch('sgd', spec(vec4), params, { param, grad, velocity }, groups);
}
