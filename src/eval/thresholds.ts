/**
 * Decisions from scores: the F1-optimal threshold (anomalib's adaptive threshold), a threshold from good
 * images alone (a target false-positive rate), and the normalised score in [0, 1] with the threshold at 0.5
 * (anomalib's min-max normalisation). Thresholds sit halfway between the two scores they separate, so a
 * score recomputed with a different batch (float rounding ~1e-7) lands on the same side.
 */
import { argsortAscending } from './metrics.js';

export interface F1Threshold {
  threshold: number;
  f1: number;
  precision: number;
  recall: number;
}

/** The threshold maximising F1 for `score >= threshold` = defect. Needs at least one positive. */
export function f1OptimalThreshold(scores: ArrayLike<number>, labels: ArrayLike<number>): F1Threshold {
  const n = scores.length;
  const idx = argsortAscending(scores);
  let positives = 0;
  for (let i = 0; i < n; i++) positives += labels[i] ? 1 : 0;
  if (positives === 0) throw new Error('an F1-optimal threshold needs at least one defect sample');
  // Walk from the highest score down; each distinct score is a candidate cut (everything >= it is defect).
  let tp = 0;
  let fp = 0;
  let best: F1Threshold = { threshold: Infinity, f1: -1, precision: 0, recall: 0 };
  for (let k = n - 1; k >= 0; ) {
    const v = scores[idx[k]];
    while (k >= 0 && scores[idx[k]] === v) {
      if (labels[idx[k]]) tp++;
      else fp++;
      k--;
    }
    const f1 = (2 * tp) / (tp + fp + positives);
    if (f1 > best.f1) {
      const below = k >= 0 ? scores[idx[k]] : v - margin(v);
      best = { threshold: midpoint(below, v), f1, precision: tp / (tp + fp), recall: tp / positives };
    }
  }
  return best;
}

/**
 * From good images alone: the lowest threshold that flags at most `fpr` of them (e.g. 0.01: at most 1 in
 * 100 good parts rejected), halfway between the last score kept and the first one flagged.
 */
export function fprThreshold(goodScores: ArrayLike<number>, fpr: number): { threshold: number; achievedFpr: number } {
  const sorted = Float64Array.from(goodScores).sort();
  const n = sorted.length;
  if (n === 0) throw new Error('no good images to calibrate on');
  const flagged = Math.floor(fpr * n + 1e-9);
  if (flagged === 0) {
    const top = sorted[n - 1];
    return { threshold: top + margin(top), achievedFpr: 0 };
  }
  const k = n - flagged; // sorted[k..] are flagged
  if (sorted[k - 1] === sorted[k]) {
    // ties straddle the cut: move it up past them (fewer flagged, never more than asked)
    let j = k;
    while (j < n && sorted[j] === sorted[k - 1]) j++;
    const threshold = j < n ? midpoint(sorted[j - 1], sorted[j]) : sorted[n - 1] + margin(sorted[n - 1]);
    return { threshold, achievedFpr: (n - j) / n };
  }
  return { threshold: midpoint(sorted[k - 1], sorted[k]), achievedFpr: flagged / n };
}

/** anomalib's normalisation: (score - threshold) / (max - min) + 0.5, clipped to [0, 1]. */
export function normalizeScore(score: number, t: { image: number; min: number; max: number }): number {
  const span = t.max > t.min ? t.max - t.min : 1;
  return Math.min(1, Math.max(0, (score - t.image) / span + 0.5));
}

function midpoint(a: number, b: number): number {
  return a + (b - a) / 2;
}

/** Half the gap to a neighbour that does not exist (past the highest or lowest score): 0.1% of it, at least 1e-6. */
function margin(v: number): number {
  return Math.max(Math.abs(v) * 1e-3, 1e-6);
}

/** Without thresholds: the colour scale of the values' own range, lowest blue to highest red (flat: blue). */
export function rangeColourScale(values: ArrayLike<number>): (v: number) => number {
  let lo = Infinity;
  let hi = -Infinity;
  for (let i = 0; i < values.length; i++) [lo, hi] = [Math.min(lo, values[i]), Math.max(hi, values[i])];
  const span = hi > lo ? hi - lo : 1;
  return (v) => (v - lo) / span;
}

/**
 * The overlays' colour scale around the pixel threshold: map values from the lowest seen up to the
 * threshold run blue to green (0 .. 0.5), values above it green to red on a log scale up to the highest
 * evaluated score (0.5 .. 1), so that everything not blue-cyan is over the threshold, and a faint defect
 * is still visible beside a glaring one.
 */
export function thresholdColourScale(t: { pixel: number; mapMin: number; max: number }): (v: number) => number {
  const below = t.pixel > t.mapMin ? t.pixel - t.mapMin : 1;
  const logSpan = t.max > t.pixel && t.pixel > 0 ? Math.log(t.max / t.pixel) : 0;
  return (v) => {
    if (v < t.pixel) return (0.5 * (v - t.mapMin)) / below;
    if (logSpan === 0) return 1;
    return 0.5 + (0.5 * Math.log(v / t.pixel)) / logSpan;
  };
}
