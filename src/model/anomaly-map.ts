/**
 * Anomaly maps (METHOD.md 2.6 / 3.2): per level, 1 - cosine similarity across channels between teacher
 * and raw student features, bilinearly upsampled (align_corners = false) straight to the input size,
 * then summed (DCAM) or multiplied (STFPM). The image score is the map's maximum.
 */
import { add, affine, cosineSimilarity, mul, upsampleBilinear } from '../autograd/ops.js';
import type { Tensor } from '../graph/tensor.js';
import type { Features } from './resnet.js';

export type MapAggregation = 'sum' | 'product';

/** [N, 1, H, W] map from the three feature levels of teacher and student. */
export function anomalyMap(teacher: Features, student: Features, size: readonly [number, number], aggregation: MapAggregation): Tensor {
  const rt = teacher[0].runtime;
  return rt.noGrad(() =>
    rt.tidy(() => {
      const levels = teacher.map((t, k) => upsampleBilinear(affine(cosineSimilarity(t, student[k], 'channel', 1e-8), -1, 1), size));
      return levels.reduce((acc, m) => (aggregation === 'sum' ? add(acc, m) : mul(acc, m)));
    }),
  );
}

/** Image scores: the maximum of each map. */
export async function imageScores(map: Tensor): Promise<number[]> {
  const [N] = map.shape;
  const data = await map.read();
  const per = data.length / N;
  const out: number[] = [];
  for (let n = 0; n < N; n++) {
    let m = -Infinity;
    for (let i = 0; i < per; i++) m = Math.max(m, data[n * per + i]);
    out.push(m);
  }
  return out;
}
