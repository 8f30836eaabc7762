/**
 * What the channel gates of a trained run do, on its good training images: how often they switch a channel
 * off, whether they route by category, and whether the channels they hide are the ones the raw student
 * (which the maps score) failed to learn. The issue-29 suspect: with attention on the loss side the
 * student is trained on gate(s) * s, so a channel the gate keeps near 0 gets almost no gradient to match
 * the teacher, yet the shipped maps score it.
 *
 * Per feature level: the gates' distribution; eta^2, the share of a channel's gate variance that lies
 * between categories (0: the same gates for every category; 1: gates set by the category alone); and the
 * raw map's mass by channel (the map is 1 - cos = sum over channels of (t/|t| - s/|s|)^2 / 2, so each
 * channel's share of a good image's map is well defined), split by the channel's mean gate.
 * BN runs in eval mode (running statistics, as the maps); training saw batch statistics.
 *
 *   npx tsx bench/gate-stats.ts --run DIR [--run DIR ...] [--images 48] [--report BASE] [--note TEXT]   (BASE.md, BASE.json)
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { discoverCategories, loadImage } from '../src/data/mvtec.js';
import { createDevice, describeAdapter } from '../src/index.js';
import { createAttention, loadAttention } from '../src/model/attention.js';
import { ResNetTrunk } from '../src/model/resnet.js';
import { readStateDict } from '../src/model/weights/index.js';
import { readRunConfig, runDataDir, runStudent } from '../src/train/run.js';
import { loadTeacher, runTeacherFile } from '../src/train/trainer.js';
import { commandLine } from './lib/report.js';

const { values: a } = parseArgs({ options: { run: { type: 'string', multiple: true, default: [] }, images: { type: 'string', default: '48' }, report: { type: 'string', default: 'runs/gate-stats' }, note: { type: 'string' } } });
const command = commandLine('bench/gate-stats.ts');
const perCategory = Number(a.images);
const BATCH = 16;
const LEVELS = ['layer1', 'layer2', 'layer3'];
const rt = await createDevice();

interface LevelStats {
  level: string;
  channels: number;
  /** The gates' mean (a common scale, which the cosine losses do not see). */
  meanGate: number;
  /** Of the relative gates (gate / the image's mean gate): their standard deviation, the shares below 0.25 and 0.5 and above 2. */
  relativeSpread: number;
  below025: number;
  below05: number;
  above2: number;
  /** Channels whose mean relative gate over all images is below 0.5 (weighted at under half the average in training). */
  hiddenChannels: number;
  /** Mean over channels of the between-category share of the relative gate's variance. */
  eta2: number;
  /** The hidden channels' share of the raw map's mass on good images (against their share of channels). */
  hiddenMapShare: number;
  /** Correlation over channels of the mean relative gate with the channel's share of the map (null: the gates are constant). */
  gateMapCorrelation: number | null;
}

const mean = (v: readonly number[]) => v.reduce((s, x) => s + x, 0) / v.length;
function correlation(x: number[], y: number[]): number {
  const [mx, my] = [mean(x), mean(y)];
  let [sxy, sxx, syy] = [0, 0, 0];
  for (let i = 0; i < x.length; i++) [sxy, sxx, syy] = [sxy + (x[i] - mx) * (y[i] - my), sxx + (x[i] - mx) ** 2, syy + (y[i] - my) ** 2];
  return sxy / Math.sqrt(sxx * syy);
}

const report: Array<{ run: string; attention: string; lr: number; categories: string[]; levels: LevelStats[] }> = [];
for (const run of a.run!) {
  const config = readRunConfig(run);
  const m = config.method;
  if (m.attention !== 'channel' && m.attention !== 'cbam') throw new Error(`${run}: no channel gates (attention ${m.attention})`);
  const blocks = createAttention(rt, m.attention, 0, m.reduction);
  const file = join(run, 'attention.safetensors');
  loadAttention(blocks, readStateDict(readFileSync(file), file), file);
  const s = runStudent(run);
  const student = ResNetTrunk.fromStateDict(rt, readStateDict(s.bytes, s.file), s.file, false);
  student.setTraining(false);
  const teacher = await loadTeacher(rt, runTeacherFile(config), config.seed);
  const cats = discoverCategories(runDataDir(config, run), config.categories);
  // per level: gates[image][channel] and the map's mass per channel, summed over images
  const gates: number[][][] = LEVELS.map(() => []);
  const raw: number[][] = LEVELS.map(() => []);
  const mapMass: Float64Array[] = [];
  const catOf: number[] = [];
  for (const [ci, cat] of cats.entries()) {
    const paths = [...cat.train].sort().slice(0, perCategory);
    for (let b = 0; b < paths.length; b += BATCH) {
      const chunk = paths.slice(b, b + BATCH);
      const S = config.size;
      const x = new Float32Array(chunk.length * 3 * S * S);
      chunk.forEach((p, i) => loadImage(p, S, x, i * 3 * S * S));
      const got = await rt.tidyAsync(async () => {
        const input = rt.tensor(x, [chunk.length, 3, S, S]);
        return rt.noGrad(() => {
          const fs = student.forward(input);
          const ft = teacher.forward(input);
          return fs.map((f, k) => ({ s: f, t: ft[k], g: blocks[k].attend(f).gates[0] }));
        });
      }).then((levels) => Promise.all(levels.map(async (l) => ({ s: await l.s.read(), t: await l.t.read(), g: await l.g.read(), shape: l.s.shape, dispose: () => [l.s, l.t, l.g].forEach((u) => u.dispose()) }))));
      for (const [k, l] of got.entries()) {
        const [N, C, H, W] = l.shape;
        const P = H * W;
        mapMass[k] ??= new Float64Array(C);
        for (let n = 0; n < N; n++) {
          // relative to the image's mean gate: a cosine is blind to a common scale, only the gates' ratios matter
          const g = Array.from(l.g.subarray(n * C, (n + 1) * C));
          const gm = mean(g);
          gates[k].push(g.map((v) => v / gm));
          raw[k].push(gm);
          // (t/|t| - s/|s|)^2 per channel at each position, as the map's L2 form
          for (let p = 0; p < P; p++) {
            let [nt, ns] = [0, 0];
            for (let c = 0; c < C; c++) {
              const i = (n * C + c) * P + p;
              [nt, ns] = [nt + l.t[i] ** 2, ns + l.s[i] ** 2];
            }
            [nt, ns] = [Math.sqrt(nt) || 1, Math.sqrt(ns) || 1];
            for (let c = 0; c < C; c++) {
              const i = (n * C + c) * P + p;
              mapMass[k][c] += (l.t[i] / nt - l.s[i] / ns) ** 2;
            }
          }
        }
        l.dispose();
      }
      for (let n = 0; n < chunk.length; n++) catOf.push(ci);
    }
  }
  const levels: LevelStats[] = gates.map((g, k) => {
    const C = g[0].length;
    const all = g.flat();
    const share = (f: (v: number) => boolean) => all.filter(f).length / all.length;
    const channelMean = Array.from({ length: C }, (_, c) => mean(g.map((row) => row[c])));
    const sd = Math.sqrt(mean(all.map((v) => (v - 1) ** 2)));
    // eta^2 per channel: between-category sum of squares over the total
    const byCategory = cats.map((_, ci) => g.filter((_, i) => catOf[i] === ci)).filter((rows) => rows.length);
    const eta = Array.from({ length: C }, (_, c) => {
      const mu = channelMean[c];
      let total = 0;
      let between = 0;
      for (const rows of byCategory) {
        const mine = rows.map((row) => row[c]);
        between += mine.length * (mean(mine) - mu) ** 2;
        total += mine.reduce((s, v) => s + (v - mu) ** 2, 0);
      }
      return total > 0 ? between / total : 0;
    });
    const massTotal = mapMass[k].reduce((s, v) => s + v, 0);
    const massShare = Array.from(mapMass[k], (v) => v / massTotal);
    const hidden = channelMean.map((v) => v < 0.5);
    return {
      level: LEVELS[k], channels: C, meanGate: mean(raw[k]), relativeSpread: sd,
      below025: share((v) => v < 0.25), below05: share((v) => v < 0.5), above2: share((v) => v > 2),
      hiddenChannels: hidden.filter(Boolean).length, eta2: mean(eta),
      hiddenMapShare: massShare.filter((_, c) => hidden[c]).reduce((s, v) => s + v, 0),
      gateMapCorrelation: sd > 1e-6 ? correlation(channelMean, massShare) : null,
    };
  });
  report.push({ run: run.split('/').filter(Boolean).pop()!, attention: m.attention, lr: m.lr, categories: cats.map((c) => c.name), levels });
  for (const b of blocks) for (const p of b.parameters()) p.dispose();
  student.dispose();
  teacher.dispose();
}

const pct = (v: number) => `${(100 * v).toFixed(1)}%`;
const lines = [
  '| run | level | channels | mean gate | relative gate sd | < 0.25 | < 0.5 | > 2 | channels hidden (mean relative gate < 0.5) | their share of the good map | gate-map correlation | eta^2 (by category) |',
  '|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  ...report.flatMap((r) => r.levels.map((l) => `| ${r.run} | ${l.level} | ${l.channels} | ${l.meanGate.toFixed(3)} | ${l.relativeSpread.toFixed(3)} | ${pct(l.below025)} | ${pct(l.below05)} | ${pct(l.above2)} | ${l.hiddenChannels} (${pct(l.hiddenChannels / l.channels)}) | ${pct(l.hiddenMapShare)} | ${l.gateMapCorrelation === null ? 'n/a' : l.gateMapCorrelation.toFixed(2)} | ${l.eta2.toFixed(3)} |`)),
];
const md = [
  '# Channel gates of trained runs on their good training images',
  '',
  `Adapter: ${describeAdapter(rt)}. Command: \`${command}\`. Up to ${perCategory} training images per category (sorted by name), BN in eval mode.`,
  '',
  ...lines,
  '',
  ...(a.note ? [a.note, ''] : []),
].join('\n');
mkdirSync(dirname(a.report!), { recursive: true });
writeFileSync(`${a.report}.md`, md);
writeFileSync(`${a.report}.json`, JSON.stringify({ adapter: describeAdapter(rt), command, imagesPerCategory: perCategory, runs: report }, null, 2));
console.log(md);
rt.destroy();
