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
 * 2x2). Error against float64 is stated in DESIGN.md (`bench/winograd-error.ts`).
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
import type { ConvAlgorithm, ConvGeometry } from './conv2d.js';
import { blockWorkgroup, grid1d } from './util.js';

/**
 * Outputs per tile side: 4 (F(4x4, 3x3)), 3 (F(3x3, 3x3): forward and backward-data only, on the points of
 * F(4x4, 2x2)) or 2 (F(2x2, 3x3)).
 */
export type WinogradTile = 2 | 3 | 4;
/** The tiles of the weight gradient's transposed algorithm, F(3x3, t x t). */
export type WeightGradientTile = 2 | 4;
/**
 * The tile of the forward and backward-data passes: 4x4 needs 1.78x fewer multiply-adds, loads and stores
 * per output than 2x2 on maps of 3 pixels and more (and as many on maps of 5 or 6). It is used on every
 * map so that a frozen conv keeps one transform; on maps of 1-2 pixels it wastes work that is tiny anyway.
 */
export const WINOGRAD_TILE: WinogradTile = 4;
/** The tile of the weight gradient, F(3x3, t x t): 4x4 tiles need 1.78x fewer multiply-adds than 2x2. */
export const WEIGHT_GRADIENT_TILE: WeightGradientTile = 4;

/**
 * A Winograd algorithm: F(t x t, 3x3) for stride-1 3x3 convs (and, transposed, their weight gradients), or
 * one over the four stride-2 phases of the input: the stem's F(3x3, 4x4), a 3x3 stride-2 conv's F(4x4, 2x2).
 */
interface Scheme {
  /** Its name, which kernel variants are keyed by. */
  name: SchemeName;
  /** Outputs per tile side. */
  tile: number;
  /** Filter side (of a phase's filter, for the phase schemes). */
  kernel: 2 | 3 | 4;
  /** The input is read as its four stride-2 phases (4x the channels). */
  phases: boolean;
}
type SchemeName = 'F(2x2, 3x3)' | 'F(3x3, 3x3)' | 'F(4x4, 3x3)' | 'stem' | 'stride-2 3x3' | 'stem backward-data' | 'stride-2 3x3 backward-data';
const SCHEMES: Record<SchemeName, Scheme> = {
  'F(2x2, 3x3)': { name: 'F(2x2, 3x3)', tile: 2, kernel: 3, phases: false },
  'F(3x3, 3x3)': { name: 'F(3x3, 3x3)', tile: 3, kernel: 3, phases: false },
  'F(4x4, 3x3)': { name: 'F(4x4, 3x3)', tile: 4, kernel: 3, phases: false },
  stem: { name: 'stem', tile: 3, kernel: 4, phases: true },
  'stride-2 3x3': { name: 'stride-2 3x3', tile: 4, kernel: 2, phases: true },
  // a stride-2 conv's backward-data: dy (not read by phases) convolved with each phase's rotated filter, by
  // the forward's algorithm, the outputs scattered into the input's phases
  'stem backward-data': { name: 'stem backward-data', tile: 3, kernel: 4, phases: false },
  'stride-2 3x3 backward-data': { name: 'stride-2 3x3 backward-data', tile: 4, kernel: 2, phases: false },
};
const threeByThree = (tile: WinogradTile): Scheme => SCHEMES[tile === 4 ? 'F(4x4, 3x3)' : tile === 3 ? 'F(3x3, 3x3)' : 'F(2x2, 3x3)'];
/** Elements of a transformed tile: its side is tile + kernel - 1. */
const schemeElements = ({ tile, kernel }: Scheme) => (tile + kernel - 1) ** 2;
/** Elements of a transformed tile of F(t x t, 3x3) ((t+2)^2), and the tile they belong to. */
const elementsOf = (tile: WinogradTile) => schemeElements(threeByThree(tile));
const tileOfElements = (elements: number) => ([2, 3, 4] as const).find((tile) => elementsOf(tile) === elements);
/** Tile rows and columns over an OH x OW output, and a batch's tiles padded to a multiple of 4 (the GEMM's vec4 columns). */
const tileGrid = (OH: number, OW: number, tile: number) => ({ TH: Math.ceil(OH / tile), TW: Math.ceil(OW / tile) });
const paddedTiles = (tiles: number) => Math.ceil(tiles / 4) * 4;
const schemeDefines = ({ tile, kernel, phases }: Scheme) => ({ TILE: tile, KERNEL: kernel, PHASES: phases, ALPHA6: tile + kernel === 7, ALPHA5: tile + kernel === 6, K4: kernel === 4, K2: kernel === 2 });

/** Output channels per GEMM invocation (two vec4 loads of U), as the direct convolution's block. */
const BLOCK = 8;
/** Column quads per GEMM invocation: 2 measured 10-25% faster than 1 on lavapipe (3 and 4 within noise of 2). */
const COLUMN_QUADS = 2;
/** vec4s per row of U: the outputs rounded up to whole channel blocks. */
const pad4Of = (channels: number) => Math.ceil(channels / BLOCK) * (BLOCK / 4);

const weightsSpec = kernelVariants((forward: boolean, scheme: SchemeName): KernelSpec => ({
  shader: 'winograd_weights',
  defines: { FORWARD: forward, ...schemeDefines(SCHEMES[scheme]) },
  params: [['reduced', 'u32'], ['outputs', 'u32'], ['pad4', 'u32'], ['K', 'u32', 'PHASES']],
  bindings: [read('w'), write('u')],
  workgroupSize: [256],
}));

const inputSpec = kernelVariants((transposed: boolean, scheme: SchemeName): KernelSpec => ({
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

const outputSpec = kernelVariants((hasBias: boolean, relu: boolean, residual: boolean, scheme: SchemeName, toPhases: boolean): KernelSpec => ({
  shader: 'winograd_output',
  defines: { HAS_BIAS: hasBias, RELU: relu, RESIDUAL: residual, TO_PHASES: toPhases, ...schemeDefines(SCHEMES[scheme]) },
  params: [['N', 'u32'], ['n0', 'u32'], ['Cout', 'u32'], ['OH', 'u32'], ['OW', 'u32'], ['TH', 'u32'], ['TW', 'u32'], ['T4', 'u32'],
    ['XH', 'u32', 'TO_PHASES'], ['XW', 'u32', 'TO_PHASES'], ['pad', 'u32', 'TO_PHASES']],
  bindings: [read('M', 'vec4f'), read('bias', 'f32', 'HAS_BIAS'), read('res', 'f32', 'RESIDUAL'), write('y')],
  workgroupSize: [256],
}));

const dySpec = kernelVariants((scheme: SchemeName): KernelSpec => ({
  shader: 'winograd_dy',
  defines: schemeDefines(SCHEMES[scheme]),
  params: [['N', 'u32'], ['n0', 'u32'], ['Cout', 'u32'], ['OH', 'u32'], ['OW', 'u32'], ['TH', 'u32'], ['TW', 'u32'], ['T4', 'u32'], ['pad4', 'u32']],
  bindings: [read('dy'), write('u')],
  workgroupSize: [256],
}));

const weightGradSpec = kernelVariants((scheme: SchemeName): KernelSpec => ({
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
export function winogradWeights(rt: Runtime, w: Tensor, forward: boolean, tile: WinogradTile = WINOGRAD_TILE): Tensor {
  const [Cout, Cin, KH, KW] = w.shape;
  if (KH !== 3 || KW !== 3) throw new Error(`conv2d (winograd): 3x3 weights only, got ${KH}x${KW}`);
  const [reduced, outputs] = forward ? [Cin, Cout] : [Cout, Cin];
  const pad4 = pad4Of(outputs);
  const u = rt.empty([elementsOf(tile), reduced, pad4 * 4], 'f32', 'conv2d winograd weights');
  rt.dispatch('conv2d (winograd weights)', weightsSpec(forward, threeByThree(tile).name), { reduced, outputs, pad4 }, { w, u }, grid1d(reduced * pad4 * 4, 256));
  return u;
}

/** The phase scheme of a convolution: the 7x7 stride-2 stem's, a 3x3 stride-2 conv's, or none. */
function phaseScheme(g: Pick<ConvGeometry, 'KH' | 'KW' | 'stride'>): Scheme | null {
  if (g.stride !== 2 || g.KH !== g.KW) return null;
  return g.KH === 7 ? SCHEMES.stem : g.KH === 3 ? SCHEMES['stride-2 3x3'] : null;
}

/**
 * Tiles a 3x3 stride-2 conv's batch needs before it goes over its phases by default: the GEMM computes 8
 * tiles at a time (two vec4 column quads), so fewer waste most of it. Measured on lavapipe (frozen
 * weights, one process, direct and Winograd interleaved, 3 rounds): 1 tile 0.33x, 4 tiles 0.54-1.18x, 8
 * tiles 0.89-1.47x, 16 and 32 tiles 1.1-1.6x the direct kernel's speed. The stem, at 9 outputs a tile and
 * 3.1x fewer multiply-adds, was faster at every size measured.
 */
export const MIN_PHASE_TILES = 8;

/**
 * Whether Winograd over the input's phases applies to a stride-2 conv (7x7 or 3x3): where Winograd is asked
 * for, or on a runtime that prefers it unless direct is asked for. Frozen weights keep the transform then.
 */
export const phaseWinogradApplies = (rt: Runtime, g: Pick<ConvGeometry, 'KH' | 'KW' | 'stride'>, requested?: ConvAlgorithm) =>
  phaseScheme(g) !== null && (requested === 'winograd' || (requested === undefined && rt.conv3x3 === 'winograd'));

/**
 * Whether this call of a stride-2 conv's forward goes through `phaseWinogradConv`: where it applies, for a
 * 3x3 conv on a batch of at least MIN_PHASE_TILES tiles unless Winograd is asked for. Frozen or trained
 * weights alike: with the trained stem and 3x3 stride-2 convs by Winograd, one SGD step's updates stay
 * within 2.7e-5 of PyTorch's (update norms 8.3e-6; the contract is 2e-3; rounding against float64 in
 * DESIGN.md).
 */
export const byPhaseWinograd = (rt: Runtime, g: ConvGeometry, requested?: ConvAlgorithm) => byPhases(rt, g, requested, MIN_PHASE_TILES);

/**
 * Whether a pass of a stride-2 conv goes over its input's phases: where that applies, for the stem always,
 * for a 3x3 conv where Winograd is asked for or the batch has `minTiles` tiles (the pass's threshold).
 */
function byPhases(rt: Runtime, g: ConvGeometry, requested: ConvAlgorithm | undefined, minTiles: number): boolean {
  if (!phaseWinogradApplies(rt, g, requested)) return false;
  const scheme = phaseScheme(g)!;
  return requested === 'winograd' || scheme === SCHEMES.stem || phaseTiles(g, scheme) >= minTiles;
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
  const u = rt.empty([schemeElements(scheme), reduced, pad4 * 4], 'f32', `conv2d winograd weights (${scheme.name}${forward ? '' : ', backward-data'})`);
  rt.dispatch('conv2d (winograd weights)', weightsSpec(forward, scheme.name), { reduced, outputs, pad4, K: KH }, { w, u }, grid1d(reduced * pad4 * 4, 256));
  return u;
}

/** The tiles of t x t outputs of a stride-1 3x3 convolution of an [N, C, H, W] input with padding `pad`. */
function tiling(N: number, H: number, W: number, pad: number, tile: WinogradTile) {
  const OH = H + 2 * pad - 2;
  const OW = W + 2 * pad - 2;
  const { TH, TW } = tileGrid(OH, OW, tile);
  return { OH, OW, TH, TW, T4: paddedTiles(N * TH * TW) };
}

/**
 * Whether a convolution can go through Winograd on this device (forward, backward-data and weight
 * gradient): stride 1, 3x3, padding at most 2 (the backward-data pass pads by 2 - pad), and every
 * temporary within one binding: the transformed input, output gradient and products of one image (every
 * pass goes over the batch in chunks of images), and a weight gradient's products, whatever the batch.
 */
export function winogradFits(rt: Runtime, g: ConvGeometry): boolean {
  if (g.KH !== 3 || g.KW !== 3 || g.stride !== 1 || g.pad > 2) return false;
  const paddedChannels = 4 * pad4Of(Math.max(g.Cin, g.Cout)); // as padded in U, V and M
  const values = Math.max(
    elementsOf(WINOGRAD_TILE) * tiling(1, g.H, g.W, g.pad, WINOGRAD_TILE).T4 * paddedChannels, // forward
    elementsOf(WINOGRAD_TILE) * tiling(1, g.OH, g.OW, 2 - g.pad, WINOGRAD_TILE).T4 * paddedChannels, // backward-data
    elementsOf(WEIGHT_GRADIENT_TILE) * tiling(1, g.H, g.W, g.pad, WEIGHT_GRADIENT_TILE).T4 * paddedChannels, // weight gradient
    elementsOf(WEIGHT_GRADIENT_TILE) * paddedChannels * paddedChannels, // the weight gradient's products
  );
  return 4 * values <= rt.limits.maxStorageBufferBindingSize;
}

export interface WinogradEpilogue {
  bias?: Tensor | null;
  residual?: Tensor;
  relu?: boolean;
  /** At most this many images per pass (default: as many as one binding holds the temporaries of). */
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
  const K = u.shape[0] === schemeElements(SCHEMES.stem) ? 7 : 3;
  const scheme = phaseScheme({ KH: K, KW: K, stride: 2 })!;
  if (u.shape.join() !== [schemeElements(scheme), 4 * C, pad4Of(outputs) * 4].join()) {
    throw new Error(`conv2d (winograd phases): weights transformed as ${u.shape.join('x')} (tile elements x 4 input phases x output channels), input has ${C} channels and the output ${outputs}`);
  }
  const [OH, OW] = [H, W].map((side) => Math.floor((side + 2 * pad - K) / 2) + 1);
  return transformedConv(rt, x, u, scheme, outputs, [OH, OW], pad, epilogue, 'conv2d');
}

/**
 * Whether a stride-2 conv's Winograd temporaries for one image fit one binding (larger batches go through
 * in chunks of images).
 */
export function phaseWinogradFits(rt: Runtime, g: ConvGeometry): boolean {
  const scheme = phaseScheme(g);
  return scheme !== null && chunkImages(rt, scheme, 4 * g.Cin, g.Cout, g.OH, g.OW) >= 1;
}

/**
 * A stride-2 conv's backward-data over its input's phases: phase (ph, pw) of dx is the stride-1
 * correlation of dy, padded by KERNEL - 1, with that phase's filter rotated, so it is one stride-1 conv of
 * dy into 4 Cin phase channels by the forward's algorithm (F(4x4, 2x2) for a 3x3, F(3x3, 4x4) for the
 * stem), whose output transform writes each phase's pixels into dx. u: `phaseWinogradWeights(w, false)`.
 */
export function phaseWinogradConvBackwardData(rt: Runtime, dy: Tensor, u: Tensor, g: ConvGeometry, maxImagesPerChunk = g.N): Tensor {
  const op = 'conv2d backward (input)';
  const scheme = phaseDataScheme(g);
  if (!scheme) throw new Error(`${op} (winograd phases): 7x7 or 3x3 stride-2 convolutions only, got ${g.KH}x${g.KW} stride ${g.stride}`);
  if (u.shape.join() !== [schemeElements(scheme), g.Cout, pad4Of(4 * g.Cin) * 4].join()) {
    throw new Error(`${op} (winograd phases): weights transformed as ${u.shape.join('x')} (tile elements x output x 4 input phases), the conv has ${g.Cout} output and ${g.Cin} input channels`);
  }
  return transformedConv(rt, dy, u, scheme, 4 * g.Cin, phaseGrid(g), scheme.kernel - 1, { maxImagesPerChunk }, op, { XH: g.H, XW: g.W, pad: g.pad });
}

/** The scheme of a stride-2 conv's backward-data over the phases (dy is read whole, not by phases). */
function phaseDataScheme(g: Pick<ConvGeometry, 'KH' | 'KW' | 'stride'>): Scheme | null {
  const scheme = phaseScheme(g);
  return scheme && SCHEMES[scheme === SCHEMES.stem ? 'stem backward-data' : 'stride-2 3x3 backward-data'];
}

/** Rows and columns of the stride-2 phases of a padded H x W input (the largest phase's; pixels past the input are not written). */
const phaseGrid = (g: ConvGeometry) => [Math.floor((g.H - 1 + g.pad) / 2) + 1, Math.floor((g.W - 1 + g.pad) / 2) + 1];

/** Whether a stride-2 conv's backward-data over the phases fits one binding per temporary for one image. */
export function phaseWinogradBackwardDataFits(rt: Runtime, g: ConvGeometry): boolean {
  const scheme = phaseDataScheme(g);
  if (!scheme) return false;
  const [UH, UW] = phaseGrid(g);
  return chunkImages(rt, scheme, g.Cout, 4 * g.Cin, UH, UW) >= 1;
}

/**
 * Tiles a 3x3 stride-2 conv's batch needs before its backward-data goes over the phases by default: per
 * pixel of dx the phases' 2x2 filters by F(4x4, 2x2) do 25/16 multiply-adds against the direct kernel's
 * 9/4 (1.44x fewer), and the output transform scatters into the phases. Measured on lavapipe (one process,
 * direct and Winograd interleaved, 3 rounds): layer3.0's shape at 32 tiles 0.4-1.2x the direct kernel's
 * speed, layer2.0's at 64 and 128 tiles 0.6-1.1x, layer3.0's at 128 1.2x, at 256 1.1-1.2x, at 512
 * 1.2x; layer2.0's at 512 1.2-1.5x, at 2048 1.1-1.3x; the stem's (3 input channels, 7x7) 2.5-2.9x at
 * 2048 tiles.
 */
export const MIN_PHASE_BACKWARD_DATA_TILES = 256;

/**
 * Whether a stride-2 conv's backward-data goes through `phaseWinogradConvBackwardData`: where Winograd over
 * the phases applies and (a 3x3 conv, unless Winograd is asked for) the batch has
 * MIN_PHASE_BACKWARD_DATA_TILES tiles. Whether one image's temporaries fit is `phaseWinogradBackwardDataFits`.
 */
export const byPhaseWinogradBackwardData = (rt: Runtime, g: ConvGeometry, requested?: ConvAlgorithm) => byPhases(rt, g, requested, MIN_PHASE_BACKWARD_DATA_TILES);

/** Images whose per-tile temporaries (E x the wider of `channels` and the padded `outputs`) fit `bytes` each. */
function imagesWithin(bytes: number, scheme: Scheme, channels: number, outputs: number, OH: number, OW: number): number {
  const widest = schemeElements(scheme) * Math.max(channels, pad4Of(outputs) * 4) * 4; // bytes per tile
  const { TH, TW } = tileGrid(OH, OW, scheme.tile);
  return Math.floor((Math.floor(bytes / widest) - 3) / (TH * TW)); // T4 rounds a chunk's tiles up to a multiple of 4
}

/** Images whose transformed input V and products M each fit one binding. */
const chunkImages = (rt: Runtime, scheme: Scheme, channels: number, outputs: number, OH: number, OW: number) =>
  imagesWithin(rt.limits.maxStorageBufferBindingSize, scheme, channels, outputs, OH, OW);

/**
 * Whether one image's temporaries of a stride-1 3x3 forward with tiles of t x t fit one binding each
 * (`winogradFits` asks it of 4x4 tiles; the forward of weights being trained may take 2x2 or 3x3 ones,
 * whose temporaries are larger).
 */
export const winogradForwardFits = (rt: Runtime, g: ConvGeometry, tile: WinogradTile) =>
  g.KH === 3 && g.KW === 3 && g.stride === 1 && chunkImages(rt, threeByThree(tile), g.Cin, g.Cout, g.OH, g.OW) >= 1;

/** Outputs written into the four stride-2 phases of an XH x XW map padded by `pad` (a stride-2 conv's backward-data). */
interface PhaseOutput { XH: number; XW: number; pad: number }

/**
 * Input transform, GEMMs and output transform (with the epilogue) of a Winograd convolution into
 * y [N, outputs, OH, OW] (or, `toPhases`, into the phases of y [N, outputs / 4, XH, XW]), over the batch in
 * chunks of images whose temporaries fit one binding.
 */
function transformedConv(rt: Runtime, x: Tensor, u: Tensor, scheme: Scheme, outputs: number, [OH, OW]: number[], pad: number, epilogue: WinogradEpilogue, op: string, toPhases?: PhaseOutput): Tensor {
  const [N, , H, W] = x.shape;
  const [elements, channels] = u.shape; // V's channels: the input's, or 4x for the phases
  const { TH, TW } = tileGrid(OH, OW, scheme.tile);
  const { bias = null, residual, relu = false, maxImagesPerChunk = N } = epilogue;
  const perChunk = Math.max(1, Math.min(N, maxImagesPerChunk, chunkImages(rt, scheme, channels, outputs, OH, OW)));
  const y = toPhases ? rt.empty([N, outputs / 4, toPhases.XH, toPhases.XW], 'f32', `${op} output`) : rt.empty([N, outputs, OH, OW], 'f32', `${op} output`);
  for (let n0 = 0; n0 < N; n0 += perChunk) {
    const images = Math.min(perChunk, N - n0);
    const T4 = paddedTiles(images * TH * TW);
    const V = rt.empty([elements, channels, T4], 'f32', 'conv2d winograd input');
    rt.dispatch(`${op} (winograd input)`, inputSpec(false, scheme.name), { N: images, n0, C: channels, H, W, pad, TH, TW, T4 }, { x, V }, grid1d((channels * T4) / 4, 256));
    const M = gemm(rt, V, u, channels, outputs, T4, op);
    V.dispose();
    rt.dispatch(`${op} (winograd output)`, outputSpec(!!bias, relu, !!residual, scheme.name, !!toPhases), { N: images, n0, Cout: outputs, OH, OW, TH, TW, T4, ...toPhases }, { M, bias, res: residual, y }, grid1d((outputs * T4) / 4, 256));
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
 * channels rounded up to 4. The reduction is over tiles, so the batch goes in chunks of images whose
 * transformed input and dy fit one binding each, every chunk's GEMM adding into the same products.
 */
function weightGradientProducts(rt: Runtime, dy: Tensor, x: Tensor, scheme: Scheme, channels: number, g: ConvGeometry, maxImagesPerChunk: number, op: string): Tensor {
  const { N, H, W, Cout, OH, OW, pad } = g;
  const { TH, TW } = tileGrid(OH, OW, scheme.tile);
  const elements = schemeElements(scheme);
  const C4 = Math.ceil(channels / 4) * 4;
  const pad4 = pad4Of(Cout);
  const perChunk = Math.max(1, Math.min(N, maxImagesPerChunk, weightGradientChunkImages(rt, scheme, C4, Cout, OH, OW)));
  let M: Tensor | undefined;
  for (let n0 = 0; n0 < N; n0 += perChunk) {
    const images = Math.min(perChunk, N - n0);
    const T4 = paddedTiles(images * TH * TW);
    const V = rt.empty([elements, T4, C4], 'f32', 'conv2d winograd input (by tile)');
    rt.dispatch(`${op} (winograd input)`, inputSpec(true, scheme.name), { N: images, n0, C: channels, H, W, pad, TH, TW, T4, C4 }, { x, V }, grid1d((T4 * C4) / 4, 256));
    const u = rt.empty([elements, T4, pad4 * 4], 'f32', 'conv2d winograd output gradient');
    rt.dispatch(`${op} (winograd dy)`, dySpec(scheme.name), { N: images, n0, Cout, OH, OW, TH, TW, T4, pad4 }, { dy, u }, grid1d(T4 * pad4 * 4, 256));
    M = gemm(rt, V, u, T4, Cout, C4, op, M);
    V.dispose();
    u.dispose();
  }
  return M!;
}

/**
 * Bytes a weight gradient's chunk may hold in each temporary (where one binding allows that much). Its
 * chunks add only their small products to the last's, so they cost nothing measurable (the stem's at
 * batch 8, 256 px on lavapipe: chunks of 7, 4 and 3 images 81-91, 84-90 and 82 ms), while the temporaries
 * of the whole batch would set the training step's peak memory (the stem's transformed dy is 17 MB an
 * image at 256 px).
 */
const WEIGHT_GRADIENT_CHUNK_BYTES = 64 * 2 ** 20;

/** Images of a weight gradient's chunk (at least 1 where one image fits one binding, else 0): see WEIGHT_GRADIENT_CHUNK_BYTES. */
function weightGradientChunkImages(rt: Runtime, scheme: Scheme, C4: number, Cout: number, OH: number, OW: number): number {
  const fits = chunkImages(rt, scheme, C4, Cout, OH, OW);
  return fits < 1 ? 0 : Math.max(1, Math.min(fits, imagesWithin(WEIGHT_GRADIENT_CHUNK_BYTES, scheme, C4, Cout, OH, OW)));
}

/**
 * Weight gradient of a stride-1 3x3 convolution by Winograd F(3x3, t x t): each t x t tile of dy
 * correlates with the same (t+2)^2 input patch as in the forward, so dW = G^T [sum over tiles (A dy A^T) .
 * (B^T x B)] G, a GEMM over all the tiles of the batch (the sum over images and pixels is its reduction).
 */
export function winogradConvBackwardWeight(rt: Runtime, dy: Tensor, x: Tensor, g: ConvGeometry, tile: WeightGradientTile = WEIGHT_GRADIENT_TILE, maxImagesPerChunk = g.N): Tensor {
  const op = 'conv2d backward (weight)';
  const { Cin, Cout } = g;
  const C4 = Math.ceil(Cin / 4) * 4;
  const M = weightGradientProducts(rt, dy, x, threeByThree(tile), Cin, g, maxImagesPerChunk, op);
  const dw = rt.empty([Cout, Cin, 3, 3], 'f32', 'conv2d weight gradient');
  rt.dispatch(`${op} (winograd output)`, weightGradSpec(threeByThree(tile).name), { Cout, Cin, C4 }, { M, dw }, grid1d(Cout * Cin, 256));
  M.dispose();
  return dw;
}

/**
 * Tiles a 3x3 stride-2 conv's batch needs before its weight gradient goes over the phases by default: the
 * products (25 x Cout x 4 Cin, whatever the batch) are written and read once, and the GEMM's reduction is
 * over the tiles. Measured on lavapipe (batch 8, one process, direct and Winograd interleaved, 3 rounds):
 * layer3.0's shape at 8 tiles 0.78-0.88x the direct kernel's speed, at 32 tiles 0.89-1.38x, at 128
 * 1.7-2.0x; layer2.0's at 32 tiles 1.2-1.4x, at 128 1.4-2.7x; the stem's (3 input channels, small
 * products) 1.2-1.9x from batch 2 at 64 px, so it keeps no threshold.
 */
export const MIN_PHASE_WEIGHT_GRADIENT_TILES = 64;

/** The tiles of a stride-2 conv's output in its phase scheme, over the whole batch. */
function phaseTiles(g: ConvGeometry, scheme: Scheme): number {
  const { TH, TW } = tileGrid(g.OH, g.OW, scheme.tile);
  return g.N * TH * TW;
}

/**
 * Whether a stride-2 conv's weight gradient goes through `phaseWinogradConvBackwardWeight`: where Winograd
 * over the phases applies, its temporaries fit, and (a 3x3 conv, unless Winograd is asked for) the batch
 * has MIN_PHASE_WEIGHT_GRADIENT_TILES tiles.
 */
export const byPhaseWinogradWeightGradient = (rt: Runtime, g: ConvGeometry, requested?: ConvAlgorithm) =>
  byPhases(rt, g, requested, MIN_PHASE_WEIGHT_GRADIENT_TILES) && phaseWeightGradientFits(rt, g);

/**
 * Whether a stride-2 conv's weight gradient by Winograd over its input's phases fits one binding per
 * temporary: the transformed input and dy of one image (the batch goes in chunks), and the products.
 */
function phaseWeightGradientFits(rt: Runtime, g: ConvGeometry): boolean {
  const scheme = phaseScheme(g);
  if (!scheme) return false;
  const products = 4 * schemeElements(scheme) * g.Cout * 4 * g.Cin; // bytes of M [E][Cout][4 Cin]
  return weightGradientChunkImages(rt, scheme, 4 * g.Cin, g.Cout, g.OH, g.OW) >= 1 && products <= rt.limits.maxStorageBufferBindingSize;
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
  rt.dispatch(`${op} (winograd output)`, weightGradSpec(scheme.name), { Cout, Cin, C4, K: KH }, { M, dw }, grid1d(Cout * C4, 256));
  M.dispose();
  return dw;
}
