/**
 * conv2d, NCHW, weights [Cout, Cin, KH, KW] (PyTorch layout), any kernel size, stride and padding.
 * Forward, backward-data and backward-weight side by side; bias gradient is a sum over (N, H, W).
 */
import { kernelVariants, read, write, type KernelSpec } from '../graph/kernel.js';
import type { Runtime } from '../graph/runtime.js';
import { shapeStr, type Tensor } from '../graph/tensor.js';
import { assertRank, blockWorkgroup, grid1d } from './util.js';
import { sumToShape } from './reduce.js';
import { byPhaseWinograd, byPhaseWinogradBackwardData, byPhaseWinogradWeightGradient, phaseWinogradApplies, phaseWinogradBackwardDataFits, phaseWinogradConv, phaseWinogradConvBackwardData, phaseWinogradConvBackwardWeight, phaseWinogradFits, phaseWinogradWeights, winogradConv, winogradConvBackwardWeight, winogradFits, winogradForwardFits, winogradWeights, type WinogradTile } from './conv2d-winograd.js';

export interface Conv2dOptions {
  stride?: number;
  padding?: number;
}

/**
 * How a convolution is computed: `direct` (implicit GEMM, any shape) or `winograd` (stride-1 3x3 only:
 * F(4x4, 3x3), 4x fewer multiply-adds, 2.25x the input and output in temporaries; for the forward of
 * weights being trained F(2x2, 3x3), 2.25x fewer and 4x, or F(3x3, 3x3), 3.24x and 2.8x: see
 * trainedForwardTile).
 */
export type ConvAlgorithm = 'direct' | 'winograd';

/** Options of a pass that may take either algorithm (unset: the runtime's choice for the adapter). */
export interface ConvAlgorithmOption {
  algorithm?: ConvAlgorithm;
}

export interface Conv2dForwardOptions extends Conv2dOptions, ConvAlgorithmOption {
  /** Fused epilogue (inference only: no backward rule reads the pre-activation). */
  relu?: boolean;
  /** Added to the output before the ReLU (a ResNet block's shortcut), same shape as the output. */
  residual?: Tensor;
  /** Input-channel chunks computed in parallel (default: chosen from the size and the adapter). */
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
/**
 * Quads of 4 weight columns (ci, kh, kw) per weight-gradient invocation, as the forward's pixel quads: 2
 * measured 1.1-1.25x faster than 1 on lavapipe for the trunk's 7x7 and 3x3 convs, 1.4x slower for its
 * 1x1 convs (only Cin columns: too few invocations), which keep 1.
 */
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

/**
 * Quads of 4 output pixels per forward invocation (with BLOCK channels): 2 gives 64 multiply-adds per 16
 * loaded values instead of 32 per 12. On lavapipe the direct forward convs of the trunk ran 1.2-1.9x
 * faster with 2 than with 1 (3 and 4 slower or mixed; DESIGN.md, "What lavapipe makes of a kernel").
 */
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

/**
 * Forward-packed weights of a frozen conv (teacher, folded student): packed once, not at every call. On a
 * runtime that prefers Winograd, a stride-1 3x3 conv also keeps its Winograd transform (`winograd`), and
 * so do the stride-2 convs, the 7x7 stem and the 3x3 ones (their transforms over the input's stride-2
 * phases); the direct packing stays for inputs too large for Winograd's temporaries.
 */
export class PackedConvWeights {
  private constructor(
    readonly packed: Tensor,
    readonly winograd: Tensor | null,
    /** The OIHW shape of the weights. */
    readonly shape: readonly number[],
    /** The stride they were packed for (which `winograd` is for). */
    readonly stride: number,
  ) {}

  /** `opts`: the stride and padding the conv is used with (they decide whether Winograd applies). */
  static of(rt: Runtime, w: Tensor, opts: Conv2dOptions = {}): PackedConvWeights {
    assertRank('conv2d', w, 4, 'weight');
    const [Cout, Cin, KH, KW] = w.shape;
    const g = convGeometryOf([1, Cin, KH + 2, KW + 2], w.shape, opts);
    const packed = packWeights(rt, w, g, pad4Of(Cout), true).keep();
    const winograd = phaseWinogradApplies(rt, g) ? phaseWinogradWeights(rt, w).keep() : convAlgorithm(rt, g) === 'winograd' ? winogradWeights(rt, w, true).keep() : null;
    return new PackedConvWeights(packed, winograd, w.shape, g.stride);
  }

  dispose(): void {
    this.packed.dispose();
    this.winograd?.dispose();
  }
}

/**
 * The algorithm of a pass: the one asked for (an error if it cannot run this geometry), else Winograd where
 * the runtime prefers it for 3x3 convs and it fits, else direct.
 */
export function convAlgorithm(rt: Runtime, g: ConvGeometry, requested?: ConvAlgorithm, op = 'conv2d'): ConvAlgorithm {
  if (requested === 'winograd' && !winogradFits(rt, g)) {
    throw new Error(`${op}: Winograd needs a stride-1 3x3 convolution with padding <= 2 (every pass also takes stride-2 3x3 and 7x7 ones) whose temporaries for one image fit one binding (got ${g.KH}x${g.KW}, stride ${g.stride}, padding ${g.pad}, input ${g.N}x${g.Cin}x${g.H}x${g.W})`);
  }
  if (requested) return requested;
  return rt.conv3x3 === 'winograd' && winogradFits(rt, g) ? 'winograd' : 'direct';
}

/** The three passes of a convolution. */
export type ConvPass = 'forward' | 'backward-data' | 'backward-weight';

/**
 * How a pass with weights being trained (a Tensor, not PackedConvWeights) runs: 'phases' (a stride-2 conv by
 * Winograd over its input's stride-2 phases), 'winograd' (a stride-1 3x3 conv) or 'direct'. The one place
 * that routes those passes: the pass functions below follow it, and the benchmark reports it.
 */
export type ConvRoute = 'phases' | 'winograd' | 'direct';
export function convRoute(rt: Runtime, g: ConvGeometry, pass: ConvPass, requested?: ConvAlgorithm): ConvRoute {
  if (pass === 'forward' && byPhaseWinograd(rt, g, requested) && phaseWinogradFits(rt, g)) return 'phases';
  if (pass === 'backward-weight' && byPhaseWinogradWeightGradient(rt, g, requested)) return 'phases';
  if (pass === 'backward-data' && byPhaseWinogradBackwardData(rt, g, requested)) {
    if (phaseWinogradBackwardDataFits(rt, g)) return 'phases';
    if (requested === 'winograd') throw new Error(`conv2d backward (input): the Winograd temporaries of this stride-2 conv for one ${g.Cout}x${g.OH}x${g.OW} output gradient exceed one binding`);
  }
  const op = pass === 'forward' ? 'conv2d' : pass === 'backward-data' ? 'conv2d backward (input)' : 'conv2d backward (weight)';
  const algorithm = convAlgorithm(rt, g, requested, op);
  // the trained forward's tile has larger temporaries than the 4x4 ones convAlgorithm checked
  if (pass === 'forward' && algorithm === 'winograd' && !winogradForwardFits(rt, g, trainedForwardTile(rt, g))) {
    if (requested === 'winograd') throw new Error(`conv2d: the Winograd temporaries of this trained forward for one ${g.Cin}x${g.H}x${g.W} image exceed one binding`);
    return 'direct';
  }
  return algorithm;
}

/**
 * The Winograd tile of a forward pass with weights being trained (a Tensor, not PackedConvWeights). Its
 * output goes into batch statistics, which subtract the channel's mean and divide by its batch standard
 * deviation, so the forward's absolute rounding error comes out multiplied by |mean| / std. F(4x4, 3x3)
 * rounds 5-10x more than F(2x2, 3x3) (DESIGN.md), and there that moved one SGD step's conv1 update 3.6e-3
 * from PyTorch's (the contract is 2e-3); F(3x3, 3x3), between the two (about twice F(2x2)'s rms), leaves
 * it where F(2x2) does (1.5-1.9e-5). F(3x3) needs 25 multiply-adds per 9 outputs against F(2x2)'s 16 per
 * 4, but its tiles overhang maps that 3 does not divide, and its transforms and smaller GEMMs cost more per
 * multiply-add: on lavapipe it was 1.12-1.38x faster on 32x32 and 64x64 maps, 1.04-1.07x on 16x16 and
 * 0.84x on 8x8. So F(3x3) where its GEMM does at most 3/4 of F(2x2)'s multiply-adds (maps of 32 and
 * more, overhang included), else F(2x2), unless the runtime says which (RuntimeOptions.trainedForwardTile).
 * Frozen weights (teacher, folded student), every backward-data pass and the weight gradient (F(3x3,
 * 4x4)) take 4x4 tiles: measured, they leave the step at 1.9e-5.
 */
export function trainedForwardTile(rt: Runtime, g: Pick<ConvGeometry, 'OH' | 'OW'>): WinogradTile {
  if (rt.trainedForwardTile !== undefined) return rt.trainedForwardTile;
  // the GEMM's multiply-adds per channel pair: (t+2)^2 tile elements for each t x t tile over the map
  const gemmMacs = (t: number) => (t + 2) ** 2 * Math.ceil(g.OH / t) * Math.ceil(g.OW / t);
  return gemmMacs(3) <= 0.75 * gemmMacs(2) ? 3 : 2;
}

/** Invocations to aim for when choosing a split-K factor (enough to fill a large GPU). */
const TARGET_INVOCATIONS = 1 << 15;
/**
 * The same for the weight gradient on a software adapter: a few cores of 8 SIMD lanes are busy with far
 * fewer invocations, and every further split only adds partial sums to write and add up. Measured on
 * lavapipe (batch 8, the trunk's direct weight gradients): 68 -> 39-43 ms at 64 px and 177 -> 140-153 ms
 * at 128 px with a target of 256-1024 (no split at all: 60 and 147 ms).
 */
const SOFTWARE_WGRAD_TARGET_INVOCATIONS = 256;

/**
 * Chunks of the reduced channels (input channels of the forward, output channels of backward-data): on a
 * GPU, enough to reach TARGET_INVOCATIONS when the feature map is small (at least 16 channels per chunk);
 * never on a software adapter, whose few cores are already busy and would only pay for the partial sums.
 */
function gpuSplits(rt: Runtime, invocations: number, reduced: number): number {
  if (rt.adapter.isSoftware || invocations >= TARGET_INVOCATIONS) return 1;
  return Math.max(1, Math.min(Math.ceil(TARGET_INVOCATIONS / invocations), Math.floor(reduced / 16)));
}

/** Channels per chunk for `splits` requested chunks of `reduced` channels, and how many chunks that makes. */
function chunking(reduced: number, splits: number): { chunk: number; used: number } {
  const chunk = Math.ceil(reduced / splits);
  return { chunk, used: Math.ceil(reduced / chunk) };
}

const NO_TRANSFORM = 'conv2d: these packed weights have no Winograd transform (packed for another stride or padding, or on a runtime that computes convs directly)';

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
  if (w instanceof PackedConvWeights) {
    // the transform is the one for the stride the weights were packed for (a stride-2 conv's is over its input's phases)
    const transform = w.stride === g.stride ? w.winograd : null;
    if (byPhaseWinograd(rt, g, opts.algorithm) && (transform || opts.algorithm === 'winograd')) {
      // an image too large for the temporaries goes direct unless Winograd is asked for
      if (!transform) throw new Error(NO_TRANSFORM);
      if (phaseWinogradFits(rt, g)) return phaseWinogradConv(rt, x, transform, g.Cout, g.pad, epilogue);
      if (opts.algorithm === 'winograd') throw new Error(`conv2d: the Winograd temporaries of this stride-2 conv for one ${g.Cin}x${g.H}x${g.W} image exceed one binding`);
    } else if (convAlgorithm(rt, g, opts.algorithm ?? (transform ? undefined : 'direct')) === 'winograd') {
      // frozen weights packed without the Winograd transform stay direct unless Winograd is asked for
      if (!transform) throw new Error(NO_TRANSFORM);
      return winogradConv(rt, x, transform, g.Cout, g.pad, epilogue);
    }
  } else {
    const route = convRoute(rt, g, 'forward', opts.algorithm);
    if (route !== 'direct') {
      // trained weights, transformed at each call: a stride-2 conv's over its phases (their rounding:
      // byPhaseWinograd), a stride-1 3x3 conv's with trainedForwardTile
      const u = route === 'phases' ? phaseWinogradWeights(rt, w) : winogradWeights(rt, w, true, trainedForwardTile(rt, g));
      const y = route === 'phases' ? phaseWinogradConv(rt, x, u, g.Cout, g.pad, epilogue) : winogradConv(rt, x, u, g.Cout, g.pad, epilogue);
      u.dispose();
      return y;
    }
  }
  const y = rt.empty([g.N, g.Cout, g.OH, g.OW], 'f32', 'conv2d output');
  const pad4 = pad4Of(g.Cout);
  const ownsPacked = !(w instanceof PackedConvWeights);
  const wp = w instanceof PackedConvWeights ? w.packed : packWeights(rt, w, g, pad4, true);
  const pixelGroups = Math.ceil((g.OH * g.OW) / (4 * FORWARD_PIXEL_QUADS));
  const channelBlocks = Math.ceil(g.Cout / BLOCK);
  const [wx, wy] = blockWorkgroup(pixelGroups, channelBlocks);
  const groups: [number, number, number] = [Math.ceil(pixelGroups / wx), Math.ceil(channelBlocks / wy), g.N];
  const splits = opts.splits ?? gpuSplits(rt, groups[0] * wx * groups[1] * wy * g.N, g.Cin);
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
  const route = convRoute(rt, g, 'backward-data', opts.algorithm);
  if (route === 'phases') {
    // stride 2 (the stem, a 3x3 conv): dy convolved with each phase's rotated filter, into the input's phases
    const u = phaseWinogradWeights(rt, w, false);
    const dx = phaseWinogradConvBackwardData(rt, dy, u, g);
    u.dispose();
    return dx;
  }
  if (route === 'winograd') {
    // stride 1: a convolution of dy with the flipped, transposed weights, padded by 2 - pad
    const u = winogradWeights(rt, w, false);
    const dx = winogradConv(rt, dy, u, g.Cin, 2 - g.pad, {}, 'conv2d backward (input)');
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
  const splits = opts.splits ?? gpuSplits(rt, groups[0] * wx * groups[1] * wy * g.N, g.Cout);
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
  const route = convRoute(rt, g, 'backward-weight', opts.algorithm);
  // a stride-2 conv (the stem, a 3x3 one) by the transposed algorithm of its forward over the input's phases
  if (route === 'phases') return phaseWinogradConvBackwardWeight(rt, dy, x, g);
  if (route === 'winograd') return winogradConvBackwardWeight(rt, dy, x, g);
  const cols = g.Cin * g.KH * g.KW;
  const columnQuads = wgradColumnQuads(g);
  const colGroups = Math.ceil(cols / (4 * columnQuads));
  const channelBlocks = Math.ceil(g.Cout / WGRAD_TM);
  const tiles = colGroups * channelBlocks;
  const rows = g.N * g.OH;
  const target = rt.adapter.isSoftware ? SOFTWARE_WGRAD_TARGET_INVOCATIONS : TARGET_INVOCATIONS;
  const wantSplits = Math.max(1, Math.min(rows, Math.round(target / tiles)));
  const rowsPerSplit = Math.ceil(rows / wantSplits);
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
