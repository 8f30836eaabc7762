/**
 * Tiled vs resized (never in CI): per category, one `stfpm` model trained on images resized to SIZE and
 * one trained on tiles of SIZE (every STRIDE px) cut at the images' native resolution, the same number
 * of optimiser steps at the same batch, both evaluated with pixel metrics at the ground truth's full
 * resolution (the resized model's maps upsampled, the tiled one's stitched at the image's size), and the
 * inspection time per image, one image per call as a line inspects, the two detectors alternating image
 * by image so that whatever else loads the machine loads both alike.
 *
 * Results go to RESULTS (default OUT): `rows.jsonl` (a line per category and mode, appended as each
 * finishes; a rerun skips those done) and `tiling.md` / `tiling.json`.
 *
 *   npx tsx bench/tiling.ts --data ../shared/data/mvtec --data ../shared/data --category kolektorsdd,bottle \
 *       [--size 128] [--stride 64] [--steps 300] [--batch 16] [--seed 0] [--timed 10] [--out runs/tiling] [--results DIR]
 *   npx tsx bench/tiling.ts --quick     # tiny, synthetic: proves the script runs
 */
import { appendFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createDevice, describeAdapter, type Detector } from '../src/index.js';
import { generateSyntheticDataset } from '../src/data/synthetic.js';
import { discoverCategories } from '../src/data/mvtec.js';
import { probeImage } from '../src/data/image.js';
import { tileGrid, type Tiling } from '../src/data/tiles.js';
import { evaluate } from '../src/eval/evaluate.js';
import { loadDetector } from '../src/node.js';
import { findTeacher, train } from '../src/train/trainer.js';

const { values: a } = parseArgs({
  options: {
    data: { type: 'string', multiple: true, default: [] },
    category: { type: 'string', default: 'kolektorsdd,bottle' },
    size: { type: 'string', default: '128' },
    stride: { type: 'string' },
    steps: { type: 'string', default: '300' },
    batch: { type: 'string', default: '16' },
    seed: { type: 'string', default: '0' },
    timed: { type: 'string', default: '10' },
    out: { type: 'string', default: 'runs/tiling' },
    results: { type: 'string' },
    quick: { type: 'boolean', default: false },
  },
});
const quick = a.quick!;
const size = quick ? 32 : Number(a.size);
const stride = a.stride ? Number(a.stride) : size / 2;
const steps = quick ? 3 : Number(a.steps);
const batch = quick ? 4 : Number(a.batch);
const seed = Number(a.seed);
const timed = quick ? 2 : Number(a.timed);
const out = a.out!;
const results = a.results ?? out;
const roots = [...a.data!];
let categories = a.category!.split(',');
if (quick) {
  const dir = join(out, 'synthetic');
  if (!existsSync(dir)) generateSyntheticDataset(dir, { seed: 3, size: 80, categories: { synth_disc: 'object' }, train: 6, testGood: 2, testPerDefect: 2 });
  roots.splice(0, roots.length, dir);
  categories = ['synth_disc'];
}
if (roots.length === 0) throw new Error('give --data (repeatable), or --quick');

type Mode = 'resized' | 'tiled';
interface Row {
  category: string;
  mode: Mode;
  size: number;
  stride: number | null;
  steps: number;
  batch: number;
  seed: number;
  trainImages: number;
  /** Training samples: images, or their tiles. */
  samples: number;
  tilesPerImage: number;
  imageAUROC: number;
  pixelAUROC: number | null;
  auPRO: number | null;
  trainSeconds: number;
  finalLoss: number;
  /** Inspection of one image per call (decode, resize or tiles, network, stitch), mean over the timed images. */
  msPerImage: number;
  timedImages: number;
}

const rt = await createDevice();
const teacher = findTeacher();
mkdirSync(results, { recursive: true });
const rowsFile = join(results, 'rows.jsonl');
const readRows = (): Row[] => (existsSync(rowsFile) ? readFileSync(rowsFile, 'utf8').split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l) as Row) : []);
const same = (r: Row, category: string, mode: Mode) => r.category === category && r.mode === mode && r.size === size && r.steps === steps && r.batch === batch && r.seed === seed && (mode === 'resized' || r.stride === stride);
const finite = (x: number) => (Number.isFinite(x) ? x : null);

async function trainEvaluate(category: string, mode: Mode): Promise<{ det: Detector; row: Omit<Row, 'msPerImage' | 'timedImages'> }> {
  const run = join(out, 'runs', `${category}-${mode}-s${size}${mode === 'tiled' ? `-t${stride}` : ''}-n${steps}-b${batch}-seed${seed}`);
  const t0 = performance.now();
  const r = await train(rt, {
    data: roots, categories: [category], out: run, overwrite: true, method: 'stfpm', teacher, size, steps, batch, seed,
    ...(mode === 'tiled' ? { tiling: { stride, scale: 1 } } : {}),
  });
  const trainSeconds = (performance.now() - t0) / 1000;
  const det = await loadDetector({ run, runtime: rt });
  const cat = discoverCategories(roots, [category])[0];
  const tiles = (p: string) => {
    const h = probeImage(readFileSync(p), p);
    return det.tiling ? tileGrid(h.width, h.height, det.tiling).length : 1;
  };
  const samples = cat.train.reduce((s, p) => s + tiles(p), 0);
  const ev = await evaluate(det, { categories: [cat], resolution: 'full' });
  const c = ev.categories[0];
  console.log(`${category} ${mode}: image ${c.imageAUROC.toFixed(3)} pixel ${c.pixelAUROC.toFixed(3)} AU-PRO ${c.auPRO.toFixed(3)} (trained ${trainSeconds.toFixed(0)} s)`);
  return {
    det,
    row: {
      category, mode, size, stride: mode === 'tiled' ? stride : null, steps, batch, seed, trainImages: cat.train.length, samples, tilesPerImage: +(samples / cat.train.length).toFixed(2),
      imageAUROC: c.imageAUROC, pixelAUROC: finite(c.pixelAUROC), auPRO: finite(c.auPRO), trainSeconds: +trainSeconds.toFixed(1), finalLoss: r.lastLoss,
    },
  };
}

/** Milliseconds per image for each detector, one image per call, the detectors alternating image by image (after one warm call each). */
async function timePerImage(dets: Detector[], paths: string[]): Promise<number[]> {
  const bytes = paths.map((p) => new Uint8Array(readFileSync(p)));
  for (const d of dets) await d.inspect(bytes[0]);
  const total = dets.map(() => 0);
  for (const b of bytes) {
    for (const [k, d] of dets.entries()) {
      const t0 = performance.now();
      await d.inspect(b);
      total[k] += performance.now() - t0;
    }
  }
  return total.map((t) => t / bytes.length);
}

for (const category of categories) {
  const done = readRows();
  if (done.some((r) => same(r, category, 'resized')) && done.some((r) => same(r, category, 'tiled'))) {
    console.log(`${category}: done before (${rowsFile})`);
    continue;
  }
  const resized = await trainEvaluate(category, 'resized');
  const tiled = await trainEvaluate(category, 'tiled');
  const test = discoverCategories(roots, [category])[0].test.map((s) => s.path);
  const pick = test.filter((_, i) => i % Math.max(1, Math.floor(test.length / timed)) === 0).slice(0, timed);
  const [msResized, msTiled] = await timePerImage([resized.det, tiled.det], pick);
  appendFileSync(rowsFile, `${JSON.stringify({ ...resized.row, msPerImage: +msResized.toFixed(1), timedImages: pick.length })}\n`);
  appendFileSync(rowsFile, `${JSON.stringify({ ...tiled.row, msPerImage: +msTiled.toFixed(1), timedImages: pick.length })}\n`);
  console.log(`${category}: ${msResized.toFixed(1)} ms/image resized, ${msTiled.toFixed(1)} ms/image tiled`);
  resized.det.dispose();
  tiled.det.dispose();
}

const rows = readRows().filter((r) => categories.includes(r.category) && r.size === size && r.steps === steps && r.batch === batch && r.seed === seed && (r.mode === 'resized' || r.stride === stride));
const f3 = (x: number | null) => (x === null ? 'n/a' : x.toFixed(3));
const lines = [
  '| category | mode | samples (tiles/image) | image AUROC | pixel AUROC | AU-PRO@0.3 | train s | ms / image |',
  '|---|---|---:|---:|---:|---:|---:|---:|',
  ...rows.map((r) => `| ${r.category} | ${r.mode === 'tiled' ? `tiles of ${r.size} every ${r.stride}` : `resized to ${r.size}`} | ${r.samples} (${r.tilesPerImage}) | ${f3(r.imageAUROC)} | ${f3(r.pixelAUROC)} | ${f3(r.auPRO)} | ${r.trainSeconds} | ${r.msPerImage} |`),
];
const tiling: Tiling = { tile: size, stride, scale: 1 };
const header = [
  '# Tiled vs resized',
  '',
  `Adapter: ${describeAdapter(rt)}. \`stfpm\`, one model per category, seed ${seed}, ${steps} steps at batch ${batch} in both modes (a step sees ${batch} images, or ${batch} tiles); tiled: ${tiling.tile} x ${tiling.tile} tiles every ${tiling.stride} px at native resolution. Pixel metrics at the ground truth's full resolution. ms / image: one image per inspect() call (decode, resize or cut, network in batches of 8 inputs, stitch), mean over ${rows[0]?.timedImages ?? timed} test images, the two detectors alternating.`,
  `Command: \`npx tsx bench/tiling.ts ${process.argv.slice(2).join(' ')}\`.`,
  '',
];
writeFileSync(join(results, 'tiling.md'), [...header, ...lines, ''].join('\n'));
writeFileSync(join(results, 'tiling.json'), JSON.stringify({ adapter: describeAdapter(rt), roots, categories, size, stride, steps, batch, seed, rows }, null, 2));
console.log([...header, ...lines].join('\n'));
rt.destroy();
