/**
 * The detector API from source (the packed package is tested by test/package/pack.mjs): loadDetector on a
 * run folder equals `dcam infer`; pixels and encoded bytes of one image inspect alike; regions follow the
 * pixel threshold; FewShotTrainer stops, continues and exports a run that loadDetector takes back.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeImage } from '../src/data/image.js';
import { generateSyntheticDataset } from '../src/data/synthetic.js';
import { FewShotTrainer, loadDetector, trainDetector } from '../src/node.js';
import { dcam } from './cli-helpers.js';
import { findTeacher } from '../src/train/teacher.js';
import { useRuntime } from './helpers.js';

const ctx = useRuntime();
const tmp = mkdtempSync(join(tmpdir(), 'dcam-detector-'));
const data = join(tmp, 'data');
const run = join(tmp, 'run');
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
beforeAll(async () => {
  generateSyntheticDataset(data, { seed: 31, size: 48, train: 4, testGood: 2, testPerDefect: 2, categories: { parts: 'object' } });
  expect((await dcam('train', '--data', data, '--out', run, '--method', 'stfpm', '--size', '32', '--steps', '3', '--batch', '4')).code).toBe(0);
  expect((await dcam('eval', '--run', run)).code).toBe(0);
});

describe('loadDetector / inspect', () => {
  it("scores, labels and normalises as dcam infer; RGBA pixels as the encoded file; regions over the pixel threshold", async () => {
    const images = [join(data, 'parts/test/good/000.png'), join(data, 'parts/test/spot/000.png')];
    expect((await dcam('infer', '--run', run, '--out', join(tmp, 'infer'), ...images)).code).toBe(0);
    const cli = JSON.parse(readFileSync(join(tmp, 'infer/scores.json'), 'utf8')) as Array<{ score: number; label: string; normalized: number }>;
    const det = await loadDetector({ run, runtime: ctx.rt });
    try {
      const rs = await det.inspect(images.map((p) => readFileSync(p)));
      rs.forEach((r, i) => {
        expect(r.score).toBe(cli[i].score);
        expect(r.label).toBe(cli[i].label);
        expect(r.normalized).toBe(cli[i].normalized);
      });
      const rgb = decodeImage(readFileSync(images[1]));
      const rgba = new Uint8ClampedArray(rgb.width * rgb.height * 4).map((_, k) => (k % 4 === 3 ? 255 : rgb.data[(k >> 2) * 3 + (k % 4)]));
      const fromPixels = await det.inspect({ width: rgb.width, height: rgb.height, data: rgba });
      expect(fromPixels.score).toBe(rs[1].score);
      const t = det.thresholds!;
      const over = rs[1].map.filter((v) => v >= t.pixel).length;
      expect(rs[1].regions.reduce((a, g) => a + g.area, 0)).toBe(over);
      for (const g of rs[1].regions) expect(g.peak).toBeGreaterThanOrEqual(t.pixel);
    } finally {
      det.dispose();
    }
  });

  it('loads a run with the teacher it was trained with (a random-teacher run gets its random teacher back); refuses another one unless forced', async () => {
    const random = join(tmp, 'random-run');
    expect((await dcam('train', '--data', data, '--out', random, '--random-teacher', '--size', '32', '--steps', '1', '--batch', '4')).code).toBe(0);
    const own = await loadDetector({ run: random, runtime: ctx.rt });
    own.dispose();
    const shipped = findTeacher();
    const refused = await loadDetector({ run: random, teacher: shipped, runtime: ctx.rt }).then((d) => (d.dispose(), null), (e: Error) => e);
    expect(refused?.message).toMatch(/is not the teacher .*random-run was trained with: its features differ/);
    const det = await loadDetector({ run: random, teacher: shipped, runtime: ctx.rt, force: true });
    det.dispose();
  });
});

describe('few-shot training in an app', () => {
  it('FewShotTrainer stops on abort, continues, and exports a run loadDetector takes back; trainDetector in one call', async () => {
    const images = [0, 1, 2, 3].map((i) => readFileSync(join(data, `parts/train/good/00${i}.png`)));
    const trainer = await FewShotTrainer.create({ images, method: 'stfpm', size: 32, epochs: 3, batch: 2, runtime: ctx.rt });
    try {
      const stop = new AbortController();
      await trainer.run({ signal: stop.signal, onProgress: (p) => { if (p.step === 2) stop.abort(); } });
      expect(trainer.step).toBe(2);
      await trainer.run();
      expect(trainer.step).toBe(6);
      expect(trainer.losses.length).toBe(6);
      const live = await trainer.detector();
      const a = await live.inspect(images[0]);
      live.dispose();
      const files = await trainer.runFiles();
      const det = await loadDetector({ run: files, runtime: ctx.rt });
      const b = await det.inspect(images[0]);
      det.dispose();
      expect(b.score).toBeCloseTo(a.score, 6);
      expect(b.label).toBeNull(); // no thresholds without defect samples
    } finally {
      trainer.dispose();
    }
    const det = await trainDetector({ images, size: 32, epochs: 1, batch: 2, runtime: ctx.rt });
    expect((await det.inspect(images[1])).size).toBe(32);
    det.dispose();
  });

  it('inspections asked for while training runs wait their turn on the GPU (no interleaved sessions)', async () => {
    const images = [0, 1, 2, 3].map((i) => readFileSync(join(data, `parts/train/good/00${i}.png`)));
    const trainer = await FewShotTrainer.create({ images, method: 'stfpm', size: 32, epochs: 2, batch: 2, runtime: ctx.rt });
    const det = await trainer.detector(); // the student as it was before training
    try {
      const alone = await det.inspect(images[0]);
      const training = trainer.run();
      // several inspections while the steps run, as the demo's live camera does during training
      const during = await Promise.all([0, 1, 2].map(() => det.inspect(images[0])));
      await training;
      expect(trainer.step).toBe(4);
      for (const r of during) expect(r.score).toBeCloseTo(alone.score, 5);
    } finally {
      det.dispose();
      trainer.dispose();
    }
  });
});
