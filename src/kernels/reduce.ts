/**
 * Sum reductions: `sumToShape` sums a rank-<=4 tensor over the axes where the target shape has extent 1
 * (the gradient of broadcasting, bias gradients); `sum` and `mean` reduce everything to one element.
 */
import { kernelVariants, read, write, type KernelSpec } from '../graph/kernel.js';
import type { Runtime } from '../graph/runtime.js';
import { shapeStr, sizeOf, type Shape, type Tensor } from '../graph/tensor.js';
import { reduceRowPerInvocation, ROW_PER_INVOCATION_WORKGROUP, rowReductionGroups } from './util.js';

const WG = 256;
const spec = kernelVariants((perThread: boolean): KernelSpec => ({
  shader: 'sum_to_shape',
  defines: { PER_THREAD: perThread },
  params: [
    ['nOut', 'u32'], ['count', 'u32'], ['scale', 'f32'],
    ['o1', 'u32'], ['o2', 'u32'], ['o3', 'u32'],
    ['r0', 'u32'], ['r1', 'u32'], ['r2', 'u32'], ['r3', 'u32'],
    ['s0', 'u32'], ['s1', 'u32'], ['s2', 'u32'], ['s3', 'u32'],
  ],
  bindings: [read('x'), write('out')],
  workgroupSize: [perThread ? ROW_PER_INVOCATION_WORKGROUP : WG],
}));

/** Pads a shape to rank 4 on the left. */
export function toRank4(shape: Shape): [number, number, number, number] {
  if (shape.length > 4) throw new Error(`rank ${shape.length} is not supported (at most 4): ${shapeStr(shape)}`);
  const s = [1, 1, 1, 1, ...shape].slice(-4);
  return s as [number, number, number, number];
}

/** out = scale * sum of x over every axis where `target` (same rank, or left-padded) has extent 1. */
export function sumToShape(rt: Runtime, x: Tensor, target: Shape, scale = 1): Tensor {
  const inS = toRank4(x.shape);
  const outS = toRank4(target);
  for (let i = 0; i < 4; i++) {
    if (outS[i] !== inS[i] && outS[i] !== 1) {
      throw new Error(`sum: cannot reduce ${shapeStr(x.shape)} to ${shapeStr(target)}`);
    }
  }
  const strides = [inS[1] * inS[2] * inS[3], inS[2] * inS[3], inS[3], 1];
  const reduced = inS.map((d, i) => (outS[i] === 1 ? d : 1));
  const count = sizeOf(reduced);
  const nOut = sizeOf(outS);
  const out = rt.empty(target, 'f32', 'sum output');
  // Many outputs each summing little, or many outputs on a software adapter (whose workgroup barriers are
  // slow: [8, 256, 8, 8] -> [8, 256, 1, 1] took 33 ms as workgroups): an invocation per output.
  // Otherwise a workgroup per output.
  const perThread = count <= 32 || (nOut >= 4096 && count <= 256) || reduceRowPerInvocation(rt, nOut);
  const groups = rowReductionGroups(perThread, nOut);
  const [o1, o2, o3] = outS.slice(1);
  const [r0, r1, r2, r3] = reduced;
  const [s0, s1, s2, s3] = strides;
  rt.dispatch('sum', spec(perThread), { nOut, count, scale, o1, o2, o3, r0, r1, r2, r3, s0, s1, s2, s3 }, { x, out }, groups);
  return out;
}

export function sumAll(rt: Runtime, x: Tensor, scale = 1): Tensor {
  const flat = x.reshape([x.size]);
  const out = sumToShape(rt, flat, [1], scale);
  flat.dispose();
  return out;
}
