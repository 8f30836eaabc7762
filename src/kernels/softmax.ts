/**
 * Softmax and log-softmax over H x W for each (n, c), and the KL divergence KL(P_t || P_s) between two
 * such distributions at temperature T (the spatial distillation loss), forward and backward side by side.
 */
import { kernelVariants, read, write, type KernelSpec } from '../graph/kernel.js';
import type { Runtime } from '../graph/runtime.js';
import type { Tensor } from '../graph/tensor.js';
import { assertRank, assertSameShape, grid1d, reduceRowPerInvocation, ROW_PER_INVOCATION_WORKGROUP, rowReductionGroups } from './util.js';

/** Rows are reduced by one workgroup each; a smaller workgroup for short rows wastes fewer lanes. */
const rowWorkgroup = (L: number) => (L >= 256 ? 256 : 64);

const softmaxSpec = kernelVariants((log: boolean, wg: number): KernelSpec => ({
  shader: 'softmax',
  defines: { LOG: log },
  params: [['rows', 'u32'], ['L', 'u32']],
  bindings: [read('x'), write('y')],
  workgroupSize: [wg],
}));
const softmaxBackwardSpec = kernelVariants((log: boolean, wg: number): KernelSpec => ({
  shader: 'softmax_backward',
  defines: { LOG: log },
  params: [['rows', 'u32'], ['L', 'u32']],
  bindings: [read('y'), read('dy'), write('dx')],
  workgroupSize: [wg],
}));

function rows(x: Tensor, op: string): { R: number; L: number } {
  assertRank(op, x, 4);
  const [N, C, H, W] = x.shape;
  return { R: N * C, L: H * W };
}

export function softmaxForward(rt: Runtime, x: Tensor, log: boolean): Tensor {
  const op = log ? 'log_softmax' : 'softmax';
  const { R, L } = rows(x, op);
  const y = rt.empty(x.shape, 'f32', `${op} output`);
  const wg = rowWorkgroup(L);
  rt.dispatch(op, softmaxSpec(log, wg), { rows: R, L }, { x, y }, grid1d(R, 1));
  return y;
}

/** Backward from the forward output y. */
export function softmaxBackward(rt: Runtime, y: Tensor, dy: Tensor, log: boolean): Tensor {
  const op = log ? 'log_softmax backward' : 'softmax backward';
  assertSameShape(op, y, dy);
  const { R, L } = rows(y, op);
  const dx = rt.empty(y.shape, 'f32', `${op} gradient`);
  rt.dispatch(op, softmaxBackwardSpec(log, rowWorkgroup(L)), { rows: R, L }, { y, dy, dx }, grid1d(R, 1));
  return dx;
}

const klSpec = kernelVariants((wg: number, perThread: boolean): KernelSpec => ({
  shader: 'kl_rows',
  defines: { PER_THREAD: perThread },
  params: [['rows', 'u32'], ['L', 'u32'], ['T', 'f32']],
  bindings: [read('t'), read('s'), write('kl'), write('saved')],
  workgroupSize: [perThread ? ROW_PER_INVOCATION_WORKGROUP : wg],
}));
/** Each side's gradient only where it is wanted (the teacher's usually is not). */
const klBackwardSpec = kernelVariants((needT: boolean, needS: boolean): KernelSpec => ({
  shader: 'kl_rows_backward',
  defines: { NEED_T: needT, NEED_S: needS },
  params: [['n', 'u32'], ['L', 'u32'], ['T', 'f32']],
  bindings: [read('t'), read('s'), read('dy'), read('kl'), read('saved'), write('dt', 'f32', 'NEED_T'), write('ds', 'f32', 'NEED_S')],
  workgroupSize: [256],
}));

/** KL(softmax(t/T) || softmax(s/T)) over H x W for each (n, c): [N, C, H, W] x2 -> [N, C]. */
export function klSpatialForward(rt: Runtime, t: Tensor, s: Tensor, T: number): { kl: Tensor; saved: Tensor } {
  const op = 'spatial KL divergence';
  assertSameShape(op, t, s);
  const { R, L } = rows(t, op);
  if (!(T > 0)) throw new Error(`${op}: temperature must be > 0, got ${T}`);
  const kl = rt.empty([t.shape[0], t.shape[1]], 'f32', `${op} output`);
  const saved = rt.empty([2 * R], 'f32', `${op} saved log-sum-exps`);
  const perThread = reduceRowPerInvocation(rt, R);
  rt.dispatch(op, klSpec(rowWorkgroup(L), perThread), { rows: R, L, T }, { t, s, kl, saved }, rowReductionGroups(perThread, R));
  return { kl, saved };
}

/** Gradients with respect to t and s, each computed only when `need` asks for it (null otherwise). */
export function klSpatialBackward(
  rt: Runtime, t: Tensor, s: Tensor, dy: Tensor, kl: Tensor, saved: Tensor, T: number,
  need: { t: boolean; s: boolean } = { t: true, s: true },
): { dt: Tensor | null; ds: Tensor | null } {
  const { L } = rows(t, 'spatial KL divergence backward');
  const dt = need.t ? rt.empty(t.shape, 'f32', 'KL gradient (teacher)') : null;
  const ds = need.s ? rt.empty(s.shape, 'f32', 'KL gradient (student)') : null;
  if (dt || ds) rt.dispatch('spatial KL divergence backward', klBackwardSpec(need.t, need.s), { n: t.size, L, T }, { t, s, dy, kl, saved, dt, ds }, grid1d(t.size, 256));
  return { dt, ds };
}
