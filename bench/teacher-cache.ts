/**
 * Epoch time with and without the teacher feature cache (train/teacher-cache.ts), never in CI: for each
 * size and method, `dcam train`'s loop through one epoch and into the second, the cache on (default
 * budgets) and off (0 and 0, the teacher runs every step). The first epoch is alike in both (decoding
 * every image, running the teacher); from the second on the cache copies the features instead.
 *
 *   npx tsx bench/teacher-cache.ts --data ../shared/data/mvtec --data ../shared/data --data ../shared/data/extra \
 *       --category bottle,kolektorsdd,screw,elpv_mono,elpv_poly [--sizes 64,128] [--methods stfpm,dcam] \
 *       [--batch 16] [--steps-after 20] [--out bench/reports/DATE-teacher-cache-lavapipe]
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createDevice, describeAdapter } from '../src/index.js';
import { discoverCategories } from '../src/data/mvtec.js';
import { findTeacher, train } from '../src/train/trainer.js';

const { values: a } = parseArgs({
  options: {
    data: { type: 'string', multiple: true, default: [] },
    category: { type: 'string', default: '' },
    sizes: { type: 'string', default: '64,128' },
    methods: { type: 'string', default: 'stfpm,dcam' },
    batch: { type: 'string', default: '16' },
    'steps-after': { type: 'string', default: '20' },
    note: { type: 'string', default: '' },
    out: { type: 'string' },
  },
});
const batch = Number(a.batch);
const categories = a.category ? a.category.split(',') : [];
const cats = discoverCategories(a.data!, categories);
const images = cats.reduce((s, c) => s + c.train.length, 0);
const perEpoch = Math.ceil(images / batch);
const rt = await createDevice();
const tmp = mkdtempSync(join(tmpdir(), 'dcam-teacher-cache-bench-'));

interface Case {
  size: number;
  method: 'stfpm' | 'dcam';
  cache: boolean;
  /** Seconds of the first epoch, and per step in the second (its full batches), median. */
  firstEpochSeconds: number;
  secondEpochStepMs: number;
  /** Second-epoch time: the median step times the steps of an epoch. */
  epochSeconds: number;
  lossesAgree?: boolean;
}
const cases: Case[] = [];
const median = (v: number[]) => [...v].sort((x, y) => x - y)[Math.floor(v.length / 2)];

for (const size of a.sizes!.split(',').map(Number)) {
  for (const method of a.methods!.split(',') as Array<'stfpm' | 'dcam'>) {
    const losses: Record<string, number[]> = {};
    for (const cache of [false, true]) {
      const times: number[] = [];
      const stepLosses: number[] = [];
      const t0 = performance.now();
      let last = t0;
      let firstEpochSeconds = 0;
      await train(rt, {
        data: a.data!, categories, out: join(tmp, `${method}-${size}-${cache}`), overwrite: true, method, teacher: findTeacher(), size, batch,
        steps: perEpoch + Number(a['steps-after']), seed: 0,
        teacherCache: cache ? {} : { gpuBytes: 0, hostBytes: 0 },
        onStep: (s) => {
          const now = performance.now();
          if (s.step === perEpoch) firstEpochSeconds = (now - t0) / 1000;
          if (s.step > perEpoch) times.push(now - last);
          stepLosses.push(s.loss);
          last = now;
        },
      });
      losses[String(cache)] = stepLosses;
      const step = median(times);
      const c: Case = { size, method, cache, firstEpochSeconds: +firstEpochSeconds.toFixed(1), secondEpochStepMs: +step.toFixed(1), epochSeconds: +((step * perEpoch) / 1000).toFixed(1) };
      if (cache) c.lossesAgree = losses.true.every((l, i) => l === losses.false[i]);
      cases.push(c);
      console.log(JSON.stringify(c));
    }
  }
}
rmSync(tmp, { recursive: true, force: true });

const lines = [
  '# Epoch time with the teacher feature cache',
  '',
  `Adapter: ${describeAdapter(rt)}. Data: ${cats.map((c) => `${c.name} (${c.train.length})`).join(', ')}: ${images} training images, batch ${batch}, ${perEpoch} steps an epoch.`,
  `Command: \`npx tsx bench/teacher-cache.ts ${process.argv.slice(2).join(' ')}\`. Each case trains one epoch and ${a['steps-after']} steps of the second;`,
  'the second epoch\'s time is its median step times the steps of an epoch (images are decoded in the first epoch and kept by the loader, so the second is the steady state).',
  ...(a.note ? ['', a.note] : []),
  '',
  '| size | method | first epoch, s (cache off / on) | second epoch, s: cache off | cache on | speed-up | losses equal |',
  '|---:|---|---:|---:|---:|---:|---|',
];
for (const on of cases.filter((c) => c.cache)) {
  const off = cases.find((c) => !c.cache && c.size === on.size && c.method === on.method)!;
  lines.push(`| ${on.size} | ${on.method} | ${off.firstEpochSeconds} / ${on.firstEpochSeconds} | ${off.epochSeconds} | ${on.epochSeconds} | ${(off.epochSeconds / on.epochSeconds).toFixed(2)}x | ${on.lossesAgree ? 'yes, every step' : 'NO'} |`);
}
console.log(lines.join('\n'));
if (a.out) {
  writeFileSync(`${a.out}.md`, `${lines.join('\n')}\n`);
  writeFileSync(`${a.out}.json`, JSON.stringify({ adapter: describeAdapter(rt), categories: cats.map((c) => ({ name: c.name, train: c.train.length })), batch, perEpoch, stepsAfter: Number(a['steps-after']), cases }, null, 2));
  console.log(`wrote ${a.out}.md and .json`);
}
rt.destroy();
