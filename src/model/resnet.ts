/**
 * The ResNet18 trunk used by STFPM and DCAM: conv1, bn1, ReLU, max pool, layer1..layer3 (BasicBlocks),
 * returning the layer1, layer2 and layer3 features. torchvision parameter names and layouts throughout, so
 * a torchvision state_dict (with or without layer4/fc) loads directly and a saved one loads back in
 * PyTorch with `resnet18().load_state_dict(sd, strict=False)`.
 */
import { maxPool2d } from '../autograd/ops.js';
import type { Runtime } from '../graph/runtime.js';
import type { Tensor } from '../graph/tensor.js';
import { conv2dForward, PackedConvWeights } from '../kernels/conv2d.js';
import { maxPool2dForward } from '../kernels/pool.js';
import { Rng } from '../nn/init.js';
import { BatchNorm2d, Conv2d, parameter } from '../nn/layers.js';
import { WeightFileError, finiteFloat32, fromFloat32, int64Scalar, toFloat32, type RawTensor } from './weights/index.js';

export type Features = [Tensor, Tensor, Tensor];

/** The three feature levels (layer1..layer3): channels, and input pixels per feature pixel. */
export const FEATURE_LEVELS = [
  { channels: 64, stride: 4 },
  { channels: 128, stride: 8 },
  { channels: 256, stride: 16 },
] as const;

// ---- the topology, written once ------------------------------------------------------------------

/** One convolution of the trunk (no bias) and the BatchNorm that follows it, by torchvision name. */
export interface TrunkConv {
  conv: string;
  bn: string;
  cin: number;
  cout: number;
  k: number;
  stride: number;
  pad: number;
}

/** A BasicBlock: relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut), the shortcut x or downsample(x). */
export interface TrunkBlock {
  conv1: TrunkConv;
  conv2: TrunkConv;
  downsample: TrunkConv | null;
}

const conv = (name: string, bn: string, cin: number, cout: number, k: number, stride: number, pad: number): TrunkConv => ({ conv: name, bn, cin, cout, k, stride, pad });

/** torchvision's `layer<n>` of two BasicBlocks; the first one changes width and stride. */
function resnetStage(layer: number, cin: number, cout: number, stride: number): TrunkBlock[] {
  return [0, 1].map((b) => {
    const p = `layer${layer}.${b}`;
    const inC = b === 0 ? cin : cout;
    const s = b === 0 ? stride : 1;
    return {
      conv1: conv(`${p}.conv1`, `${p}.bn1`, inC, cout, 3, s, 1),
      conv2: conv(`${p}.conv2`, `${p}.bn2`, cout, cout, 3, 1, 1),
      downsample: b === 0 && (stride !== 1 || cin !== cout) ? conv(`${p}.downsample.0`, `${p}.downsample.1`, cin, cout, 1, stride, 0) : null,
    };
  });
}

/** ResNet18 conv1..layer3: the stem (7x7 conv, BN, ReLU, 3x3/2 max pool), then three stages, one per feature level. */
export const RESNET18_TRUNK = {
  stem: conv('conv1', 'bn1', 3, 64, 7, 2, 3),
  stages: [resnetStage(1, 64, 64, 1), resnetStage(2, 64, 128, 2), resnetStage(3, 128, 256, 2)],
} as const;

/** ResNet18's layer4, which a torchvision state_dict holds and the trunk does not use. */
const RESNET18_LAYER4 = resnetStage(4, 256, 512, 2);

const blockConvs = (b: TrunkBlock): TrunkConv[] => [b.conv1, b.conv2, ...(b.downsample ? [b.downsample] : [])];

/** Every conv of conv1..layer3 with the BN that follows it, in forward order. */
export function trunkConvs(): TrunkConv[] {
  return [RESNET18_TRUNK.stem, ...RESNET18_TRUNK.stages.flat().flatMap(blockConvs)];
}

/** The state_dict names of a BatchNorm's tensors (torchvision's, as every name in this file). */
const BN_TENSORS = ['weight', 'bias', 'running_mean', 'running_var'] as const;

function convTensorShapes(convs: readonly TrunkConv[]): Array<[string, number[]]> {
  return convs.flatMap((c): Array<[string, number[]]> => [
    [`${c.conv}.weight`, [c.cout, c.cin, c.k, c.k]],
    ...BN_TENSORS.map((t): [string, number[]] => [`${c.bn}.${t}`, [c.cout]]),
  ]);
}

/** (name, shape) of every conv and BN tensor of conv1..layer3, in torchvision order. */
export function trunkTensorShapes(): Array<[string, number[]]> {
  return convTensorShapes(trunkConvs());
}

/**
 * Tensors a torchvision (or timm) ResNet18 state_dict may hold beyond conv1..layer3: BN counters, layer4
 * and the classifier. Anything else (ResNet34's extra blocks, another network) is not a ResNet18.
 */
function resnet18ExtraShapes(): Map<string, number[] | null> {
  const out = new Map<string, number[] | null>(convTensorShapes(RESNET18_LAYER4.flatMap(blockConvs)));
  for (const c of [...trunkConvs(), ...RESNET18_LAYER4.flatMap(blockConvs)]) out.set(`${c.bn}.num_batches_tracked`, null);
  out.set('fc.weight', [1000, 512]);
  out.set('fc.bias', [1000]);
  return out;
}

/** What a backend supplies to run the trunk: GPU tensors with or without autograd, tfjs, an ONNX graph. */
export interface TrunkOps<T> {
  /** relu?(conv(x) + residual?), the conv followed by its BN (folded into it, or applied after). */
  conv(c: TrunkConv, x: T, relu: boolean, residual?: T): T;
  /** The stem's 3x3 max pool, stride 2, padding 1. */
  maxPool(x: T): T;
  /** The walk no longer needs `x` (never called on a returned feature). */
  release?(x: T): void;
}

/**
 * Runs conv1..layer3 over `ops` and returns the layer1..layer3 features. `between(level, f)`, if given,
 * replaces a level's output before the next stage consumes it (in-line attention, METHOD.md 2.3 B).
 */
export function walkTrunk<T>(ops: TrunkOps<T>, x: T, between?: (level: number, f: T) => T): [T, T, T] {
  const stem = ops.conv(RESNET18_TRUNK.stem, x, true);
  let h = ops.maxPool(stem);
  ops.release?.(stem);
  const feats: T[] = [];
  RESNET18_TRUNK.stages.forEach((blocks, level) => {
    for (const b of blocks) {
      const y1 = ops.conv(b.conv1, h, true);
      const shortcut = b.downsample ? ops.conv(b.downsample, h, false) : h;
      const out = ops.conv(b.conv2, y1, true, shortcut);
      ops.release?.(y1);
      if (shortcut !== h) ops.release?.(shortcut);
      if (!feats.includes(h)) ops.release?.(h);
      h = out;
    }
    if (between) h = between(level, h);
    feats.push(h);
  });
  return feats as [T, T, T];
}

const FLOAT_DTYPES = new Set(['F32', 'F16', 'F64']);

export interface FoldedConv {
  conv: string;
  /** OIHW weight and bias after folding. */
  w: Float32Array;
  b: Float32Array;
  shape: [number, number, number, number];
  stride: number;
  pad: number;
}

/**
 * BN (eval mode) folded into the conv before it: w' = w * g / sqrt(v + eps), b' = beta - mean * g / sqrt(v + eps).
 * On the CPU from a state_dict of float32 arrays (also what the benchmark's peers are given).
 */
export function foldTrunk(sd: ReadonlyMap<string, Float32Array>, eps = 1e-5): FoldedConv[] {
  return trunkConvs().map(({ conv, bn, stride, pad, cout: C, cin, k }) => {
    const get = (name: string) => {
      const t = sd.get(name);
      if (!t) throw new WeightFileError(`fold: missing ${name}`);
      return t;
    };
    const w = get(`${conv}.weight`);
    const g = get(`${bn}.weight`);
    const beta = get(`${bn}.bias`);
    const mean = get(`${bn}.running_mean`);
    const variance = get(`${bn}.running_var`);
    const cout = g.length;
    const per = w.length / cout;
    const wf = new Float32Array(w.length);
    const bf = new Float32Array(cout);
    for (let c = 0; c < cout; c++) {
      const s = g[c] / Math.sqrt(variance[c] + eps);
      for (let i = 0; i < per; i++) wf[c * per + i] = w[c * per + i] * s;
      bf[c] = beta[c] - mean[c] * s;
    }
    return { conv, w: wf, b: bf, shape: [C, cin, k, k], stride, pad };
  });
}

type TensorSource = (name: string, shape: number[]) => { data: Float32Array; trainable: boolean };

export class ResNetTrunk {
  private readonly convs = new Map<string, Conv2d>();
  private readonly named = new Map<string, Tensor>();
  private readonly batchNorms = new Map<string, BatchNorm2d>();

  private constructor(readonly rt: Runtime, source: TensorSource) {
    for (const [name, shape] of trunkTensorShapes()) {
      const { data, trainable } = source(name, shape);
      this.named.set(name, trainable ? parameter(rt, data, shape) : rt.tensor(data, shape).keep());
    }
    for (const c of trunkConvs()) {
      this.convs.set(c.conv, new Conv2d(this.named.get(`${c.conv}.weight`)!, null, c.stride, c.pad));
      const [weight, bias, mean, variance] = BN_TENSORS.map((t) => this.named.get(`${c.bn}.${t}`)!);
      this.batchNorms.set(c.bn, new BatchNorm2d(weight, bias, mean, variance));
    }
  }

  /** torchvision's default init: convs kaiming-normal (fan_out, ReLU), BN weight 1, bias 0; seeded. */
  static random(rt: Runtime, seed: number): ResNetTrunk {
    const rng = new Rng(seed);
    return new ResNetTrunk(rt, (name, shape) => {
      const n = shape.reduce((a, b) => a * b, 1);
      if (shape.length === 4) {
        const std = Math.sqrt(2 / (shape[0] * shape[2] * shape[3]));
        return { data: Float32Array.from({ length: n }, () => rng.normal() * std), trainable: true };
      }
      const fill = name.endsWith('.weight') || name.endsWith('running_var') ? 1 : 0;
      return { data: new Float32Array(n).fill(fill), trainable: !name.includes('running') };
    });
  }

  /**
   * From a torchvision-named state_dict. ResNet18's layer4 and fc may be present (and are ignored); a
   * missing, wrongly shaped or non-float tensor of conv1..layer3, or a tensor no ResNet18 has (ResNet34's
   * extra blocks, say), is an error listing every such name; a non-finite value is an error naming its tensor.
   */
  static fromStateDict(rt: Runtime, sd: Map<string, RawTensor>, file = 'state_dict', trainable = true): ResNetTrunk {
    const problems: string[] = [];
    const sameShape = (a: readonly number[], b: readonly number[]) => a.length === b.length && a.every((d, i) => d === b[i]);
    const trunkShapes = new Map(trunkTensorShapes());
    for (const [name, shape] of trunkShapes) {
      const t = sd.get(name);
      if (!t) problems.push(`missing ${name} [${shape}]`);
      else if (!sameShape(t.shape, shape)) problems.push(`${name}: expected [${shape}], found [${t.shape}]`);
      else if (!FLOAT_DTYPES.has(t.dtype)) problems.push(`${name}: ${t.dtype}, expected a float tensor`);
    }
    const extra = resnet18ExtraShapes();
    const foreign: string[] = [];
    for (const [name, t] of sd) {
      if (trunkShapes.has(name)) continue;
      if (!extra.has(name)) foreign.push(name);
      else if (extra.get(name) && !sameShape(t.shape, extra.get(name)!)) problems.push(`${name}: expected [${extra.get(name)}] (ResNet18), found [${t.shape}]`);
    }
    if (foreign.length) problems.push(`${foreign.length} tensor(s) no ResNet18 has (a deeper ResNet or another network?): ${foreign.slice(0, 4).join(', ')}${foreign.length > 4 ? ', ...' : ''}`);
    if (problems.length > 0) {
      throw new WeightFileError(`${file}: not a ResNet18 (conv1..layer3) state_dict: ${problems.length} problem(s):\n  ${problems.join('\n  ')}`);
    }
    const values = new Map([...trunkShapes.keys()].map((name) => [name, finiteFloat32(sd.get(name)!, name, file)]));
    const trunk = new ResNetTrunk(rt, (name) => ({ data: values.get(name)!, trainable: trainable && !name.includes('running') }));
    for (const [name, bn] of trunk.batchNorms) {
      const n = sd.get(`${name}.num_batches_tracked`);
      if (n) bn.batchesTracked = toFloat32(n)[0];
    }
    return trunk;
  }

  /**
   * Features of layer1..layer3. `between(k, f)`, if given, replaces level k's output before the next
   * layer consumes it (in-line attention, METHOD.md 2.3 B); the replaced features are returned.
   */
  forward(x: Tensor, between?: (level: number, f: Tensor) => Tensor): Features {
    return walkTrunk<Tensor>({
      conv: (c, h, withRelu, residual) =>
        this.batchNorms.get(c.bn)!.forward(this.convs.get(c.conv)!.forward(h), { residual, relu: withRelu }),
      maxPool: (h) => maxPool2d(h),
    }, x, between);
  }

  /** The BatchNorm layers, in trunk order. */
  batchNormLayers(): BatchNorm2d[] {
    return [...this.batchNorms.values()];
  }

  /** BN in training (batch statistics) or eval (running statistics) mode. */
  setTraining(training: boolean): void {
    for (const bn of this.batchNorms.values()) bn.training = training;
  }

  /** No gradients for any tensor (a frozen teacher). */
  freeze(): void {
    for (const t of this.named.values()) t.requiresGrad = false;
  }

  parameters(): Tensor[] {
    return [...this.named.entries()].filter(([n]) => !n.includes('running')).map(([, t]) => t);
  }

  tensor(name: string): Tensor {
    const t = this.named.get(name);
    if (!t) throw new Error(`no tensor ${name} in the ResNet18 trunk`);
    return t;
  }

  /** The state_dict (torchvision names, BN running statistics and num_batches_tracked included). */
  /** Every conv and BN tensor of conv1..layer3, read back as float32 arrays (torchvision names). */
  async arrays(): Promise<Map<string, Float32Array>> {
    const sd = new Map<string, Float32Array>();
    for (const [name] of trunkTensorShapes()) sd.set(name, await this.tensor(name).read());
    return sd;
  }

  async stateDict(): Promise<Array<[string, RawTensor]>> {
    const out: Array<[string, RawTensor]> = [];
    for (const [name, shape] of trunkTensorShapes()) {
      out.push([name, fromFloat32(await this.named.get(name)!.read(), shape)]);
      if (name.endsWith('running_var')) {
        const bnName = name.slice(0, -'.running_var'.length);
        out.push([`${bnName}.num_batches_tracked`, int64Scalar(this.batchNorms.get(bnName)!.batchesTracked)]);
      }
    }
    return out;
  }

  dispose(): void {
    for (const t of this.named.values()) t.dispose();
    this.named.clear();
  }
}

/**
 * Inference form of a trunk (the frozen teacher, or a trained student): every BN folded into its conv
 * (w' = w * g / sqrt(v + eps), b' = beta - mean * g / sqrt(v + eps)) and ReLU fused into the conv epilogue.
 * Forward only, no autograd; the conv weights are packed for the kernel once, at construction.
 */
export class FoldedTrunk {
  private constructor(
    private readonly rt: Runtime,
    private readonly convs: Map<string, { w: PackedConvWeights; b: Tensor }>,
  ) {}

  static async fromTrunk(trunk: ResNetTrunk, eps = 1e-5): Promise<FoldedTrunk> {
    return FoldedTrunk.fromArrays(trunk.rt, await trunk.arrays(), eps);
  }

  /** From the trunk's tensors as float32 arrays (torchvision names). */
  static fromArrays(rt: Runtime, sd: ReadonlyMap<string, Float32Array>, eps = 1e-5): FoldedTrunk {
    const convs = new Map<string, { w: PackedConvWeights; b: Tensor }>();
    for (const c of foldTrunk(sd, eps)) {
      const w = rt.tensor(c.w, c.shape);
      convs.set(c.conv, { w: PackedConvWeights.of(rt, w, { stride: c.stride, padding: c.pad }), b: rt.tensor(c.b, [c.shape[0]]).keep() });
      w.dispose();
    }
    return new FoldedTrunk(rt, convs);
  }

  forward(x: Tensor): Features {
    const rt = this.rt;
    return rt.noGrad(() => walkTrunk<Tensor>({
      // BN folded in; ReLU and the block's shortcut fused into the conv's epilogue
      conv: (c, h, relu, residual) => {
        const f = this.convs.get(c.conv)!;
        return conv2dForward(rt, h, f.w, f.b, { stride: c.stride, padding: c.pad, relu, residual });
      },
      maxPool: (h) => maxPool2dForward(rt, h, { kernel: 3, stride: 2, padding: 1 }, false).y,
      release: (h) => {
        if (h !== x) h.dispose(); // the caller's input stays theirs
      },
    }, x));
  }

  dispose(): void {
    for (const c of this.convs.values()) {
      c.w.dispose();
      c.b.dispose();
    }
  }
}
