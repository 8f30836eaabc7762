/**
 * DCAM attention blocks (METHOD.md 2.2), one per feature level: channel attention (average- and
 * max-pooled vectors through one shared bias-free MLP with reduction r, summed, sigmoid), spatial attention
 * (7x7 conv, no bias, over [channel mean; channel max], sigmoid), or CBAM (channel, then spatial).
 * Used only in training; never at inference.
 */
import { add, channelMeanMax, conv2d, detach, globalAvgPool2d, globalMaxPool2d, linear, mul, relu, reshape, sigmoid } from '../autograd/ops.js';
import type { Runtime } from '../graph/runtime.js';
import type { Tensor } from '../graph/tensor.js';
import { defaultUniform, Rng } from '../nn/init.js';
import { parameter } from '../nn/layers.js';
import { FEATURE_LEVELS } from './resnet.js';
import { WeightFileError, finiteFloat32, fromFloat32, type RawTensor } from './weights/index.js';

export type AttentionKind = 'none' | 'channel' | 'spatial' | 'cbam';

export const LEVEL_CHANNELS = FEATURE_LEVELS.map((l) => l.channels);

export class AttentionBlock {
  constructor(
    readonly channels: number,
    /** MLP weights [C/r, C] and [C, C/r] (channel attention). */
    readonly mlp: [Tensor, Tensor] | null,
    /** Conv weight [1, 2, 7, 7] (spatial attention). */
    readonly spatial: Tensor | null,
  ) {}

  forward(x: Tensor): Tensor {
    return this.attend(x).y;
  }

  /**
   * The attended features and the gates that made them ([N, C] channel, [N, 1, H, W] spatial). `detached`:
   * the gates see the features as constants (their own weights still learn; the features get gradient only
   * through the product).
   */
  attend(x: Tensor, detached = false): { y: Tensor; gates: Tensor[] } {
    const gates: Tensor[] = [];
    // what the gates see: the features, or (detached) the same values with no way back into the student
    let seen = detached ? detach(x) : x;
    let y = x;
    if (this.mlp) {
      const [N, C] = x.shape;
      const mlp = (v: Tensor) => linear(relu(linear(reshape(v, [N, C]), this.mlp![0])), this.mlp![1]);
      const gate = sigmoid(add(mlp(globalAvgPool2d(seen)), mlp(globalMaxPool2d(seen))));
      gates.push(gate);
      const g = reshape(gate, [N, C, 1, 1]);
      y = mul(y, g);
      seen = detached ? mul(seen, g) : y; // CBAM's spatial gate sees the channel-gated features (its gate keeps its gradient)
    }
    if (this.spatial) {
      const gate = sigmoid(conv2d(channelMeanMax(seen), this.spatial, null, { padding: 3 }));
      gates.push(gate);
      y = mul(y, gate);
    }
    return { y, gates };
  }

  parameters(): Tensor[] {
    return [...(this.mlp ?? []), ...(this.spatial ? [this.spatial] : [])];
  }
}

/** PyTorch's default init for Linear / Conv2d weights (U(-1/sqrt(fan_in), 1/sqrt(fan_in))), seeded. */
export function createAttention(rt: Runtime, kind: AttentionKind, seed: number, reduction = 8): AttentionBlock[] {
  if (kind === 'none') return [];
  const rng = new Rng(seed);
  return LEVEL_CHANNELS.map((C) => {
    const hidden = C / reduction;
    const mlp: [Tensor, Tensor] | null =
      kind === 'channel' || kind === 'cbam'
        ? [parameter(rt, defaultUniform([hidden, C], rng), [hidden, C]), parameter(rt, defaultUniform([C, hidden], rng), [C, hidden])]
        : null;
    const spatial = kind === 'spatial' || kind === 'cbam' ? parameter(rt, defaultUniform([1, 2, 7, 7], rng), [1, 2, 7, 7]) : null;
    return new AttentionBlock(C, mlp, spatial);
  });
}

/** Names as in `attention.safetensors`: {k}.mlp.0.weight, {k}.mlp.2.weight, {k}.spatial.weight. */
export function attentionTensorNames(blocks: readonly AttentionBlock[]): Array<[string, Tensor]> {
  const out: Array<[string, Tensor]> = [];
  blocks.forEach((b, k) => {
    if (b.mlp) out.push([`${k}.mlp.0.weight`, b.mlp[0]], [`${k}.mlp.2.weight`, b.mlp[1]]);
    if (b.spatial) out.push([`${k}.spatial.weight`, b.spatial]);
  });
  return out;
}

export async function attentionStateDict(blocks: readonly AttentionBlock[]): Promise<Array<[string, RawTensor]>> {
  const out: Array<[string, RawTensor]> = [];
  for (const [name, t] of attentionTensorNames(blocks)) out.push([name, fromFloat32(await t.read(), [...t.shape])]);
  return out;
}

/** Overwrites the blocks' weights from a state_dict, checking names and shapes. */
export function loadAttention(blocks: readonly AttentionBlock[], sd: Map<string, RawTensor>, file = 'attention'): void {
  const problems: string[] = [];
  for (const [name, t] of attentionTensorNames(blocks)) {
    const raw = sd.get(name);
    if (!raw) problems.push(`missing ${name} [${t.shape}]`);
    else if (raw.shape.join() !== t.shape.join()) problems.push(`${name}: expected [${t.shape}], found [${raw.shape}]`);
  }
  if (problems.length) throw new WeightFileError(`${file}: attention weights do not match: ${problems.join('; ')}`);
  for (const [name, t] of attentionTensorNames(blocks)) t.write(finiteFloat32(sd.get(name)!, name, file));
}
