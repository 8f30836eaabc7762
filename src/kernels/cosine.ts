/**
 * Cosine similarity of two same-shaped NCHW tensors along channels (per pixel: [N, 1, H, W]) or along
 * space (per channel: [N, C]): dot / (|a| |b| + eps). Forward and backward side by side.
 */
import { kernelVariants, read, write, type KernelSpec } from '../graph/kernel.js';
import type { Runtime } from '../graph/runtime.js';
import type { Tensor } from '../graph/tensor.js';
import { assertRank, assertSameShape, grid1d } from './util.js';

const WG = 64;
const PARAMS = [['count', 'u32'], ['L', 'u32'], ['inner', 'u32'], ['eps', 'f32']] as const;
const forwardSpec: KernelSpec = { shader: 'cosine', params: PARAMS, bindings: [read('a'), read('b'), write('out'), write('saved')], workgroupSize: [WG] };
/** Each side's gradient only where it is wanted (the teacher's usually is not). */
const backwardSpec = kernelVariants((needA: boolean, needB: boolean): KernelSpec => ({
  shader: 'cosine_backward',
  defines: { NEED_A: needA, NEED_B: needB },
  params: [['n', 'u32'], ['L', 'u32'], ['inner', 'u32'], ['eps', 'f32']],
  bindings: [read('a'), read('b'), read('dy'), read('saved'), write('da', 'f32', 'NEED_A'), write('db', 'f32', 'NEED_B')],
  workgroupSize: [256],
}));

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
  rt.dispatch(op, forwardSpec, { count, L: f.L, inner: f.inner, eps }, { a, b, out: y, saved }, grid1d(count, WG));
  return { y, saved };
}

/** Gradients with respect to a and b, each computed only when `need` asks for it (null otherwise). */
export function cosineBackward(
  rt: Runtime, a: Tensor, b: Tensor, dy: Tensor, saved: Tensor, axis: CosineAxis, eps: number,
  need: { a: boolean; b: boolean } = { a: true, b: true },
): { da: Tensor | null; db: Tensor | null } {
  const f = framing(a, axis);
  const da = need.a ? rt.empty(a.shape, 'f32', 'cosine gradient (a)') : null;
  const db = need.b ? rt.empty(b.shape, 'f32', 'cosine gradient (b)') : null;
  if (da || db) rt.dispatch(`cosine similarity (${axis}) backward`, backwardSpec(need.a, need.b), { n: a.size, L: f.L, inner: f.inner, eps }, { a, b, dy, saved, da, db }, grid1d(a.size, 256));
  return { da, db };
}
