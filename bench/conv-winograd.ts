/**
 * Winograd F(2x2, 3x3) against the direct convolution for every stride-1 3x3 conv of ResNet18
 * conv1..layer3, forward (frozen weights: packed or transformed once, as the teacher and a folded student)
 * and backward-data (weights transformed at every call, as in training) and the weight gradient (F(3x3, 2x2)),
 * at inference and training sizes:
 * median of 5 after a warm-up, GPU drained around each. GFLOP/s are direct-equivalent (2 x the direct
 * convolution's multiply-adds), so the two columns compare time.
 *
 *   npx tsx bench/conv-winograd.ts [--settings 1x256,8x128] [--out bench/results/conv-winograd]   (OUT.json, OUT.md)
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { Command } from 'commander';
import { createDevice } from '../src/graph/device.js';
import { conv2dBackwardData, conv2dBackwardWeight, conv2dForward, conv2dMacs, PackedConvWeights, type ConvAlgorithm } from '../src/kernels/conv2d.js';
import { time, type Timing } from './lib/timing.js';
import { geometryOf, resnetConvShapes } from './sections/kernels.js';

const opts = new Command()
  .option('--out <base>', 'results, as BASE.json and BASE.md', 'bench/results/conv-winograd')
  .option('--settings <list>', 'batch x input size pairs', '1x256,8x128')
  .parse()
  .opts<{ out: string; settings: string }>();
const ALGORITHMS: ConvAlgorithm[] = ['direct', 'winograd'];
const SETTINGS = opts.settings.split(',').map((s) => s.split('x').map(Number)).map(([batch, size]) => ({ batch, size }));

interface Row { batch: number; size: number; conv: string; count: number; pass: string; gflop: number; ms: Record<ConvAlgorithm, Timing>; speedup: number }
const rows: Row[] = [];
const rt = await createDevice();
const fill = (n: number, f: (i: number) => number) => Float32Array.from({ length: n }, (_, i) => f(i));
for (const { batch, size } of SETTINGS) {
  for (const c of resnetConvShapes(size).filter((s) => s.k === 3 && s.stride === 1)) {
    const g = geometryOf(c, batch);
    const x = rt.tensor(fill(batch * c.cin * c.hw * c.hw, Math.sin), [batch, c.cin, c.hw, c.hw]).keep();
    const w = rt.tensor(fill(c.cout * c.cin * 9, (i) => Math.cos(i) * 0.05), [c.cout, c.cin, 3, 3]).keep();
    const dy = rt.tensor(fill(batch * c.cout * g.OH * g.OW, Math.cos), [batch, c.cout, g.OH, g.OW]).keep();
    // frozen weights packed both ways (a runtime that prefers Winograd keeps its transform)
    const packed = PackedConvWeights.of(rt, w, { stride: 1, padding: 1 });
    const gflop = (2 * conv2dMacs(g)) / 1e9;
    const cases: Array<[string, (a: ConvAlgorithm) => unknown]> = [
      ['forward (frozen)', (algorithm) => conv2dForward(rt, x, packed, null, { padding: 1, relu: true, algorithm }).dispose()],
      ['backward-data', (algorithm) => conv2dBackwardData(rt, dy, w, g, { algorithm }).dispose()],
      ['backward-weight', (algorithm) => conv2dBackwardWeight(rt, dy, x, g, { algorithm }).dispose()],
    ];
    for (const [pass, run] of cases) {
      const ms = {} as Record<ConvAlgorithm, Timing>;
      for (const a of ALGORITHMS) ms[a] = await time(() => run(a), () => rt.sync(), { warmup: 1, runs: 5 });
      const row = { batch, size, conv: c.name, count: c.count, pass, gflop, ms, speedup: ms.direct.median / ms.winograd.median };
      rows.push(row);
      const rate = (t: Timing) => `${t.median.toFixed(1)} ms ${(gflop / (t.median / 1e3)).toFixed(1)} GFLOP/s`;
      console.log(`batch ${batch} ${size} px ${c.name} ${pass}: direct ${rate(ms.direct)}, winograd ${rate(ms.winograd)}: ${row.speedup.toFixed(2)}x`);
    }
    packed.dispose();
    for (const t of [x, w, dy]) t.dispose();
  }
}
// the trunk's stride-1 3x3 convs together, each shape weighted by how many the trunk has
const totals = SETTINGS.flatMap(({ batch, size }) => ['forward (frozen)', 'backward-data', 'backward-weight'].map((pass) => {
  const rs = rows.filter((r) => r.batch === batch && r.size === size && r.pass === pass);
  const sum = (a: ConvAlgorithm) => rs.reduce((s, r) => s + r.count * r.ms[a].median, 0);
  return { batch, size, pass, directMs: sum('direct'), winogradMs: sum('winograd'), speedup: sum('direct') / sum('winograd') };
}));
for (const t of totals) console.log(`trunk 3x3 stride-1 convs, batch ${t.batch} ${t.size} px ${t.pass}: direct ${t.directMs.toFixed(0)} ms, winograd ${t.winogradMs.toFixed(0)} ms: ${t.speedup.toFixed(2)}x`);
const date = new Date().toISOString();
const adapter = rt.adapter;
const md = [
  '# Winograd F(2x2, 3x3) against the direct convolution',
  '',
  `${date} · adapter: ${adapter.vendor} / ${adapter.architecture} / ${adapter.description}${adapter.isSoftware ? ' (software)' : ''} · \`npx tsx bench/conv-winograd.ts\``,
  '',
  'Every stride-1 3x3 conv of ResNet18 conv1..layer3. Forward with frozen weights (packed or transformed once, as the',
  'teacher and a folded student), ReLU fused; backward-data with the weights transformed at every call (training);',
  'backward-weight by F(3x3, 2x2) over all the tiles of the batch.',
  'Median of 5 after a warm-up, GPU drained around each; GFLOP/s are direct-equivalent (2 x the direct multiply-adds).',
  '',
  '| batch | size | conv | pass | direct ms | winograd ms | direct GFLOP/s | winograd GFLOP/s | speed-up |',
  '|---:|---:|---|---|---:|---:|---:|---:|---:|',
  ...rows.map((r) => `| ${r.batch} | ${r.size} | ${r.conv} (x${r.count}) | ${r.pass} | ${r.ms.direct.median.toFixed(1)} | ${r.ms.winograd.median.toFixed(1)} | ${(r.gflop / (r.ms.direct.median / 1e3)).toFixed(1)} | ${(r.gflop / (r.ms.winograd.median / 1e3)).toFixed(1)} | **${r.speedup.toFixed(2)}x** |`),
  '',
  'All of the trunk\'s stride-1 3x3 convs (each shape times its count):',
  '',
  '| batch | size | pass | direct ms | winograd ms | speed-up |',
  '|---:|---:|---|---:|---:|---:|',
  ...totals.map((t) => `| ${t.batch} | ${t.size} | ${t.pass} | ${t.directMs.toFixed(0)} | ${t.winogradMs.toFixed(0)} | **${t.speedup.toFixed(2)}x** |`),
  '',
].join('\n');
mkdirSync(dirname(opts.out), { recursive: true });
writeFileSync(`${opts.out}.json`, JSON.stringify({ adapter, date, rows, totals }, null, 2));
writeFileSync(`${opts.out}.md`, md);
console.log(`wrote ${opts.out}.json and ${opts.out}.md`);
rt.destroy();
