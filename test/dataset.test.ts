/** MVTec layout discovery, loading, the batch loader, the synthetic generator, and dataset errors. */
import { mkdtempSync, rmSync, writeFileSync, mkdirSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { BatchLoader } from '../src/data/loader.js';
import { discoverCategories, loadImage, loadMask } from '../src/data/mvtec.js';
import { generateSyntheticDataset } from '../src/data/synthetic.js';
import { itShared, sharedPath } from './shared.js';

const tmp = mkdtempSync(join(tmpdir(), 'dcam-data-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('synthetic dataset', () => {
  it('writes the MVTec layout with exact, non-empty masks, reproducibly', () => {
    const a = join(tmp, 'a');
    const names = generateSyntheticDataset(a, { seed: 1, size: 32, train: 5, testGood: 2, testPerDefect: 2 });
    expect(names).toEqual(['synth_weave', 'synth_disc']);
    const cats = discoverCategories(a);
    expect(cats.map((c) => c.name)).toEqual(['synth_disc', 'synth_weave']);
    const disc = cats[0];
    expect(disc.train.length).toBe(5);
    expect(disc.test.filter((s) => s.label === 0).length).toBe(2);
    expect(new Set(disc.test.map((s) => s.defect))).toEqual(new Set(['good', 'scratch', 'spot', 'missing']));
    for (const s of disc.test.filter((t) => t.label === 1)) {
      const m = loadMask(s.maskPath, 32);
      const area = m.reduce((x, v) => x + v, 0);
      expect(area, s.path).toBeGreaterThan(3);
      expect(area, s.path).toBeLessThan(32 * 32 * 0.5);
    }
    const b = join(tmp, 'b');
    generateSyntheticDataset(b, { seed: 1, size: 32, train: 5, testGood: 2, testPerDefect: 2 });
    const x1 = loadImage(join(a, 'synth_disc', 'test', 'spot', '001.png'), 32);
    const x2 = loadImage(join(b, 'synth_disc', 'test', 'spot', '001.png'), 32);
    expect(Array.from(x1)).toEqual(Array.from(x2));
  });
});

describe('MVTec AD layout', () => {
  itShared('reads the real bottle category', ['data/mvtec/bottle'], () => {
    const [bottle] = discoverCategories(sharedPath('data/mvtec'), ['bottle']);
    expect(bottle.train.length).toBe(209);
    expect(bottle.test.length).toBe(83);
    expect(bottle.test.filter((s) => s.label === 1).length).toBe(63);
    const img = loadImage(bottle.train[0], 32);
    expect(img.length).toBe(3 * 32 * 32);
    expect(img.every(Number.isFinite)).toBe(true);
  });

  it('clear errors: missing folder, unknown or empty category, defect without mask', () => {
    expect(() => discoverCategories(join(tmp, 'nope'))).toThrow(/data folder .*nope does not exist/);
    const root = join(tmp, 'bad');
    generateSyntheticDataset(root, { seed: 2, size: 16, train: 2, testGood: 1, testPerDefect: 1, categories: { c1: 'texture' } });
    expect(() => discoverCategories(root, ['zzz'])).toThrow(/category 'zzz' not found under .* \(found: c1\)/);
    mkdirSync(join(root, 'empty', 'train', 'good'), { recursive: true });
    expect(() => discoverCategories(root, ['empty'])).toThrow(/category 'empty' has no training images in .*empty\/train\/good/);
    rmSync(join(root, 'c1', 'ground_truth', 'spot', '000_mask.png'));
    expect(() => discoverCategories(root, ['c1'])).toThrow(/missing ground truth .*spot\/000_mask\.png for defect image .*spot\/000\.png/);
    writeFileSync(join(root, 'c1', 'train', 'good', '999.png'), 'garbage');
    expect(() => loadImage(join(root, 'c1', 'train', 'good', '999.png'), 16)).toThrow(/999\.png: not a PNG, JPEG, BMP or TIFF image/);
  });
});

describe('batch loader', () => {
  it('covers every image once per epoch, seeded shuffles, sorted order without shuffle', async () => {
    const root = join(tmp, 'loader');
    generateSyntheticDataset(root, { seed: 3, size: 16, train: 7, testGood: 1, testPerDefect: 1, categories: { c: 'object' } });
    const [c] = discoverCategories(root);
    const loader = new BatchLoader(c.train, { batch: 3, size: 16, shuffle: true, seed: 0 });
    expect(loader.batchesPerEpoch).toBe(3);
    const seen: string[] = [];
    let count = 0;
    for await (const b of loader.batches()) {
      if (b.epoch > 0) break;
      seen.push(...b.paths);
      expect(b.data.length).toBe(b.paths.length * 3 * 16 * 16);
      count++;
    }
    expect(count).toBe(3);
    expect([...seen].sort()).toEqual([...c.train].sort());
    expect(loader.order(0)).toEqual(new BatchLoader(c.train, { batch: 3, size: 16, shuffle: true, seed: 0 }).order(0));
    expect(loader.order(1)).not.toEqual(loader.order(0));
    const sorted = new BatchLoader(c.train, { batch: 3, size: 16, shuffle: false, seed: 0 });
    expect(sorted.load(0, 0).paths).toEqual(c.train.slice(0, 3));
    expect(readdirSync(join(root, 'c', 'train', 'good')).length).toBe(7);
  });

  it('keeps prepared images between epochs (same batches as decoding every time), within its budget', () => {
    const root = join(tmp, 'loader-cache');
    generateSyntheticDataset(root, { seed: 4, size: 16, train: 5, testGood: 1, testPerDefect: 1, categories: { c: 'object' } });
    const [c] = discoverCategories(root);
    const cached = new BatchLoader(c.train, { batch: 2, size: 16, shuffle: true, seed: 1 });
    const fresh = new BatchLoader(c.train, { batch: 2, size: 16, shuffle: true, seed: 1, cacheBytes: 0 });
    for (let epoch = 0; epoch < 2; epoch++) {
      for (let i = 0; i < cached.batchesPerEpoch; i++) expect(cached.load(epoch, i).data).toEqual(fresh.load(epoch, i).data);
    }
    expect(cached.cacheStats).toEqual({ hits: 5, misses: 5 });
    expect(fresh.cacheStats).toEqual({ hits: 0, misses: 10 });
    const small = new BatchLoader(c.train, { batch: 5, size: 16, shuffle: false, seed: 0, cacheBytes: 2 * 3 * 16 * 16 * 4 });
    small.load(0, 0);
    small.load(1, 0);
    expect(small.cacheStats).toEqual({ hits: 2, misses: 8 }); // only two images fit
  });
});
