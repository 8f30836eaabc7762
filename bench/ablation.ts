/**
 * Multi-class ablation (never in CI): for each variant and each seed, ONE model trained on all the
 * categories together, and with --one-class also one model per category (the baseline that shows the
 * multi-class drop). Every trained model is evaluated per category twice, its levels' maps summed and
 * multiplied (the aggregation is an inference-time choice, so one training gives both rows).
 *
 * Results go to RESULTS (default: OUT): `rows.jsonl` (one line per run, category and aggregation, appended
 * as each run finishes), `scores.jsonl` (every test image's score per run and aggregation, for threshold
 * studies without retraining) and the summary `ablation.md` / `ablation.json`. Rerunning the same command
 * skips the runs found in rows.jsonl: an interrupted grid resumes; runs train in OUT/runs. A variant is a
 * name from bench/lib/variants.ts, optionally at another lr (`dcam-kd0.1@lr0.4`); its rows carry that spec.
 *
 *   npx tsx bench/ablation.ts --data ../shared/data/mvtec --data ../shared/data --data ../shared/data/extra \
 *       --category bottle,kolektorsdd,screw,elpv_mono,elpv_poly [--synthetic 2] [--variants stfpm,dcam] \
 *       [--seeds 0,1,2] [--one-class] [--size 64] [--epochs 20] [--batch 16] [--out runs/ablation] \
 *       [--results DIR]
 *   npx tsx bench/ablation.ts --quick      # tiny sizes, synthetic data: proves the script runs
 */
import { appendFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createDevice, describeAdapter } from '../src/index.js';
import { generateSyntheticDataset, type SyntheticKind } from '../src/data/synthetic.js';
import { discoverCategories } from '../src/data/mvtec.js';
import { evaluate } from '../src/eval/evaluate.js';
import type { MapAggregation } from '../src/model/anomaly-map.js';
import { preset, type MethodConfig } from '../src/model/config.js';
import { loadDetector } from '../src/node.js';
import { readCheckpoint } from '../src/train/checkpoint-store.js';
import { readRunConfig } from '../src/train/run-config.js';
import { findTeacher, train } from '../src/train/trainer.js';
import { variantOf } from './lib/variants.js';

const { values: a } = parseArgs({
  options: {
    data: { type: 'string', multiple: true, default: [] },
    category: { type: 'string', default: '' },
    synthetic: { type: 'string', default: '0' },
    variants: { type: 'string', default: 'stfpm,dcam-none,dcam-channel,dcam-spatial,dcam-cbam,dcam-channel-inline,dcam-channel-kdsum' },
    seeds: { type: 'string', default: '0' },
    'one-class': { type: 'boolean', default: false },
    'multi-class': { type: 'boolean', default: true },
    size: { type: 'string', default: '128' },
    epochs: { type: 'string', default: '20' },
    batch: { type: 'string', default: '16' },
    out: { type: 'string', default: 'runs/ablation' },
    results: { type: 'string' },
    quick: { type: 'boolean', default: false },
  },
});
const quick = a.quick!;
const size = quick ? 32 : Number(a.size);
const epochs = quick ? 1 : Number(a.epochs);
const batch = quick ? 4 : Number(a.batch);
const seeds = a.seeds!.split(',').map(Number);
const out = a.out!;
const results = a.results ?? out;
const variants = a.variants!.split(',');
for (const v of variants) variantOf(v); // unknown names fail before anything trains

// Data: the given folders, plus synthetic categories in a folder of their own.
const roots = [...a.data!];
const categories = a.category ? a.category.split(',') : [];
const synthetic = quick ? Math.max(2, Number(a.synthetic)) : Number(a.synthetic);
if (synthetic > 0) {
  const dir = join(out, 'synthetic');
  const kinds: SyntheticKind[] = ['texture', 'object'];
  const cats: Record<string, SyntheticKind> = {};
  for (let i = 0; i < synthetic; i++) cats[`synth_${kinds[i % 2]}_${i}`] = kinds[i % 2];
  if (!existsSync(dir)) generateSyntheticDataset(dir, { seed: 11, size: quick ? 32 : 128, categories: cats, train: quick ? 6 : 60, testGood: quick ? 2 : 15, testPerDefect: quick ? 2 : 10 });
  roots.push(dir);
  if (categories.length) categories.push(...Object.keys(cats));
}
if (roots.length === 0) throw new Error('give --data (repeatable) and/or --synthetic N');
const cats = discoverCategories(roots, categories).map((c) => c.name);

type Setting = 'multi-class' | 'one-class';
const AGGREGATIONS: MapAggregation[] = ['sum', 'product'];

export interface Row {
  variant: string;
  setting: Setting;
  seed: number;
  epochs: number;
  size: number;
  batch: number;
  category: string;
  /** The categories the model was trained on (one-class: [category]): a multi-class model of another set is another run. */
  trainedOn: string[];
  /** How the levels' maps were combined for this row; `own` when it is the variant's own. */
  aggregation: MapAggregation;
  own: boolean;
  imageAUROC: number;
  /** NaN (null in JSON) for a classification-only category. */
  pixelAUROC: number | null;
  auPRO: number | null;
  /** Training time of this process (a resumed run's earlier part is not in it: see resumedAtStep). */
  trainSeconds: number;
  /** The checkpoint a killed run continued from. */
  resumedAtStep?: number;
  finalLoss: number;
}

const rt = await createDevice();
const teacher = findTeacher();
mkdirSync(results, { recursive: true });
const rowsFile = join(results, 'rows.jsonl');
const scoresFile = join(results, 'scores.jsonl');
const readRows = (): Row[] => (existsSync(rowsFile) ? readFileSync(rowsFile, 'utf8').split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l) as Row) : []);
const sameSet = (a: readonly string[], b: readonly string[]) => a.length === b.length && [...a].sort().join() === [...b].sort().join();
const sameRun = (r: Row, variant: string, setting: Setting, seed: number, trainCats: readonly string[]) =>
  r.variant === variant && r.setting === setting && r.seed === seed && r.epochs === epochs && r.size === size && r.batch === batch && sameSet(r.trainedOn, trainCats);

async function trainAndEvaluate(variant: string, setting: Setting, seed: number, trainCats: string[]): Promise<void> {
  const v = variantOf(variant);
  const earlier = readRows().filter((r) => sameRun(r, variant, setting, seed, trainCats) && trainCats.includes(r.category));
  if (earlier.length === trainCats.length * AGGREGATIONS.length) {
    console.log(`${variant} ${setting} seed ${seed}: done before (${rowsFile})`);
    return;
  }
  const name = `${variant}-${setting === 'multi-class' ? `multi${trainCats.length}` : trainCats[0]}-s${size}-e${epochs}-b${batch}-seed${seed}`;
  const run = join(out, 'runs', name);
  mkdirSync(run, { recursive: true });
  const t0 = performance.now();
  const overrides: Partial<MethodConfig> = v.overrides;
  // a run of this variant that was killed mid-way continues from its last checkpoint (the trainer checks
  // the data, size, batch, seed and sampling; the method settings are compared here)
  const before = existsSync(join(run, 'config.json')) ? readCheckpoint(run) : null;
  const resume = before !== null && JSON.stringify(readRunConfig(run).method) === JSON.stringify(preset(v.preset, overrides));
  if (resume) console.log(`${name}: resuming at step ${before.step}`);
  const r = await train(rt, {
    data: roots, categories: trainCats, out: run, overwrite: !resume, resume, method: v.preset, overrides,
    teacher, size, epochs, batch, seed, balanced: v.balanced,
  });
  const trainSeconds = (performance.now() - t0) / 1000;
  const det = await loadDetector({ run, runtime: rt });
  try {
    for (const aggregation of AGGREGATIONS) {
      const ev = await evaluate(det, { categories: discoverCategories(roots, r.config.categories), aggregation });
      const own = aggregation === det.method.aggregation;
      appendFileSync(scoresFile, `${JSON.stringify({ run: name, variant, setting, seed, epochs, size, batch, trainedOn: trainCats, aggregation, own, images: ev.images.map((i) => [i.category, i.label, +i.score.toPrecision(7)]) })}\n`);
      for (const c of ev.categories) {
        const finite = (x: number) => (Number.isFinite(x) ? x : null);
        const row: Row = {
          variant, setting, seed, epochs, size, batch, category: c.category, trainedOn: [...trainCats], aggregation, own,
          imageAUROC: c.imageAUROC, pixelAUROC: finite(c.pixelAUROC), auPRO: finite(c.auPRO), trainSeconds: +trainSeconds.toFixed(1), ...(resume ? { resumedAtStep: before.step } : {}), finalLoss: r.lastLoss,
        };
        appendFileSync(rowsFile, `${JSON.stringify(row)}\n`);
        const px = row.pixelAUROC === null ? 'pixel n/a' : `pixel ${row.pixelAUROC.toFixed(3)} AU-PRO ${row.auPRO!.toFixed(3)}`;
        console.log(`${variant} ${setting} seed ${seed} ${c.category} [${aggregation}${own ? ', own' : ''}]: image ${c.imageAUROC.toFixed(3)} ${px} (${trainSeconds.toFixed(0)} s)`);
      }
    }
  } finally {
    det.dispose();
  }
}

for (const seed of seeds) {
  for (const variant of variants) {
    if (a['multi-class']) await trainAndEvaluate(variant, 'multi-class', seed, cats);
    if (a['one-class']) for (const c of cats) await trainAndEvaluate(variant, 'one-class', seed, [c]);
  }
}

// ---- summary: per variant, setting and aggregation, each category and the mean over categories (image
// metrics over every category, pixel metrics over the categories with masks); mean ± spread over seeds.

const rows = readRows().filter((r) => r.epochs === epochs && r.size === size && r.batch === batch && seeds.includes(r.seed) && cats.includes(r.category) && (r.setting === 'one-class' || sameSet(r.trainedOn, cats)));
const mean = (v: number[]) => v.reduce((s, x) => s + x, 0) / v.length;
const spread = (v: number[]) => (v.length > 1 ? Math.sqrt(v.reduce((s, x) => s + (x - mean(v)) ** 2, 0) / (v.length - 1)) : 0);
const fmt = (v: number[]) => (v.length === 0 || v.some((x) => !Number.isFinite(x)) ? 'n/a' : v.length > 1 ? `${mean(v).toFixed(3)} ± ${spread(v).toFixed(3)}` : mean(v).toFixed(3));
const metrics = ['imageAUROC', 'pixelAUROC', 'auPRO'] as const;
const settings: Setting[] = [...(a['multi-class'] ? ['multi-class' as const] : []), ...(a['one-class'] ? ['one-class' as const] : [])];
const masked = cats.filter((c) => rows.some((r) => r.category === c && r.pixelAUROC !== null));
const summary: Array<Record<string, unknown>> = [];
const lines = ['| variant | setting | map | category | image AUROC | pixel AUROC | AU-PRO@0.3 | seeds |', '|---|---|---|---|---:|---:|---:|---:|'];
for (const variant of variants) {
  for (const setting of settings) {
    for (const aggregation of AGGREGATIONS) {
      const mine = rows.filter((r) => r.variant === variant && r.setting === setting && r.aggregation === aggregation);
      const done = seeds.filter((s) => cats.every((c) => mine.some((r) => r.seed === s && r.category === c)));
      if (done.length === 0) continue;
      for (const category of [...cats, 'mean']) {
        // the mean over categories is taken per seed, then its spread over seeds
        const per = (m: (typeof metrics)[number]) =>
          done.map((s) => {
            const over = category !== 'mean' ? [category] : m === 'imageAUROC' ? cats : masked;
            const vals = mine.filter((r) => r.seed === s && over.includes(r.category)).map((r) => r[m] ?? NaN);
            return vals.length ? mean(vals) : NaN;
          });
        const vals = Object.fromEntries(metrics.map((m) => [m, per(m)]));
        summary.push({ variant, setting, aggregation, own: mine[0].own, category, seeds: done, ...Object.fromEntries(metrics.map((m) => [m, { mean: mean(vals[m]), spread: spread(vals[m]), values: vals[m] }])) });
        const bold = (s: string) => (category === 'mean' ? `**${s}**` : s);
        lines.push(`| ${variant} | ${setting} | ${aggregation}${mine[0].own ? '' : ' (not own)'} | ${bold(category)} | ${metrics.map((m) => bold(fmt(vals[m]))).join(' | ')} | ${done.length} |`);
      }
    }
  }
}
const header = [
  '# Multi-class ablation',
  '',
  `Adapter: ${describeAdapter(rt)}. Categories: ${cats.join(', ')} (from ${roots.join(', ')}). Size ${size}, epochs ${epochs}, batch ${batch}, seeds ${seeds.join(', ')}.`,
  `Command: \`npx tsx bench/ablation.ts ${process.argv.slice(2).join(' ')}\`. Values: mean over the seeds done ± sample standard deviation (one seed: the value). The mean row: image AUROC over every category, pixel metrics over the categories with masks (${masked.join(', ') || 'none'}).`,
  '',
];
writeFileSync(join(results, 'ablation.md'), [...header, ...lines, ''].join('\n'));
writeFileSync(join(results, 'ablation.json'), JSON.stringify({ adapter: describeAdapter(rt), categories: cats, masked, roots, size, epochs, batch, seeds, variants: Object.fromEntries(variants.map((v) => [v, variantOf(v)])), summary }, null, 2));
console.log([...header, ...lines].join('\n'));
console.log(`wrote ${join(results, 'ablation.md')} and ablation.json`);
rt.destroy();
