/**
 * Error of the conv algorithms against float64: direct, Winograd F(2x2, 3x3), F(3x3, 3x3) and F(4x4, 3x3),
 * forward and backward-data, and the weight gradient (direct, F(3x3, 2x2), F(3x3, 4x4)), for the channel counts of
 * ResNet18's stride-1 3x3 convs, and of its stride-2 convs, forward and backward-data (direct, and over
 * the input's stride-2 phases: the 7x7 stem by F(3x3, 4x4), the 3x3 ones by F(4x4, 2x2)). Inputs as in the trunk:
 * post-ReLU activations (half-normal), He-scaled weights; backward-data with a normal output gradient.
 * Reports the rms error relative to the reference's rms and the largest error relative to its largest
 * magnitude (the `relErr` of the tests), over a few seeds.
 *
 *   npx tsx bench/winograd-error.ts [--size 20] [--seeds 3]
 */
import { Command } from 'commander';
import { createDevice } from '../src/graph/device.js';
import type { Tensor } from '../src/graph/tensor.js';
import { conv2dBackwardData, conv2dBackwardWeight, conv2dForward, convGeometryOf } from '../src/kernels/conv2d.js';
import { phaseWinogradConv, phaseWinogradConvBackwardData, phaseWinogradWeights, winogradConv, winogradConvBackwardWeight, winogradWeights, type WinogradTile } from '../src/kernels/conv2d-winograd.js';
import { Rng } from '../src/nn/init.js';
import * as ref from '../test/reference.js';

const opts = new Command()
  .option('--size <px>', 'feature map side (odd sizes end in partial tiles)', '20')
  .option('--seeds <n>', 'random inputs per shape', '3')
  .parse()
  .opts<{ size: string; seeds: string }>();
const size = Number(opts.size);

/** Reproducible normal samples. */
function normals(seed: number, n: number): Float64Array {
  const rng = new Rng(seed);
  return Float64Array.from({ length: n }, () => rng.normal());
}

function errors(got: Float32Array, want: Float64Array): { rms: number; max: number } {
  let se = 0, sr = 0, maxErr = 0, maxRef = 0;
  for (let i = 0; i < want.length; i++) {
    const e = Math.abs(got[i] - want[i]);
    se += e * e;
    sr += want[i] * want[i];
    maxErr = Math.max(maxErr, e);
    maxRef = Math.max(maxRef, Math.abs(want[i]));
  }
  return { rms: Math.sqrt(se / sr), max: maxErr / maxRef };
}

type Algorithm = 'direct' | 'F(2x2, 3x3)' | 'F(3x3, 3x3)' | 'F(4x4, 3x3)';
const ALGORITHMS: Algorithm[] = ['direct', 'F(2x2, 3x3)', 'F(3x3, 3x3)', 'F(4x4, 3x3)'];
const tileOf = (a: Algorithm): WinogradTile => (a === 'F(2x2, 3x3)' ? 2 : a === 'F(3x3, 3x3)' ? 3 : 4);

const rt = await createDevice();
console.log(`adapter: ${rt.adapter.description}; maps ${size}x${size}, ${opts.seeds} seeds; error relative to the reference (rms over rms, max over max |ref|)`);
for (const channels of [64, 128, 256]) {
  const worst = new Map<string, { rms: number; max: number }>();
  for (let seed = 1; seed <= Number(opts.seeds); seed++) {
    const [N, H, W] = [1, size, size];
    const x = normals(seed * 101 + channels, N * channels * H * W).map(Math.abs);
    const w = normals(seed * 103 + channels, channels * channels * 9).map((v) => v * Math.sqrt(2 / (9 * channels)));
    const dy = normals(seed * 107 + channels, N * channels * H * W);
    const [xs, ws]: ref.Shape4[] = [[N, channels, H, W], [channels, channels, 3, 3]];
    const forwardRef = ref.conv2d(x, xs, w, ws, null, 1, 1).y;
    const backRef = ref.conv2dInputGrad(dy, w, xs, ws, H, W, 1, 1);
    const weightRef = ref.conv2dWeightGrad(dy, x, xs, ws, H, W, 1);
    await rt.tidyAsync(async () => {
      const t = (a: Float64Array, shape: number[]) => rt.tensor(Float32Array.from(a), shape);
      const [xt, wt, dyt] = [t(x, [N, channels, H, W]), t(w, [channels, channels, 3, 3]), t(dy, [N, channels, H, W])];
      const g = convGeometryOf(xt.shape, wt.shape, { padding: 1 });
      for (const a of ALGORITHMS) {
        let forward: Tensor, back: Tensor, weight: Tensor | null;
        if (a === 'direct') {
          forward = conv2dForward(rt, xt, wt, null, { padding: 1, algorithm: 'direct' });
          back = conv2dBackwardData(rt, dyt, wt, g, { algorithm: 'direct' });
          weight = conv2dBackwardWeight(rt, dyt, xt, g, { algorithm: 'direct' });
        } else {
          forward = winogradConv(rt, xt, winogradWeights(rt, wt, true, tileOf(a)), channels, 1);
          back = winogradConv(rt, dyt, winogradWeights(rt, wt, false, tileOf(a)), channels, 1);
          const tile = tileOf(a);
          weight = tile === 3 ? null : winogradConvBackwardWeight(rt, dyt, xt, g, tile); // F(3x3, t x t)
        }
        for (const [pass, got, want] of [['forward', forward, forwardRef], ['backward-data', back, backRef], ['weight gradient', weight, weightRef]] as const) {
          if (!got) continue;
          const e = errors(await got.read(), want);
          const key = `${a} ${pass}`;
          const prev = worst.get(key) ?? { rms: 0, max: 0 };
          worst.set(key, { rms: Math.max(prev.rms, e.rms), max: Math.max(prev.max, e.max) });
        }
      }
    });
  }
  for (const [key, e] of worst) console.log(`${channels} channels, ${key}: rms ${e.rms.toExponential(2)}, max ${e.max.toExponential(2)}`);
}

// The stride-2 convs: direct, and by Winograd over the input's four stride-2 phases: the stem (7x7, 3 -> 64
// channels, padding 3, normalised image values: normal) by F(3x3, 4x4), layer2.0's and layer3.0's 3x3 convs
// (post-ReLU inputs: half-normal) by F(4x4, 2x2); He-scaled weights; inputs of (2 size + 1)^2 (odd: partial
// tiles and phases of unequal size).
const STRIDE_2 = [
  { name: 'stem 7x7/2 3->64', K: 7, C: 3, Cout: 64, pad: 3, postRelu: false, winograd: 'F(3x3, 4x4) over the phases' },
  { name: 'layer2.0 3x3/2 64->128', K: 3, C: 64, Cout: 128, pad: 1, postRelu: true, winograd: 'F(4x4, 2x2) over the phases' },
  { name: 'layer3.0 3x3/2 128->256', K: 3, C: 128, Cout: 256, pad: 1, postRelu: true, winograd: 'F(4x4, 2x2) over the phases' },
];
for (const c of STRIDE_2) {
  const worst = new Map<string, { rms: number; max: number }>();
  for (let seed = 1; seed <= Number(opts.seeds); seed++) {
    const S = 2 * size + 1;
    const xs: ref.Shape4 = [1, c.C, S, S];
    const ws: ref.Shape4 = [c.Cout, c.C, c.K, c.K];
    const x = normals(seed * 109 + c.K, c.C * S * S).map((v) => (c.postRelu ? Math.abs(v) : v));
    const w = normals(seed * 113 + c.K, c.Cout * c.C * c.K * c.K).map((v) => v * Math.sqrt(2 / (c.K * c.K * c.C)));
    const want = ref.conv2d(x, xs, w, ws, null, 2, c.pad).y;
    const g = convGeometryOf(xs, ws, { stride: 2, padding: c.pad });
    const dy = normals(seed * 127 + c.K, c.Cout * g.OH * g.OW);
    const wantDx = ref.conv2dInputGrad(dy, w, xs, ws, g.OH, g.OW, 2, c.pad);
    await rt.tidyAsync(async () => {
      const [xt, wt, dyt] = [rt.tensor(Float32Array.from(x), xs), rt.tensor(Float32Array.from(w), ws), rt.tensor(Float32Array.from(dy), [1, c.Cout, g.OH, g.OW])];
      const results: Array<[string, Tensor, Float64Array]> = [
        ['forward, direct', conv2dForward(rt, xt, wt, null, { stride: 2, padding: c.pad, algorithm: 'direct' }), want],
        [`forward, ${c.winograd}`, phaseWinogradConv(rt, xt, phaseWinogradWeights(rt, wt), c.Cout, c.pad), want],
        ['backward-data, direct', conv2dBackwardData(rt, dyt, wt, g, { algorithm: 'direct' }), wantDx],
        [`backward-data, ${c.winograd}`, phaseWinogradConvBackwardData(rt, dyt, phaseWinogradWeights(rt, wt, false), g), wantDx],
      ];
      for (const [name, got, wanted] of results) {
        const e = errors(await got.read(), wanted);
        const prev = worst.get(name) ?? { rms: 0, max: 0 };
        worst.set(name, { rms: Math.max(prev.rms, e.rms), max: Math.max(prev.max, e.max) });
      }
    });
  }
  for (const [key, e] of worst) console.log(`${c.name}, ${key}: rms ${e.rms.toExponential(2)}, max ${e.max.toExponential(2)}`);
}
