/**
 * Memory over a long training (never in CI): N steps at a small size, with the process RSS and the
 * engine's live GPU bytes sampled every 100 steps (checkpoints every epoch, as a real run writes them).
 * Flat numbers mean nothing leaks per step or per checkpoint.
 *
 *   npx tsx bench/train-soak.ts [--steps 2000] [--size 32] [--batch 4] [--method stfpm] [--out runs/train-soak]
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { generateSyntheticDataset } from '../src/data/synthetic.js';
import { createDevice, describeAdapter } from '../src/index.js';
import { findTeacher, train } from '../src/train/trainer.js';

const { values: a } = parseArgs({ options: { steps: { type: 'string', default: '2000' }, size: { type: 'string', default: '32' }, batch: { type: 'string', default: '4' }, method: { type: 'string', default: 'stfpm' }, out: { type: 'string', default: 'runs/train-soak' } } });
rmSync(a.out!, { recursive: true, force: true });
const data = join(a.out!, 'data');
generateSyntheticDataset(data, { seed: 1, size: 64, train: 16, testGood: 1, testPerDefect: 1, categories: { parts: 'object' } });
const rt = await createDevice();
console.log(`adapter: ${describeAdapter(rt)}`);
const samples: Array<{ step: number; rssMiB: number; gpuMiB: number }> = [];
const t0 = performance.now();
await train(rt, {
  data, out: join(a.out!, 'run'), teacher: findTeacher(), size: Number(a.size), steps: Number(a.steps), batch: Number(a.batch), method: a.method as 'stfpm' | 'dcam',
  onStep: (s) => {
    if (s.step % 100 === 0 || s.step === 1) {
      const sample = { step: s.step, rssMiB: process.memoryUsage().rss / 2 ** 20, gpuMiB: rt.memory().liveBytes / 2 ** 20 };
      samples.push(sample);
      console.log(`step ${String(sample.step).padStart(5)}: RSS ${sample.rssMiB.toFixed(0)} MiB, GPU live ${sample.gpuMiB.toFixed(1)} MiB (${((performance.now() - t0) / 1000).toFixed(0)} s)`);
    }
  },
});
const seconds = (performance.now() - t0) / 1000;
console.log(`${a.steps} steps (${a.method}, ${a.size} px, batch ${a.batch}) in ${seconds.toFixed(0)} s`);
const rss = samples.slice(1).map((s) => s.rssMiB);
console.log(`RSS from step 100 on: min ${Math.min(...rss).toFixed(0)}, max ${Math.max(...rss).toFixed(0)} MiB; GPU live: ${[...new Set(samples.slice(1).map((s) => s.gpuMiB.toFixed(1)))].join(', ')} MiB`);
rt.destroy();
