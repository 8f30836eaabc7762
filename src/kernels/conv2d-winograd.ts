/**
 * conv2d by Winograd (Lavin & Gray, 2016) for stride-1 3x3 convolutions: F(4x4, 3x3) for the forward and
 * backward-data passes (F(2x2, 3x3) on request), F(3x3, 4x4) for the weight gradient
 * (`winogradConvBackwardWeight`; F(3x3, 2x2) on request). A 4x4 block of outputs costs 36 multiply-adds per channel pair instead
 * of 144 (a 2x2 block 16 instead of 36), so the trunk's stride-1 3x3 convs (82% of its FLOPs) need 4x
 * fewer (2.25x with 2x2 tiles). Four passes:
 *   weights  U = G g G^T                   once per frozen conv, once per call for trained ones
 *   input    V = B^T d B of every (t+2)x(t+2) patch (t = the tile; patches overlap by 2)
 *   GEMM     M[e] = U[e]^T V[e] for the (t+2)^2 tile elements e (the direct kernel's register blocking,
 *            with contiguous vec4 loads instead of gathers)
 *   output   Y = A^T M A, with bias, residual and ReLU
 * The price is memory: V and M are (t+2)^2/t^2 times the input and output (2.25x for 4x4 tiles, 4x for
 * 2x2). Error against float64 is in docs/JOURNAL.md (`bench/winograd-error.ts`).
 *
 * Stride-2 convs go the same way over their input's four stride-2 phases (`phaseWinogradWeights`,
 * `phaseWinogradConv`): phase (ph, pw) of the input is the image z[r][s] = x[2r + ph][2s + pw], and a
 * stride-2 conv is the sum over the phases of stride-1 convs of the phases with the taps of the filter
 * that fall on them, i.e. a stride-1 conv over 4x the input channels. The ResNet stem (7x7) has 4x4 phase
 * filters (7x7 padded to 8x8: 192 multiply-adds per output and input channel instead of 147), and
 * F(3x3, 4x4) computes each 3x3 block of outputs with 36 instead of 144: 3.1x fewer than the direct conv.
 * A 3x3 stride-2 conv (layer2.0 and layer3.0) has phase filters of at most 2x2 taps, and F(4x4, 2x2)
 * computes each 4x4 block with 25 per phase, 100 per input channel instead of the direct conv's 144:
 * 1.44x fewer. The phases are never materialised: the input transform reads them from the image.
 */
import { kernelVariants, read, write, type KernelSpec } from '../graph/kernel.js';
import type { Runtime } from '../graph/runtime.js';
import type { Tensor } from '../graph/tensor.js';
import type { ConvGeometry } from './conv2d.js';
import { pad4Of, phaseGrid, phaseScheme, SCHEMES, schemeElements, threeByThree, tileGrid, type SchemeShape, type WinogradScheme } from './conv-plan.js';
import { blockWorkgroup, grid1d } from './util.js';

/**
 * Outputs per tile side: 4 (F(4x4, 3x3)), 3 (F(3x3, 3x3): forward and backward-data only, on the points of
 * F(4x4, 2x2)) or 2 (F(2x2, 3x3)). Which one a pass takes is the planner's (conv-plan.ts).
 */
export type WinogradTile = 2 | 3 | 4;
/** The tiles of the weight gradient's transposed algorithm, F(3x3, t x t). */
export type WeightGradientTile = 2 | 4;

/** Elements of a transformed tile of F(t x t, 3x3) ((t+2)^2), and the tile they belong to. */
const elementsOf = (tile: WinogradTile) => schemeElements(SCHEMES[threeByThree(tile)]);
const tileOfElements = (elements: number) => ([2, 3, 4] as const).find((tile) => elementsOf(tile) === elements);
/** A batch's tiles padded to a multiple of 4 (the GEMM's vec4 columns). */
const paddedTiles = (tiles: number) => Math.ceil(tiles / 4) * 4;
const schemeDefines = ({ tile, kernel, phases }: SchemeShape) => ({ TILE: tile, KERNEL: kernel, PHASES: phases, ALPHA6: tile + kernel === 7, ALPHA5: tile + kernel === 6, K4: kernel === 4, K2: kernel === 2 });

/** Output channels per GEMM invocation (two vec4 loads of U), as the direct convolution's block. */
const BLOCK = 8;
/** Column quads per GEMM invocation (journal 2026-11-30). */
const COLUMN_QUADS = 2;

const weightsSpec = kernelVariants((forward: boolean, scheme: WinogradScheme): KernelSpec => ({
  shader: 'winograd_weights',
  defines: { FORWARD: forward, ...schemeDefines(SCHEMES[scheme]) },
  params: [['reduced', 'u32'], ['outputs', 'u32'], ['pad4', 'u32'], ['K', 'u32', 'PHASES']],
  bindings: [read('w'), write('u')],
  workgroupSize: [256],
}));

const inputSpec = kernelVariants((transposed: boolean, scheme: WinogradScheme): KernelSpec => ({
  shader: 'winograd_input',
  defines: { TRANSPOSED: transposed, ...schemeDefines(SCHEMES[scheme]) },
  params: [['N', 'u32'], ['n0', 'u32'], ['C', 'u32'], ['H', 'u32'], ['W', 'u32'], ['pad', 'u32'], ['TH', 'u32'], ['TW', 'u32'], ['T4', 'u32'], ['C4', 'u32', 'TRANSPOSED']],
  bindings: [read('x'), write('V', 'vec4f')],
  workgroupSize: [256],
}));

const gemmSpec = kernelVariants((wg: readonly number[], accumulate: boolean): KernelSpec => ({
  shader: 'winograd_gemm',
  defines: { TM: BLOCK, CQ: COLUMN_QUADS, ACCUMULATE: accumulate },
  params: [['reduced', 'u32'], ['outputs', 'u32'], ['pad4', 'u32'], ['cols', 'u32']],
  bindings: [read('V', 'vec4f'), read('wp', 'vec4f'), write('M', 'vec4f')],
  workgroupSize: [wg[0], wg[1]],
}));

const outputSpec = kernelVariants((hasBias: boolean, relu: boolean, residual: boolean, scheme: WinogradScheme, toPhases: boolean): KernelSpec => ({
  shader: 'winograd_output',
  defines: { HAS_BIAS: hasBias, RELU: relu, RESIDUAL: residual, TO_PHASES: toPhases, ...schemeDefines(SCHEMES[scheme]) },
  params: [['N', 'u32'], ['n0', 'u32'], ['Cout', 'u32'], ['OH', 'u32'], ['OW', 'u32'], ['TH', 'u32'], ['TW', 'u32'], ['T4', 'u32'],
    ['XH', 'u32', 'TO_PHASES'], ['XW', 'u32', 'TO_PHASES'], ['pad', 'u32', 'TO_PHASES']],
  bindings: [read('M', 'vec4f'), read('bias', 'f32', 'HAS_BIAS'), read('res', 'f32', 'RESIDUAL'), write('y')],
  workgroupSize: [256],
}));

const dySpec = kernelVariants((scheme: WinogradScheme): KernelSpec => ({
  shader: 'winograd_dy',
  defines: schemeDefines(SCHEMES[scheme]),
  params: [['N', 'u32'], ['n0', 'u32'], ['Cout', 'u32'], ['OH', 'u32'], ['OW', 'u32'], ['TH', 'u32'], ['TW', 'u32'], ['T4', 'u32'], ['pad4', 'u32']],
  bindings: [read('dy'), write('u')],
  workgroupSize: [256],
}));

const weightGradSpec = kernelVariants((scheme: WinogradScheme): KernelSpec => ({
  shader: 'winograd_weight_grad',
  defines: schemeDefines(SCHEMES[scheme]),
  params: [['Cout', 'u32'], ['Cin', 'u32'], ['C4', 'u32'], ['K', 'u32', 'PHASES']],
  bindings: [read('M'), write('dw')],
  workgroupSize: [256],
}));

/**
 * Transformed weights U [(t+2)^2][reduced][outputs padded] for tiles of t x t outputs. Forward: reduced =
 * Cin, outputs = Cout. Backward-data (`forward` false): the convolution of dy with the flipped, transposed
 * weights, so reduced = Cout and outputs = Cin.
 */
export function winogradWeights(rt: Runtime, w: Tensor, forward: boolean, tile: WinogradTile): Tensor {
  const [Cout, Cin, KH, KW] = w.shape;
  if (KH !== 3 || KW !== 3) throw new Error(`conv2d (winograd): 3x3 weights only, got ${KH}x${KW}`);
  const [reduced, outputs] = forward ? [Cin, Cout] : [Cout, Cin];
  const pad4 = pad4Of(outputs);
  const u = rt.empty([elementsOf(tile), reduced, pad4 * 4], 'f32', 'conv2d winograd weights');
  rt.dispatch('conv2d (winograd weights)', weightsSpec(forward, threeByThree(tile)), { reduced, outputs, pad4 }, { w, u }, grid1d(reduced * pad4 * 4, 256));
  return u;
}

/**
 * Transformed weights of a stride-2 conv (7x7 or 3x3) over its input's four stride-2 phases: U [E][4
 * Cin][Cout padded] (E = 36 for the stem's F(3x3, 4x4), 25 for F(4x4, 2x2)), the phases of input channel
 * ci at 4 ci + 2 ph + pw. Backward-data (`forward` false): U [E][Cout][4 Cin padded], each phase's filter
 * rotated by 180 degrees.
 */
export function phaseWinogradWeights(rt: Runtime, w: Tensor, forward = true): Tensor {
  const [Cout, Cin, KH, KW] = w.shape;
  const scheme = phaseScheme({ KH, KW, stride: 2 });
  if (!scheme) throw new Error(`conv2d (winograd phases): 7x7 or 3x3 weights only, got ${KH}x${KW}`);
  const [reduced, outputs] = forward ? [4 * Cin, Cout] : [Cout, 4 * Cin];
  const pad4 = pad4Of(outputs);
  const u = rt.empty([schemeElements(SCHEMES[scheme]), reduced, pad4 * 4], 'f32', `conv2d winograd weights (${scheme}${forward ? '' : ', backward-data'})`);
  rt.dispatch('conv2d (winograd weights)', weightsSpec(forward, scheme), { reduced, outputs, pad4, K: KH }, { w, u }, grid1d(reduced * pad4 * 4, 256));
  return u;
}

export interface WinogradEpilogue {
  bias?: Tensor | null;
  residual?: Tensor;
  relu?: boolean;
  /** Images per pass (the plan's: their temporaries fit one binding); default the whole batch. */
  maxImagesPerChunk?: number;
}

/**
 * A stride-1 3x3 convolution of x [N, C, H, W] with transformed weights u (`winogradWeights`, whose first
 * extent says the tile) into `outputs` channels: y [N, outputs, H + 2 pad - 2, W + 2 pad - 2].
 */
export function winogradConv(rt: Runtime, x: Tensor, u: Tensor, outputs: number, pad: number, epilogue: WinogradEpilogue = {}, op = 'conv2d'): Tensor {
  const [, C, H, W] = x.shape;
  const tile = tileOfElements(u.shape[0]);
  if (tile === undefined || u.shape.join() !== [elementsOf(tile), C, pad4Of(outputs) * 4].join()) {
    throw new Error(`${op} (winograd): weights transformed as ${u.shape.join('x')} (tile elements x input x output channels), input has ${C} channels and the output ${outputs}`);
  }
  return transformedConv(rt, x, u, threeByThree(tile), outputs, [H + 2 * pad - 2, W + 2 * pad - 2], pad, epilogue, op);
}

/**
 * A stride-2 convolution (the 7x7 stem or a 3x3 one) of x [N, C, H, W] with `phaseWinogradWeights` u
 * (whose first extent says which) over the input's four stride-2 phases: y [N, outputs, (H + 2 pad - K) /
 * 2 + 1, (W + 2 pad - K) / 2 + 1].
 */
export function phaseWinogradConv(rt: Runtime, x: Tensor, u: Tensor, outputs: number, pad: number, epilogue: WinogradEpilogue = {}): Tensor {
  const [, C, H, W] = x.shape;
  const K = u.shape[0] === schemeElements(SCHEMES['winograd-f3x4-phases']) ? 7 : 3;
  const scheme = phaseScheme({ KH: K, KW: K, stride: 2 })!;
  if (u.shape.join() !== [schemeElements(SCHEMES[scheme]), 4 * C, pad4Of(outputs) * 4].join()) {
    throw new Error(`conv2d (winograd phases): weights transformed as ${u.shape.join('x')} (tile elements x 4 input phases x output channels), input has ${C} channels and the output ${outputs}`);
  }
  const [OH, OW] = [H, W].map((side) => Math.floor((side + 2 * pad - K) / 2) + 1);
  return transformedConv(rt, x, u, scheme, outputs, [OH, OW], pad, epilogue, 'conv2d');
}

/**
 * A stride-2 conv's backward-data over its input's phases: phase (ph, pw) of dx is the stride-1
 * correlation of dy, padded by KERNEL - 1, with that phase's filter rotated, so it is one stride-1 conv of
 * dy into 4 Cin phase channels by the forward's algorithm (F(4x4, 2x2) for a 3x3, F(3x3, 4x4) for the
 * stem), whose output transform writes each phase's pixels into dx. u: `phaseWinogradWeights(w, false)`.
 */
export function phaseWinogradConvBackwardData(rt: Runtime, dy: Tensor, u: Tensor, g: ConvGeometry, maxImagesPerChunk = g.N): Tensor {
  const op = 'conv2d backward (input)';
  const phase = phaseScheme(g);
  if (!phase) throw new Error(`${op} (winograd phases): 7x7 or 3x3 stride-2 convolutions only, got ${g.KH}x${g.KW} stride ${g.stride}`);
  const scheme: WinogradScheme = phase === 'winograd-f3x4-phases' ? 'winograd-f3x4-into-phases' : 'winograd-f4x2-into-phases';
  if (u.shape.join() !== [schemeElements(SCHEMES[scheme]), g.Cout, pad4Of(4 * g.Cin) * 4].join()) {
    throw new Error(`${op} (winograd phases): weights transformed as ${u.shape.join('x')} (tile elements x output x 4 input phases), the conv has ${g.Cout} output and ${g.Cin} input channels`);
  }
  return transformedConv(rt, dy, u, scheme, 4 * g.Cin, phaseGrid(g), SCHEMES[scheme].kernel - 1, { maxImagesPerChunk }, op, { XH: g.H, XW: g.W, pad: g.pad });
}

/** Outputs written into the four stride-2 phases of an XH x XW map padded by `pad` (a stride-2 conv's backward-data). */
interface PhaseOutput { XH: number; XW: number; pad: number }

/**
 * Input transform, GEMMs and output transform (with the epilogue) of a Winograd convolution into
 * y [N, outputs, OH, OW] (or, `toPhases`, into the phases of y [N, outputs / 4, XH, XW]), over the batch in
 * chunks of `maxImagesPerChunk` images.
 */
function transformedConv(rt: Runtime, x: Tensor, u: Tensor, scheme: WinogradScheme, outputs: number, [OH, OW]: number[], pad: number, epilogue: WinogradEpilogue, op: string, toPhases?: PhaseOutput): Tensor {
  const [N, , H, W] = x.shape;
  const [elements, channels] = u.shape; // V's channels: the input's, or 4x for the phases
  const { TH, TW } = tileGrid(OH, OW, SCHEMES[scheme].tile);
  const { bias = null, residual, relu = false, maxImagesPerChunk = N } = epilogue;
  const perChunk = Math.max(1, Math.min(N, maxImagesPerChunk));
  const y = toPhases ? rt.empty([N, outputs / 4, toPhases.XH, toPhases.XW], 'f32', `${op} output`) : rt.empty([N, outputs, OH, OW], 'f32', `${op} output`);
  for (let n0 = 0; n0 < N; n0 += perChunk) {
    const images = Math.min(perChunk, N - n0);
    const T4 = paddedTiles(images * TH * TW);
    const V = rt.empty([elements, channels, T4], 'f32', 'conv2d winograd input');
    rt.dispatch(`${op} (winograd input)`, inputSpec(false, scheme), { N: images, n0, C: channels, H, W, pad, TH, TW, T4 }, { x, V }, grid1d((channels * T4) / 4, 256));
    const M = gemm(rt, V, u, channels, outputs, T4, op);
    V.dispose();
    rt.dispatch(`${op} (winograd output)`, outputSpec(!!bias, relu, !!residual, scheme, !!toPhases), { N: images, n0, Cout: outputs, OH, OW, TH, TW, T4, ...toPhases }, { M, bias, res: residual, y }, grid1d((outputs * T4) / 4, 256));
    M.dispose();
  }
  return y;
}

/**
 * The GEMMs M[e] = U[e]^T V[e], one per tile element: U [E][reduced][outputs padded], V [E][reduced][cols] ->
 * M [E][outputs][cols], or added to `into` (a weight gradient's products over the batch's chunks).
 */
function gemm(rt: Runtime, V: Tensor, u: Tensor, reduced: number, outputs: number, cols: number, op: string, into?: Tensor): Tensor {
  const elements = V.shape[0];
  const M = into ?? rt.empty([elements, outputs, cols], 'f32', 'conv2d winograd products');
  const columnGroups = Math.ceil(cols / 4 / COLUMN_QUADS);
  const rowBlocks = Math.ceil(outputs / BLOCK);
  const wg = blockWorkgroup(columnGroups, rowBlocks);
  const groups: [number, number, number] = [Math.ceil(columnGroups / wg[0]), Math.ceil(rowBlocks / wg[1]), elements];
  rt.dispatch(`${op} (winograd GEMM)`, gemmSpec(wg, !!into), { reduced, outputs, pad4: pad4Of(outputs), cols }, { V, wp: u, M }, groups);
  return M;
}

/**
 * The products of a weight gradient by the transposed algorithm (stride-1 3x3 or over a stride-2 conv's
 * phases): M [E][Cout][C4] = sum over the batch's tiles of (S dy S^T) . (B^T x B), C4 the input's (phase)
 * channels rounded up to 4. The reduction is over tiles, so the batch goes in chunks of images, every
 * chunk's GEMM adding into the same products.
 */
function weightGradientProducts(rt: Runtime, dy: Tensor, x: Tensor, scheme: WinogradScheme, channels: number, g: ConvGeometry, maxImagesPerChunk: number, op: string): Tensor {
  const { N, H, W, Cout, OH, OW, pad } = g;
  const shape = SCHEMES[scheme];
  const { TH, TW } = tileGrid(OH, OW, shape.tile);
  const elements = schemeElements(shape);
  const C4 = Math.ceil(channels / 4) * 4;
  const pad4 = pad4Of(Cout);
  const perChunk = Math.max(1, Math.min(N, maxImagesPerChunk));
  let M: Tensor | undefined;
  for (let n0 = 0; n0 < N; n0 += perChunk) {
    const images = Math.min(perChunk, N - n0);
    const T4 = paddedTiles(images * TH * TW);
    const V = rt.empty([elements, T4, C4], 'f32', 'conv2d winograd input (by tile)');
    rt.dispatch(`${op} (winograd input)`, inputSpec(true, scheme), { N: images, n0, C: channels, H, W, pad, TH, TW, T4, C4 }, { x, V }, grid1d((T4 * C4) / 4, 256));
    const u = rt.empty([elements, T4, pad4 * 4], 'f32', 'conv2d winograd output gradient');
    rt.dispatch(`${op} (winograd dy)`, dySpec(scheme), { N: images, n0, Cout, OH, OW, TH, TW, T4, pad4 }, { dy, u }, grid1d(T4 * pad4 * 4, 256));
    M = gemm(rt, V, u, T4, Cout, C4, op, M);
    V.dispose();
    u.dispose();
  }
  return M!;
}

/**
 * Weight gradient of a stride-1 3x3 convolution by Winograd F(3x3, t x t): each t x t tile of dy
 * correlates with the same (t+2)^2 input patch as in the forward, so dW = G^T [sum over tiles (A dy A^T) .
 * (B^T x B)] G, a GEMM over all the tiles of the batch (the sum over images and pixels is its reduction).
 */
export function winogradConvBackwardWeight(rt: Runtime, dy: Tensor, x: Tensor, g: ConvGeometry, tile: WeightGradientTile, maxImagesPerChunk = g.N): Tensor {
  const op = 'conv2d backward (weight)';
  const { Cin, Cout } = g;
  const C4 = Math.ceil(Cin / 4) * 4;
  const M = weightGradientProducts(rt, dy, x, threeByThree(tile), Cin, g, maxImagesPerChunk, op);
  const dw = rt.empty([Cout, Cin, 3, 3], 'f32', 'conv2d weight gradient');
  rt.dispatch(`${op} (winograd output)`, weightGradSpec(threeByThree(tile)), { Cout, Cin, C4 }, { M, dw }, grid1d(Cout * Cin, 256));
  M.dispose();
  return dw;
}

/**
 * Weight gradient of a stride-2 conv (the 7x7 stem or a 3x3 one) by the transposed algorithm of its
 * forward over the input's four stride-2 phases: each tile of dy correlates with its patch of each phase
 * to give that phase's taps, dW_phase = T^T [sum over tiles (S dy S^T) . (B^T z B)] T, a GEMM over all the
 * tiles of the batch (S, T: G and A^T for the stem's F(3x3, 4x4), A and G for F(4x4, 2x2); lib_winograd's
 * dy_line and tap_line).
 */
export function phaseWinogradConvBackwardWeight(rt: Runtime, dy: Tensor, x: Tensor, g: ConvGeometry, maxImagesPerChunk = g.N): Tensor {
  const op = 'conv2d backward (weight)';
  const scheme = phaseScheme(g);
  if (!scheme) throw new Error(`${op} (winograd phases): 7x7 or 3x3 stride-2 convolutions only, got ${g.KH}x${g.KW} stride ${g.stride}`);
  const { Cin, Cout, KH } = g;
  const C4 = 4 * Cin; // the phase channels, a multiple of 4
  const M = weightGradientProducts(rt, dy, x, scheme, C4, g, maxImagesPerChunk, op);
  const dw = rt.empty([Cout, Cin, KH, KH], 'f32', 'conv2d weight gradient');
  rt.dispatch(`${op} (winograd output)`, weightGradSpec(scheme), { Cout, Cin, C4, K: KH }, { M, dw }, grid1d(Cout * C4, 256));
  M.dispose();
  return dw;
}
