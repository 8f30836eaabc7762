/**
 * Distillation losses (METHOD.md 2.4, 3.1), each a scalar for one feature level; the total sums the
 * weighted terms over the three levels.
 */
import { affine, cosineSimilarity, klDivSpatial, mean, scale, sum } from '../autograd/ops.js';
import type { Tensor } from '../graph/tensor.js';

/** Mean over batch and positions of 1 - cos across channels. */
export function channelCosineDistance(t: Tensor, s: Tensor): Tensor {
  return affine(mean(cosineSimilarity(t, s, 'channel', 1e-8)), -1, 1);
}

/** Mean over batch and channels of 1 - cos across positions (eps 1e-6, as the authors' code). */
export function spatialCosineDistance(t: Tensor, s: Tensor): Tensor {
  return affine(mean(cosineSimilarity(t, s, 'spatial', 1e-6)), -1, 1);
}

/**
 * KL(P_t || P_s), softmax over H x W per channel at temperature T, summed over positions; then averaged
 * over channels and batch ('mean', the default), or summed over channels and averaged over the batch
 * ('sum', the authors' code).
 */
export function spatialKD(t: Tensor, s: Tensor, temperature: number, reduction: 'mean' | 'sum'): Tensor {
  const kl = klDivSpatial(t, s, temperature); // [N, C]
  return reduction === 'mean' ? mean(kl) : scale(sum(kl), 1 / t.shape[0]);
}

/**
 * STFPM: sum over channels of (t/|t| - s/|s|)^2, mean over batch and positions, no 1/2 (official code).
 * For non-zero features this is 2 (1 - cos).
 */
export function stfpmL2(t: Tensor, s: Tensor): Tensor {
  return affine(mean(cosineSimilarity(t, s, 'channel', 1e-12)), -2, 2);
}
