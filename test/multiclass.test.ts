/**
 * One model over categories from several data folders (`--data A --data B --category a,b`), batches
 * balanced across categories on request, evaluation per category and their mean; on the real pair
 * (MVTec AD bottle: RGB 900x900; KolektorSDD: grayscale 250x631) when the shared data is there.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { BatchLoader } from '../src/data/loader.js';
import { discoverCategories } from '../src/data/mvtec.js';
import { generateSyntheticDataset } from '../src/data/synthetic.js';
import { dcam } from './cli-helpers.js';
import { useRuntime } from './helpers.js';
import { itShared, sharedDir } from './shared.js';

useRuntime();
const tmp = mkdtempSync(join(tmpdir(), 'dcam-multiclass-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

interface Metrics { categories: Array<{ category: string; images: number; imageAUROC: number }>; mean: { imageAUROC: number } }
const metricsOf = (run: string) => JSON.parse(readFileSync(join(run, 'metrics.json'), 'utf8')) as Metrics;

describe('balanced batches', () => {
  const small = ['s0', 's1'];
  const large = ['l0', 'l1', 'l2', 'l3', 'l4', 'l5'];
  const loader = (shuffle: boolean) => new BatchLoader([...small, ...large], { batch: 4, size: 8, shuffle, seed: 3, balanced: [small, large] });

  it('every batch holds the categories in equal shares; the small one repeats, the order is reproducible', () => {
    for (const shuffle of [false, true]) {
      const l = loader(shuffle);
      for (const epoch of [0, 1, 2]) {
        const order = l.order(epoch);
        expect(order.length).toBe(8);
        for (let b = 0; b < 2; b++) {
          const batch = order.slice(4 * b, 4 * b + 4);
          expect(batch.filter((p) => p.startsWith('s')).length).toBe(2);
        }
        expect(loader(shuffle).order(epoch)).toEqual(order); // a resumed run draws the same batches
      }
      // over three epochs (12 draws from each): the large category is seen whole twice, the small 6 times
      const large3 = [0, 1, 2].flatMap((e) => l.order(e)).filter((p) => p.startsWith('l'));
      for (const p of large) expect(large3.filter((q) => q === p).length).toBe(2);
    }
  });
});

describe('one model over several data folders', () => {
  it('trains on categories from two folders, evaluates each and their mean; names must be unique', async () => {
    const a = join(tmp, 'a');
    const b = join(tmp, 'b');
    generateSyntheticDataset(a, { seed: 1, size: 32, train: 4, testGood: 2, testPerDefect: 1, categories: { discs: 'object' } });
    generateSyntheticDataset(b, { seed: 2, size: 48, train: 8, testGood: 2, testPerDefect: 1, categories: { weave: 'texture' } });
    const run = join(tmp, 'run');
    const r = await dcam('train', '--data', a, '--data', b, '--category', 'discs,weave', '--out', run, '--method', 'stfpm', '--size', '32', '--steps', '2', '--batch', '4', '--balanced');
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(/categories \(training images\): discs 4, weave 8; batches balanced across categories/);
    const config = JSON.parse(readFileSync(join(run, 'config.json'), 'utf8'));
    expect(config.data).toEqual([a, b]);
    expect(config.balanced).toBe(true);
    expect((await dcam('eval', '--run', run)).code).toBe(0);
    const m = metricsOf(run);
    expect(m.categories.map((c) => c.category)).toEqual(['discs', 'weave']);
    expect(m.mean.imageAUROC).toBeCloseTo((m.categories[0].imageAUROC + m.categories[1].imageAUROC) / 2, 10);
    // a resume keeps the roots and the sampling; changing either is refused by name
    const again = await dcam('train', '--data', a, '--out', run, '--resume', '--steps', '3');
    expect(again.code).toBe(1);
    expect(again.err).toMatch(/--data/);
    expect(() => discoverCategories([a, a])).toThrow(/category 'discs' is in two data folders/);
  });

  itShared('bottle (RGB 900x900) and KolektorSDD (grayscale 250x631) in one model: trains, evaluates per category', ['data/mvtec/bottle', 'data/kolektorsdd'], async () => {
    const run = join(tmp, 'real');
    const r = await dcam('train', '--data', join(sharedDir, 'data/mvtec'), '--data', join(sharedDir, 'data'), '--category', 'bottle,kolektorsdd',
      '--out', run, '--method', 'stfpm', '--size', '32', '--steps', '2', '--batch', '4');
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(/categories \(training images\): bottle 209, kolektorsdd 266/);
    expect((await dcam('eval', '--run', run)).code).toBe(0);
    const m = metricsOf(run);
    expect(m.categories.map((c) => [c.category, c.images])).toEqual([['bottle', 83], ['kolektorsdd', 117]]);
    expect(Number.isFinite(m.mean.imageAUROC)).toBe(true);
  }, 300_000);

  itShared('five real categories (bottle, KolektorSDD, screw, ELPV mono and poly; three classification-only) in one dcam model: image metrics for all, pixel metrics where masks exist, thresholds per category', ['data/mvtec/bottle', 'data/kolektorsdd', 'data/extra/screw', 'data/extra/elpv_mono', 'data/extra/elpv_poly'], async () => {
    const run = join(tmp, 'five');
    const five = ['bottle', 'kolektorsdd', 'screw', 'elpv_mono', 'elpv_poly'];
    const r = await dcam('train', '--data', join(sharedDir, 'data/mvtec'), '--data', join(sharedDir, 'data'), '--data', join(sharedDir, 'data/extra'), '--category', five.join(','),
      '--out', run, '--method', 'dcam', '--size', '32', '--steps', '2', '--batch', '5');
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(/categories \(training images\): bottle 209, kolektorsdd 266, screw 320, elpv_mono 200, elpv_poly 200/);
    const ev = await dcam('eval', '--run', run);
    expect(ev.code, ev.err).toBe(0);
    const m = JSON.parse(readFileSync(join(run, 'metrics.json'), 'utf8')) as { categories: Array<{ category: string; imageAUROC: number; pixelAUROC: number | null; pixelNote?: string }>; mean: { imageAUROC: number; pixelAUROC: number } };
    expect(m.categories.map((c) => c.category)).toEqual(five);
    for (const c of m.categories) {
      expect(Number.isFinite(c.imageAUROC), c.category).toBe(true);
      if (c.category === 'bottle' || c.category === 'kolektorsdd') expect(Number.isFinite(c.pixelAUROC), c.category).toBe(true);
      else expect(c.pixelNote, c.category).toMatch(/no ground_truth masks/);
    }
    // the means: image over all five, pixel over the two with masks
    expect(m.mean.imageAUROC).toBeCloseTo(m.categories.reduce((s, c) => s + c.imageAUROC, 0) / 5, 10);
    expect(m.mean.pixelAUROC).toBeCloseTo((m.categories[0].pixelAUROC! + m.categories[1].pixelAUROC!) / 2, 10);
    const t = JSON.parse(readFileSync(join(run, 'config.json'), 'utf8')).thresholds;
    expect(Object.keys(t.categories).sort()).toEqual([...five].sort());
    for (const c of five) expect(t.categories[c].centroid.length, c).toBe(256);
  }, 900_000);
});
