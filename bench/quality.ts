/**
 * Quality on real data (never in CI): the one-class recipe of the issue on MVTec AD bottle, then eval.
 *
 *   npx tsx bench/quality.ts [--method stfpm|dcam] [--category bottle] [--size 128] [--epochs 20]
 *                            [--batch 16] [--lr X] [--seed 0] [--data ../shared/data/mvtec] [--out runs/quality-...]
 *
 * Prints image AUROC, pixel AUROC, AU-PRO@0.3 and the training time, and writes them to OUT/quality.json.
 * The PyTorch reference of the same recipe is tools/reference_quality.py.
 */
import { discoverCategories } from '../src/data/mvtec.js';
import { writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { createDevice, describeAdapter } from '../src/index.js';
import { evaluate } from '../src/eval/evaluate.js';
import { writeReport } from '../src/eval/report.js';
import { loadDetector } from '../src/node.js';
import { findTeacher, train } from '../src/train/trainer.js';

const { values: a } = parseArgs({
  options: {
    method: { type: 'string', default: 'stfpm' },
    category: { type: 'string', default: 'bottle' },
    size: { type: 'string', default: '128' },
    epochs: { type: 'string', default: '20' },
    batch: { type: 'string', default: '16' },
    lr: { type: 'string' },
    seed: { type: 'string', default: '0' },
    data: { type: 'string' },
    teacher: { type: 'string' },
    out: { type: 'string' },
    resume: { type: 'boolean', default: false },
  },
});
const shared = process.env.DCAM_SHARED ?? resolve('..', 'shared');
const method = a.method as 'stfpm' | 'dcam';
const out = a.out ?? `runs/quality-${method}-${a.category}-${a.size}px-seed${a.seed}`;
const rt = await createDevice();
console.log(`adapter: ${describeAdapter(rt)}`);
const t0 = performance.now();
const r = await train(rt, {
  data: a.data ?? join(shared, 'data', 'mvtec'),
  out,
  categories: [a.category!],
  method,
  teacher: findTeacher(a.teacher),
  size: Number(a.size),
  epochs: Number(a.epochs),
  batch: Number(a.batch),
  lr: a.lr ? Number(a.lr) : undefined,
  seed: Number(a.seed),
  resume: a.resume,
  onStep: (s) => {
    if (s.step % 10 === 0 || s.step === s.totalSteps) console.log(`step ${s.step}/${s.totalSteps} epoch ${s.epoch} loss ${s.loss.toFixed(4)} ${s.imagesPerSec.toFixed(2)} img/s`);
  },
});
const trainSeconds = (performance.now() - t0) / 1000;
const det = await loadDetector({ run: out, runtime: rt });
const size = det.size;
const ev = await evaluate(det, { categories: discoverCategories(r.config.data, r.config.categories), out });
writeReport(out, ev, { method, size });
const c = ev.categories[0];
const summary = { method, category: c.category, size, epochs: Number(a.epochs), batch: Number(a.batch), lr: r.config.method.lr, seed: Number(a.seed),
  imageAUROC: c.imageAUROC, pixelAUROC: c.pixelAUROC, auPRO: c.auPRO, legacyPRO: c.legacyPRO, trainSeconds, adapter: rt.adapter.description };
writeFileSync(join(out, 'quality.json'), JSON.stringify(summary, null, 2));
console.log(JSON.stringify(summary, null, 2));
rt.destroy();
