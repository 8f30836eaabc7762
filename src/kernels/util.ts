/** Small helpers shared by the kernel families. */
import { shapeStr, type Shape, type Tensor } from '../graph/tensor.js';

/** Workgroup counts for a 1-D problem, folded into 2-D past the per-dimension limit (65535). */
export function grid1d(count: number, workgroupSize: number, maxPerDim = 65535): [number, number] {
  const groups = Math.ceil(count / workgroupSize);
  if (groups <= maxPerDim) return [groups, 1];
  const y = Math.ceil(groups / maxPerDim);
  return [Math.ceil(groups / y), y];
}

export function assertRank(op: string, t: Tensor, rank: number, name = 'input'): void {
  if (t.rank !== rank) throw new Error(`${op}: ${name} must have rank ${rank}, got shape ${shapeStr(t.shape)}`);
}

export function assertSameShape(op: string, a: Tensor, b: Tensor): void {
  if (a.shape.length !== b.shape.length || a.shape.some((d, i) => d !== b.shape[i])) {
    throw new Error(`${op}: shapes differ: ${shapeStr(a.shape)} vs ${shapeStr(b.shape)}`);
  }
}

export function assertShape(op: string, t: Tensor, expected: Shape, name: string): void {
  if (t.shape.length !== expected.length || t.shape.some((d, i) => d !== expected[i])) {
    throw new Error(`${op}: ${name} must have shape ${shapeStr(expected)}, got ${shapeStr(t.shape)}`);
  }
}
