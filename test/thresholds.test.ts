/** Thresholds and normalised scores against brute force: every candidate cut tried, ties included. */
import { describe, expect, it } from 'vitest';
import { f1OptimalThreshold, fprThreshold, normalizeScore, thresholdColourScale } from '../src/eval/thresholds.js';
import { Rng } from './helpers.js';

function bruteF1(scores: number[], labels: number[]): number {
  let best = 0;
  for (const t of new Set(scores)) {
    let tp = 0;
    let fp = 0;
    let fn = 0;
    scores.forEach((s, i) => {
      if (s >= t && labels[i]) tp++;
      else if (s >= t) fp++;
      else if (labels[i]) fn++;
    });
    best = Math.max(best, (2 * tp) / (2 * tp + fp + fn));
  }
  return best;
}

describe('F1-optimal threshold', () => {
  it('matches brute force on random scores with ties, and classifies at its midpoint as at the cut', () => {
    const rng = new Rng(3);
    for (let trial = 0; trial < 40; trial++) {
      const n = 5 + Math.floor(rng.next() * 60);
      const scores = Array.from({ length: n }, () => Math.round(rng.next() * 20) / 4); // many ties
      const labels = scores.map((s) => (rng.next() < 0.2 + s / 8 ? 1 : 0));
      if (!labels.includes(1)) labels[0] = 1;
      const t = f1OptimalThreshold(scores, labels);
      expect(t.f1).toBeCloseTo(bruteF1(scores, labels), 12);
      // the F1 of `score >= threshold` is the reported one, and no score equals the threshold
      let tp = 0;
      let fp = 0;
      scores.forEach((s, i) => {
        expect(s).not.toBe(t.threshold);
        if (s >= t.threshold) labels[i] ? tp++ : fp++;
      });
      const pos = labels.filter((l) => l).length;
      expect((2 * tp) / (tp + fp + pos)).toBeCloseTo(t.f1, 12);
    }
  });

  it('separable scores give F1 1 with the threshold between the classes', () => {
    const t = f1OptimalThreshold([0.1, 0.2, 0.3, 0.9, 1.0], [0, 0, 0, 1, 1]);
    expect(t.f1).toBe(1);
    expect(t.threshold).toBeCloseTo(0.6, 12);
    expect(() => f1OptimalThreshold([1, 2], [0, 0])).toThrow(/at least one defect/);
  });

  it('works on float32 pixel arrays large enough for the radix sort', () => {
    const n = 10000;
    const s = new Float32Array(n);
    const l = new Uint8Array(n);
    for (let i = 0; i < n; i++) [s[i], l[i]] = [Math.fround(Math.sin(i) * 3), i % 7 === 0 && Math.sin(i) > 0 ? 1 : 0];
    const t = f1OptimalThreshold(s, l);
    expect(t.f1).toBeCloseTo(bruteF1(Array.from(s.subarray(0, n)), Array.from(l)), 9);
  });
});

describe('threshold from good images', () => {
  it('flags at most the asked fraction, and exactly it when there are no ties', () => {
    const good = Array.from({ length: 200 }, (_, i) => i / 10);
    for (const fpr of [0, 0.01, 0.05, 0.5]) {
      const { threshold, achievedFpr } = fprThreshold(good, fpr);
      const flagged = good.filter((s) => s >= threshold).length / good.length;
      expect(flagged).toBe(achievedFpr);
      expect(flagged).toBeCloseTo(Math.floor(fpr * 200) / 200, 12);
    }
    const ties = [1, 2, 3, 3, 3, 3];
    const r = fprThreshold(ties, 0.2); // 1.2 images: the cut would split the tied 3s, so none is flagged
    expect(ties.filter((s) => s >= r.threshold).length).toBe(0);
    expect(r.achievedFpr).toBe(0);
  });
});

describe('normalised score', () => {
  it('maps the threshold to 0.5, is monotone and clipped to [0, 1]', () => {
    const t = { image: 2, min: 1, max: 5 };
    expect(normalizeScore(2, t)).toBe(0.5);
    expect(normalizeScore(4, t)).toBe(1);
    expect(normalizeScore(-10, t)).toBe(0);
    expect(normalizeScore(2.4, t)).toBeCloseTo(0.6, 12);
    expect(normalizeScore(1.9, t)).toBeLessThan(0.5);
  });
});

describe("overlays' colour scale", () => {
  it('lowest map value -> 0, pixel threshold -> 0.5, highest score -> 1, monotone in between', () => {
    const f = thresholdColourScale({ mapMin: 0.001, pixel: 0.01, max: 1 });
    expect(f(0.001)).toBeCloseTo(0, 12);
    expect(f(0.01)).toBeCloseTo(0.5, 12);
    expect(f(1)).toBeCloseTo(1, 12);
    expect(f(0.1)).toBeCloseTo(0.75, 12); // log scale above the threshold
    let prev = -Infinity;
    for (let v = 0.001; v <= 1; v *= 1.07) {
      expect(f(v)).toBeGreaterThan(prev);
      prev = f(v);
    }
  });
});
