/**
 * Elementwise ops: ReLU, sigmoid, affine (a*x + b), fill, and add / multiply with broadcasting
 * (per-channel [N,C,1,1] and per-pixel [N,1,H,W] gates, scalars), forward and backward side by side.
 */
import { kernelVariants, read, write, type KernelSpec } from '../graph/kernel.js';
import type { Runtime } from '../graph/runtime.js';
import { shapeStr, type Shape, type Tensor } from '../graph/tensor.js';
import { sumToShape, toRank4 } from './reduce.js';
import { assertSameShape, elementwiseDefines, elementwiseLaunch, ELEMENTWISE_WORKGROUP, unitType } from './util.js';

type UnaryKind = 'relu' | 'sigmoid' | 'affine';
const unarySpec = kernelVariants((kind: UnaryKind, vec4: boolean): KernelSpec => ({
  shader: 'unary',
  defines: { RELU: kind === 'relu', SIGMOID: kind === 'sigmoid', ...elementwiseDefines(vec4) },
  params: [['units', 'u32'], ['a', 'f32'], ['b', 'f32']],
  bindings: [read('x', unitType(vec4)), write('y', unitType(vec4))],
  workgroupSize: [ELEMENTWISE_WORKGROUP],
}));

const unaryBackwardSpec = kernelVariants((kind: 'relu' | 'sigmoid', vec4: boolean): KernelSpec => ({
  shader: 'unary_backward',
  defines: { RELU: kind === 'relu', ...elementwiseDefines(vec4) },
  params: [['units', 'u32']],
  bindings: [read('y', unitType(vec4)), read('dy', unitType(vec4)), write('dx', unitType(vec4))],
  workgroupSize: [ELEMENTWISE_WORKGROUP],
}));

const fillSpec = kernelVariants((vec4: boolean): KernelSpec => ({
  shader: 'fill',
  defines: elementwiseDefines(vec4),
  params: [['units', 'u32'], ['value', 'f32']],
  bindings: [write('y', unitType(vec4))],
  workgroupSize: [ELEMENTWISE_WORKGROUP],
}));

function unary(rt: Runtime, kind: UnaryKind, x: Tensor, a = 1, b = 0): Tensor {
  const y = rt.empty(x.shape, 'f32', `${kind} output`);
  const { vec4, units, groups } = elementwiseLaunch(x.size);
  rt.dispatch(kind, unarySpec(kind, vec4), { units, a, b }, { x, y }, groups);
  return y;
}

export const reluForward = (rt: Runtime, x: Tensor) => unary(rt, 'relu', x);
export const sigmoidForward = (rt: Runtime, x: Tensor) => unary(rt, 'sigmoid', x);
/** y = a * x + b */
export const affineForward = (rt: Runtime, x: Tensor, a: number, b: number) => unary(rt, 'affine', x, a, b);

/** dx from the forward output y (ReLU: y > 0; sigmoid: y (1 - y)). */
export function unaryBackward(rt: Runtime, kind: 'relu' | 'sigmoid', y: Tensor, dy: Tensor): Tensor {
  assertSameShape(`${kind} backward`, y, dy);
  const dx = rt.empty(y.shape, 'f32', `${kind} gradient`);
  const { vec4, units, groups } = elementwiseLaunch(y.size);
  rt.dispatch(`${kind} backward`, unaryBackwardSpec(kind, vec4), { units }, { y, dy, dx }, groups);
  return dx;
}

/** Sets every element to `value`. A u32 tensor gets the f32 bit pattern (NaN poison: 0x7fc00000, an index no tensor has). */
export function fill(rt: Runtime, y: Tensor, value: number): Tensor {
  const { vec4, units, groups } = elementwiseLaunch(y.size);
  rt.dispatch('fill', fillSpec(vec4), { units, value }, { y: y.dtype === 'u32' ? y.buffer : y }, groups);
  return y;
}

// ---- broadcasting binary ops ----------------------------------------------------------------------

const binarySpec = kernelVariants((mul: boolean, vec4: boolean, same: boolean, aSplat: boolean, bSplat: boolean): KernelSpec => ({
  shader: 'binary',
  defines: { MUL: mul, SAME: same, A_SPLAT: aSplat, B_SPLAT: bSplat, ...elementwiseDefines(vec4) },
  params: [
    ['units', 'u32'], ['d1', 'u32'], ['d2', 'u32'], ['d3', 'u32'],
    ['a0', 'u32'], ['a1', 'u32'], ['a2', 'u32'], ['a3', 'u32'],
    ['b0', 'u32'], ['b1', 'u32'], ['b2', 'u32'], ['b3', 'u32'],
  ],
  bindings: [read('a', unitType(vec4 && !aSplat)), read('b', unitType(vec4 && !bSplat)), write('out', unitType(vec4))],
  workgroupSize: [ELEMENTWISE_WORKGROUP],
}));

/** The broadcast result shape of a and b (NumPy rules, rank <= 4). */
export function broadcastShape(op: string, a: Shape, b: Shape): number[] {
  const rank = Math.max(a.length, b.length);
  if (rank > 4) throw new Error(`${op}: rank ${rank} is not supported (at most 4)`);
  const pa = [...Array(rank - a.length).fill(1), ...a];
  const pb = [...Array(rank - b.length).fill(1), ...b];
  return pa.map((d, i) => {
    if (d === pb[i] || pb[i] === 1) return d;
    if (d === 1) return pb[i];
    throw new Error(`${op}: shapes ${shapeStr(a)} and ${shapeStr(b)} do not broadcast`);
  });
}

/** An operand's element strides for each axis of the output (0 along broadcast axes). */
function broadcastStrides(shape: Shape, out: [number, number, number, number]): number[] {
  const s = toRank4(shape);
  const contiguous = [s[1] * s[2] * s[3], s[2] * s[3], s[3], 1];
  return s.map((d, i) => (d === 1 && out[i] !== 1 ? 0 : contiguous[i]));
}

export function binaryForward(rt: Runtime, kind: 'add' | 'mul', a: Tensor, b: Tensor): Tensor {
  const shape = broadcastShape(kind, a.shape, b.shape);
  const out = rt.empty(shape, 'f32', `${kind} output`);
  const n = out.size;
  // Operands of the output's size index as the output does: one axis of n values.
  const same = a.size === n && b.size === n;
  const o: [number, number, number, number] = same ? [1, 1, 1, n] : toRank4(shape);
  const [a0, a1, a2, a3] = same ? [0, 0, 0, 1] : broadcastStrides(a.shape, o);
  const [b0, b1, b2, b3] = same ? [0, 0, 0, 1] : broadcastStrides(b.shape, o);
  // vec4 units need a last extent divisible by 4 (a unit never crosses a row); along it an operand is
  // contiguous (stride 1) or broadcast (stride 0, splat).
  const { vec4, units, groups } = elementwiseLaunch(n, o[3] % 4 === 0);
  const params = { units, d1: o[1], d2: o[2], d3: o[3], a0, a1, a2, a3, b0, b1, b2, b3 };
  rt.dispatch(kind, binarySpec(kind === 'mul', vec4, same, vec4 && a3 === 0, vec4 && b3 === 0), params, { a, b, out }, groups);
  return out;
}

/** Sums a gradient of the broadcast shape back to an operand's shape (a copy when nothing was broadcast). */
export function unbroadcast(rt: Runtime, grad: Tensor, shape: Shape): Tensor {
  const g4 = toRank4(grad.shape);
  const t4 = toRank4(shape);
  if (g4.every((d, i) => d === t4[i])) return grad.reshape(shape);
  const view = grad.reshape(g4);
  const summed = sumToShape(rt, view, t4);
  view.dispose();
  return summed.asShape(shape);
}
