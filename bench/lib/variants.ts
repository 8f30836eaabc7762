/**
 * The ablation's training variants by name: a preset and what changes in it. The map aggregation is not
 * a variant: every trained model is scored both ways (bench/ablation.ts).
 *
 * The chain from STFPM to DCAM changes one factor at a time:
 *   stfpm            L2 of channel-normalised features (= 2 x channel CD), lr 0.4, product map
 *   stfpm-lr0.05     the same at the lr DCAM's loss effectively has (CD at lr 0.1 = L2 at lr 0.05)
 *   dcam-cd          channel CD alone, lr 0.1 (= stfpm-lr0.05 but for the weight decay's relative weight)
 *   dcam-none        + spatial KD (DCAM's loss, no attention)
 *   dcam-channel     + channel attention on the loss side (the `dcam` preset: the paper's best)
 * and from there the attention's kind and placement and the KD's reduction. DCAM at STFPM's step size
 * (CD's gradient is half the L2's, so lr 0.8 here steps as STFPM's lr 0.4):
 *   dcam-cd-lr0.8    channel CD alone at lr 0.8 (= stfpm but for the weight decay's relative weight)
 *   dcam-none-lr0.8  + spatial KD
 *   dcam-lr0.8       + channel attention (the dcam preset at lr 0.8)
 */
import type { MethodConfig } from '../../src/model/config.js';

export interface Variant {
  preset: 'stfpm' | 'dcam';
  overrides: Partial<MethodConfig>;
  /** Draw every batch evenly across categories. */
  balanced?: boolean;
  note: string;
}

const cdOnly = { channelCD: 1, spatialCD: 0, spatialKD: 0, stfpmL2: 0 };

export const VARIANTS: Record<string, Variant> = {
  stfpm: { preset: 'stfpm', overrides: {}, note: 'STFPM: L2 of normalised features, lr 0.4' },
  'stfpm-lr0.1': { preset: 'stfpm', overrides: { lr: 0.1 }, note: 'STFPM at lr 0.1' },
  'stfpm-lr0.05': { preset: 'stfpm', overrides: { lr: 0.05 }, note: 'STFPM at lr 0.05 (the step size of DCAM\'s CD at lr 0.1)' },
  'stfpm-balanced': { preset: 'stfpm', overrides: {}, balanced: true, note: 'STFPM, batches balanced over categories' },
  'dcam-cd': { preset: 'dcam', overrides: { attention: 'none', losses: cdOnly }, note: 'channel CD alone, lr 0.1, no attention' },
  'dcam-none': { preset: 'dcam', overrides: { attention: 'none' }, note: 'channel CD + spatial KD, lr 0.1, no attention' },
  'dcam-channel': { preset: 'dcam', overrides: { attention: 'channel' }, note: 'the dcam preset: + channel attention, loss side' },
  dcam: { preset: 'dcam', overrides: {}, note: 'the dcam preset' },
  'dcam-spatial': { preset: 'dcam', overrides: { attention: 'spatial' }, note: 'spatial attention instead of channel' },
  'dcam-cbam': { preset: 'dcam', overrides: { attention: 'cbam' }, note: 'CBAM (channel then spatial)' },
  'dcam-channel-inline': { preset: 'dcam', overrides: { attention: 'channel', placement: 'inline' }, note: 'channel attention in line (layer k+1 consumes it in training)' },
  'dcam-channel-kdsum': { preset: 'dcam', overrides: { attention: 'channel', kdReduction: 'sum' }, note: 'KD summed over channels (the authors\' code)' },
  // the search (experiment 3): DCAM's weights, temperature, reduction, lr, sampling, and the gates themselves
  'dcam-kd0.1': { preset: 'dcam', overrides: { losses: { channelCD: 1, spatialCD: 0, spatialKD: 0.1, stfpmL2: 0 } }, note: 'dcam, spatial KD weighted 0.1' },
  'dcam-t4': { preset: 'dcam', overrides: { temperature: 4 }, note: 'dcam, KD temperature 4' },
  'dcam-r16': { preset: 'dcam', overrides: { reduction: 16 }, note: 'dcam, attention MLP reduction 16' },
  'dcam-lr0.4': { preset: 'dcam', overrides: { lr: 0.4 }, note: 'dcam at lr 0.4' },
  'dcam-lr0.8': { preset: 'dcam', overrides: { lr: 0.8 }, note: 'dcam at lr 0.8 (STFPM\'s step size: CD\'s gradient is half the L2\'s)' },
  'dcam-none-lr0.8': { preset: 'dcam', overrides: { attention: 'none', lr: 0.8 }, note: 'channel CD + spatial KD at lr 0.8, no attention' },
  'dcam-nokd': { preset: 'dcam', overrides: { losses: cdOnly }, note: 'channel CD + channel attention, no KD' },
  'dcam-cd-lr0.8': { preset: 'dcam', overrides: { attention: 'none', losses: cdOnly, lr: 0.8 }, note: 'channel CD alone at lr 0.8 (stfpm\'s step size)' },
  'dcam-balanced': { preset: 'dcam', overrides: {}, balanced: true, note: 'dcam, batches balanced over categories' },
  'dcam-deep': { preset: 'dcam', overrides: { attentionLevels: [2] }, note: 'dcam, attention on layer3 only' },
  'dcam-gate1': { preset: 'dcam', overrides: { gatePenalty: 1 }, note: 'dcam + penalty mean((1 - gate)^2), weight 1' },
  'dcam-detached': { preset: 'dcam', overrides: { gateDetached: true }, note: 'dcam, no gradient from the gates into the student' },
  // the gates' MLP (no bias, non-negative inputs) often dies at the student's lr: every gate 0.5 on layer1 in 6
  // of 8 runs, layer2 too at lr 0.8 (bench/gate-stats.ts); the attention at a tenth of it (at another lr: dcam-att0.1@lr0.8)
  'dcam-att0.1': { preset: 'dcam', overrides: { attentionLrScale: 0.1 }, note: 'dcam, the attention at a tenth of the lr' },
  'dcam-lr0.4-att0.1': { preset: 'dcam', overrides: { lr: 0.4, attentionLrScale: 0.1 }, note: 'dcam at lr 0.4, the attention at 0.04' },
  'stfpm-channel': { preset: 'stfpm', overrides: { attention: 'channel' }, note: 'STFPM\'s loss and lr on channel-attended student features (loss side)' },
  'stfpm-channel-gate1': { preset: 'stfpm', overrides: { attention: 'channel', gatePenalty: 1 }, note: 'stfpm-channel + gate penalty, weight 1' },
};

/**
 * A variant by its spec, the name its rows carry: a name from VARIANTS, optionally with `@lrX`, the same
 * variant at another lr (`dcam-kd0.1@lr0.4`).
 */
export function variantOf(spec: string): Variant {
  const [name, ...modifiers] = spec.split('@');
  let v = VARIANTS[name];
  if (!v) throw new Error(`unknown variant ${name} (known: ${Object.keys(VARIANTS).join(', ')})`);
  for (const m of modifiers) {
    const lr = /^lr(\d*\.?\d+)$/.exec(m);
    if (!lr) throw new Error(`${spec}: unknown modifier @${m} (known: @lrX)`);
    v = { ...v, overrides: { ...v.overrides, lr: Number(lr[1]) }, note: `${v.note}; at lr ${lr[1]}` };
  }
  return v;
}
