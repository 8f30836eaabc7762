/** Small helpers shared by the kernel families. */
import { shapeStr, type Shape, type Tensor } from '../graph/tensor.js';
import type { Runtime } from '../graph/runtime.js';

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

/** Invocations per workgroup of the register-blocked kernels (direct convolutions, Winograd GEMM). */
export const BLOCK_LANES = 64;

/**
 * The workgroup of a register-blocked kernel over `columns` x `rowBlocks` invocations (pixel or column
 * groups x channel blocks): a row of up to BLOCK_LANES invocations over columns; when there are fewer
 * columns than that (small maps), the rest of the lanes take more row blocks instead of idling. Layer3's
 * 3x3/2 conv at 64 px has 2 pixel groups per image: in a workgroup of 8 over pixels alone, 6 of every 8
 * lanes idled (23 ms; 2 x 32 lanes: 6 ms, lavapipe, batch 8).
 */
export function blockWorkgroup(columns: number, rowBlocks: number): [number, number] {
  let x = 1;
  while (x < BLOCK_LANES && x < columns) x *= 2;
  let y = 1;
  while (x * y < BLOCK_LANES && y < rowBlocks) y *= 2;
  return [x, y];
}

/** Workgroup size of a reduction that runs one invocation per row. */
export const ROW_PER_INVOCATION_WORKGROUP = 64;

/**
 * Whether a reduction of `rows` rows runs one invocation per row instead of one
 * workgroup per row with a tree reduction. On software adapters, with enough rows to occupy their few
 * SIMD lanes: there each workgroup barrier costs a switch of every invocation of the workgroup, and the
 * tree needs log2(workgroup) of them (the attention's global pools and the KD loss's rows at batch 8,
 * 128 and 256 px: 6-45x faster on lavapipe). GPUs keep the tree, which spreads a row over many lanes.
 */
export function reduceRowPerInvocation(rt: Runtime, rows: number): boolean {
  return rt.adapter.isSoftware && rows >= 64;
}

/** Workgroups of a row reduction: one per row, or `rows` invocations in workgroups of ROW_PER_INVOCATION_WORKGROUP. */
export function rowReductionGroups(perInvocation: boolean, rows: number): [number, number] {
  return grid1d(rows, perInvocation ? ROW_PER_INVOCATION_WORKGROUP : 1);
}

/** Units (vec4s or values) per invocation of the elementwise kernels (lib_elementwise.wgsl). */
const UNITS_PER_INVOCATION = 4;
/** Workgroup size of the elementwise kernels. */
export const ELEMENTWISE_WORKGROUP = 256;

/** The element type of an elementwise kernel's unit-indexed buffers. */
export const unitType = (vec4: boolean) => (vec4 ? 'vec4f' : 'f32');

/** The defines of an elementwise kernel: vec4 units or single values. */
export const elementwiseDefines = (vec4: boolean) => ({ VEC4: vec4, UNITS: UNITS_PER_INVOCATION });

/**
 * An elementwise kernel over `count` values: its units (vec4s where `vec4`, by default whenever `count`
 * divides by 4; else values), which are the kernel's `units` parameter, and its workgroups.
 */
export function elementwiseLaunch(count: number, vec4 = count % 4 === 0): { vec4: boolean; units: number; groups: [number, number] } {
  if (vec4 && count % 4 !== 0) throw new Error(`internal: vec4 units over ${count} values`);
  const units = vec4 ? count / 4 : count;
  return { vec4, units, groups: grid1d(Math.ceil(units / UNITS_PER_INVOCATION), ELEMENTWISE_WORKGROUP) };
}
