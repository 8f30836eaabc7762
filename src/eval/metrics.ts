/**
 * Anomaly-detection metrics (METHOD.md section 4 and 2.7):
 * - AUROC, exact and tie-aware (Mann-Whitney U with ties counted 1/2), for image and pixel level;
 * - AU-PRO up to a false-positive rate (0.3), the MVTec AD evaluation algorithm: 8-connected regions,
 *   pixels sorted by score, ties merged, trapezoid with interpolation at the limit, normalised;
 * - the legacy PRO of the STFPM/DCAM code (4000 thresholds, fpr <= 0.3, min-max rescaled both axes).
 */

/**
 * Indices that sort `values` ascending. Float32 data (maps: up to tens of millions of pixels at full
 * resolution) goes through an LSD radix sort on the bit patterns, O(n); anything else through a
 * comparison sort. Ties keep their input order in both (callers treat runs of ties as one).
 */
export function argsortAscending(values: ArrayLike<number>): Uint32Array {
  const n = values.length;
  let idx = new Uint32Array(n);
  for (let i = 0; i < n; i++) idx[i] = i;
  if (!(values instanceof Float32Array) || n < 1 << 12) return idx.sort((a, b) => values[a] - values[b]);
  // Order-preserving keys: flip all bits of negatives, only the sign bit of the rest.
  const bits = new Uint32Array(values.buffer, values.byteOffset, n);
  const keys = new Uint32Array(n);
  for (let i = 0; i < n; i++) {
    const b = bits[i];
    keys[i] = b & 0x80000000 ? ~b >>> 0 : (b | 0x80000000) >>> 0;
  }
  let tmp = new Uint32Array(n);
  const counts = new Uint32Array(65537);
  for (const shift of [0, 16]) {
    counts.fill(0);
    for (let i = 0; i < n; i++) counts[((keys[i] >>> shift) & 0xffff) + 1]++;
    for (let d = 1; d <= 65536; d++) counts[d] += counts[d - 1];
    for (let k = 0; k < n; k++) {
      const i = idx[k];
      tmp[counts[(keys[i] >>> shift) & 0xffff]++] = i;
    }
    [idx, tmp] = [tmp, idx];
  }
  return idx;
}

/** Area under the ROC curve; labels are 1 (positive) or 0. */
export function auroc(scores: ArrayLike<number>, labels: ArrayLike<number>): number {
  const n = scores.length;
  const idx = argsortAscending(scores);
  let pos = 0;
  let rankSumPos = 0;
  for (let i = 0; i < n; ) {
    let j = i;
    while (j + 1 < n && scores[idx[j + 1]] === scores[idx[i]]) j++;
    const avgRank = (i + j) / 2 + 1; // ranks are 1-based; ties share the average
    for (let k = i; k <= j; k++) {
      if (labels[idx[k]]) {
        pos++;
        rankSumPos += avgRank;
      }
    }
    i = j + 1;
  }
  const neg = n - pos;
  if (pos === 0 || neg === 0) return NaN;
  return (rankSumPos - (pos * (pos + 1)) / 2) / (pos * neg);
}

/** 8-connected components of a binary mask: labels 1..count (0 = background). */
export function labelComponents(mask: ArrayLike<number>, h: number, w: number): { labels: Int32Array; count: number } {
  const labels = new Int32Array(h * w);
  let count = 0;
  const stack: number[] = [];
  for (let start = 0; start < h * w; start++) {
    if (!mask[start] || labels[start]) continue;
    labels[start] = ++count;
    stack.push(start);
    while (stack.length) {
      const p = stack.pop()!;
      const y = Math.floor(p / w);
      const x = p % w;
      for (let dy = -1; dy <= 1; dy++)
        for (let dx = -1; dx <= 1; dx++) {
          const yy = y + dy;
          const xx = x + dx;
          if (yy < 0 || xx < 0 || yy >= h || xx >= w) continue;
          const q = yy * w + xx;
          if (mask[q] && !labels[q]) {
            labels[q] = count;
            stack.push(q);
          }
        }
    }
  }
  return { labels, count };
}

/** Trapezoid area of (x, y) up to x_max, interpolating the last segment (MVTec's generic_util.trapezoid). */
export function trapezoid(x: ArrayLike<number>, y: ArrayLike<number>, xMax: number): number {
  let area = 0;
  for (let i = 0; i + 1 < x.length; i++) {
    if (x[i + 1] <= xMax) {
      area += 0.5 * (y[i + 1] + y[i]) * (x[i + 1] - x[i]);
    } else {
      if (x[i] < xMax) {
        const yMax = y[i] + ((y[i + 1] - y[i]) * (xMax - x[i])) / (x[i + 1] - x[i]);
        area += 0.5 * (yMax + y[i]) * (xMax - x[i]);
      }
      break;
    }
  }
  return area;
}

export interface ProCurve {
  fpr: Float64Array;
  pro: Float64Array;
}

/** Map sizes: one height and width for every map, or each map's [height, width]. */
export type MapSizes = readonly [number, number] | ReadonlyArray<readonly [number, number]>;
const sizeAt = (sizes: MapSizes, i: number): readonly [number, number] => (typeof sizes[0] === 'number' ? (sizes as readonly [number, number]) : (sizes as ReadonlyArray<readonly [number, number]>)[i]);

/** The PRO curve over all pixels of a set of maps (each of its size: `sizes`) with binary masks. */
export function proCurve(maps: readonly ArrayLike<number>[], masks: readonly ArrayLike<number>[], sizes: MapSizes): ProCurve {
  const total = maps.reduce((n, m) => n + m.length, 0);
  const scores = new Float32Array(total);
  const fpChange = new Uint8Array(total);
  const proChange = new Float64Array(total);
  let okPixels = 0;
  let regions = 0;
  let at = 0;
  maps.forEach((m, i) => {
    const [h, w] = sizeAt(sizes, i);
    const per = h * w;
    const { labels, count } = labelComponents(masks[i], h, w);
    const area = new Float64Array(count + 1);
    for (let p = 0; p < per; p++) area[labels[p]]++;
    regions += count;
    for (let p = 0; p < per; p++) {
      scores[at + p] = m[p];
      if (labels[p] === 0) {
        fpChange[at + p] = 1;
        okPixels++;
      } else proChange[at + p] = 1 / area[labels[p]];
    }
    at += per;
  });
  const order = argsortAscending(scores); // walked from the end: descending scores
  const fpr = new Float64Array(total + 2);
  const pro = new Float64Array(total + 2);
  let points = 1; // (0, 0) first
  let fp = 0;
  let pr = 0;
  for (let k = total - 1; k >= 0; k--) {
    const i = order[k];
    fp += fpChange[i];
    pr += proChange[i];
    // keep only the last point of each run of equal scores
    if (k === 0 || scores[order[k - 1]] !== scores[i]) {
      fpr[points] = Math.min(fp / okPixels, 1);
      pro[points] = Math.min(regions ? pr / regions : 0, 1);
      points++;
    }
  }
  fpr[points] = 1;
  pro[points] = 1;
  return { fpr: fpr.slice(0, points + 1), pro: pro.slice(0, points + 1) };
}

/** Normalised area under the PRO curve up to `maxFpr` (0.3 by convention). */
export function auPro(maps: readonly ArrayLike<number>[], masks: readonly ArrayLike<number>[], sizes: MapSizes, maxFpr = 0.3): number {
  const { fpr, pro } = proCurve(maps, masks, sizes);
  return trapezoid(fpr, pro, maxFpr) / maxFpr;
}

/**
 * The PRO of the STFPM/DCAM evaluation code: thresholds max - s*(max-min)/steps, PRO = mean over every
 * region of its covered fraction, FPR over all negative pixels, points with FPR <= maxFpr, both axes
 * min-max rescaled, then the area (not comparable with AU-PRO; reported for parity with the paper).
 */
export function legacyPro(maps: readonly ArrayLike<number>[], masks: readonly ArrayLike<number>[], sizes: MapSizes, steps = 4000, maxFpr = 0.3): number {
  const regionScores: Float32Array[] = [];
  const negatives: number[] = [];
  let max = -Infinity;
  let min = Infinity;
  maps.forEach((m, i) => {
    const [h, w] = sizeAt(sizes, i);
    const per = h * w;
    const { labels, count } = labelComponents(masks[i], h, w);
    const byRegion: number[][] = Array.from({ length: count }, () => []);
    for (let p = 0; p < per; p++) {
      const v = m[p];
      if (v > max) max = v;
      if (v < min) min = v;
      if (labels[p]) byRegion[labels[p] - 1].push(v);
      else if (!masks[i][p]) negatives.push(v);
    }
    for (const r of byRegion) regionScores.push(Float32Array.from(r).sort());
  });
  const neg = Float32Array.from(negatives).sort();
  // number of values > t in a sorted array
  const above = (a: Float32Array, t: number) => {
    let lo = 0;
    let hi = a.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (a[mid] > t) hi = mid;
      else lo = mid + 1;
    }
    return a.length - lo;
  };
  const delta = (max - min) / steps;
  const fprs: number[] = [];
  const pros: number[] = [];
  for (let s = 0; s < steps; s++) {
    const t = Math.fround(max - s * delta);
    const fpr = above(neg, t) / neg.length;
    if (fpr > maxFpr) continue;
    let sum = 0;
    for (const r of regionScores) sum += above(r, t) / r.length;
    fprs.push(fpr);
    pros.push(sum / regionScores.length);
  }
  const rescale = (a: number[]) => {
    const lo = a.reduce((m, v) => (v < m ? v : m), Infinity);
    const hi = a.reduce((m, v) => (v > m ? v : m), -Infinity);
    return a.map((v) => (v - lo) / (hi - lo));
  };
  const x = rescale(fprs);
  const y = rescale(pros);
  let area = 0;
  for (let i = 0; i + 1 < x.length; i++) area += 0.5 * (y[i + 1] + y[i]) * (x[i + 1] - x[i]);
  return Math.abs(area); // sklearn.metrics.auc accepts a monotonic decreasing x as well
}
