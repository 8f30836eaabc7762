/**
 * One threshold for every category vs one per category, and the routing that picks a category for an
 * image nobody named (never in CI). For each multi-class run: every test image's score (the run's own
 * map) and teacher embedding, the categories' centroids from their training images (as `dcam eval`
 * sets them), then decisions three ways:
 *   global   one F1-optimal threshold over all categories' images pooled (what a run without per-category
 *            thresholds does);
 *   own      each category's own F1-optimal threshold, the image's true category given (`--category`);
 *   routed   each category's own threshold, the category chosen by the nearest centroid (no category given).
 * Thresholds are fitted on one half of each category's test images and judged on the other, both ways
 * round (2-fold, split by position in the sorted list), so no decision is scored on the images it was
 * fitted to. Per category: F1, the false-positive rate on its good images, the recall of its defects, and
 * the routing accuracy.
 *
 *   npx tsx bench/category-thresholds.ts --run RUN [--run RUN2 ...] [--out DIR] [--name NAME]
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createDevice, describeAdapter } from '../src/index.js';
import { discoverCategories, readImageFile } from '../src/data/mvtec.js';
import { nearestCategory } from '../src/detector.js';
import { centroidOf } from '../src/eval/evaluate.js';
import { f1OptimalThreshold } from '../src/eval/thresholds.js';
import { loadDetector } from '../src/node.js';
import type { CategoryThresholds } from '../src/train/run-config.js';
import { readRunConfig, runDataDir } from '../src/train/run.js';

const { values: a } = parseArgs({ options: { run: { type: 'string', multiple: true, default: [] }, out: { type: 'string', default: 'bench/results' }, name: { type: 'string', default: 'category-thresholds' } } });
if (a.run!.length === 0) throw new Error('give --run RUN (a multi-class run; repeatable)');

interface Image { category: string; label: number; score: number; routed: string; fold: number }
type Way = 'global' | 'own' | 'routed';
const WAYS: Way[] = ['global', 'own', 'routed'];
interface CategoryRow { category: string; images: number; defects: number; routing: number; f1: Record<Way, number>; fpr: Record<Way, number>; recall: Record<Way, number> }

const rt = await createDevice();

async function study(runDir: string): Promise<{ run: string; method: string; categories: CategoryRow[]; confusion: Record<string, Record<string, number>> }> {
  const config = readRunConfig(runDir);
  const cats = discoverCategories(runDataDir(config, runDir), config.categories);
  const det = await loadDetector({ run: runDir, runtime: rt });
  try {
    const per: Record<string, CategoryThresholds> = {};
    for (const c of cats) per[c.name] = { centroid: await centroidOf(det, c.train) } as CategoryThresholds;
    const images: Image[] = [];
    for (const c of cats) {
      const test = [...c.test].sort((x, y) => (x.path < y.path ? -1 : 1));
      for (let i = 0; i < test.length; i += 8) {
        const chunk = test.slice(i, i + 8);
        const results = await det.inspectPrepared(chunk.map((s) => det.prepare(readImageFile(s.path), s.path)));
        results.forEach((r, j) => images.push({ category: c.name, label: chunk[j].label, score: r.score, routed: nearestCategory(r.embedding, per)!, fold: (i + j) % 2 }));
      }
    }
    // decisions on each fold by thresholds fitted on the other
    const decided = new Map<Image, Record<Way, boolean>>();
    for (const fold of [0, 1]) {
      const fit = images.filter((im) => im.fold !== fold);
      const judge = images.filter((im) => im.fold === fold);
      const fitted = (xs: Image[]) => (xs.some((x) => x.label) ? f1OptimalThreshold(xs.map((x) => x.score), xs.map((x) => x.label)).threshold : Infinity);
      const global = fitted(fit);
      const own = Object.fromEntries(cats.map((c) => [c.name, fitted(fit.filter((x) => x.category === c.name))]));
      for (const im of judge) decided.set(im, { global: im.score >= global, own: im.score >= own[im.category], routed: im.score >= own[im.routed] });
    }
    const confusion: Record<string, Record<string, number>> = {};
    const rows = cats.map((c) => {
      const mine = images.filter((im) => im.category === c.name);
      confusion[c.name] = Object.fromEntries(cats.map((o) => [o.name, mine.filter((im) => im.routed === o.name).length]));
      const stats = (way: Way) => {
        let [tp, fp, fn, goods] = [0, 0, 0, 0];
        for (const im of mine) {
          const flagged = decided.get(im)![way];
          if (im.label) flagged ? tp++ : fn++;
          else {
            goods++;
            if (flagged) fp++;
          }
        }
        return { f1: tp + fp + fn ? (2 * tp) / (2 * tp + fp + fn) : NaN, fpr: goods ? fp / goods : NaN, recall: tp + fn ? tp / (tp + fn) : NaN };
      };
      const s = Object.fromEntries(WAYS.map((w) => [w, stats(w)])) as Record<Way, { f1: number; fpr: number; recall: number }>;
      return {
        category: c.name, images: mine.length, defects: mine.filter((im) => im.label).length, routing: mine.filter((im) => im.routed === c.name).length / mine.length,
        f1: Object.fromEntries(WAYS.map((w) => [w, s[w].f1])) as Record<Way, number>,
        fpr: Object.fromEntries(WAYS.map((w) => [w, s[w].fpr])) as Record<Way, number>,
        recall: Object.fromEntries(WAYS.map((w) => [w, s[w].recall])) as Record<Way, number>,
      };
    });
    return { run: runDir, method: det.method.method, categories: rows, confusion };
  } finally {
    det.dispose();
  }
}

const results = [];
const lines: string[] = ['# One threshold for all categories vs one per category', '', `Adapter: ${describeAdapter(rt)}. Command: \`npx tsx bench/category-thresholds.ts ${process.argv.slice(2).join(' ')}\`.`, 'Thresholds F1-optimal, fitted on half of each category\'s test images and judged on the other half, both ways round. global: one threshold over all categories pooled; own: the category\'s threshold, its category given; routed: the category\'s threshold, the category chosen by the nearest training centroid of the teacher\'s pooled layer3 embedding.', ''];
const f = (x: number) => (Number.isFinite(x) ? x.toFixed(3) : 'n/a');
const mean = (xs: number[]) => xs.reduce((s, x) => s + x, 0) / xs.length;
for (const run of a.run!) {
  const r = await study(run);
  results.push(r);
  lines.push(`## ${run} (${r.method})`, '', '| category | images (defects) | routed right | F1 global | F1 own | F1 routed | FPR global | FPR own | FPR routed | recall global | recall own | recall routed |', '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const c of r.categories) lines.push(`| ${c.category} | ${c.images} (${c.defects}) | ${f(c.routing)} | ${WAYS.map((w) => f(c.f1[w])).join(' | ')} | ${WAYS.map((w) => f(c.fpr[w])).join(' | ')} | ${WAYS.map((w) => f(c.recall[w])).join(' | ')} |`);
  const m = (k: 'f1' | 'fpr' | 'recall', w: Way) => f(mean(r.categories.map((c) => c[k][w])));
  lines.push(`| **mean** | | **${f(mean(r.categories.map((c) => c.routing)))}** | ${WAYS.map((w) => `**${m('f1', w)}**`).join(' | ')} | ${WAYS.map((w) => `**${m('fpr', w)}**`).join(' | ')} | ${WAYS.map((w) => `**${m('recall', w)}**`).join(' | ')} |`, '');
  lines.push('Routing (rows: true category, columns: routed to):', '', `| | ${Object.keys(r.confusion).join(' | ')} |`, `|---|${Object.keys(r.confusion).map(() => '---:').join('|')}|`);
  for (const [k, row] of Object.entries(r.confusion)) lines.push(`| ${k} | ${Object.values(row).join(' | ')} |`);
  lines.push('');
  console.log(lines.join('\n'));
}
mkdirSync(a.out!, { recursive: true });
writeFileSync(join(a.out!, `${a.name}.md`), lines.join('\n'));
writeFileSync(join(a.out!, `${a.name}.json`), JSON.stringify({ adapter: describeAdapter(rt), command: `npx tsx bench/category-thresholds.ts ${process.argv.slice(2).join(' ')}`, results }, null, 2));
console.log(`wrote ${join(a.out!, `${a.name}.md`)} and .json`);
rt.destroy();
