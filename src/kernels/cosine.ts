/**
 * Cosine similarity of two same-shaped NCHW tensors along channels (per pixel: [N, 1, H, W]) or along
 * space (per channel: [N, C]): dot / (|a| |b| + eps). Forward and backward side by side.
 */
import { read, write, type KernelSpec } from '../graph/kernel.js';
import type { Runtime } from '../graph/runtime.js';
import type { Tensor } from '../graph/tensor.js';
import { assertRank, assertSameShape, grid1d } from './util.js';

const WG = 64;
const PARAMS = [['count', 'u32'], ['L', 'u32'], ['inner', 'u32'], ['eps', 'f32']] as const;
const forwardSpec: KernelSpec = { shader: 'cosine', params: PARAMS, bindings: [read('a'), read('b'), write('out'), write('saved')], workgroupSize: [WG] };
const backwardSpec: KernelSpec = {
  shader: 'cosine_backward',
  params: [['n', 'u32'], ['L', 'u32'], ['inner', 'u32'], ['eps', 'f32']],
  bindings: [read('a'), read('b'), read('dy'), read('saved'), write('da'), write('db')],
  workgroupSize: [256],
};

export type CosineAxis = 'channel' | 'spatial';

interface Framing { outer: number; L: number; inner: number; outShape: number[] }

function framing(x: Tensor, axis: CosineAxis): Framing {
  const [N, C, H, W] = x.shape;
  return axis === 'channel'
    ? { outer: N, L: C, inner: H * W, outShape: [N, 1, H, W] }
    : { outer: N * C, L: H * W, inner: 1, outShape: [N, C] };
}

export function cosineForward(rt: Runtime, a: Tensor, b: Tensor, axis: CosineAxis, eps: number): { y: Tensor; saved: Tensor } {
  const op = `cosine similarity (${axis})`;
  assertRank(op, a, 4);
  assertSameShape(op, a, b);
  const f = framing(a, axis);
  const count = f.outer * f.inner;
  const y = rt.empty(f.outShape, 'f32', `${op} output`);
  const saved = rt.empty([count * 3], 'f32', `${op} saved norms`);
  rt.dispatch(op, forwardSpec, [count, f.L, f.inner, eps], [a, b, y, saved], grid1d(count, WG));
  return { y, saved };
}

export function cosineBackward(rt: Runtime, a: Tensor, b: Tensor, dy: Tensor, saved: Tensor, axis: CosineAxis, eps: number): { da: Tensor; db: Tensor } {
  const f = framing(a, axis);
  const da = rt.empty(a.shape, 'f32', 'cosine gradient (a)');
  const db = rt.empty(b.shape, 'f32', 'cosine gradient (b)');
  rt.dispatch(`cosine similarity (${axis}) backward`, backwardSpec, [a.size, f.L, f.inner, eps], [a, b, dy, saved, da, db], grid1d(a.size, 256));
  return { da, db };
}
