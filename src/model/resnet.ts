/**
 * The ResNet18 trunk used by STFPM and DCAM: conv1, bn1, ReLU, max pool, layer1..layer3 (BasicBlocks),
 * returning the layer1, layer2 and layer3 features. torchvision parameter names and layouts throughout, so
 * a torchvision state_dict (with or without layer4/fc) loads directly and a saved one loads back in
 * PyTorch with `resnet18().load_state_dict(sd, strict=False)`.
 */
import { add, relu, maxPool2d } from '../autograd/ops.js';
import type { Runtime } from '../graph/runtime.js';
import type { Tensor } from '../graph/tensor.js';
import { conv2dForward, PackedConvWeights } from '../kernels/conv2d.js';
import { maxPool2dForward } from '../kernels/pool.js';
import { Rng } from '../nn/init.js';
import { BatchNorm2d, Conv2d, parameter } from '../nn/layers.js';
import { WeightFileError, finiteFloat32, fromFloat32, int64Scalar, toFloat32, type RawTensor } from './weights/index.js';

export type Features = [Tensor, Tensor, Tensor];

/** (name, shape) of every conv and BN tensor of conv1..layer3, in torchvision order. */
export function trunkTensorShapes(): Array<[string, number[]]> {
  const out: Array<[string, number[]]> = [];
  const conv = (name: string, cout: number, cin: number, k: number) => out.push([`${name}.weight`, [cout, cin, k, k]]);
  const bn = (name: string, c: number) => {
    for (const t of ['weight', 'bias', 'running_mean', 'running_var']) out.push([`${name}.${t}`, [c]]);
  };
  conv('conv1', 64, 3, 7);
  bn('bn1', 64);
  for (const [layer, cin, cout] of [[1, 64, 64], [2, 64, 128], [3, 128, 256]] as const) {
    for (const b of [0, 1]) {
      const p = `layer${layer}.${b}`;
      const inC = b === 0 ? cin : cout;
      conv(`${p}.conv1`, cout, inC, 3);
      bn(`${p}.bn1`, cout);
      conv(`${p}.conv2`, cout, cout, 3);
      bn(`${p}.bn2`, cout);
      if (b === 0 && layer > 1) {
        conv(`${p}.downsample.0`, cout, cin, 1);
        bn(`${p}.downsample.1`, cout);
      }
    }
  }
  return out;
}

/**
 * Tensors a torchvision (or timm) ResNet18 state_dict may hold beyond conv1..layer3: BN counters, layer4
 * and the classifier. Anything else (ResNet34's extra blocks, another network) is not a ResNet18.
 */
function resnet18ExtraShapes(): Map<string, number[] | null> {
  const out = new Map<string, number[] | null>();
  for (const [name] of trunkTensorShapes()) if (name.endsWith('.running_var')) out.set(name.replace(/running_var$/, 'num_batches_tracked'), null);
  const conv = (name: string, cout: number, cin: number, k: number) => out.set(`${name}.weight`, [cout, cin, k, k]);
  const bn = (name: string, c: number) => {
    for (const t of ['weight', 'bias', 'running_mean', 'running_var']) out.set(`${name}.${t}`, [c]);
    out.set(`${name}.num_batches_tracked`, null);
  };
  for (const b of [0, 1]) {
    conv(`layer4.${b}.conv1`, 512, b === 0 ? 256 : 512, 3);
    bn(`layer4.${b}.bn1`, 512);
    conv(`layer4.${b}.conv2`, 512, 512, 3);
    bn(`layer4.${b}.bn2`, 512);
  }
  conv('layer4.0.downsample.0', 512, 256, 1);
  bn('layer4.0.downsample.1', 512);
  out.set('fc.weight', [1000, 512]);
  out.set('fc.bias', [1000]);
  return out;
}

const FLOAT_DTYPES = new Set(['F32', 'F16', 'F64']);

/** Every conv of conv1..layer3 with the BN that follows it, its stride and padding, in forward order. */
export function trunkConvs(): Array<{ conv: string; bn: string; stride: number; pad: number }> {
  const out = [{ conv: 'conv1', bn: 'bn1', stride: 2, pad: 3 }];
  for (const [l, stride] of [[1, 1], [2, 2], [3, 2]] as const) {
    for (const b of [0, 1]) {
      const p = `layer${l}.${b}`;
      out.push({ conv: `${p}.conv1`, bn: `${p}.bn1`, stride: b === 0 ? stride : 1, pad: 1 });
      out.push({ conv: `${p}.conv2`, bn: `${p}.bn2`, stride: 1, pad: 1 });
      if (b === 0 && l > 1) out.push({ conv: `${p}.downsample.0`, bn: `${p}.downsample.1`, stride: 2, pad: 0 });
    }
  }
  return out;
}

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
  const shapes = new Map(trunkTensorShapes());
  return trunkConvs().map(({ conv, bn, stride, pad }) => {
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
    return { conv, w: wf, b: bf, shape: shapes.get(`${conv}.weight`) as [number, number, number, number], stride, pad };
  });
}

class BasicBlock {
  constructor(
    readonly conv1: Conv2d,
    readonly bn1: BatchNorm2d,
    readonly conv2: Conv2d,
    readonly bn2: BatchNorm2d,
    readonly downsample: [Conv2d, BatchNorm2d] | null,
  ) {}

  forward(x: Tensor): Tensor {
    const y = this.bn2.forward(this.conv2.forward(relu(this.bn1.forward(this.conv1.forward(x)))));
    const shortcut = this.downsample ? this.downsample[1].forward(this.downsample[0].forward(x)) : x;
    return relu(add(y, shortcut));
  }
}

type TensorSource = (name: string, shape: number[]) => { data: Float32Array; trainable: boolean };

export class ResNetTrunk {
  readonly conv1: Conv2d;
  readonly bn1: BatchNorm2d;
  readonly layers: BasicBlock[][];
  private readonly named = new Map<string, Tensor>();
  private readonly batchNorms = new Map<string, BatchNorm2d>();

  private constructor(readonly rt: Runtime, source: TensorSource) {
    const t = (name: string, shape: number[]) => {
      const { data, trainable } = source(name, shape);
      const tensor = trainable ? parameter(rt, data, shape) : rt.tensor(data, shape).keep();
      this.named.set(name, tensor);
      return tensor;
    };
    const conv = (name: string, cout: number, cin: number, k: number, stride: number, pad: number) =>
      new Conv2d(t(`${name}.weight`, [cout, cin, k, k]), null, stride, pad);
    const bn = (name: string, c: number) => {
      const layer = new BatchNorm2d(t(`${name}.weight`, [c]), t(`${name}.bias`, [c]), t(`${name}.running_mean`, [c]), t(`${name}.running_var`, [c]));
      this.batchNorms.set(name, layer);
      return layer;
    };
    this.conv1 = conv('conv1', 64, 3, 7, 2, 3);
    this.bn1 = bn('bn1', 64);
    this.layers = ([[1, 64, 64, 1], [2, 64, 128, 2], [3, 128, 256, 2]] as const).map(([l, cin, cout, stride]) =>
      [0, 1].map((b) => {
        const p = `layer${l}.${b}`;
        const s = b === 0 ? stride : 1;
        const inC = b === 0 ? cin : cout;
        const down: [Conv2d, BatchNorm2d] | null = b === 0 && l > 1 ? [conv(`${p}.downsample.0`, cout, cin, 1, 2, 0), bn(`${p}.downsample.1`, cout)] : null;
        return new BasicBlock(conv(`${p}.conv1`, cout, inC, 3, s, 1), bn(`${p}.bn1`, cout), conv(`${p}.conv2`, cout, cout, 3, 1, 1), bn(`${p}.bn2`, cout), down);
      }),
    );
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
    let h = maxPool2d(relu(this.bn1.forward(this.conv1.forward(x))));
    const feats: Tensor[] = [];
    this.layers.forEach((blocks, k) => {
      h = blocks.reduce((a, b) => b.forward(a), h);
      if (between) h = between(k, h);
      feats.push(h);
    });
    return feats as Features;
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
    private readonly convs: Map<string, { w: PackedConvWeights; b: Tensor; stride: number; pad: number }>,
  ) {}

  static async fromTrunk(trunk: ResNetTrunk, eps = 1e-5): Promise<FoldedTrunk> {
    return FoldedTrunk.fromArrays(trunk.rt, await trunk.arrays(), eps);
  }

  /** From the trunk's tensors as float32 arrays (torchvision names). */
  static fromArrays(rt: Runtime, sd: ReadonlyMap<string, Float32Array>, eps = 1e-5): FoldedTrunk {
    const convs = new Map<string, { w: PackedConvWeights; b: Tensor; stride: number; pad: number }>();
    for (const c of foldTrunk(sd, eps)) {
      const w = rt.tensor(c.w, c.shape);
      convs.set(c.conv, { w: PackedConvWeights.of(rt, w), b: rt.tensor(c.b, [c.shape[0]]).keep(), stride: c.stride, pad: c.pad });
      w.dispose();
    }
    return new FoldedTrunk(rt, convs);
  }

  private conv(name: string, x: Tensor, relu: boolean, residual?: Tensor): Tensor {
    const c = this.convs.get(name)!;
    return conv2dForward(this.rt, x, c.w, c.b, { stride: c.stride, padding: c.pad, relu, residual });
  }

  forward(x: Tensor): Features {
    const rt = this.rt;
    return rt.noGrad(() => {
      const stem = this.conv('conv1', x, true);
      const pooled = maxPool2dForward(rt, stem, { kernel: 3, stride: 2, padding: 1 });
      stem.dispose();
      pooled.argmax.dispose();
      let h = pooled.y;
      const feats: Tensor[] = [];
      for (const l of [1, 2, 3]) {
        for (const b of [0, 1]) {
          const p = `layer${l}.${b}`;
          const y1 = this.conv(`${p}.conv1`, h, true);
          const shortcut = b === 0 && l > 1 ? this.conv(`${p}.downsample.0`, h, false) : h;
          // conv2 + BN (folded) + shortcut + ReLU in one kernel
          const out = this.conv(`${p}.conv2`, y1, true, shortcut);
          y1.dispose();
          if (shortcut !== h) shortcut.dispose();
          if (!feats.includes(h)) h.dispose(); // block inputs we made; the features are returned
          h = out;
        }
        feats.push(h);
      }
      return feats as Features;
    });
  }

  dispose(): void {
    for (const c of this.convs.values()) {
      c.w.dispose();
      c.b.dispose();
    }
  }
}
