/**
 * Winograd F(2x2, 3x3) and F(4x4, 3x3) against the direct convolution for every stride-1 3x3 conv of ResNet18
 * conv1..layer3, forward (frozen weights: packed or transformed once, as the teacher and a folded student)
 * and backward-data (weights transformed at every call, as in training) and the weight gradient (F(3x3, t x t)),
 * at inference and training sizes; and the stride-2 convs' forward and backward-data, direct against Winograd
 * over the input's stride-2 phases (the 7x7 stem by F(3x3, 4x4), the 3x3 ones by F(4x4, 2x2)):
 * median of 5 after a warm-up, GPU drained around each. GFLOP/s are direct-equivalent (2 x the direct
 * convolution's multiply-adds), so the columns compare time.
 *
 *   npx tsx bench/conv-winograd.ts [--settings 1x256,8x128] [--out bench/results/conv-winograd]   (OUT.json, OUT.md)
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { Command } from 'commander';
import { createDevice } from '../src/graph/device.js';
import { conv2dBackwardData, conv2dBackwardWeight, conv2dForward, conv2dMacs, PackedConvWeights } from '../src/kernels/conv2d.js';
import { phaseWinogradConv, phaseWinogradConvBackwardData, phaseWinogradWeights, winogradConv, winogradConvBackwardWeight, winogradWeights, type WinogradTile } from '../src/kernels/conv2d-winograd.js';
import { time, type Timing } from './lib/timing.js';
import { geometryOf, resnetConvShapes } from './sections/kernels.js';

const opts = new Command()
  .option('--out <base>', 'results, as BASE.json and BASE.md', 'bench/results/conv-winograd')
  .option('--settings <list>', 'batch x input size pairs', '1x256,8x128')
  .parse()
  .opts<{ out: string; settings: string }>();
/** The algorithms compared: the direct kernels, and Winograd with each tile (for the weight gradient, F(3x3, t x t)). */
const METHODS = ['direct', 'F(2x2, 3x3)', 'F(3x3, 3x3)', 'F(4x4, 3x3)'] as const;
type Method = (typeof METHODS)[number];
const tileOf = (m: Method): WinogradTile => (m === 'F(2x2, 3x3)' ? 2 : m === 'F(3x3, 3x3)' ? 3 : 4);
const PASSES = ['forward (frozen)', 'forward (trained)', 'backward-data', 'backward-weight'] as const;
const SETTINGS = opts.settings.split(',').map((s) => s.split('x').map(Number)).map(([batch, size]) => ({ batch, size }));

interface Row { batch: number; size: number; conv: string; count: number; pass: string; gflop: number; ms: Partial<Record<Method, Timing>> }
const rows: Row[] = [];
const rt = await createDevice();
const fill = (n: number, f: (i: number) => number) => Float32Array.from({ length: n }, (_, i) => f(i));
const rate = (gflop: number, t: Timing | undefined) => (t ? `${t.median.toFixed(1)} ms ${(gflop / (t.median / 1e3)).toFixed(1)} GFLOP/s` : '-');
for (const { batch, size } of SETTINGS) {
  for (const c of resnetConvShapes(size).filter((s) => s.k === 3 && s.stride === 1)) {
    const g = geometryOf(c, batch);
    const x = rt.tensor(fill(batch * c.cin * c.hw * c.hw, Math.sin), [batch, c.cin, c.hw, c.hw]).keep();
    const w = rt.tensor(fill(c.cout * c.cin * 9, (i) => Math.cos(i) * 0.05), [c.cout, c.cin, 3, 3]).keep();
    const dy = rt.tensor(fill(batch * c.cout * g.OH * g.OW, Math.cos), [batch, c.cout, g.OH, g.OW]).keep();
    // frozen weights: packed for the direct kernel, transformed once for each tile
    const packed = PackedConvWeights.of(rt, w, { stride: 1, padding: 1 });
    const frozen = { 2: winogradWeights(rt, w, true, 2).keep(), 3: winogradWeights(rt, w, true, 3).keep(), 4: winogradWeights(rt, w, true, 4).keep() };
    const gflop = (2 * conv2dMacs(g)) / 1e9;
    const cases: Record<(typeof PASSES)[number], Partial<Record<Method, () => void>>> = {
      'forward (frozen)': {
        direct: () => conv2dForward(rt, x, packed, null, { padding: 1, relu: true, algorithm: 'direct' }).dispose(),
        'F(2x2, 3x3)': () => winogradConv(rt, x, frozen[2], c.cout, 1, { relu: true }).dispose(),
        'F(3x3, 3x3)': () => winogradConv(rt, x, frozen[3], c.cout, 1, { relu: true }).dispose(),
        'F(4x4, 3x3)': () => winogradConv(rt, x, frozen[4], c.cout, 1, { relu: true }).dispose(),
      },
      // weights being trained: transformed at every call
      'forward (trained)': Object.fromEntries(METHODS.map((m) => [m, m === 'direct'
        ? () => conv2dForward(rt, x, w, null, { padding: 1, algorithm: 'direct' }).dispose()
        : () => rt.tidy(() => winogradConv(rt, x, winogradWeights(rt, w, true, tileOf(m)), c.cout, 1)).dispose()])),
      // as in training: the weights transformed at every call
      'backward-data': Object.fromEntries(METHODS.map((m) => [m, m === 'direct'
        ? () => conv2dBackwardData(rt, dy, w, g, { algorithm: 'direct' }).dispose()
        : () => rt.tidy(() => winogradConv(rt, dy, winogradWeights(rt, w, false, tileOf(m)), c.cin, 1)).dispose()])),
      // the transposed algorithm: the column of F(t x t, 3x3) is F(3x3, t x t)
      'backward-weight': Object.fromEntries(METHODS.filter((m) => m !== 'F(3x3, 3x3)').map((m) => [m, m === 'direct'
        ? () => conv2dBackwardWeight(rt, dy, x, g, { algorithm: 'direct' }).dispose()
        : () => winogradConvBackwardWeight(rt, dy, x, g, tileOf(m) as 2 | 4).dispose()])),
    };
    for (const pass of PASSES) {
      const row: Row = { batch, size, conv: c.name, count: c.count, pass, gflop, ms: {} };
      for (const m of METHODS) {
        const run = cases[pass][m];
        if (run) row.ms[m] = await time(run, () => rt.sync(), { warmup: 1, runs: 5 });
      }
      rows.push(row);
      console.log(`batch ${batch} ${size} px ${c.name} ${pass}: ${METHODS.map((m) => `${m} ${rate(gflop, row.ms[m])}`).join(', ')}`);
    }
    packed.dispose();
    for (const t of [x, w, dy, frozen[2], frozen[3], frozen[4]]) t.dispose();
  }
}
// the stride-2 convs, frozen weights (as the teacher): direct against Winograd over the input's stride-2
// phases, F(3x3, 4x4) for the 7x7 stem, F(4x4, 2x2) for the 3x3 ones
interface PhaseRow { batch: number; size: number; conv: string; pass: string; scheme: string; gflop: number; direct: Timing; winograd: Timing }
const phaseRows: PhaseRow[] = [];
for (const { batch, size } of SETTINGS) {
  for (const c of resnetConvShapes(size).filter((s) => s.stride === 2 && s.k > 1)) {
    const g = geometryOf(c, batch);
    const x = rt.tensor(fill(batch * c.cin * c.hw * c.hw, Math.sin), [batch, c.cin, c.hw, c.hw]).keep();
    const w = rt.tensor(fill(c.cout * c.cin * c.k * c.k, (i) => Math.cos(i) * 0.05), [c.cout, c.cin, c.k, c.k]).keep();
    const packed = PackedConvWeights.of(rt, w, { stride: 2, padding: c.pad });
    const u = phaseWinogradWeights(rt, w).keep();
    const gflop = (2 * conv2dMacs(g)) / 1e9;
    const direct = await time(() => conv2dForward(rt, x, packed, null, { stride: 2, padding: c.pad, relu: true, algorithm: 'direct' }).dispose(), () => rt.sync(), { warmup: 1, runs: 5 });
    const winograd = await time(() => phaseWinogradConv(rt, x, u, c.cout, c.pad, { relu: true }).dispose(), () => rt.sync(), { warmup: 1, runs: 5 });
    const scheme = c.k === 7 ? 'F(3x3, 4x4)' : 'F(4x4, 2x2)';
    phaseRows.push({ batch, size, conv: c.name, pass: 'forward (frozen)', scheme, gflop, direct, winograd });
    console.log(`batch ${batch} ${size} px ${c.name} forward (frozen): direct ${rate(gflop, direct)}, ${scheme} over the phases ${rate(gflop, winograd)}`);
    // backward-data, the weights transformed at every call (training): dy by each phase's rotated filter
    const dy = rt.tensor(fill(batch * c.cout * g.OH * g.OW, Math.cos), [batch, c.cout, g.OH, g.OW]).keep();
    const directData = await time(() => conv2dBackwardData(rt, dy, w, g, { algorithm: 'direct' }).dispose(), () => rt.sync(), { warmup: 1, runs: 5 });
    const winogradData = await time(() => rt.tidy(() => phaseWinogradConvBackwardData(rt, dy, phaseWinogradWeights(rt, w, false), g)).dispose(), () => rt.sync(), { warmup: 1, runs: 5 });
    phaseRows.push({ batch, size, conv: c.name, pass: 'backward-data', scheme, gflop, direct: directData, winograd: winogradData });
    console.log(`batch ${batch} ${size} px ${c.name} backward-data: direct ${rate(gflop, directData)}, ${scheme} over the phases ${rate(gflop, winogradData)}`);
    packed.dispose();
    for (const t of [x, w, u, dy]) t.dispose();
  }
}
// the trunk's stride-1 3x3 convs together, each shape weighted by how many the trunk has
const totals = SETTINGS.flatMap(({ batch, size }) => PASSES.map((pass) => {
  const rs = rows.filter((r) => r.batch === batch && r.size === size && r.pass === pass);
  const ms = Object.fromEntries(METHODS.filter((m) => rs.every((r) => r.ms[m])).map((m) => [m, rs.reduce((s, r) => s + r.count * r.ms[m]!.median, 0)])) as Partial<Record<Method, number>>;
  return { batch, size, pass, ms };
}));
const cell = (v: number | undefined, digits: number) => (v === undefined ? '-' : v.toFixed(digits));
for (const t of totals) console.log(`trunk 3x3 stride-1 convs, batch ${t.batch} ${t.size} px ${t.pass}: ${METHODS.map((m) => `${m} ${cell(t.ms[m], 0)} ms`).join(', ')}`);
const date = new Date().toISOString();
const adapter = rt.adapter;
const md = [
  '# Winograd F(2x2, 3x3) and F(4x4, 3x3) against the direct convolution',
  '',
  `${date} · adapter: ${adapter.vendor} / ${adapter.architecture} / ${adapter.description}${adapter.isSoftware ? ' (software)' : ''} · \`npx tsx bench/conv-winograd.ts\``,
  '',
  'Every stride-1 3x3 conv of ResNet18 conv1..layer3. Forward with frozen weights (packed or transformed once, as the',
  'teacher and a folded student), ReLU fused; backward-data with the weights transformed at every call (training);',
  'backward-weight by F(3x3, t x t) over all the tiles of the batch (in the columns of F(t x t, 3x3)).',
  'Median of 5 after a warm-up, GPU drained around each; GFLOP/s are direct-equivalent (2 x the direct multiply-adds),',
  'so the columns compare time.',
  '',
  `| batch | size | conv | pass | ${METHODS.map((m) => `${m} ms`).join(' | ')} | ${METHODS.map((m) => `${m} GFLOP/s`).join(' | ')} |`,
  `|---:|---:|---|---|${METHODS.map(() => '---:').join('|')}|${METHODS.map(() => '---:').join('|')}|`,
  ...rows.map((r) => `| ${r.batch} | ${r.size} | ${r.conv} (x${r.count}) | ${r.pass} | ${METHODS.map((m) => cell(r.ms[m]?.median, 1)).join(' | ')} | ${METHODS.map((m) => (r.ms[m] ? (r.gflop / (r.ms[m]!.median / 1e3)).toFixed(1) : '-')).join(' | ')} |`),
  '',
  'All of the trunk\'s stride-1 3x3 convs (each shape times its count), and the speed-up over the direct kernels:',
  '',
  `| batch | size | pass | ${METHODS.map((m) => `${m} ms`).join(' | ')} | ${METHODS.slice(1).map((m) => `${m} speed-up`).join(' | ')} |`,
  `|---:|---:|---|${METHODS.map(() => '---:').join('|')}|${METHODS.slice(1).map(() => '---:').join('|')}|`,
  ...totals.map((t) => `| ${t.batch} | ${t.size} | ${t.pass} | ${METHODS.map((m) => cell(t.ms[m], 0)).join(' | ')} | ${METHODS.slice(1).map((m) => (t.ms[m] ? `**${(t.ms.direct! / t.ms[m]!).toFixed(2)}x**` : '-')).join(' | ')} |`),
  '',
  'The stride-2 convs, forward with frozen weights, ReLU fused, and backward-data with the weights transformed at every',
  'call: direct against Winograd over the input\'s four stride-2 phases (the 7x7 stem by F(3x3, 4x4), 3.1x fewer',
  'multiply-adds; the 3x3 ones by F(4x4, 2x2), 1.44x fewer):',
  '',
  '| batch | size | conv | pass | Winograd | direct ms | Winograd ms | direct GFLOP/s | Winograd GFLOP/s | speed-up |',
  '|---:|---:|---|---|---|---:|---:|---:|---:|---:|',
  ...phaseRows.map((r) => `| ${r.batch} | ${r.size} | ${r.conv} | ${r.pass} | ${r.scheme} | ${r.direct.median.toFixed(1)} | ${r.winograd.median.toFixed(1)} | ${(r.gflop / (r.direct.median / 1e3)).toFixed(1)} | ${(r.gflop / (r.winograd.median / 1e3)).toFixed(1)} | **${(r.direct.median / r.winograd.median).toFixed(2)}x** |`),
  '',
].join('\n');
mkdirSync(dirname(opts.out), { recursive: true });
writeFileSync(`${opts.out}.json`, JSON.stringify({ adapter, date, rows, totals, stride2: phaseRows }, null, 2));
writeFileSync(`${opts.out}.md`, md);
console.log(`wrote ${opts.out}.json and ${opts.out}.md`);
rt.destroy();
