/**
 * The five-category report (issue 29) from a grid's results (never in CI): reads DIR/rows.jsonl (written
 * by bench/ablation.ts through scripts/ablation-grid.sh) and DIR/grid-log.txt, and writes REPORT.md and
 * REPORT.json:
 *   1. the multi-class drop: one model per category vs one for all, per category and on the mean, paired
 *      by seed, and the convergence check (stfpm at twice the epochs, one-class and one model for all);
 *   2. every variant's mean over the categories, its gain over multi-class STFPM paired by seed (mean ±
 *      sample sd over seeds), and whether it clears the bar (gain > 2 x the larger of the two seed spreads);
 *      the chain from STFPM to DCAM one factor at a time;
 *   2b. each change against the configuration it changes (attention kinds vs the dcam preset, the
 *      search at lr 0.4 vs dcam at lr 0.4), paired by seed;
 *   3. the budget: training seconds per run, wall-clock per grid line, and what else shared the machine.
 * Every variant is scored with its own map aggregation and with the other one (a column each).
 *
 *   npx tsx bench/five-categories.ts --results bench/reports/2026-12-06-five-categories \
 *       --report bench/reports/2026-12-06-five-categories-lavapipe [--epochs 20]
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { Row } from './ablation.js';
import { VARIANTS, variantOf } from './lib/variants.js';
import { commandLine } from './lib/report.js';

const { values: a } = parseArgs({
  options: {
    results: { type: 'string' }, report: { type: 'string' }, epochs: { type: 'string', default: '20' }, note: { type: 'string', default: '' },
    categories: { type: 'string', default: 'bottle,kolektorsdd,screw,elpv_mono,elpv_poly' },
  },
});
const command = commandLine('bench/five-categories.ts');
if (!a.results || !a.report) throw new Error('give --results DIR and --report PATH (without extension)');
const allRows = readFileSync(join(a.results, 'rows.jsonl'), 'utf8').split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l) as Row);
const log = existsSync(join(a.results, 'grid-log.txt')) ? readFileSync(join(a.results, 'grid-log.txt'), 'utf8') : '';
const epochs = Number(a.epochs);
const categories = a.categories!.split(',');
const sameSet = (x: readonly string[], y: readonly string[]) => x.length === y.length && [...x].sort().join() === [...y].sort().join();
// experiments 1-3: the models of these categories (one-class, or multi-class on exactly this set)
const rows = allRows.filter((r) => (r.setting === 'one-class' ? categories.includes(r.category) : sameSet(r.trainedOn, categories)));
const masked = categories.filter((c) => rows.some((r) => r.category === c && r.pixelAUROC !== null));

const mean = (v: number[]) => v.reduce((s, x) => s + x, 0) / v.length;
const sd = (v: number[]) => (v.length > 1 ? Math.sqrt(v.reduce((s, x) => s + (x - mean(v)) ** 2, 0) / (v.length - 1)) : NaN);
const pm = (v: number[], digits = 3) => (v.length === 0 ? '–' : v.length > 1 ? `${mean(v).toFixed(digits)} ± ${sd(v).toFixed(digits)}` : mean(v).toFixed(digits));
const signed = (v: number[]) => (v.length === 0 ? '–' : `${mean(v) >= 0 ? '+' : ''}${mean(v).toFixed(3)}${v.length > 1 ? ` ± ${sd(v).toFixed(3)}` : ''}`);

type Metric = 'imageAUROC' | 'pixelAUROC' | 'auPRO';
interface Sel { variant: string; setting: Row['setting']; epochs?: number; own?: boolean; aggregation?: Row['aggregation'] }
const pick = (s: Sel) => rows.filter((r) => r.variant === s.variant && r.setting === s.setting && r.epochs === (s.epochs ?? epochs) && (s.own === undefined || r.own === s.own) && (s.aggregation === undefined || r.aggregation === s.aggregation));
/** Seeds with every category present. */
const seedsOf = (rs: Row[], cats = categories) => [...new Set(rs.map((r) => r.seed))].filter((s) => cats.every((c) => rs.some((r) => r.seed === s && r.category === c))).sort();
/**
 * Per seed: the value for one category, the mean over the given categories, or with 'mean' the mean over the
 * report's categories (image metric: all; pixel: the masked ones).
 */
function perSeed(rs: Row[], m: Metric, category: string | readonly string[], seeds: number[]): number[] {
  return seeds.map((s) => {
    const over = typeof category !== 'string' ? category : category !== 'mean' ? [category] : m === 'imageAUROC' ? categories : masked;
    return mean(rs.filter((r) => r.seed === s && over.includes(r.category)).map((r) => r[m] ?? NaN));
  });
}
/** Per seed: rs's value minus ref's (as perSeed), the same seeds on both sides. */
function pairedGain(rs: Row[], ref: Row[], m: Metric, category: string | readonly string[], seeds: number[]): number[] {
  const base = perSeed(ref, m, category, seeds);
  return perSeed(rs, m, category, seeds).map((x, i) => x - base[i]);
}

const md: string[] = [];
const json: Record<string, unknown> = { categories, masked, epochs };

// ---- 1. the multi-class drop
const multi = pick({ variant: 'stfpm', setting: 'multi-class', own: true });
const one = pick({ variant: 'stfpm', setting: 'one-class', own: true });
const paired = seedsOf(multi).filter((s) => seedsOf(one).includes(s));
md.push('## 1. Is there a multi-class drop? (stfpm, its own product map)', '');
md.push(`One model per category vs one model for all ${categories.length}, seeds ${paired.join(', ') || 'none yet'} (paired: drop = one-class − multi-class for the same seed). Image AUROC for every category; pixel AUROC and AU-PRO@0.3 where masks exist.`, '');
md.push('| category | one-class image | multi-class image | drop | one-class pixel | multi-class pixel | drop | one-class AU-PRO | multi-class AU-PRO | drop |', '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
const drop: Record<string, unknown> = {};
for (const c of [...categories, 'mean']) {
  const cells: string[] = [];
  const rec: Record<string, unknown> = {};
  for (const m of ['imageAUROC', 'pixelAUROC', 'auPRO'] as Metric[]) {
    if (c !== 'mean' && m !== 'imageAUROC' && !masked.includes(c)) {
      cells.push('n/a', 'n/a', 'n/a');
      continue;
    }
    const o = perSeed(one, m, c, paired);
    const mu = perSeed(multi, m, c, paired);
    const d = o.map((v, i) => v - mu[i]);
    cells.push(pm(o), pm(mu), signed(d));
    rec[m] = { oneClass: o, multiClass: mu, drop: d };
  }
  drop[c] = rec;
  md.push(`| ${c === 'mean' ? '**mean**' : c} | ${cells.join(' | ')} |`);
}
json.drop = { seeds: paired, perCategory: drop };
// convergence: stfpm at twice the epochs minus the same seed at the grid's epochs, one-class and one model for all
const convergence: Record<string, unknown> = {};
for (const [setting, at20] of [['one-class', one], ['multi-class', multi]] as const) {
  const e2 = pick({ variant: 'stfpm', setting, own: true, epochs: epochs * 2 });
  const conv = seedsOf(e2);
  if (!conv.length) continue;
  md.push('', `Convergence, ${setting} stfpm: ${epochs * 2} epochs minus ${epochs} epochs, seed(s) ${conv.join(', ')}, beside the seed spread (sd over seeds at ${epochs} epochs):`, '', '| category | image AUROC change | seed sd (image) |', '|---|---:|---:|');
  const rec: Record<string, unknown> = {};
  for (const c of [...categories, 'mean']) {
    const d = pairedGain(e2, at20, 'imageAUROC', c, conv);
    const spread = sd(perSeed(at20, 'imageAUROC', c, seedsOf(at20)));
    md.push(`| ${c} | ${signed(d)} | ${Number.isFinite(spread) ? spread.toFixed(3) : '–'} |`);
    rec[c] = { change: d, seedSd: spread };
  }
  convergence[setting] = { seeds: conv, epochs: [epochs, epochs * 2], perCategory: rec };
}
json.convergence = convergence;

// ---- 2. variants against multi-class stfpm
const base = pick({ variant: 'stfpm', setting: 'multi-class', own: true });
const variants = [...new Set(rows.filter((r) => r.setting === 'multi-class' && r.epochs === epochs).map((r) => r.variant))];
md.push('', '## 2-3. Variants, one model for all categories', '');
md.push(`Mean over the categories (image AUROC over all ${categories.length}; pixel AUROC and AU-PRO over ${masked.join(', ')}), mean ± sample sd over seeds; gain = variant − stfpm (its own product map) for the same seed. A variant wins if its gain in mean image AUROC exceeds twice the larger of the two seed spreads. "own map": the variant's preset aggregation; "other map": the same trained models scored with the other one.`, '');
md.push('| variant | what | seeds | image AUROC (own map) | gain | image AUROC (other map) | gain | pixel AUROC (own) | AU-PRO (own) | wins? |', '|---|---|---:|---:|---:|---:|---:|---:|---:|---|');
const table: Array<Record<string, unknown>> = [];
/** A variant's description (its spec may carry @lrX), or nothing for a name no longer defined. */
const noteOf = (v: string) => {
  try {
    return variantOf(v).note;
  } catch {
    return '';
  }
};
const order = Object.keys(VARIANTS).filter((v) => variants.includes(v)).concat(variants.filter((v) => !VARIANTS[v]));
for (const v of order) {
  const own = pick({ variant: v, setting: 'multi-class', own: true });
  const other = pick({ variant: v, setting: 'multi-class', own: false });
  const seeds = seedsOf(own);
  const both = seeds.filter((s) => seedsOf(base).includes(s));
  const img = perSeed(own, 'imageAUROC', 'mean', seeds);
  const imgOther = perSeed(other, 'imageAUROC', 'mean', seedsOf(other));
  const gain = pairedGain(own, base, 'imageAUROC', 'mean', both);
  const gainOther = both.filter((s) => seedsOf(other).includes(s)).map((s) => perSeed(other, 'imageAUROC', 'mean', [s])[0] - perSeed(base, 'imageAUROC', 'mean', [s])[0]);
  const spread = Math.max(sd(img), sd(perSeed(base, 'imageAUROC', 'mean', seedsOf(base))));
  const bar = 2 * spread;
  const wins = v === 'stfpm' ? '(baseline)' : both.length < 2 ? 'needs 2+ seeds' : mean(gain) > bar ? `**yes** (bar ${bar.toFixed(3)})` : `no (bar ${bar.toFixed(3)})`;
  md.push(`| ${v} | ${noteOf(v)} | ${seeds.length} | ${pm(img)} | ${v === 'stfpm' ? '' : signed(gain)} | ${pm(imgOther)} | ${signed(gainOther)} | ${pm(perSeed(own, 'pixelAUROC', 'mean', seeds))} | ${pm(perSeed(own, 'auPRO', 'mean', seeds))} | ${wins} |`);
  table.push({ variant: v, note: noteOf(v), seeds, imageAUROC: img, imageAUROCOtherMap: imgOther, gain, gainOtherMap: gainOther, bar, pixelAUROC: perSeed(own, 'pixelAUROC', 'mean', seeds), auPRO: perSeed(own, 'auPRO', 'mean', seeds) });
}
json.variants = table;

// localisation: pixel AUROC and AU-PRO against stfpm scored with the same map (the sum map alone moves them:
// stfpm's own models localise better with it), paired by seed, with the image rule's bar
md.push('', `Localisation (pixel AUROC and AU-PRO@0.3 over ${masked.join(', ')}), each map against stfpm's models scored with the same map, paired by seed; "beyond" when the gain exceeds twice the larger seed spread (the image rule, applied to these metrics):`, '', '| variant | map | seeds | pixel AUROC | gain | beyond? | AU-PRO | gain | beyond? |', '|---|---|---:|---:|---:|---|---:|---:|---|');
const localisation: Array<Record<string, unknown>> = [];
for (const v of order) {
  for (const g of ['product', 'sum'] as const) {
    const mine = pick({ variant: v, setting: 'multi-class', aggregation: g });
    const ref = pick({ variant: 'stfpm', setting: 'multi-class', aggregation: g });
    const seeds = seedsOf(mine);
    if (!seeds.length) continue;
    const both = seeds.filter((x) => seedsOf(ref).includes(x));
    const cells: string[] = [];
    const rec: Record<string, unknown> = { variant: v, aggregation: g, seeds };
    for (const m of ['pixelAUROC', 'auPRO'] as Metric[]) {
      const vals = perSeed(mine, m, 'mean', seeds);
      if (v === 'stfpm') {
        cells.push(pm(vals), '', '');
        rec[m] = { values: vals };
        continue;
      }
      const gain = pairedGain(mine, ref, m, 'mean', both);
      const bar = 2 * Math.max(sd(vals), sd(perSeed(ref, m, 'mean', seedsOf(ref))));
      const verdict = both.length < 2 ? 'needs 2+ seeds' : Math.abs(mean(gain)) > bar ? `**yes** (${mean(gain) > 0 ? 'ahead' : 'behind'}; bar ${bar.toFixed(3)})` : `no (bar ${bar.toFixed(3)})`;
      cells.push(pm(vals), signed(gain), verdict);
      rec[m] = { values: vals, gain, bar };
    }
    md.push(`| ${v} | ${g}${mine[0].own ? ' (own)' : ''} | ${seeds.length} | ${cells.join(' | ')} |`);
    localisation.push(rec);
  }
}
json.localisation = localisation;

md.push('', 'Per category (image AUROC, own map, mean ± sd over seeds):', '', `| variant | ${categories.join(' | ')} |`, `|---|${categories.map(() => '---:').join('|')}|`);
for (const v of order) {
  const own = pick({ variant: v, setting: 'multi-class', own: true });
  const seeds = seedsOf(own);
  md.push(`| ${v} | ${categories.map((c) => pm(perSeed(own, 'imageAUROC', c, seeds))).join(' | ')} |`);
}

// the chains from STFPM to DCAM one factor at a time: at DCAM's lr, and at STFPM's step size (CD's gradient is half the L2's)
const chains = [
  { title: 'at DCAM\'s lr (0.1)', steps: ['stfpm', 'stfpm-lr0.05', 'dcam-cd', 'dcam-none', 'dcam-channel'] },
  { title: 'at STFPM\'s step size (lr 0.8 for CD)', steps: ['stfpm', 'dcam-cd-lr0.8', 'dcam-none-lr0.8', 'dcam-lr0.8', 'dcam-att0.1@lr0.8'] },
];
json.chains = [];
for (const { title, steps } of chains) {
  const chain = steps.filter((v) => variants.includes(v));
  if (chain.length < 2) continue;
  md.push('', `From STFPM to DCAM one factor at a time, ${title} (mean image AUROC, each step paired by seed with the one before; the "sum map" column scores the same models with the sum of the levels' maps):`, '', '| step | changes | image AUROC, product map | step | image AUROC, sum map | step |', '|---|---|---:|---:|---:|---:|');
  const agg = (v: string, g: Row['aggregation']) => pick({ variant: v, setting: 'multi-class', aggregation: g });
  const rec: Array<Record<string, unknown>> = [];
  chain.forEach((v, i) => {
    const cells = (['product', 'sum'] as const).map((g) => {
      const cur = agg(v, g);
      const seeds = seedsOf(cur);
      const value = perSeed(cur, 'imageAUROC', 'mean', seeds);
      if (i === 0) return { value, step: [] as number[] };
      const prev = agg(chain[i - 1], g);
      const both = seeds.filter((s) => seedsOf(prev).includes(s));
      return { value, step: perSeed(cur, 'imageAUROC', 'mean', both).map((x, k) => x - perSeed(prev, 'imageAUROC', 'mean', both)[k]) };
    });
    md.push(`| ${v} | ${noteOf(v)} | ${pm(cells[0].value)} | ${i ? signed(cells[0].step) : ''} | ${pm(cells[1].value)} | ${i ? signed(cells[1].step) : ''} |`);
    rec.push({ variant: v, product: cells[0], sum: cells[1] });
  });
  (json.chains as unknown[]).push({ title, steps: rec });
}

// each change against the configuration it changes, at the same lr (paired by seed): the attention's kind and
// placement against the dcam preset, the search (experiment 3, at lr 0.4) against dcam at lr 0.4
const contrasts = [
  { title: 'the attention\'s kind, placement and KD reduction, against the dcam preset (lr 0.1)', base: 'dcam-channel', members: ['dcam-spatial', 'dcam-cbam', 'dcam-channel-inline', 'dcam-channel-kdsum', 'dcam-att0.1'] },
  { title: 'the search at lr 0.4, against dcam at lr 0.4', base: 'dcam-lr0.4', members: ['dcam-lr0.4-att0.1', ...variants.filter((v) => v.endsWith('@lr0.4'))] },
  { title: 'STFPM\'s own variants, against stfpm', base: 'stfpm', members: ['stfpm-balanced', 'stfpm-channel'] },
];
json.contrasts = [];
for (const { title, base: b, members } of contrasts) {
  const present = members.filter((v) => variants.includes(v));
  if (!present.length || !variants.includes(b)) continue;
  const ref = pick({ variant: b, setting: 'multi-class', own: true });
  const refSd = sd(perSeed(ref, 'imageAUROC', 'mean', seedsOf(ref)));
  md.push('', `Each change against ${b}, ${title} (mean image AUROC, own map; change paired by seed; ${b}: ${pm(perSeed(ref, 'imageAUROC', 'mean', seedsOf(ref)))} over seeds ${seedsOf(ref).join(', ')}):`, '', `| variant | changes | seeds | image AUROC | change vs ${b} |${b === 'stfpm' ? '' : ' vs stfpm |'}`, `|---|---|---:|---:|---:|${b === 'stfpm' ? '' : '---:|'}`);
  const rec: Array<Record<string, unknown>> = [];
  for (const v of present) {
    const own = pick({ variant: v, setting: 'multi-class', own: true });
    const seeds = seedsOf(own);
    const paired = seeds.filter((x) => seedsOf(ref).includes(x));
    const change = pairedGain(own, ref, 'imageAUROC', 'mean', paired);
    const withBase = seeds.filter((x) => seedsOf(base).includes(x));
    const vsStfpm = pairedGain(own, base, 'imageAUROC', 'mean', withBase);
    md.push(`| ${v} | ${noteOf(v)} | ${seeds.length} | ${pm(perSeed(own, 'imageAUROC', 'mean', seeds))} | ${signed(change)} |${b === 'stfpm' ? '' : ` ${signed(vsStfpm)} |`}`);
    rec.push({ variant: v, seeds, change, vsStfpm });
  }
  (json.contrasts as unknown[]).push({ title, base: b, baseSd: refSd, rows: rec });
}

// ---- more categories: multi-class stfpm on larger sets (the five plus synthetic ones)
const larger = [...new Map(allRows.filter((r) => r.setting === 'multi-class' && r.variant === 'stfpm' && r.epochs === epochs && r.trainedOn.length > categories.length && categories.every((c) => r.trainedOn.includes(c))).map((r) => [[...r.trainedOn].sort().join(), r.trainedOn])).values()];
const extended: Array<Record<string, unknown>> = [];
for (const set of larger) {
  const big = allRows.filter((r) => r.setting === 'multi-class' && r.variant === 'stfpm' && r.own && r.epochs === epochs && sameSet(r.trainedOn, set));
  const single = allRows.filter((r) => r.setting === 'one-class' && r.variant === 'stfpm' && r.own && r.epochs === epochs);
  const seeds = seedsOf(big, set);
  md.push('', `## 1b. More categories: one stfpm model for ${set.length} (the ${categories.length} above and ${set.length - categories.length} synthetic)`, '');
  md.push(`Image AUROC, seeds ${seeds.join(', ') || 'none complete yet'}; drop = one-class − this model, paired by seed (one-class models are the same runs as above).`, '');
  md.push(`| category | one-class | ${categories.length}-category model | ${set.length}-category model | drop (one-class − ${set.length}) | change (${categories.length} → ${set.length}) |`, '|---|---:|---:|---:|---:|---:|');
  for (const c of [...set, 'mean (the five)', 'mean (all)']) {
    const over = c === 'mean (the five)' ? categories : c === 'mean (all)' ? set : [c];
    const o = perSeed(single, 'imageAUROC', over, seeds);
    const m5 = over.every((x) => categories.includes(x)) ? perSeed(multi, 'imageAUROC', over, seeds) : [];
    const mN = perSeed(big, 'imageAUROC', over, seeds);
    md.push(`| ${c} | ${pm(o)} | ${m5.length ? pm(m5) : '–'} | ${pm(mN)} | ${signed(o.map((v, i) => v - mN[i]))} | ${m5.length ? signed(mN.map((v, i) => v - m5[i])) : '–'} |`);
    extended.push({ set, category: c, seeds, oneClass: o, fiveCategory: m5, larger: mN });
  }
}
json.moreCategories = extended;

// ---- variants on the larger sets: does DCAM gain where one model for more categories loses something?
const onLarger: Array<Record<string, unknown>> = [];
for (const set of larger) {
  const onSet = allRows.filter((r) => r.setting === 'multi-class' && r.own && r.epochs === epochs && sameSet(r.trainedOn, set));
  const setVariants = [...new Set(onSet.map((r) => r.variant))];
  if (setVariants.length < 2) continue;
  const ref = onSet.filter((r) => r.variant === 'stfpm');
  md.push('', `Variants on the ${set.length}-category set (one model, own map; image AUROC over the ${categories.length} categories above and over all; "vs stfpm": paired by seed with stfpm on the same set; "5 → ${set.length}": the same variant's change from its ${categories.length}-category model, paired by seed):`, '', `| variant | seeds | mean (the ${categories.length}) | vs stfpm | mean (all ${set.length}) | vs stfpm | ${categories.length} → ${set.length} |`, '|---|---:|---:|---:|---:|---:|---:|');
  // where a gain on the set comes from: each real category against stfpm on the same set and seed (a table below)
  const perCategory = [`Per category on the ${set.length}-category set (image AUROC; stfpm's row is its value, the others their gain over it, paired by seed):`, '', `| variant | seeds | ${categories.join(' | ')} |`, `|---|---:|${categories.map(() => '---:|').join('')}`];
  for (const v of Object.keys(VARIANTS).filter((x) => setVariants.includes(x)).concat(setVariants.filter((x) => !VARIANTS[x]))) {
    const mine = onSet.filter((r) => r.variant === v);
    const seeds = seedsOf(mine, set);
    const both = seeds.filter((x) => seedsOf(ref, set).includes(x));
    const five = pick({ variant: v, setting: 'multi-class', own: true });
    const withFive = seeds.filter((x) => seedsOf(five).includes(x));
    const real = perSeed(mine, 'imageAUROC', 'mean', seeds);
    const all = perSeed(mine, 'imageAUROC', set, seeds);
    const gainReal = pairedGain(mine, ref, 'imageAUROC', 'mean', both);
    const gainAll = pairedGain(mine, ref, 'imageAUROC', set, both);
    const change = pairedGain(mine, five, 'imageAUROC', 'mean', withFive);
    md.push(`| ${v} | ${seeds.length} | ${pm(real)} | ${v === 'stfpm' ? '' : signed(gainReal)} | ${pm(all)} | ${v === 'stfpm' ? '' : signed(gainAll)} | ${signed(change)} |`);
    const byCategory = categories.map((c) => (v === 'stfpm' ? perSeed(ref, 'imageAUROC', c, both) : pairedGain(mine, ref, 'imageAUROC', c, both)));
    perCategory.push(`| ${v} | ${both.length} | ${byCategory.map((x) => (v === 'stfpm' ? pm(x) : signed(x))).join(' | ')} |`);
    onLarger.push({ set, variant: v, seeds, meanReal: real, meanAll: all, gainReal, gainAll, changeFromFive: change, perCategory: Object.fromEntries(categories.map((c, i) => [c, byCategory[i]])) });
  }
  md.push('', ...perCategory);
}
json.variantsOnLargerSets = onLarger;

// ---- budget
const runs = new Map<string, number>();
for (const r of allRows) runs.set(`${r.variant}|${r.setting}|${r.seed}|${r.epochs}|${[...r.trainedOn].sort().join()}`, r.trainSeconds);
const trainHours = [...runs.values()].reduce((s, x) => s + x, 0) / 3600;
const resumed = new Set(allRows.filter((r) => r.resumedAtStep !== undefined).map((r) => `${r.variant}|${r.setting}|${r.seed}|${r.epochs}|${[...r.trainedOn].sort().join()}`));
const starts = [...log.matchAll(/^(\S+) start \[(.*?)\]/gm)];
const ends = [...log.matchAll(/^(\S+) end {3}\[(.*?)\]/gm)];
let wall = 0;
for (const e of ends) {
  const s = starts.filter((x) => x[2] === e[2] && x[1] < e[1]).at(-1);
  if (s) wall += (Date.parse(e[1]) - Date.parse(s[1])) / 3600e3;
}
const pauses = [...log.matchAll(/^(\S+) paused.*$/gm)].map((m) => m[0]);
md.push('', '## Budget and what shared the machine', '');
md.push(`${runs.size} trained models, ${trainHours.toFixed(2)} h of training (their own clocks, evaluation not included${resumed.size ? `; ${resumed.size} resumed after a kill, their earlier part not counted` : ''}); ${wall.toFixed(2)} h of wall-clock over the grid lines that finished (pauses included). The grid ran detached (scripts/ablation-grid.sh) on the 2 cores while other work went on beside it: the test suite and builds at times, and ${pauses.length} pause(s) for timing runs that needed a quiet machine:`, '', ...pauses.map((p) => `- ${p}`));
if (a.note) md.push('', a.note);
json.budget = { models: runs.size, trainHours, resumedRuns: resumed.size, gridWallHours: wall, pauses };

const header = ['# One model for five real categories: the multi-class drop, DCAM variants and the search', '', `Generated by \`${command}\` from \`${join(a.results, 'rows.jsonl')}\` (${allRows.length} rows). Categories: ${categories.join(', ')}. ${epochs} epochs (the convergence check ${epochs * 2}), sizes and batches as recorded in the rows: ${[...new Set(rows.map((r) => `${r.size} px, batch ${r.batch}`))].join('; ')}.`, ''];
writeFileSync(`${a.report}.md`, [...header, ...md, ''].join('\n'));
writeFileSync(`${a.report}.json`, JSON.stringify({ generatedFrom: join(a.results, 'rows.jsonl'), ...json }, null, 2));
console.log([...header, ...md].join('\n'));
