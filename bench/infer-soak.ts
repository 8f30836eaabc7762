/**
 * Memory of `dcam infer` over many images (never in CI): a run trained for one step, N copies of test
 * images in a folder tree, then inference streamed over all of them while the process RSS and the
 * engine's live GPU bytes are sampled after every batch. Flat numbers mean nothing grows with N.
 *
 *   npx tsx bench/infer-soak.ts [--images 2000] [--size 32] [--out runs/infer-soak]
 */
import { copyFileSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { listImages } from '../src/data/folders.js';
import { inferImages } from '../src/cli/infer.js';
import { generateSyntheticDataset } from '../src/data/synthetic.js';
import { createDevice, describeAdapter } from '../src/index.js';
import { loadDetector } from '../src/node.js';
import { findTeacher, train } from '../src/train/trainer.js';

const { values: a } = parseArgs({ options: { images: { type: 'string', default: '2000' }, size: { type: 'string', default: '32' }, out: { type: 'string', default: 'runs/infer-soak' } } });
const N = Number(a.images);
const size = Number(a.size);
rmSync(a.out!, { recursive: true, force: true });
const data = join(a.out!, 'data');
generateSyntheticDataset(data, { seed: 1, size: 64, train: 8, testGood: 4, testPerDefect: 4, categories: { parts: 'object' } });
const sources = readdirSync(join(data, 'parts', 'test'), { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name));
const folder = join(a.out!, 'images');
for (let i = 0; i < N; i++) {
  const dir = join(folder, String(Math.floor(i / 500)));
  if (i % 500 === 0) mkdirSync(dir, { recursive: true });
  copyFileSync(sources[i % sources.length], join(dir, `${String(i).padStart(5, '0')}.png`));
}
const rt = await createDevice();
console.log(`adapter: ${describeAdapter(rt)}`);
const run = join(a.out!, 'run');
await train(rt, { data, out: run, teacher: findTeacher(), size, steps: 1, batch: 4, method: 'stfpm' });
const det = await loadDetector({ run, runtime: rt });
const samples: Array<{ done: number; rssMiB: number; gpuMiB: number }> = [];
const t0 = performance.now();
await inferImages(det, listImages([folder]), {
  out: join(a.out!, 'inspected'),
  onProgress: (done) => samples.push({ done, rssMiB: process.memoryUsage().rss / 2 ** 20, gpuMiB: rt.memory().liveBytes / 2 ** 20 }),
});
const seconds = (performance.now() - t0) / 1000;
const at = (f: number) => samples[Math.min(samples.length - 1, Math.floor(f * samples.length))];
const peak = Math.max(...samples.map((s) => s.rssMiB));
console.log(`${N} images at ${size} px in ${seconds.toFixed(1)} s (${(N / seconds).toFixed(1)} images/s)`);
for (const f of [0.05, 0.25, 0.5, 0.75, 1]) {
  const s = at(f);
  console.log(`after ${String(s.done).padStart(5)} images: RSS ${s.rssMiB.toFixed(0)} MiB, GPU live ${s.gpuMiB.toFixed(1)} MiB`);
}
console.log(`peak RSS ${peak.toFixed(0)} MiB`);
rt.destroy();
