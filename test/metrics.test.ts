/**
 * Metrics against scikit-learn (AUROC), the MVTec AD evaluation code (AU-PRO@0.3) and the STFPM/DCAM
 * legacy PRO, on random maps with ties and masks with several regions (tools/make_metric_fixtures.py).
 */
import { describe, expect, it } from 'vitest';
import { argsortAscending, auPro, auroc, labelComponents, legacyPro } from '../src/eval/metrics.js';
import { loadFixture } from './helpers.js';

interface MetricCase {
  n: number; h: number; w: number;
  maps: string; masks: string;
  image_scores: number[]; image_labels: number[];
  image_auroc: number; pixel_auroc: number; aupro_03: number; legacy_pro: number;
}
const fx = loadFixture<{ cases: MetricCase[] }>('metrics.json');

function unpack(c: MetricCase) {
  const mb = Buffer.from(c.maps, 'base64');
  const all = new Float32Array(mb.buffer.slice(mb.byteOffset, mb.byteOffset + mb.byteLength));
  const kb = new Uint8Array(Buffer.from(c.masks, 'base64'));
  const per = c.h * c.w;
  const maps = Array.from({ length: c.n }, (_, i) => all.subarray(i * per, (i + 1) * per));
  const masks = Array.from({ length: c.n }, (_, i) => kb.subarray(i * per, (i + 1) * per));
  return { all, masks, maps, flatMasks: kb };
}

describe('metrics match the references within 1e-6', () => {
  fx.cases.forEach((c, i) => {
    it(`case ${i}: ${c.n} maps of ${c.h}x${c.w}`, () => {
      const { all, maps, masks, flatMasks } = unpack(c);
      expect(Math.abs(auroc(c.image_scores, c.image_labels) - c.image_auroc)).toBeLessThan(1e-6);
      expect(Math.abs(auroc(all, flatMasks) - c.pixel_auroc)).toBeLessThan(1e-6);
      expect(Math.abs(auPro(maps, masks, [c.h, c.w]) - c.aupro_03)).toBeLessThan(1e-6);
      expect(Math.abs(legacyPro(maps, masks, [c.h, c.w]) - c.legacy_pro)).toBeLessThan(1e-6);
    });
  });

  it('8-connected components join diagonal neighbours', () => {
    // (0,0)-(1,1) touch diagonally: one region; (3,3) stands alone
    const mask = [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
    const { labels, count } = labelComponents(mask, 4, 4);
    expect(count).toBe(2);
    expect(labels[0]).toBe(labels[5]);
    expect(labels[15]).not.toBe(labels[0]);
  });

  it('AUROC: perfect, inverted, all tied', () => {
    expect(auroc([0.1, 0.2, 0.8, 0.9], [0, 0, 1, 1])).toBe(1);
    expect(auroc([0.9, 0.8, 0.2, 0.1], [0, 0, 1, 1])).toBe(0);
    expect(auroc([0.5, 0.5, 0.5, 0.5], [0, 1, 0, 1])).toBe(0.5);
  });
});

describe('argsort of float32 maps (radix)', () => {
  it('orders 100k values with ties, negatives and signed zeros, as a permutation', () => {
    let seed = 12345;
    const next = () => (seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32;
    const v = Float32Array.from({ length: 100_003 }, (_, i) => (i % 17 === 0 ? (i % 2 ? -0 : 0) : Math.round((next() - 0.5) * 2000) / 7));
    const order = argsortAscending(v);
    const seen = new Uint8Array(v.length);
    let inversions = 0;
    for (let k = 0; k < order.length; k++) {
      seen[order[k]] = 1;
      if (k && !(v[order[k - 1]] <= v[order[k]])) inversions++;
    }
    expect(inversions).toBe(0);
    expect(seen.every((s) => s === 1)).toBe(true);
  });
});
