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
 * and from there the attention's kind and placement and the KD's reduction.
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
};
