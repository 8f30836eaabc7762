/**
 * The convolution planner: the one place that decides how a conv pass runs. `planConv` is pure: from the
 * adapter's capabilities, the geometry, the pass, whether the weights are frozen or being trained and what
 * the caller asked for, it returns a plan (the algorithm, Winograd's scheme, images per chunk, split-K);
 * the passes in conv2d.ts and conv2d-winograd.ts execute plans and decide nothing. The thresholds are the
 * named rows of RULES, each with its reason; `bench/conv-routes.ts` prints the routing table from here.
 */
import type { ConvGeometry } from './conv2d.js';

/** What the planner needs of an adapter. */
export interface AdapterCaps {
  isSoftware: boolean;
  maxStorageBufferBindingSize: number;
}

/** Overrides of the planner's defaults for one device (tests, and the benchmark's --conv3x3 switch). */
export interface ConvPolicy {
  /** Stride-1 3x3 and stride-2 convs by Winograd or directly, whatever the adapter (RULES.winogradOnSoftware). */
  conv3x3?: 'direct' | 'winograd';
  /** The tile of a trained forward by Winograd: 2 or 3 (RULES.trainedForwardTile). */
  trainedForwardTile?: 2 | 3;
}

export type ConvPass = 'forward' | 'backward-data' | 'backward-weight';
/** Frozen weights (teacher, folded student) are packed once and only run forward; trained ones every pass. */
export type WeightKind = 'frozen' | 'trained';
/** What a caller may ask for; unset, the planner chooses. */
export type ConvAlgorithm = 'direct' | 'winograd';

/**
 * Winograd algorithms by what they compute (Lavin & Gray's F(m x m, r x r): m x m outputs of an r x r
 * filter): F(t x t, 3x3) for stride-1 3x3 convs; over the input's four stride-2 phases, F(3x3, 4x4) for
 * the 7x7 stem's 4x4 phase filters and F(4x4, 2x2) for a 3x3 conv's 2x2 ones; a stride-2 conv's
 * backward-data reads dy whole and writes into the input's phases ('-into-phases'). The weight gradient
 * runs the forward's scheme transposed (F(3x3, t x t)).
 */
export type WinogradScheme =
  | 'winograd-f2x3' | 'winograd-f3x3' | 'winograd-f4x3'
  | 'winograd-f3x4-phases' | 'winograd-f4x2-phases'
  | 'winograd-f3x4-into-phases' | 'winograd-f4x2-into-phases';

export interface SchemeShape {
  /** Outputs per tile side. */
  tile: number;
  /** Filter side (a phase's filter, for the phase schemes). */
  kernel: 2 | 3 | 4;
  /** The input is read as its four stride-2 phases (4x the channels). */
  phases: boolean;
}

export const SCHEMES: Record<WinogradScheme, SchemeShape> = {
  'winograd-f2x3': { tile: 2, kernel: 3, phases: false },
  'winograd-f3x3': { tile: 3, kernel: 3, phases: false },
  'winograd-f4x3': { tile: 4, kernel: 3, phases: false },
  'winograd-f3x4-phases': { tile: 3, kernel: 4, phases: true },
  'winograd-f4x2-phases': { tile: 4, kernel: 2, phases: true },
  'winograd-f3x4-into-phases': { tile: 3, kernel: 4, phases: false },
  'winograd-f4x2-into-phases': { tile: 4, kernel: 2, phases: false },
};

export interface ConvPlan {
  algorithm: 'direct' | WinogradScheme;
  /** Images per Winograd pass (its temporaries fit one binding; a weight gradient's also RULES.weightGradientChunk). */
  imagesPerChunk: number;
  /** Direct passes: chunks of the reduced channels (forward, backward-data) or of the output rows (weight gradient). */
  splits: number;
  /** The row of RULES that decided the algorithm. */
  rule: RuleName;
}

/** The planner's thresholds and defaults: named rows, each with the measurement or reason behind it. */
export const RULES = {
  winogradOnSoftware: {
    value: true,
    why: 'Software adapters (lavapipe) run every stride-1 3x3 and stride-2 pass faster by Winograd (journal 2026-11-30, 2026-12-01); GPUs stay direct until a lent one measures both (bench --conv3x3 winograd).',
  },
  asked: { value: true, why: 'The caller asked for this algorithm (tests, the error script, the A/B benchmarks).' },
  notWinograd: { value: true, why: 'Winograd is written for stride-1 3x3 convs and 7x7 and 3x3 stride-2 ones; 1x1 downsamples and other strides are direct.' },
  phaseForwardMinTiles: {
    value: 8,
    why: 'The GEMM computes 8 tiles at a time: a 3x3 stride-2 forward over its phases with fewer measured slower than direct (journal 2026-12-01); the stem is faster at every size.',
  },
  phaseBackwardDataMinTiles: {
    value: 256,
    why: "A 3x3 stride-2 backward-data over the phases saves 1.44x multiply-adds but scatters its output: faster than direct only from 256 tiles (journal 2026-12-01); the stem's always.",
  },
  phaseWeightGradientMinTiles: {
    value: 64,
    why: "A 3x3 stride-2 weight gradient's products are written and read whatever the batch: faster than direct from 64 tiles (journal 2026-12-01); the stem's always.",
  },
  trainedForwardTile: {
    value: 0.75,
    why: "Batch statistics amplify a trained forward's rounding (F(4x4, 3x3) broke the 2e-3 step contract): F(3x3, 3x3) where its GEMM does at most 0.75x F(2x2)'s multiply-adds (maps of 32 and more), else F(2x2) (journal 2026-12-01).",
  },
  frozenTile: { value: 4, why: 'Frozen weights, backward-data and the weight gradient take 4x4 tiles: 1.78x fewer multiply-adds than 2x2, and no amplification (journal 2026-11-30).' },
  bindingFits: { value: true, why: "Winograd's temporaries of one image must fit one binding (maxStorageBufferBindingSize); batches go in chunks of images that fit, a conv none fits goes direct." },
  weightGradientChunk: {
    value: 64 * 2 ** 20,
    why: "A weight gradient's chunks only add their products, at no measurable cost, while the whole batch's temporaries would set a training step's peak memory (journal 2026-12-01).",
  },
  directSplitK: {
    value: 1 << 15,
    why: "On a GPU a direct forward or backward-data splits its reduced channels (16 at least a chunk) until about this many invocations fill it; a software adapter's few cores are busy already and would only pay for the partial sums.",
  },
  softwareWeightGradientInvocations: {
    value: 256,
    why: 'The direct weight gradient splits its output rows until about this many invocations on a software adapter (directSplitK on a GPU): more only adds partial sums (journal 2026-11-30).',
  },
} as const;
export type RuleName = keyof typeof RULES;

/** Winograd asked for where it cannot run: one error, naming the pass, the geometry and why. */
export class ConvPlanError extends Error {}

const describe = (g: ConvGeometry) => `${g.KH}x${g.KW}, stride ${g.stride}, padding ${g.pad}, input ${g.N}x${g.Cin}x${g.H}x${g.W}`;
const opOf = (pass: ConvPass) => (pass === 'forward' ? 'conv2d' : pass === 'backward-data' ? 'conv2d backward (input)' : 'conv2d backward (weight)');
function refuse(pass: ConvPass, g: ConvGeometry, reason: string): never {
  throw new ConvPlanError(`${opOf(pass)}: Winograd was asked for but cannot run this conv (${describe(g)}): ${reason}`);
}

// ---- geometry of the schemes ------------------------------------------------------------------------

/** Elements of a transformed tile: its side is tile + kernel - 1. */
export const schemeElements = ({ tile, kernel }: SchemeShape) => (tile + kernel - 1) ** 2;
/** Output channels per GEMM invocation (the padded width of U and M). */
const BLOCK = 8;
export const pad4Of = (channels: number) => Math.ceil(channels / BLOCK) * (BLOCK / 4);
export const tileGrid = (OH: number, OW: number, tile: number) => ({ TH: Math.ceil(OH / tile), TW: Math.ceil(OW / tile) });

/** Images whose per-tile temporaries (E x the wider of `channels` and the padded `outputs`) fit `bytes` each. */
export function imagesWithin(bytes: number, scheme: SchemeShape, channels: number, outputs: number, OH: number, OW: number): number {
  const widest = schemeElements(scheme) * Math.max(channels, pad4Of(outputs) * 4) * 4;
  const { TH, TW } = tileGrid(OH, OW, scheme.tile);
  return Math.floor((Math.floor(bytes / widest) - 3) / (TH * TW)); // a chunk's tiles are padded to a multiple of 4
}

/** The F(t x t, 3x3) scheme of a tile. */
export const threeByThree = (tile: 2 | 3 | 4): WinogradScheme => (tile === 4 ? 'winograd-f4x3' : tile === 3 ? 'winograd-f3x3' : 'winograd-f2x3');

/** The phase scheme of a stride-2 conv (forward and weight gradient): the 7x7 stem's, a 3x3 one's, or none. */
export function phaseScheme(g: Pick<ConvGeometry, 'KH' | 'KW' | 'stride'>): WinogradScheme | null {
  if (g.stride !== 2 || g.KH !== g.KW) return null;
  return g.KH === 7 ? 'winograd-f3x4-phases' : g.KH === 3 ? 'winograd-f4x2-phases' : null;
}
const intoPhases = (s: WinogradScheme): WinogradScheme => (s === 'winograd-f3x4-phases' ? 'winograd-f3x4-into-phases' : 'winograd-f4x2-into-phases');

/** The four stride-2 phases' rows and columns of a padded H x W input (the largest phase's). */
export const phaseGrid = (g: Pick<ConvGeometry, 'H' | 'W' | 'pad'>) => [Math.floor((g.H - 1 + g.pad) / 2) + 1, Math.floor((g.W - 1 + g.pad) / 2) + 1];

const isThreeByThree = (g: ConvGeometry) => g.KH === 3 && g.KW === 3 && g.stride === 1 && g.pad <= 2;

// ---- the plan ----------------------------------------------------------------------------------------

/**
 * How a conv pass runs. `available`: for frozen weights, the Winograd transform they were packed with
 * (`frozenTransform`), null if none; a plan needs it to take Winograd.
 */
export function planConv(caps: AdapterCaps, g: ConvGeometry, pass: ConvPass, weights: WeightKind, request?: ConvAlgorithm, policy: ConvPolicy = {}, available: WinogradScheme | null = null): ConvPlan {
  const direct = (rule: RuleName): ConvPlan => ({ algorithm: 'direct', imagesPerChunk: g.N, splits: directSplits(caps, g, pass), rule });
  if (request === 'direct') return direct('asked');
  const prefers = policy.conv3x3 ? policy.conv3x3 === 'winograd' : caps.isSoftware;
  const winograd = request === 'winograd' || prefers;
  const byRequest = (rule: RuleName): RuleName => (request === 'winograd' ? 'asked' : rule);
  const noTransform = () => (request === 'winograd' ? refuse(pass, g, 'these packed weights have no Winograd transform (packed for another stride or padding, or on a runtime that computes convs directly)') : direct('winogradOnSoftware'));

  const phase = phaseScheme(g);
  if (phase && winograd) {
    const scheme = pass === 'backward-data' ? intoPhases(phase) : phase;
    const shape = SCHEMES[scheme];
    const minTiles = pass === 'forward' ? RULES.phaseForwardMinTiles.value : pass === 'backward-data' ? RULES.phaseBackwardDataMinTiles.value : RULES.phaseWeightGradientMinTiles.value;
    const rule: RuleName = pass === 'forward' ? 'phaseForwardMinTiles' : pass === 'backward-data' ? 'phaseBackwardDataMinTiles' : 'phaseWeightGradientMinTiles';
    const { TH, TW } = tileGrid(g.OH, g.OW, SCHEMES[phase].tile);
    const enough = request === 'winograd' || g.KH === 7 || g.N * TH * TW >= minTiles;
    if (enough) {
      if (weights === 'frozen' && available !== phase) return noTransform();
      const chunk = phaseChunk(caps, g, pass, scheme, shape);
      if (chunk >= 1) return { algorithm: scheme, imagesPerChunk: Math.min(g.N, chunk), splits: 1, rule: byRequest(rule) };
      if (request === 'winograd') refuse(pass, g, "the Winograd temporaries of one image exceed one binding");
      return direct('bindingFits');
    }
    return direct(rule);
  }
  if (!isThreeByThree(g)) {
    if (request === 'winograd') refuse(pass, g, 'Winograd needs a stride-1 3x3 convolution with padding <= 2 (or a 7x7 or 3x3 stride-2 one)');
    return direct('notWinograd');
  }
  if (!winograd) return direct('winogradOnSoftware');
  const tile = pass === 'forward' && weights === 'trained' ? trainedForwardTile(g, policy) : RULES.frozenTile.value;
  const scheme = threeByThree(tile);
  if (weights === 'frozen' && available !== scheme) return noTransform();
  const chunk = threeByThreeChunk(caps, g, pass, SCHEMES[scheme]);
  if (chunk >= 1) return { algorithm: scheme, imagesPerChunk: Math.min(g.N, chunk), splits: 1, rule: byRequest(pass === 'forward' && weights === 'trained' ? 'trainedForwardTile' : 'winogradOnSoftware') };
  if (request === 'winograd') refuse(pass, g, `the Winograd temporaries (${tile}x${tile} tiles) of one image exceed one binding`);
  return direct('bindingFits');
}

/**
 * The tile of a trained stride-1 3x3 forward (RULES.trainedForwardTile): F(3x3, 3x3) where its GEMM does at
 * most 3/4 of F(2x2)'s multiply-adds, overhang included, else F(2x2, 3x3); the policy may fix it.
 */
export function trainedForwardTile(g: Pick<ConvGeometry, 'OH' | 'OW'>, policy: ConvPolicy = {}): 2 | 3 {
  if (policy.trainedForwardTile !== undefined) return policy.trainedForwardTile;
  const gemmMacs = (t: number) => (t + 2) ** 2 * Math.ceil(g.OH / t) * Math.ceil(g.OW / t);
  return gemmMacs(3) <= RULES.trainedForwardTile.value * gemmMacs(2) ? 3 : 2;
}

/**
 * The Winograd transform frozen weights are packed with for a conv shape (batch-independent): the phase
 * scheme of a stride-2 conv, F(4x4, 3x3) for a stride-1 3x3 one, where the adapter prefers Winograd.
 */
export function frozenTransform(caps: AdapterCaps, g: ConvGeometry, policy: ConvPolicy = {}): WinogradScheme | null {
  const prefers = policy.conv3x3 ? policy.conv3x3 === 'winograd' : caps.isSoftware;
  if (!prefers) return null;
  const phase = phaseScheme(g);
  if (phase) return phase;
  return isThreeByThree(g) ? threeByThree(RULES.frozenTile.value) : null;
}

/** Images per pass of a stride-1 3x3 conv by Winograd whose temporaries fit one binding. */
function threeByThreeChunk(caps: AdapterCaps, g: ConvGeometry, pass: ConvPass, scheme: SchemeShape): number {
  const binding = caps.maxStorageBufferBindingSize;
  if (pass === 'forward') return imagesWithin(binding, scheme, g.Cin, g.Cout, g.OH, g.OW);
  if (pass === 'backward-data') return imagesWithin(binding, scheme, g.Cout, g.Cin, g.H, g.W);
  return weightGradientChunk(binding, scheme, Math.ceil(g.Cin / 4) * 4, g.Cout, g.OH, g.OW, g.Cin);
}

/** Images per pass of a stride-2 conv by Winograd over the phases whose temporaries fit one binding. */
function phaseChunk(caps: AdapterCaps, g: ConvGeometry, pass: ConvPass, scheme: WinogradScheme, shape: SchemeShape): number {
  const binding = caps.maxStorageBufferBindingSize;
  if (pass === 'forward') return imagesWithin(binding, shape, 4 * g.Cin, g.Cout, g.OH, g.OW);
  if (pass === 'backward-data') {
    const [UH, UW] = phaseGrid(g);
    return imagesWithin(binding, shape, g.Cout, 4 * g.Cin, UH, UW);
  }
  return weightGradientChunk(binding, SCHEMES[scheme], 4 * g.Cin, g.Cout, g.OH, g.OW, 4 * g.Cin);
}

/**
 * A weight gradient's images per chunk (RULES.weightGradientChunk), or 0 where one image's temporaries,
 * or the products (E x Cout x the input's channels, whatever the batch), exceed one binding.
 */
function weightGradientChunk(binding: number, scheme: SchemeShape, C4: number, Cout: number, OH: number, OW: number, productChannels: number): number {
  const fits = imagesWithin(binding, scheme, C4, Cout, OH, OW);
  const products = 4 * schemeElements(scheme) * Math.max(4 * pad4Of(Cout), Cout) * Math.max(productChannels, 4 * pad4Of(productChannels));
  if (fits < 1 || products > binding) return 0;
  return Math.max(1, Math.min(fits, imagesWithin(RULES.weightGradientChunk.value, scheme, C4, Cout, OH, OW)));
}

/** Split-K of a direct pass (RULES.directSplitK, RULES.softwareWeightGradientInvocations). */
function directSplits(caps: AdapterCaps, g: ConvGeometry, pass: ConvPass): number {
  if (pass === 'backward-weight') {
    const cols = g.Cin * g.KH * g.KW;
    const columnQuads = g.KH * g.KW > 1 ? 2 : 1;
    const tiles = Math.ceil(cols / (4 * columnQuads)) * Math.ceil(g.Cout / 8);
    const rows = g.N * g.OH;
    const target = caps.isSoftware ? RULES.softwareWeightGradientInvocations.value : RULES.directSplitK.value;
    const want = Math.max(1, Math.min(rows, Math.round(target / tiles)));
    return Math.ceil(rows / Math.ceil(rows / want));
  }
  if (caps.isSoftware) return 1;
  const [pixels, channels, reduced] = pass === 'forward' ? [Math.ceil((g.OH * g.OW) / 8), Math.ceil(g.Cout / 8), g.Cin] : [g.stride * g.stride * Math.ceil(g.H / g.stride) * Math.ceil(Math.ceil(g.W / g.stride) / 4), Math.ceil(g.Cin / 8), g.Cout];
  const invocations = pixels * channels * g.N;
  if (invocations >= RULES.directSplitK.value) return 1;
  return Math.max(1, Math.min(Math.ceil(RULES.directSplitK.value / invocations), Math.floor(reduced / 16)));
}
