/**
 * conv2d, NCHW, weights [Cout, Cin, KH, KW] (PyTorch layout), any kernel size, stride and padding.
 * Forward, backward-data and backward-weight side by side; bias gradient is a sum over (N, H, W).
 */
import { kernelVariants, read, write, type KernelSpec } from '../graph/kernel.js';
import type { Runtime } from '../graph/runtime.js';
import { shapeStr, type Tensor } from '../graph/tensor.js';
import { assertRank, blockWorkgroup, grid1d } from './util.js';
import { sumToShape } from './reduce.js';
import { phaseWinogradConv, phaseWinogradConvBackwardData, phaseWinogradConvBackwardWeight, phaseWinogradWeights, winogradConv, winogradConvBackwardWeight, winogradWeights, type WinogradTile } from './conv2d-winograd.js';
import { frozenTransform, planConv, SCHEMES, type AdapterCaps, type ConvAlgorithm, type ConvPass, type ConvPlan, type ConvPolicy, type WeightKind, type WinogradScheme } from './conv-plan.js';

export type { ConvAlgorithm, ConvPass, ConvPlan } from './conv-plan.js';

export interface Conv2dOptions {
  stride?: number;
  padding?: number;
}

/** Options of a pass: an algorithm asked for (unset: the planner's choice), or a whole plan (tests). */
export interface ConvAlgorithmOption {
  algorithm?: ConvAlgorithm;
  plan?: ConvPlan;
}

export interface Conv2dForwardOptions extends Conv2dOptions, ConvAlgorithmOption {
  /** Fused epilogue (inference only: no backward rule reads the pre-activation). */
  relu?: boolean;
  /** Added to the output before the ReLU (a ResNet block's shortcut), same shape as the output. */
  residual?: Tensor;
  /** Input-channel chunks computed in parallel (default: the plan's). */
  splits?: number;
}

export interface ConvGeometry {
  N: number; Cin: number; H: number; W: number;
  Cout: number; KH: number; KW: number;
  OH: number; OW: number; stride: number; pad: number;
}

/**
 * Weight gradient: output channels per invocation (x 4 columns), and the workgroup: one row of
 * invocations over columns, so that the channel block (and every dy address) is uniform across it.
 */
const WGRAD_TM = 8;
/** Quads of 4 weight columns per weight-gradient invocation: 2 for 3x3 and 7x7 convs, 1 for 1x1 ones (too few columns; journal 2026-11-30). */
const wgradColumnQuads = (g: ConvGeometry) => (g.KH * g.KW > 1 ? 2 : 1);

const GEOMETRY_PARAMS = [
  ['N', 'u32'], ['Cin', 'u32'], ['H', 'u32'], ['W', 'u32'], ['Cout', 'u32'], ['OH', 'u32'], ['OW', 'u32'],
  ['KH', 'u32'], ['KW', 'u32'], ['stride', 'u32'], ['pad', 'u32'],
] as const;

/** Split-K parameters, in the variants with SPLIT on. */
const SPLIT_PARAMS = [['splits', 'u32', 'SPLIT'], ['chunk', 'u32', 'SPLIT']] as const;

/** The geometry's fields are the kernels' parameters of the same names. */
const geometryValues = ({ N, Cin, H, W, Cout, OH, OW, KH, KW, stride, pad }: ConvGeometry) => ({ N, Cin, H, W, Cout, OH, OW, KH, KW, stride, pad });

/** Channels per invocation in the forward and backward-data kernels (weights are read as vec4s). */
const BLOCK = 8;

/** vec4s per packed weight row: `channels` rounded up to whole channel blocks. */
const pad4Of = (channels: number) => Math.ceil(channels / BLOCK) * (BLOCK / 4);

/** Quads of 4 output pixels per forward invocation (with BLOCK channels): 64 multiply-adds per 16 loaded values (journal 2026-11-30, "What lavapipe makes of a kernel"). */
const FORWARD_PIXEL_QUADS = 2;

const forwardSpec = kernelVariants((hasBias: boolean, relu: boolean, residual: boolean, split: boolean, wg: readonly number[]): KernelSpec => ({
  shader: 'conv2d_forward',
  defines: { TM: BLOCK, PQ: FORWARD_PIXEL_QUADS, HAS_BIAS: hasBias, RELU: relu, RESIDUAL: residual, SPLIT: split },
  params: [...GEOMETRY_PARAMS, ['pad4', 'u32'], ...SPLIT_PARAMS],
  bindings: [read('x'), read('wp', 'vec4f'), read('bias', 'f32', 'HAS_BIAS'), read('res', 'f32', 'RESIDUAL'), write('y')],
  workgroupSize: [wg[0], wg[1]],
}));

const backwardDataSpec = kernelVariants((split: boolean, wg: readonly number[]): KernelSpec => ({
  shader: 'conv2d_backward_data',
  defines: { TM: BLOCK, SPLIT: split },
  params: [...GEOMETRY_PARAMS, ['groupsPerRow', 'u32'], ['rowsPerPhase', 'u32'], ['pad4', 'u32'], ...SPLIT_PARAMS],
  bindings: [read('dy'), read('wp', 'vec4f'), write('dx')],
  workgroupSize: [wg[0], wg[1]],
}));

const backwardWeightSpec = kernelVariants((columnQuads: number, wg: readonly number[]): KernelSpec => ({
  shader: 'conv2d_backward_weight',
  defines: { TM: WGRAD_TM, CQ: columnQuads },
  params: [...GEOMETRY_PARAMS, ['rowsPerSplit', 'u32']],
  bindings: [read('dy'), read('x'), write('partial')],
  workgroupSize: [wg[0], wg[1]],
}));

const sumSplitsSpec: KernelSpec = {
  shader: 'sum_splits',
  defines: { HAS_BIAS: false, RESIDUAL: false, RELU: false },
  params: [['n', 'u32'], ['splits', 'u32']],
  bindings: [read('partial'), write('out')],
  workgroupSize: [256],
};

/** The second pass of a split forward convolution: the sum of the partials and the epilogue. */
const splitEpilogueSpec = kernelVariants((hasBias: boolean, relu: boolean, residual: boolean): KernelSpec => ({
  shader: 'sum_splits',
  defines: { HAS_BIAS: hasBias, RESIDUAL: residual, RELU: relu },
  params: [['n', 'u32'], ['splits', 'u32'], ['OHW', 'u32'], ['Cout', 'u32']],
  bindings: [read('partial'), read('bias', 'f32', 'HAS_BIAS'), read('res', 'f32', 'RESIDUAL'), write('out')],
  workgroupSize: [256],
}));

const packSpec = kernelVariants((forward: boolean): KernelSpec => ({
  shader: 'conv2d_pack_weights',
  defines: { FORWARD: forward },
  params: [['rows', 'u32'], ['pad4', 'u32'], ['Cin', 'u32'], ['Cout', 'u32'], ['KH', 'u32'], ['KW', 'u32']],
  bindings: [read('w'), write('packed')],
  workgroupSize: [256],
}));

/**
 * Weights repacked for vec4 loads of consecutive channels: forward [Cin*KH*KW][Cout padded],
 * backward-data [Cout*KH*KW][Cin padded]; `pad4` vec4s per row. Weights are small, so this costs
 * little next to the convolution, and it must follow every SGD step anyway.
 */
function packWeights(rt: Runtime, w: Tensor, g: ConvGeometry, pad4: number, forward: boolean): Tensor {
  const KK = g.KH * g.KW;
  const rows = forward ? g.Cin * KK : g.Cout * KK;
  const packed = rt.empty([rows, pad4 * 4], 'f32', 'conv2d packed weights');
  rt.dispatch('conv2d', packSpec(forward), { rows, pad4, Cin: g.Cin, Cout: g.Cout, KH: g.KH, KW: g.KW }, { w, packed }, grid1d(rows * pad4 * 4, 256));
  return packed;
}

export function convGeometry(x: Tensor, w: Tensor, opts: Conv2dOptions, op = 'conv2d'): ConvGeometry {
  assertRank(op, x, 4, 'input');
  assertRank(op, w, 4, 'weight');
  return convGeometryOf(x.shape, w.shape, opts, op);
}

/** Output size and loop bounds of a convolution of an input of shape xs with weights of shape ws. */
export function convGeometryOf(xs: readonly number[], ws: readonly number[], opts: Conv2dOptions, op = 'conv2d'): ConvGeometry {
  const [N, Cin, H, W] = xs;
  const [Cout, wCin, KH, KW] = ws;
  const stride = opts.stride ?? 1;
  const pad = opts.padding ?? 0;
  if (wCin !== Cin) {
    throw new Error(`${op}: input ${shapeStr(xs)} has ${Cin} channels but weight ${shapeStr(ws)} expects ${wCin}`);
  }
  if (!Number.isInteger(stride) || stride < 1 || !Number.isInteger(pad) || pad < 0) {
    throw new Error(`${op}: stride must be an integer >= 1 and padding >= 0, got stride ${stride}, padding ${pad}`);
  }
  const OH = Math.floor((H + 2 * pad - KH) / stride) + 1;
  const OW = Math.floor((W + 2 * pad - KW) / stride) + 1;
  if (OH < 1 || OW < 1) {
    throw new Error(`${op}: kernel ${KH}x${KW} with padding ${pad} does not fit input ${shapeStr(xs)}`);
  }
  return { N, Cin, H, W, Cout, KH, KW, OH, OW, stride, pad };
}

/** What the planner needs of a runtime's adapter. */
export const adapterCaps = (rt: Runtime): AdapterCaps => ({ isSoftware: rt.adapter.isSoftware, maxStorageBufferBindingSize: rt.limits.maxStorageBufferBindingSize });

/** Planner overrides by device: kept here, not on the runtime (which holds no conv policy). */
const policies = new WeakMap<Runtime, ConvPolicy>();

/**
 * Overrides the planner's defaults for every conv on this device from now on (tests that pin a Winograd
 * tile; the benchmark's --conv3x3 A/B). Frozen weights packed before keep their transform.
 */
export function setConvPolicy(rt: Runtime, policy: ConvPolicy): void {
  policies.set(rt, { ...policy });
}

export const convPolicy = (rt: Runtime): ConvPolicy => policies.get(rt) ?? {};

/** The plan of a pass on this device (conv-plan.ts decides; the passes below execute it). */
export const planOn = (rt: Runtime, g: ConvGeometry, pass: ConvPass, weights: WeightKind, request?: ConvAlgorithm, available: WinogradScheme | null = null): ConvPlan =>
  planConv(adapterCaps(rt), g, pass, weights, request, convPolicy(rt), available);

/**
 * Forward-packed weights of a frozen conv (teacher, folded student): packed once, not at every call, with
 * the Winograd transform the planner keeps for this conv shape (`frozenTransform`: a stride-1 3x3 conv's
 * F(4x4, 3x3), a stride-2 conv's over its input's phases) where it prefers Winograd; the direct packing
 * stays for inputs too large for Winograd's temporaries.
 */
export class PackedConvWeights {
  private constructor(
    readonly packed: Tensor,
    readonly winograd: Tensor | null,
    /** The scheme of `winograd`. */
    readonly scheme: WinogradScheme | null,
    /** The OIHW shape of the weights. */
    readonly shape: readonly number[],
    /** The stride they were packed for (which `winograd` is for). */
    readonly stride: number,
  ) {}

  /** `opts`: the stride and padding the conv is used with (they decide whether Winograd applies). */
  static of(rt: Runtime, w: Tensor, opts: Conv2dOptions = {}): PackedConvWeights {
    assertRank('conv2d', w, 4, 'weight');
    const [Cout, , KH, KW] = w.shape;
    const g = convGeometryOf([1, w.shape[1], KH + 2, KW + 2], w.shape, opts);
    const packed = packWeights(rt, w, g, pad4Of(Cout), true).keep();
    const scheme = frozenTransform(adapterCaps(rt), g, convPolicy(rt));
    const winograd = scheme === null ? null : (SCHEMES[scheme].phases ? phaseWinogradWeights(rt, w) : winogradWeights(rt, w, true, SCHEMES[scheme].tile as WinogradTile)).keep();
    return new PackedConvWeights(packed, winograd, scheme, w.shape, g.stride);
  }

  dispose(): void {
    this.packed.dispose();
    this.winograd?.dispose();
  }
}

/** Channels per chunk for `splits` requested chunks of `reduced` channels, and how many chunks that makes. */
function chunking(reduced: number, splits: number): { chunk: number; used: number } {
  const chunk = Math.ceil(reduced / splits);
  return { chunk, used: Math.ceil(reduced / chunk) };
}

export function conv2dForward(rt: Runtime, x: Tensor, w: Tensor | PackedConvWeights, bias: Tensor | null, opts: Conv2dForwardOptions = {}): Tensor {
  assertRank('conv2d', x, 4, 'input');
  const g = convGeometryOf(x.shape, w.shape, opts);
  if (bias && (bias.rank !== 1 || bias.shape[0] !== g.Cout)) {
    throw new Error(`conv2d: bias must have shape [${g.Cout}], got ${shapeStr(bias.shape)}`);
  }
  const res = opts.residual;
  if (res && res.shape.join() !== [g.N, g.Cout, g.OH, g.OW].join()) {
    throw new Error(`conv2d: residual must have the output's shape ${shapeStr([g.N, g.Cout, g.OH, g.OW])}, got ${shapeStr(res.shape)}`);
  }
  const epilogue = { bias, residual: res, relu: opts.relu };
  const frozen = w instanceof PackedConvWeights;
  // frozen weights offer the transform they were packed with, for the stride they were packed for
  const plan = opts.plan ?? planOn(rt, g, 'forward', frozen ? 'frozen' : 'trained', opts.algorithm, frozen && w.stride === g.stride ? w.scheme : null);
  if (plan.algorithm !== 'direct') {
    const shape = SCHEMES[plan.algorithm];
    const u = frozen ? w.winograd! : shape.phases ? phaseWinogradWeights(rt, w) : winogradWeights(rt, w, true, shape.tile as WinogradTile);
    const chunked = { ...epilogue, maxImagesPerChunk: plan.imagesPerChunk };
    const y = shape.phases ? phaseWinogradConv(rt, x, u, g.Cout, g.pad, chunked) : winogradConv(rt, x, u, g.Cout, g.pad, chunked);
    if (!frozen) u.dispose();
    return y;
  }
  const y = rt.empty([g.N, g.Cout, g.OH, g.OW], 'f32', 'conv2d output');
  const pad4 = pad4Of(g.Cout);
  const ownsPacked = !(w instanceof PackedConvWeights);
  const wp = w instanceof PackedConvWeights ? w.packed : packWeights(rt, w, g, pad4, true);
  const pixelGroups = Math.ceil((g.OH * g.OW) / (4 * FORWARD_PIXEL_QUADS));
  const channelBlocks = Math.ceil(g.Cout / BLOCK);
  const [wx, wy] = blockWorkgroup(pixelGroups, channelBlocks);
  const groups: [number, number, number] = [Math.ceil(pixelGroups / wx), Math.ceil(channelBlocks / wy), g.N];
  const splits = opts.splits ?? plan.splits;
  if (splits <= 1) {
    rt.dispatch('conv2d', forwardSpec(!!bias, !!opts.relu, !!res, false, [wx, wy]), { ...geometryValues(g), pad4 }, { x, wp, bias, res, y }, groups);
  } else {
    const { chunk, used } = chunking(g.Cin, splits);
    const partial = rt.empty([used, ...y.shape], 'f32', 'conv2d output (partial sums)');
    groups[2] = g.N * used;
    rt.dispatch('conv2d', forwardSpec(false, false, false, true, [wx, wy]), { ...geometryValues(g), pad4, splits: used, chunk }, { x, wp, y: partial }, groups);
    const n = y.size;
    rt.dispatch('conv2d', splitEpilogueSpec(!!bias, !!opts.relu, !!res), { n, splits: used, OHW: g.OH * g.OW, Cout: g.Cout }, { partial, bias, res, out: y }, grid1d(n, 256));
    partial.dispose();
  }
  if (ownsPacked) wp.dispose();
  return y;
}

/** Gradient with respect to the input (a transposed convolution of dy with the same weights). */
export function conv2dBackwardData(rt: Runtime, dy: Tensor, w: Tensor, g: ConvGeometry, opts: { splits?: number } & ConvAlgorithmOption = {}): Tensor {
  const plan = opts.plan ?? planOn(rt, g, 'backward-data', 'trained', opts.algorithm);
  if (plan.algorithm !== 'direct') {
    // stride 2: dy convolved with each phase's rotated filter, into the input's phases; stride 1: a
    // convolution of dy with the flipped, transposed weights, padded by 2 - pad
    const intoPhases = plan.algorithm.endsWith('into-phases');
    const u = intoPhases ? phaseWinogradWeights(rt, w, false) : winogradWeights(rt, w, false, SCHEMES[plan.algorithm].tile as WinogradTile);
    const dx = intoPhases
      ? phaseWinogradConvBackwardData(rt, dy, u, g, plan.imagesPerChunk)
      : winogradConv(rt, dy, u, g.Cin, 2 - g.pad, { maxImagesPerChunk: plan.imagesPerChunk }, 'conv2d backward (input)');
    u.dispose();
    return dx;
  }
  const dx = rt.empty([g.N, g.Cin, g.H, g.W], 'f32', 'conv2d input gradient');
  const groupsPerRow = Math.ceil(Math.ceil(g.W / g.stride) / 4);
  const rowsPerPhase = Math.ceil(g.H / g.stride);
  const invocations = g.stride * g.stride * rowsPerPhase * groupsPerRow;
  const pad4 = pad4Of(g.Cin);
  const wp = packWeights(rt, w, g, pad4, false);
  const channelBlocks = Math.ceil(g.Cin / BLOCK);
  const [wx, wy] = blockWorkgroup(invocations, channelBlocks);
  const groups: [number, number, number] = [Math.ceil(invocations / wx), Math.ceil(channelBlocks / wy), g.N];
  const params = { ...geometryValues(g), groupsPerRow, rowsPerPhase, pad4 };
  const splits = opts.splits ?? plan.splits;
  if (splits <= 1) {
    rt.dispatch('conv2d backward (input)', backwardDataSpec(false, [wx, wy]), params, { dy, wp, dx }, groups);
  } else {
    const { chunk, used } = chunking(g.Cout, splits);
    const partial = rt.empty([used, ...dx.shape], 'f32', 'conv2d input gradient (partial sums)');
    groups[2] = g.N * used;
    rt.dispatch('conv2d backward (input)', backwardDataSpec(true, [wx, wy]), { ...params, splits: used, chunk }, { dy, wp, dx: partial }, groups);
    rt.dispatch('conv2d backward (input)', sumSplitsSpec, { n: dx.size, splits: used }, { partial, out: dx }, grid1d(dx.size, 256));
    partial.dispose();
  }
  wp.dispose();
  return dx;
}


/** Gradient with respect to the weights: direct (split-K over output rows), or Winograd F(3x3, 4x4) for stride-1 3x3 convs. */
export function conv2dBackwardWeight(rt: Runtime, dy: Tensor, x: Tensor, g: ConvGeometry, opts: ConvAlgorithmOption = {}): Tensor {
  const plan = opts.plan ?? planOn(rt, g, 'backward-weight', 'trained', opts.algorithm);
  if (plan.algorithm !== 'direct') {
    // the transposed algorithm of the forward's, over the input's phases for a stride-2 conv
    return SCHEMES[plan.algorithm].phases
      ? phaseWinogradConvBackwardWeight(rt, dy, x, g, plan.imagesPerChunk)
      : winogradConvBackwardWeight(rt, dy, x, g, SCHEMES[plan.algorithm].tile as 2 | 4, plan.imagesPerChunk);
  }
  const cols = g.Cin * g.KH * g.KW;
  const columnQuads = wgradColumnQuads(g);
  const colGroups = Math.ceil(cols / (4 * columnQuads));
  const channelBlocks = Math.ceil(g.Cout / WGRAD_TM);
  const rows = g.N * g.OH;
  const rowsPerSplit = Math.ceil(rows / plan.splits);
  const splits = Math.ceil(rows / rowsPerSplit);
  const dw = rt.empty([g.Cout, g.Cin, g.KH, g.KW], 'f32', 'conv2d weight gradient');
  const partial = splits === 1 ? dw : rt.empty([splits, g.Cout * cols], 'f32', 'conv2d weight gradient (partial sums)');
  const [wx, wy] = blockWorkgroup(colGroups, channelBlocks);
  const groups: [number, number, number] = [Math.ceil(colGroups / wx), Math.ceil(channelBlocks / wy), splits];
  rt.dispatch('conv2d backward (weight)', backwardWeightSpec(columnQuads, [wx, wy]), { ...geometryValues(g), rowsPerSplit }, { dy, x, partial }, groups);
  if (partial !== dw) {
    const n = g.Cout * cols;
    rt.dispatch('conv2d backward (weight)', sumSplitsSpec, { n, splits }, { partial, out: dw }, grid1d(n, 256));
    partial.dispose();
  }
  return dw;
}

/** Gradient with respect to the bias: dy summed over batch and pixels. */
export function conv2dBackwardBias(rt: Runtime, dy: Tensor): Tensor {
  return sumToShape(rt, dy, [1, dy.shape[1], 1, 1]).asShape([dy.shape[1]]);
}

/** Multiply-adds of one forward pass (the backward passes each cost the same). */
export function conv2dMacs(g: ConvGeometry): number {
  return g.N * g.Cout * g.OH * g.OW * g.Cin * g.KH * g.KW;
}
