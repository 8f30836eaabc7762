/**
 * Method settings (METHOD.md section 7). Unknowns of the paper are settings with the proposed defaults;
 * two presets: `stfpm` (the baseline) and `dcam` (the best reconstructed configuration).
 */
import type { AttentionKind } from './attention.js';
import type { MapAggregation } from './anomaly-map.js';

export interface LossWeights {
  /** Channel cosine distance (1 - cos across channels), METHOD 2.4 L1. */
  channelCD: number;
  /** Spatial cosine distance (1 - cos across positions), L2. */
  spatialCD: number;
  /** Spatial KD: KL between softmaxes over H x W per channel, L3. */
  spatialKD: number;
  /** STFPM: squared distance of channel-normalised features, no 1/2. */
  stfpmL2: number;
}

export interface MethodConfig {
  method: 'stfpm' | 'dcam' | 'custom';
  attention: AttentionKind;
  /** 'loss': attention only on the loss side (A, default); 'inline': layer k+1 consumes the attended map (B). */
  placement: 'loss' | 'inline';
  losses: LossWeights;
  temperature: number;
  /** KD averaged over channels (default) or summed over them (the authors' code). */
  kdReduction: 'mean' | 'sum';
  /** Attention MLP reduction ratio. */
  reduction: number;
  lr: number;
  momentum: number;
  weightDecay: number;
  aggregation: MapAggregation;
  /** Levels (0: layer1 .. 2: layer3) whose student features the attention gates in training (default all). */
  attentionLevels?: number[];
  /**
   * Weight of a penalty on gates below 1, mean((1 - gate)^2) summed over the gated levels (default 0): the
   * student is scored on raw features, so a channel a gate turns down in training is a channel it never
   * learns to match.
   */
  gatePenalty?: number;
  /** The gates computed from the student's features with no gradient back into the student through them. */
  gateDetached?: boolean;
  /**
   * The attention's lr as a fraction of the student's (default 1: one optimizer, one lr). The gates' MLP has
   * no bias and reads non-negative features, so a large step can leave its ReLUs dead and every gate at 0.5.
   */
  attentionLrScale?: number;
}

const NO_LOSSES: LossWeights = { channelCD: 0, spatialCD: 0, spatialKD: 0, stfpmL2: 0 };

export const PRESETS: Record<'stfpm' | 'dcam', MethodConfig> = {
  stfpm: {
    method: 'stfpm', attention: 'none', placement: 'loss', losses: { ...NO_LOSSES, stfpmL2: 1 },
    temperature: 1, kdReduction: 'mean', reduction: 8, lr: 0.4, momentum: 0.9, weightDecay: 1e-4, aggregation: 'product',
  },
  dcam: {
    method: 'dcam', attention: 'channel', placement: 'loss', losses: { ...NO_LOSSES, channelCD: 1, spatialKD: 1 },
    temperature: 1, kdReduction: 'mean', reduction: 8, lr: 0.1, momentum: 0.9, weightDecay: 1e-4, aggregation: 'sum',
  },
};

export function preset(name: string, overrides: Partial<MethodConfig> = {}): MethodConfig {
  const base = PRESETS[name as 'stfpm' | 'dcam'];
  if (!base) throw new Error(`unknown method '${name}': choose stfpm or dcam`);
  return { ...base, ...overrides, losses: { ...base.losses, ...(overrides.losses ?? {}) } };
}
