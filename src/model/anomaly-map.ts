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

/** The image score of an anomaly map: its maximum (as the STFPM / DCAM code and MVTec AD's evaluation). */
export function imageScore(map: ArrayLike<number>): number {
  let score = -Infinity;
  for (let i = 0; i < map.length; i++) if (map[i] > score) score = map[i];
  return score;
}

/** Image scores of a batch of maps [N, 1, H, W] on the GPU. */
export async function imageScores(map: Tensor): Promise<number[]> {
  const [N] = map.shape;
  const data = await map.read();
  const per = data.length / N;
  return Array.from({ length: N }, (_, n) => imageScore(data.subarray(n * per, (n + 1) * per)));
}

/**
 * Optional Gaussian smoothing of maps (off by default in every preset), as scipy.ndimage.gaussian_filter
 * with mode 'reflect' and truncate 4: separable, on the CPU (maps are small), in place.
 */
export function gaussianSmooth(maps: Float32Array, N: number, H: number, W: number, sigma: number): Float32Array {
  if (sigma <= 0) return maps;
  const radius = Math.floor(4 * sigma + 0.5);
  const k = new Float64Array(2 * radius + 1);
  let total = 0;
  for (let i = -radius; i <= radius; i++) total += k[i + radius] = Math.exp((-0.5 * i * i) / (sigma * sigma));
  for (let i = 0; i < k.length; i++) k[i] /= total;
  // 'reflect' (half-sample symmetric): ... c b a | a b c ... | c b a ...
  const reflect = (i: number, n: number) => {
    const period = 2 * n;
    let j = ((i % period) + period) % period;
    if (j >= n) j = period - 1 - j;
    return j;
  };
  const tmp = new Float64Array(H * W);
  for (let m = 0; m < N; m++) {
    const off = m * H * W;
    for (let y = 0; y < H; y++)
      for (let x = 0; x < W; x++) {
        let s = 0;
        for (let t = -radius; t <= radius; t++) s += k[t + radius] * maps[off + y * W + reflect(x + t, W)];
        tmp[y * W + x] = s;
      }
    for (let y = 0; y < H; y++)
      for (let x = 0; x < W; x++) {
        let s = 0;
        for (let t = -radius; t <= radius; t++) s += k[t + radius] * tmp[reflect(y + t, H) * W + x];
        maps[off + y * W + x] = s;
      }
  }
  return maps;
}
