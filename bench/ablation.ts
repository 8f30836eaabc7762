/**
 * Multi-class ablation (never in CI): for each variant (stfpm, dcam without / with channel, spatial or
 * CBAM attention, loss-side or in-line, KD averaged or summed) and each seed, ONE model trained on all the
 * categories together, and with --one-class also one model per category (the baseline that shows the
 * multi-class drop, as the paper's tables). Evaluated per category; writes OUT/ablation.md and
 * OUT/ablation.json (every run's metrics, and per variant and setting the mean and spread over seeds).
 * Finished runs are kept in OUT/rows.jsonl: rerun the same command to resume an interrupted grid.
 *
 *   npx tsx bench/ablation.ts --data ../shared/data/mvtec --data ../shared/data --category bottle,kolektorsdd \
 *       [--synthetic 2] [--variants stfpm,dcam-channel] [--seeds 0,1,2] [--one-class] [--balanced] \
 *       [--size 128] [--epochs 20] [--batch 16] [--out runs/ablation]
 *   npx tsx bench/ablation.ts --quick      # tiny sizes, synthetic data: proves the script runs
 */
import { appendFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createDevice, describeAdapter } from '../src/index.js';
import { generateSyntheticDataset, type SyntheticKind } from '../src/data/synthetic.js';
import { discoverCategories } from '../src/data/mvtec.js';
import { evaluate } from '../src/eval/evaluate.js';
import type { MethodConfig } from '../src/model/config.js';
import { loadRun } from '../src/train/run.js';
import { findTeacher, train } from '../src/train/trainer.js';

/** The variants by name: the preset and what changes in it. */
const VARIANTS: Record<string, ['stfpm' | 'dcam', Partial<MethodConfig>]> = {
  stfpm: ['stfpm', {}],
  'dcam-none': ['dcam', { attention: 'none' }],
  'dcam-channel': ['dcam', { attention: 'channel' }],
  'dcam-spatial': ['dcam', { attention: 'spatial' }],
  'dcam-cbam': ['dcam', { attention: 'cbam' }],
  'dcam-channel-inline': ['dcam', { attention: 'channel', placement: 'inline' }],
  'dcam-channel-kdsum': ['dcam', { attention: 'channel', kdReduction: 'sum' }],
};

const { values: a } = parseArgs({
  options: {
    data: { type: 'string', multiple: true, default: [] },
    category: { type: 'string', default: '' },
    synthetic: { type: 'string', default: '0' },
    variants: { type: 'string', default: Object.keys(VARIANTS).join(',') },
    seeds: { type: 'string', default: '0' },
    'one-class': { type: 'boolean', default: false },
    balanced: { type: 'boolean', default: false },
    size: { type: 'string', default: '128' },
    epochs: { type: 'string', default: '20' },
    batch: { type: 'string', default: '16' },
    lr: { type: 'string' },
    out: { type: 'string', default: 'runs/ablation' },
    quick: { type: 'boolean', default: false },
  },
});
const quick = a.quick!;
const size = quick ? 32 : Number(a.size);
const epochs = quick ? 1 : Number(a.epochs);
const batch = quick ? 4 : Number(a.batch);
const seeds = a.seeds!.split(',').map(Number);
const out = a.out!;
const variants = a.variants!.split(',').map((v) => {
  if (!VARIANTS[v]) throw new Error(`unknown variant ${v} (known: ${Object.keys(VARIANTS).join(', ')})`);
  return v;
});

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

interface Row {
  variant: string;
  setting: 'multi-class' | 'one-class';
  seed: number;
  category: string;
  imageAUROC: number;
  pixelAUROC: number;
  auPRO: number;
  trainSeconds: number;
}

const rt = await createDevice();
const teacher = findTeacher();
// Every finished run's rows are appended to OUT/rows.jsonl at once; a rerun with the same OUT skips the runs
// found there (an interrupted grid resumes; the summary covers whatever is done).
const rowsFile = join(out, 'rows.jsonl');
const done: Row[] = existsSync(rowsFile) ? readFileSync(rowsFile, 'utf8').split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l) as Row) : [];
const rows: Row[] = [];

async function trainAndEvaluate(variant: string, setting: Row['setting'], seed: number, trainCats: string[]): Promise<void> {
  const [method, overrides] = VARIANTS[variant];
  const earlier = done.filter((r) => r.variant === variant && r.setting === setting && r.seed === seed && trainCats.includes(r.category));
  if (earlier.length === trainCats.length) {
    rows.push(...earlier);
    console.log(`${variant} ${setting} seed ${seed}: done before (${rowsFile})`);
    return;
  }
  const run = join(out, 'runs', `${variant}-${setting === 'multi-class' ? 'multi' : trainCats[0]}-seed${seed}`);
  mkdirSync(run, { recursive: true });
  const t0 = performance.now();
  const r = await train(rt, {
    data: roots, categories: trainCats, out: run, overwrite: true, method, overrides: { ...overrides, ...(a.lr ? { lr: Number(a.lr) } : {}) },
    teacher, size, epochs, batch, seed, balanced: a.balanced,
  });
  const trainSeconds = (performance.now() - t0) / 1000;
  const { model } = await loadRun(rt, run);
  const ev = await evaluate(rt, model, { data: roots, categories: r.config.categories, size });
  model.dispose();
  model.teacher.dispose(); // loadRun's own
  for (const c of ev.categories) {
    const row: Row = { variant, setting, seed, category: c.category, imageAUROC: c.imageAUROC, pixelAUROC: c.pixelAUROC, auPRO: c.auPRO, trainSeconds };
    rows.push(row);
    appendFileSync(rowsFile, `${JSON.stringify(row)}\n`);
    console.log(`${variant} ${setting} seed ${seed} ${c.category}: image ${c.imageAUROC.toFixed(3)} pixel ${c.pixelAUROC.toFixed(3)} AU-PRO ${c.auPRO.toFixed(3)} (${trainSeconds.toFixed(0)} s)`);
  }
}

for (const seed of seeds) {
  for (const variant of variants) {
    await trainAndEvaluate(variant, 'multi-class', seed, cats);
    if (a['one-class']) for (const c of cats) await trainAndEvaluate(variant, 'one-class', seed, [c]);
  }
}

// ---- summary: per variant and setting, each category and the mean over categories; mean ± spread over seeds

const mean = (v: number[]) => v.reduce((s, x) => s + x, 0) / v.length;
const spread = (v: number[]) => (v.length > 1 ? Math.sqrt(v.reduce((s, x) => s + (x - mean(v)) ** 2, 0) / (v.length - 1)) : 0);
const fmt = (v: number[]) => (v.length > 1 ? `${mean(v).toFixed(3)} ± ${spread(v).toFixed(3)}` : mean(v).toFixed(3));
const metrics = ['imageAUROC', 'pixelAUROC', 'auPRO'] as const;
const settings: Row['setting'][] = a['one-class'] ? ['multi-class', 'one-class'] : ['multi-class'];
const summary: Array<Record<string, unknown>> = [];
const lines = ['| variant | setting | category | image AUROC | pixel AUROC | AU-PRO@0.3 |', '|---|---|---|---:|---:|---:|'];
for (const variant of variants) {
  for (const setting of settings) {
    const mine = rows.filter((r) => r.variant === variant && r.setting === setting);
    for (const category of [...cats, 'mean']) {
      // the mean over categories is taken per seed, then its spread over seeds
      const per = (m: (typeof metrics)[number]) =>
        seeds.map((s) => {
          const sel = mine.filter((r) => r.seed === s && (category === 'mean' || r.category === category));
          return mean(sel.map((r) => r[m]));
        });
      const vals = Object.fromEntries(metrics.map((m) => [m, per(m)]));
      summary.push({ variant, setting, category, ...Object.fromEntries(metrics.map((m) => [m, { mean: mean(vals[m]), spread: spread(vals[m]), seeds: vals[m] }])) });
      const bold = (s: string) => (category === 'mean' ? `**${s}**` : s);
      lines.push(`| ${variant} | ${setting} | ${bold(category)} | ${metrics.map((m) => bold(fmt(vals[m]))).join(' | ')} |`);
    }
  }
}
const header = [
  '# Multi-class ablation',
  '',
  `Adapter: ${describeAdapter(rt)}. Categories: ${cats.join(', ')} (from ${roots.join(', ')}). Size ${size}, epochs ${epochs}, batch ${batch}, seeds ${seeds.join(', ')}${a.balanced ? ', balanced batches' : ''}${a.lr ? `, lr ${a.lr}` : ''}.`,
  `Command: \`npx tsx bench/ablation.ts ${process.argv.slice(2).join(' ')}\`. Values: mean over seeds ± sample standard deviation (one seed: the value).`,
  '',
];
mkdirSync(out, { recursive: true });
writeFileSync(join(out, 'ablation.md'), [...header, ...lines, ''].join('\n'));
writeFileSync(join(out, 'ablation.json'), JSON.stringify({ adapter: describeAdapter(rt), categories: cats, roots, size, epochs, batch, seeds, balanced: a.balanced, rows, summary }, null, 2));
console.log([...header, ...lines].join('\n'));
console.log(`wrote ${join(out, 'ablation.md')} and ablation.json`);
rt.destroy();
