/**
 * Teacher-student distillation model: a frozen teacher (BN folded, no gradients), a trainable student
 * trunk, DCAM attention blocks used only for the training loss, the losses of the configured method, and
 * the anomaly map at inference (raw student features, no attention).
 */
import { add, affine, globalAvgPool2d, mean, mul, reshape, scale } from '../autograd/ops.js';
import type { Tensor } from '../graph/tensor.js';
import { anomalyMap, type MapAggregation } from './anomaly-map.js';
import { AttentionBlock } from './attention.js';
import { SGD } from '../optim/sgd.js';
import type { MethodConfig } from './config.js';
import { channelCosineDistance, spatialCosineDistance, spatialKD, stfpmL2 } from './losses.js';
import { FoldedTrunk, type Features, type ResNetTrunk } from './resnet.js';

export interface TrainLoss {
  loss: Tensor;
  /** Each weighted term summed over the levels (for logs). */
  terms: Record<string, Tensor>;
}

export class DistillationModel {
  /** The student with BN folded into its convs, once `foldForInference` ran (evaluation and inference). */
  private folded: FoldedTrunk | null = null;
  /**
   * Research switch (bench/attention-maps.ts): score the maps on the attended student features, the
   * quantity the attention trained (the gated outputs, or in line the trunk with its gates inside),
   * instead of the raw ones the method prescribes. Needs the attention blocks; off everywhere the method is used.
   */
  scoreWithAttention = false;

  constructor(
    readonly teacher: FoldedTrunk,
    readonly student: ResNetTrunk,
    readonly attention: AttentionBlock[],
    readonly config: MethodConfig,
  ) {
    if (config.attention !== 'none' && attention.length !== 3) throw new Error('distillation: one attention block per level is needed');
  }

  /** Student and attention parameters, all trained by the same optimiser (createOptimizer). */
  parameters(): Tensor[] {
    return [...this.student.parameters(), ...this.attention.flatMap((a) => a.parameters())];
  }

  /**
   * Folds the student's BN (eval mode) into its convs and fuses its ReLUs, as the teacher's: fewer, cheaper
   * dispatches for a model that is only evaluated from now on. Training it afterwards is an error.
   */
  async foldForInference(): Promise<void> {
    this.folded ??= await FoldedTrunk.fromTrunk(this.student);
  }

  /**
   * The training loss on a batch (student BN in training mode). Call inside `tidy`. `teacher`: the
   * teacher's features of `x` when they are known (kept from an earlier epoch), else computed here.
   */
  trainLoss(x: Tensor, teacher?: Features): TrainLoss {
    if (this.folded) throw new Error('distillation: this model was folded for inference and cannot be trained');
    const c = this.config;
    this.student.setTraining(true);
    const ft = teacher ?? this.teacher.forward(x);
    const gates: Tensor[] = [];
    const fs = !this.attention.length
      ? this.student.forward(x)
      : this.gatedFeatures(x, (f, k) => {
          const a = this.attention[k].attend(f, c.gateDetached ?? false);
          gates.push(...a.gates);
          return a.y;
        });
    const terms: Record<string, Tensor> = {};
    const addTerm = (name: string, weight: number, f: (t: Tensor, s: Tensor) => Tensor) => {
      if (weight === 0) return;
      const perLevel = ft.map((t, k) => f(t, fs[k]));
      const total = perLevel.reduce((a, b) => add(a, b));
      terms[name] = weight === 1 ? total : scale(total, weight);
    };
    addTerm('channelCD', c.losses.channelCD, channelCosineDistance);
    addTerm('spatialCD', c.losses.spatialCD, spatialCosineDistance);
    addTerm('spatialKD', c.losses.spatialKD, (t, s) => spatialKD(t, s, c.temperature, c.kdReduction));
    addTerm('stfpmL2', c.losses.stfpmL2, stfpmL2);
    if ((c.gatePenalty ?? 0) > 0 && gates.length) {
      const below = gates.map((g) => {
        const d = affine(g, -1, 1);
        return mean(mul(d, d));
      });
      terms.gatePenalty = scale(below.reduce((a, b) => add(a, b)), c.gatePenalty!);
    }
    const values = Object.values(terms);
    if (values.length === 0) throw new Error('distillation: every loss weight is 0');
    return { loss: values.reduce((a, b) => add(a, b)), terms };
  }

  /** Frees the student (and its folded form) and the attention blocks; the teacher may be shared, and stays. */
  dispose(): void {
    this.student.dispose();
    this.folded?.dispose();
    this.folded = null;
    for (const a of this.attention) for (const p of a.parameters()) p.dispose();
  }

  /**
   * Anomaly maps [N, 1, H, W] at the input size (student BN in eval mode, no attention), the levels
   * combined by the method's aggregation unless another is given (the ablation scores one run both ways).
   */
  anomalyMap(x: Tensor, aggregation: MapAggregation = this.config.aggregation): Tensor {
    return this.inspect(x, aggregation).map;
  }

  /**
   * The anomaly maps and, per image, the embedding that tells categories apart: the teacher's layer3
   * features averaged over the image ([N, 256]; a category's good images cluster, so the nearest category
   * mean names the part when the line does not).
   */
  inspect(x: Tensor, aggregation: MapAggregation = this.config.aggregation): { map: Tensor; embedding: Tensor } {
    const rt = x.runtime;
    this.student.setTraining(false);
    if (this.scoreWithAttention && this.attention.length !== 3) throw new Error('distillation: scoring with attention needs the attention blocks');
    return rt.tidy(() => {
      const ft = this.teacher.forward(x);
      const fs = this.scoreWithAttention ? this.attendedFeatures(x) : this.folded ? this.folded.forward(x) : rt.noGrad(() => this.student.forward(x));
      const map = anomalyMap(ft, fs, [x.shape[2], x.shape[3]], aggregation);
      const embedding = rt.noGrad(() => reshape(globalAvgPool2d(ft[2]), [x.shape[0], ft[2].shape[1]]));
      return { map, embedding };
    });
  }

  /** The student's features gated as in training, for scoring with attention (no gradient). */
  private attendedFeatures(x: Tensor): Features {
    return x.runtime.noGrad(() => this.gatedFeatures(x, (f, k) => this.attention[k].forward(f)));
  }

  /**
   * The student's features with `gate` applied on the attended levels: on their outputs (loss side), or
   * inside the trunk, so that the next layer consumes the gated map (in line).
   */
  private gatedFeatures(x: Tensor, gate: (f: Tensor, level: number) => Tensor): Features {
    const levels = this.config.attentionLevels ?? [0, 1, 2];
    const at = (f: Tensor, k: number) => (levels.includes(k) ? gate(f, k) : f);
    if (this.config.placement === 'inline') return this.student.forward(x, (k, f) => at(f, k));
    return (this.folded ? this.folded.forward(x) : this.student.forward(x)).map(at) as Features;
  }
}

/**
 * The optimizer a distillation model trains with (the trainer and the package's few-shot trainer): SGD
 * over the student and the attention, the attention at `attentionLrScale` times the lr when set.
 */
export function createOptimizer(model: DistillationModel): SGD {
  const c = model.config;
  const attention = model.attention.flatMap((a) => a.parameters());
  const scale = c.attentionLrScale ?? 1;
  const groups = scale !== 1 && attention.length ? [{ params: attention, lr: c.lr * scale }] : [];
  return new SGD(model.parameters(), { lr: c.lr, momentum: c.momentum, weightDecay: c.weightDecay, groups });
}
