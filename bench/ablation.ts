/**
 * Multi-class ablation (never in CI): ONE model trained on MVTec bottle plus several synthetic categories,
 * for `stfpm` and each `dcam` variant (attention none / channel / spatial / cbam, KD averaged or summed),
 * evaluated per category; writes OUT/ablation.md and OUT/ablation.json.
 *
 *   npx tsx bench/ablation.ts [--size 128] [--epochs 20] [--batch 16] [--synthetic 3] [--out runs/ablation]
 *   npx tsx bench/ablation.ts --quick      # tiny sizes: proves the script runs
 */
import { existsSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { createDevice, describeAdapter } from '../src/index.js';
import { generateSyntheticDataset, type SyntheticKind } from '../src/data/synthetic.js';
import { evaluate } from '../src/eval/evaluate.js';
import type { MethodConfig } from '../src/model/config.js';
import { loadRun } from '../src/train/run.js';
import { findTeacher, train } from '../src/train/trainer.js';

const { values: a } = parseArgs({
  options: {
    size: { type: 'string', default: '128' },
    epochs: { type: 'string', default: '20' },
    batch: { type: 'string', default: '16' },
    synthetic: { type: 'string', default: '3' },
    out: { type: 'string', default: 'runs/ablation' },
    quick: { type: 'boolean', default: false },
    'no-bottle': { type: 'boolean', default: false },
  },
});
const quick = a.quick!;
const size = quick ? 32 : Number(a.size);
const epochs = quick ? 1 : Number(a.epochs);
const batch = quick ? 4 : Number(a.batch);
const shared = process.env.DCAM_SHARED ?? resolve('..', 'shared');
const out = a.out!;
const data = join(out, 'data');

// Data: synthetic categories next to a link to the real bottle category.
if (!existsSync(data)) {
  const kinds: SyntheticKind[] = ['texture', 'object'];
  const cats: Record<string, SyntheticKind> = {};
  for (let i = 0; i < Number(a.synthetic); i++) cats[`synth_${kinds[i % 2]}_${i}`] = kinds[i % 2];
  generateSyntheticDataset(data, { seed: 11, size: quick ? 32 : 128, categories: cats, train: quick ? 6 : 60, testGood: quick ? 2 : 15, testPerDefect: quick ? 2 : 10 });
  if (!a['no-bottle'] && !quick) symlinkSync(resolve(shared, 'data', 'mvtec', 'bottle'), join(data, 'bottle'));
}

const variants: Array<[string, 'stfpm' | 'dcam', Partial<MethodConfig>]> = [
  ['stfpm', 'stfpm', {}],
  ['dcam, no attention', 'dcam', { attention: 'none' }],
  ['dcam, channel', 'dcam', { attention: 'channel' }],
  ['dcam, spatial', 'dcam', { attention: 'spatial' }],
  ['dcam, cbam', 'dcam', { attention: 'cbam' }],
  ['dcam, channel, KD summed', 'dcam', { attention: 'channel', kdReduction: 'sum' }],
];
const rt = await createDevice();
const teacher = findTeacher();
const rows: Array<Record<string, unknown>> = [];
const lines = ['| variant | category | image AUROC | pixel AUROC | AU-PRO@0.3 |', '|---|---|---:|---:|---:|'];
for (const [name, method, overrides] of variants) {
  const run = join(out, name.replace(/[^a-z0-9]+/gi, '-'));
  mkdirSync(run, { recursive: true });
  const t0 = performance.now();
  const r = await train(rt, { data, out: run, method, overrides, teacher: existsSync(teacher) ? teacher : null, randomTeacher: !existsSync(teacher), size, epochs, batch, seed: 0 });
  const { model } = await loadRun(rt, run);
  const ev = await evaluate(rt, model, { data, categories: r.config.categories, size });
  for (const c of ev.categories) {
    rows.push({ variant: name, ...c });
    lines.push(`| ${name} | ${c.category} | ${c.imageAUROC.toFixed(3)} | ${c.pixelAUROC.toFixed(3)} | ${c.auPRO.toFixed(3)} |`);
  }
  lines.push(`| ${name} | **mean** | **${ev.mean.imageAUROC.toFixed(3)}** | **${ev.mean.pixelAUROC.toFixed(3)}** | **${ev.mean.auPRO.toFixed(3)}** |`);
  rows.push({ variant: name, category: 'mean', ...ev.mean, trainSeconds: (performance.now() - t0) / 1000 });
  console.log(lines.slice(-ev.categories.length - 1).join('\n'));
}
const md = [`# Multi-class ablation`, '', `adapter: ${describeAdapter(rt)}; size ${size}, epochs ${epochs}, batch ${batch}`, '', ...lines, ''].join('\n');
writeFileSync(join(out, 'ablation.md'), md);
writeFileSync(join(out, 'ablation.json'), JSON.stringify(rows, null, 2));
console.log(`wrote ${join(out, 'ablation.md')}`);
rt.destroy();
