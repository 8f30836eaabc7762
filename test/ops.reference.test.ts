/**
 * Every op on random inputs with odd shapes (seeded), against float64 CPU references written from the
 * definitions (test/reference.ts): forward within 1e-4 relative, and every input's gradient against
 * float64 central finite differences of sum(output * grad_out), within 1e-4 relative.
 */
import { describe, expect, it } from 'vitest';
import { backward } from '../src/autograd/engine.js';
import * as ops from '../src/autograd/ops.js';
import * as losses from '../src/model/losses.js';
import type { Tensor } from '../src/index.js';
import { adapterCaps, conv2dBackwardData, conv2dBackwardWeight, conv2dForward, convGeometryOf, PackedConvWeights, planOn } from '../src/kernels/conv2d.js';
import { planConv, RULES, trainedForwardTile, type ConvPass } from '../src/kernels/conv-plan.js';
import { phaseWinogradConv, phaseWinogradConvBackwardData, phaseWinogradConvBackwardWeight, phaseWinogradWeights, winogradConv, winogradConvBackwardWeight, winogradWeights } from '../src/kernels/conv2d-winograd.js';

/** Whether the planner prefers Winograd on this test's adapter (RULES.winogradOnSoftware). */
const prefersWinograd = (rt: { adapter: { isSoftware: boolean } }) => rt.adapter.isSoftware;
const MIN_PHASE_TILES = RULES.phaseForwardMinTiles.value;
const MIN_PHASE_BACKWARD_DATA_TILES = RULES.phaseBackwardDataMinTiles.value;
const WINOGRAD_TILE = RULES.frozenTile.value;
const WEIGHT_GRADIENT_TILE = RULES.frozenTile.value;
import { globalPoolForward, maxPool2dForward } from '../src/kernels/pool.js';
import * as ref from './reference.js';
import { finiteDifference, randn, relErr, Rng, useRuntime } from './helpers.js';

const TOL = 1e-4;
const ctx = useRuntime();

interface InputSpec {
  shape: number[];
  scale?: number;
  /** Custom values (e.g. positive variances). */
  values?: (rng: Rng, n: number) => Float64Array;
  grad?: boolean;
}

interface OpCase {
  name: string;
  inputs: InputSpec[];
  gpu: (x: Tensor[]) => Tensor;
  ref: (x: Float64Array[]) => ArrayLike<number>;
}

const size = (s: number[]) => s.reduce((a, b) => a * b, 1);
const s4 = (s: number[]) => s as ref.Shape4;
const pick = <T,>(rng: Rng, xs: T[]) => xs[Math.floor(rng.next() * xs.length)];

/** Odd shapes, different per case: N in {1, 3}, C in {3, 13}, H and W in {5, 7, 9}. */
function oddShape(seed: number): number[] {
  const rng = new Rng(seed);
  return [pick(rng, [1, 3]), pick(rng, [3, 13]), pick(rng, [5, 7, 9]), pick(rng, [5, 7, 9])];
}

const cases: OpCase[] = [];

// conv2d: every geometry the trunk and the attention use, at odd sizes; the last on a map so small
// (3x3 outputs, 2 pixel groups) that the workgroup's rows take several channel blocks (blockWorkgroup),
// with the last block partly and the last row wholly past the 20 output channels
for (const [i, [cin, cout, k, stride, pad, bias, spatial]] of ([
  [3, 13, 7, 2, 3, false],
  [13, 3, 3, 1, 1, true],
  [3, 5, 3, 2, 1, false],
  [13, 7, 1, 2, 0, false],
  [2, 1, 7, 1, 3, false],
  [12, 20, 3, 2, 1, true, [5, 5]],
] as Array<[number, number, number, number, number, boolean, [number, number]?]>).entries()) {
  const [n, , h, w] = oddShape(100 + i);
  const xs = spatial ? [2, cin, ...spatial] : [n, cin, h + 2, w];
  const ws = [cout, cin, k, k];
  cases.push({
    name: `conv2d ${k}x${k}/s${stride}/p${pad} ${cin}->${cout}${bias ? ' +bias' : ''} x[${xs}]`,
    inputs: [{ shape: xs }, { shape: ws, scale: 0.3 }, ...(bias ? [{ shape: [cout] }] : [])],
    gpu: ([x, wt, b]) => ops.conv2d(x, wt, b ?? null, { stride, padding: pad }),
    ref: ([x, wt, b]) => ref.conv2d(x, s4(xs), wt, s4(ws), b ?? null, stride, pad).y,
  });
}

// Odd shapes take the elementwise kernels' single-value units; a last extent divisible by 4 their vec4
// units (and more than one unit per invocation: 1920 values)
const ALIGNED_SHAPE = [2, 5, 12, 16];

// 64 channels: on software adapters the per-channel reductions take one invocation per channel
for (const xs of [oddShape(200), ALIGNED_SHAPE, [2, 64, 3, 5], [1, 64, 4, 6]]) {
  const C = xs[1];
  const positive = (rng: Rng, n: number) => Float64Array.from({ length: n }, () => Math.fround(0.5 + rng.next()));
  cases.push({
    name: `batchnorm2d training x[${xs}]`,
    inputs: [{ shape: xs, scale: 2 }, { shape: [C], values: positive }, { shape: [C] }],
    gpu: ([x, g, b]) => {
      const rt = x.runtime;
      return ops.batchNorm2d(x, { weight: g, bias: b, runningMean: rt.zeros([C]), runningVar: rt.full([C], 1) }, { training: true });
    },
    ref: ([x, g, b]) => ref.batchNorm(x, s4(xs), g, b, null, null, 1e-5),
  });
  // a ResNet block's BN, shortcut and ReLU fused (batchNorm2d's residual and relu)
  const bnRelu = (v: ArrayLike<number>) => Array.from(v, (a) => Math.max(a, 0));
  cases.push({
    name: `batchnorm2d + residual + relu training x[${xs}]`,
    inputs: [{ shape: xs, scale: 2 }, { shape: [C], values: positive }, { shape: [C] }, { shape: xs }],
    gpu: ([x, g, b, r]) => {
      const rt = x.runtime;
      return ops.batchNorm2d(x, { weight: g, bias: b, runningMean: rt.zeros([C]), runningVar: rt.full([C], 1) }, { training: true, residual: r, relu: true });
    },
    ref: ([x, g, b, r]) => bnRelu(Array.from(ref.batchNorm(x, s4(xs), g, b, null, null, 1e-5), (v, i) => v + r[i])),
  });
  cases.push({
    name: `batchnorm2d + residual training x[${xs}]`,
    inputs: [{ shape: xs, scale: 2 }, { shape: [C], values: positive }, { shape: [C] }, { shape: xs }],
    gpu: ([x, g, b, r]) => {
      const rt = x.runtime;
      return ops.batchNorm2d(x, { weight: g, bias: b, runningMean: rt.zeros([C]), runningVar: rt.full([C], 1) }, { training: true, residual: r });
    },
    ref: ([x, g, b, r]) => Array.from(ref.batchNorm(x, s4(xs), g, b, null, null, 1e-5), (v, i) => v + r[i]),
  });
  cases.push({
    name: `batchnorm2d + relu eval x[${xs}]`,
    inputs: [{ shape: xs, scale: 2 }, { shape: [C], values: positive }, { shape: [C] }, { shape: [C], grad: false }, { shape: [C], values: positive, grad: false }],
    gpu: ([x, g, b, m, v]) => ops.batchNorm2d(x, { weight: g, bias: b, runningMean: m, runningVar: v }, { training: false, relu: true }),
    ref: ([x, g, b, m, v]) => bnRelu(ref.batchNorm(x, s4(xs), g, b, m, v, 1e-5)),
  });
  cases.push({
    name: `batchnorm2d eval x[${xs}]`,
    inputs: [{ shape: xs, scale: 2 }, { shape: [C], values: positive }, { shape: [C] }, { shape: [C], grad: false }, { shape: [C], values: positive, grad: false }],
    gpu: ([x, g, b, m, v]) => ops.batchNorm2d(x, { weight: g, bias: b, runningMean: m, runningVar: v }, { training: false }),
    ref: ([x, g, b, m, v]) => ref.batchNorm(x, s4(xs), g, b, m, v, 1e-5),
  });
}

for (const xs of [oddShape(300), ALIGNED_SHAPE]) {
  cases.push({ name: `relu x[${xs}]`, inputs: [{ shape: xs }], gpu: ([x]) => ops.relu(x), ref: ([x]) => ref.relu(x) });
  cases.push({ name: `sigmoid x[${xs}]`, inputs: [{ shape: xs, scale: 3 }], gpu: ([x]) => ops.sigmoid(x), ref: ([x]) => ref.sigmoid(x) });
  cases.push({ name: `affine x[${xs}]`, inputs: [{ shape: xs }], gpu: ([x]) => ops.affine(x, -2.5, 0.75), ref: ([x]) => x.map((v) => -2.5 * v + 0.75) });
  cases.push({ name: `maxpool2d 3/2/1 x[${xs}]`, inputs: [{ shape: xs }], gpu: ([x]) => ops.maxPool2d(x), ref: ([x]) => ref.maxPool(x, s4(xs), 3, 2, 1).y });
  for (const [k, s, p] of [[2, 2, 0], [3, 1, 1], [3, 3, 1]]) {
    cases.push({
      name: `maxpool2d ${k}/${s}/${p} x[${xs}]`,
      inputs: [{ shape: xs }],
      gpu: ([x]) => ops.maxPool2d(x, { kernel: k, stride: s, padding: p }),
      ref: ([x]) => ref.maxPool(x, s4(xs), k, s, p).y,
    });
  }
  cases.push({ name: `global avg pool x[${xs}]`, inputs: [{ shape: xs }], gpu: ([x]) => ops.globalAvgPool2d(x), ref: ([x]) => ref.globalPool(x, s4(xs), 'avg') });
  cases.push({ name: `global max pool x[${xs}]`, inputs: [{ shape: xs }], gpu: ([x]) => ops.globalMaxPool2d(x), ref: ([x]) => ref.globalPool(x, s4(xs), 'max') });
  cases.push({ name: `channel mean x[${xs}]`, inputs: [{ shape: xs }], gpu: ([x]) => ops.channelMean(x), ref: ([x]) => ref.channelPool(x, s4(xs), ['mean']) });
  cases.push({ name: `channel max x[${xs}]`, inputs: [{ shape: xs }], gpu: ([x]) => ops.channelMax(x), ref: ([x]) => ref.channelPool(x, s4(xs), ['max']) });
  cases.push({ name: `channel mean+max x[${xs}]`, inputs: [{ shape: xs }], gpu: ([x]) => ops.channelMeanMax(x), ref: ([x]) => ref.channelPool(x, s4(xs), ['mean', 'max']) });
  const [N, C, H, W] = xs;
  for (const [label, bs] of [['channel gate', [N, C, 1, 1]], ['pixel gate', [N, 1, H, W]], ['same shape', xs], ['scalar', [1, 1, 1, 1]]] as const) {
    cases.push({
      name: `add (${label}) x[${xs}] + [${bs}]`,
      inputs: [{ shape: xs }, { shape: [...bs] }],
      gpu: ([a, b]) => ops.add(a, b),
      ref: ([a, b]) => ref.broadcastBinary(a, s4(xs), b, s4([...bs]), (p, q) => p + q),
    });
    cases.push({
      name: `sub (${label}) x[${xs}] - [${bs}]`,
      inputs: [{ shape: xs }, { shape: [...bs] }],
      gpu: ([a, b]) => ops.sub(a, b),
      ref: ([a, b]) => ref.broadcastBinary(a, s4(xs), b, s4([...bs]), (p, q) => p - q),
    });
    cases.push({
      // both operands used twice through sub: the case that once lost b's gradient
      name: `(a - b) * (b - a) (${label}) x[${xs}], [${bs}]`,
      inputs: [{ shape: xs }, { shape: [...bs] }],
      gpu: ([a, b]) => ops.mul(ops.sub(a, b), ops.sub(b, a)),
      ref: ([a, b]) => ref.broadcastBinary(a, s4(xs), b, s4([...bs]), (p, q) => -((p - q) ** 2)),
    });
    cases.push({
      name: `mul (${label}) x[${xs}] * [${bs}]`,
      inputs: [{ shape: xs }, { shape: [...bs] }],
      gpu: ([a, b]) => ops.mul(a, b),
      ref: ([a, b]) => ref.broadcastBinary(a, s4(xs), b, s4([...bs]), (p, q) => p * q),
    });
  }
  cases.push({
    name: `linear [${N}, ${C}] x W[5, ${C}]`,
    inputs: [{ shape: [N, C] }, { shape: [5, C], scale: 0.3 }],
    gpu: ([x, w]) => ops.linear(x, w),
    ref: ([x, w]) => ref.linear(x, N, C, w, 5),
  });
  for (const axis of ['channel', 'spatial'] as const) {
    cases.push({
      name: `cosine (${axis}) [${xs}]`,
      inputs: [{ shape: xs }, { shape: xs }],
      gpu: ([a, b]) => ops.cosineSimilarity(a, b, axis, 1e-6),
      ref: ([a, b]) => ref.cosine(a, b, s4(xs), axis, 1e-6),
    });
  }
  cases.push({ name: `softmax over HxW [${xs}]`, inputs: [{ shape: xs, scale: 2 }], gpu: ([x]) => ops.softmaxSpatial(x), ref: ([x]) => ref.softmaxRows(x, N * C, H * W, false) });
  cases.push({ name: `log-softmax over HxW [${xs}]`, inputs: [{ shape: xs, scale: 2 }], gpu: ([x]) => ops.logSoftmaxSpatial(x), ref: ([x]) => ref.softmaxRows(x, N * C, H * W, true) });
  for (const T of [1, 3]) {
    cases.push({
      name: `KL spatial T=${T} [${xs}]`,
      inputs: [{ shape: xs, scale: 2 }, { shape: xs, scale: 2 }],
      gpu: ([t, s]) => ops.klDivSpatial(t, s, T),
      ref: ([t, s]) => ref.klRows(t, s, N * C, H * W, T),
    });
  }
  {
    // 75 rows: the reductions' one-invocation-per-row form on software adapters (reduceRowPerInvocation)
    const many: [number, number, number, number] = [3, 25, 3, 5];
    const rows = many[0] * many[1];
    const L = many[2] * many[3];
    cases.push({ name: `global avg pool, ${rows} planes [${many}]`, inputs: [{ shape: many }], gpu: ([x]) => ops.globalAvgPool2d(x), ref: ([x]) => ref.globalPool(x, many, 'avg') });
    cases.push({ name: `global max pool, ${rows} planes [${many}]`, inputs: [{ shape: many }], gpu: ([x]) => ops.globalMaxPool2d(x), ref: ([x]) => ref.globalPool(x, many, 'max') });
    cases.push({
      name: `KL spatial T=2, ${rows} rows [${many}]`,
      inputs: [{ shape: many, scale: 2 }, { shape: many, scale: 2 }],
      gpu: ([t, s]) => ops.klDivSpatial(t, s, 2),
      ref: ([t, s]) => ref.klRows(t, s, rows, L, 2),
    });
  }
  cases.push({ name: `sum [${xs}]`, inputs: [{ shape: xs }], gpu: ([x]) => ops.sum(x), ref: ([x]) => [x.reduce((a, b) => a + b, 0)] });
  cases.push({ name: `mean [${xs}]`, inputs: [{ shape: xs }], gpu: ([x]) => ops.mean(x), ref: ([x]) => [x.reduce((a, b) => a + b, 0) / x.length] });
  for (const [oh, ow] of [[17, 11], [3, 4], [H, W]] as Array<[number, number]>) {
    cases.push({
      name: `upsample bilinear [${xs}] -> ${oh}x${ow}`,
      inputs: [{ shape: xs }],
      gpu: ([x]) => ops.upsampleBilinear(x, [oh, ow]),
      ref: ([x]) => ref.upsampleBilinear(x, s4(xs), oh, ow),
    });
  }
}

// The distillation losses: composites of cosine / KL, sum / mean and affine.
{
  const xs = oddShape(400);
  const [N, C, H, W] = xs;
  const meanOf = (v: ArrayLike<number>) => Array.from(v).reduce((p, q) => p + q, 0) / v.length;
  const sumOf = (v: ArrayLike<number>) => Array.from(v).reduce((p, q) => p + q, 0);
  const lossCases: Array<[string, (t: Tensor, s: Tensor) => Tensor, (t: Float64Array, s: Float64Array) => number]> = [
    ['channel cosine distance', losses.channelCosineDistance, (t, s) => 1 - meanOf(ref.cosine(t, s, s4(xs), 'channel', 1e-8))],
    ['spatial cosine distance', losses.spatialCosineDistance, (t, s) => 1 - meanOf(ref.cosine(t, s, s4(xs), 'spatial', 1e-6))],
    ['spatial KD (mean)', (t, s) => losses.spatialKD(t, s, 2, 'mean'), (t, s) => meanOf(ref.klRows(t, s, N * C, H * W, 2))],
    ['spatial KD (sum)', (t, s) => losses.spatialKD(t, s, 1, 'sum'), (t, s) => sumOf(ref.klRows(t, s, N * C, H * W, 1)) / N],
    ['STFPM L2', losses.stfpmL2, (t, s) => 2 - 2 * meanOf(ref.cosine(t, s, s4(xs), 'channel', 1e-12))],
  ];
  for (const [name, gpu, cpu] of lossCases) {
    cases.push({ name: `loss: ${name} [${xs}]`, inputs: [{ shape: xs }, { shape: xs }], gpu: ([t, s]) => gpu(t, s), ref: ([t, s]) => [cpu(t, s)] });
  }
}

/**
 * Which inputs require a gradient in a run: all of them, then (for ops of several differentiable inputs)
 * each one alone, so that every backward rule is exercised with each argument position wanting a
 * gradient while the others do not (the path where a rule must skip work, and once lost gradients).
 */
function gradientModes(c: OpCase): Array<{ label: string; wants: boolean[] }> {
  const differentiable = c.inputs.map((s) => s.grad !== false);
  const modes = [{ label: '', wants: differentiable }];
  if (differentiable.filter(Boolean).length > 1) {
    differentiable.forEach((d, k) => {
      if (d) modes.push({ label: ` (only input ${k} requires a gradient)`, wants: differentiable.map((_, i) => i === k) });
    });
  }
  return modes;
}

describe('ops match float64 references and finite differences', () => {
  cases.forEach((c, ci) => {
    for (const { label, wants } of gradientModes(c)) {
      it(c.name + label, async () => {
        const rt = ctx.rt;
        const rng = new Rng(1000 + ci);
        const values = c.inputs.map((s) => (s.values ? s.values(rng, size(s.shape)) : randn(rng, size(s.shape), s.scale ?? 1)));
        await rt.tidyAsync(async () => {
          const xs = c.inputs.map((s, i) => {
            const t = rt.tensor(Float32Array.from(values[i]), s.shape);
            t.requiresGrad = wants[i];
            return t;
          });
          const y = c.gpu(xs);
          const want = c.ref(values);
          expect(y.size).toBe(want.length);
          expect(relErr(await y.read(), want), 'forward').toBeLessThan(TOL);

          const gradOut = randn(rng, y.size);
          backward(y, rt.tensor(Float32Array.from(gradOut), y.shape));
          for (let k = 0; k < xs.length; k++) {
            if (!wants[k]) {
              expect(xs[k].grad, `input ${k} wants no gradient`).toBeNull();
              continue;
            }
            const fd = finiteDifference(c.ref, values, k, gradOut);
            const got = await xs[k].grad!.read();
            expect(relErr(got, fd), `gradient of input ${k}`).toBeLessThan(TOL);
            xs[k].grad!.dispose();
            xs[k].grad = null;
          }
        });
      });
    }
  });
});

describe('max pool: ties, NaN and the argmax as PyTorch; the inference form (no argmax) gives the same map', () => {
  for (const [k, s, p, xs] of [[3, 2, 1, [2, 3, 9, 11]], [2, 2, 0, [1, 2, 8, 6]], [3, 1, 1, [1, 2, 5, 7]], [3, 3, 1, [2, 1, 10, 13]]] as const) {
    it(`${k}/${s}/${p} x[${xs}]`, async () => {
      const rt = ctx.rt;
      const rng = new Rng(500 + k * 10 + s);
      // few distinct values (many ties), some NaN
      const x = Float32Array.from({ length: (xs as readonly number[]).reduce((a, b) => a * b, 1) }, () => (rng.next() < 0.04 ? NaN : Math.floor(rng.next() * 4) - 2));
      const want = ref.maxPool(x, [...xs] as ref.Shape4, k, s, p);
      await rt.tidyAsync(async () => {
        const t = rt.tensor(x, [...xs]);
        const { y, argmax } = maxPool2dForward(rt, t, { kernel: k, stride: s, padding: p });
        expect(Array.from(await y.read())).toEqual(Array.from(want.y));
        expect(Array.from(new Uint32Array((await argmax.read()).buffer))).toEqual(Array.from(want.argmax));
        const inference = maxPool2dForward(rt, t, { kernel: k, stride: s, padding: p }, false);
        expect(inference.argmax).toBeNull();
        expect(Array.from(await inference.y.read())).toEqual(Array.from(want.y));
      });
    });
  }
});

describe('global max pool: a NaN in a plane gives NaN (PyTorch), ties the first index', () => {
  // 6 planes take the workgroup tree; 75 the one-invocation-per-plane form on software adapters
  for (const xs of [[2, 3, 9, 11], [3, 25, 3, 5]]) {
    it(`x[${xs}]`, async () => {
      const rt = ctx.rt;
      const [N, C, H, W] = xs;
      const HW = H * W;
      const rng = new Rng(700 + C);
      const x = Float32Array.from({ length: N * C * HW }, () => Math.floor(rng.next() * 4) - 2);
      // a NaN in every other plane, at a different place each time
      for (let p = 0; p < N * C; p += 2) x[p * HW + ((p * 7) % HW)] = NaN;
      await rt.tidyAsync(async () => {
        const { y, argmax } = globalPoolForward(rt, rt.tensor(x, xs), 'max');
        const got = await y.read();
        const at = new Uint32Array((await argmax!.read()).buffer);
        for (let p = 0; p < N * C; p++) {
          const plane = x.subarray(p * HW, (p + 1) * HW);
          const nan = plane.findIndex((v) => Number.isNaN(v));
          const max = Math.max(...plane.filter((v) => !Number.isNaN(v)));
          if (nan >= 0) {
            expect(got[p], `plane ${p}`).toBeNaN();
            expect(at[p], `plane ${p}`).toBe(nan);
          } else {
            expect(got[p], `plane ${p}`).toBe(max);
            expect(at[p], `plane ${p}`).toBe(plane.indexOf(max));
          }
        }
      });
    });
  }
});

describe('fused inference epilogues of conv2d (no autograd)', () => {
  for (const [cin, cout, k, stride, pad] of [[13, 11, 3, 1, 1], [5, 9, 1, 2, 0]] as const) {
    it(`conv2d ${k}x${k}/s${stride} ${cin}->${cout} + bias + residual + ReLU`, async () => {
      const rt = ctx.rt;
      const rng = new Rng(77 + cin);
      const xs: ref.Shape4 = [3, cin, 9, 7];
      const ws: ref.Shape4 = [cout, cin, k, k];
      const [x, w, b] = [randn(rng, size(xs)), randn(rng, size(ws), 0.3), randn(rng, cout)];
      const conv = ref.conv2d(x, xs, w, ws, b, stride, pad);
      const r = randn(rng, conv.y.length);
      const want = conv.y.map((v, i) => Math.max(0, v + r[i]));
      await rt.tidyAsync(async () => {
        const t = (a: Float64Array, s: readonly number[]) => rt.tensor(Float32Array.from(a), [...s]);
        const y = conv2dForward(rt, t(x, xs), t(w, ws), t(b, [cout]), { stride, padding: pad, relu: true, residual: t(r, conv.shape) });
        expect(relErr(await y.read(), want)).toBeLessThan(TOL);
        // prepacked weights give the same result: bit-identical through the direct kernel; through Winograd
        // frozen weights take 4x4 tiles and trained ones 2x2 or 3x3 (RULES.trainedForwardTile), so within the tolerance
        const packed = PackedConvWeights.of(rt, t(w, ws), { stride, padding: pad });
        const y2 = conv2dForward(rt, t(x, xs), packed, t(b, [cout]), { stride, padding: pad, relu: true, residual: t(r, conv.shape) });
        if (planOn(rt, convGeometryOf(xs, ws, { stride, padding: pad }), 'forward', 'trained').algorithm === 'direct') expect(Array.from(await y2.read())).toEqual(Array.from(await y.read()));
        else expect(relErr(await y2.read(), want), 'packed (Winograd 4x4 tiles)').toBeLessThan(TOL);
        packed.dispose();
        // input channels split into chunks (what a GPU does for small feature maps), with and without the epilogue
        for (const splits of [2, 4]) {
          const ys = conv2dForward(rt, t(x, xs), t(w, ws), t(b, [cout]), { stride, padding: pad, relu: true, residual: t(r, conv.shape), splits });
          expect(relErr(await ys.read(), want), `splits ${splits}`).toBeLessThan(TOL);
          const plain = conv2dForward(rt, t(x, xs), t(w, ws), null, { stride, padding: pad, splits });
          const noBias = ref.conv2d(x, xs, w, ws, null, stride, pad).y;
          expect(relErr(await plain.read(), noBias), `splits ${splits}, no epilogue`).toBeLessThan(TOL);
        }
      });
    });
  }
});

describe('conv2d backward-data with the output channels split into chunks (the GPU path for small maps)', () => {
  for (const [cin, cout, k, stride, pad] of [[5, 13, 3, 1, 1], [3, 17, 3, 2, 1], [4, 9, 1, 2, 0]] as const) {
    it(`${k}x${k}/s${stride} ${cin}->${cout}`, async () => {
      const rt = ctx.rt;
      const rng = new Rng(300 + cout);
      const xs = [2, cin, 9, 7];
      const g = convGeometryOf(xs, [cout, cin, k, k], { stride, padding: pad });
      const w = randn(rng, cout * cin * k * k, 0.3);
      const dy = randn(rng, 2 * cout * g.OH * g.OW);
      await rt.tidyAsync(async () => {
        const wt = rt.tensor(Float32Array.from(w), [cout, cin, k, k]);
        const dyt = rt.tensor(Float32Array.from(dy), [2, cout, g.OH, g.OW]);
        const whole = await conv2dBackwardData(rt, dyt, wt, g, { splits: 1 }).read();
        for (const splits of [2, 3, 5]) {
          expect(relErr(await conv2dBackwardData(rt, dyt, wt, g, { splits }).read(), Float64Array.from(whole)), `splits ${splits}`).toBeLessThan(TOL);
        }
      });
    });
  }
});

/**
 * A conv case in float64 (stride-1 3x3 unless said): input, weights, bias, the reference output, a
 * residual, the fused reference (conv + bias + residual, ReLU) and an output gradient.
 */
function convCase(seed: number, N: number, cin: number, cout: number, H: number, W: number, pad: number, kernel = 3, stride = 1) {
  const rng = new Rng(seed);
  const xs: ref.Shape4 = [N, cin, H, W];
  const ws: ref.Shape4 = [cout, cin, kernel, kernel];
  const [x, w, b] = [randn(rng, size(xs)), randn(rng, size(ws), 0.3), randn(rng, cout)];
  const conv = ref.conv2d(x, xs, w, ws, b, stride, pad);
  const r = randn(rng, conv.y.length);
  const fused = conv.y.map((v, i) => Math.max(0, v + r[i]));
  const [, , OH, OW] = conv.shape;
  const dy = randn(rng, N * cout * OH * OW);
  return { xs, ws, x, w, b, conv, r, fused, OH, OW, dy };
}

describe('conv2d algorithms: direct and Winograd (F(4x4, 3x3), F(3x3, 3x3) and F(2x2, 3x3); F(3x3, 4x4) and F(3x3, 2x2) for the weight gradient), every pass, against float64', () => {
  // odd sizes (half tiles at the edges), paddings 0..2, channel counts off the block of 8, batch > 1; maps whose
  // width divides by 4 (the output transform stores tile rows as vec4s), one with a partial row of tiles
  // (and one map large enough that weights being trained take 3x3 tiles: RULES.trainedForwardTile)
  const shapes = [[1, 3, 5, 7, 9, 1], [2, 13, 17, 8, 6, 1], [3, 4, 9, 5, 6, 0], [2, 6, 3, 6, 5, 2], [1, 20, 12, 11, 3, 1], [2, 5, 10, 9, 12, 1], [2, 5, 6, 33, 34, 1]] as const;
  for (const [N, cin, cout, H, W, pad] of shapes) {
    for (const algorithm of ['direct', 'winograd'] as const) {
      it(`${algorithm}: 3x3/s1/p${pad} ${cin}->${cout} x[${N},${cin},${H},${W}]`, async () => {
        const rt = ctx.rt;
        const { xs, ws, x, w, b, conv, r, fused, OH, OW, dy } = convCase(900 + cin * 7 + pad, N, cin, cout, H, W, pad);
        await rt.tidyAsync(async () => {
          const t = (a: Float64Array, s: readonly number[]) => rt.tensor(Float32Array.from(a), [...s]);
          const y = conv2dForward(rt, t(x, xs), t(w, ws), t(b, [cout]), { padding: pad, relu: true, residual: t(r, conv.shape), algorithm });
          expect(y.shape).toEqual([...conv.shape]);
          expect(relErr(await y.read(), fused), 'forward + bias + residual + ReLU').toBeLessThan(TOL);
          const plain = conv2dForward(rt, t(x, xs), t(w, ws), null, { padding: pad, algorithm });
          expect(relErr(await plain.read(), ref.conv2d(x, xs, w, ws, null, 1, pad).y), 'forward').toBeLessThan(TOL);
          const g = convGeometryOf(xs, ws, { padding: pad });
          const dx = conv2dBackwardData(rt, t(dy, [N, cout, OH, OW]), t(w, ws), g, { algorithm });
          expect(dx.shape).toEqual([...xs]);
          expect(relErr(await dx.read(), ref.conv2dInputGrad(dy, w, xs, ws, OH, OW, 1, pad)), 'backward-data').toBeLessThan(TOL);
          const dw = conv2dBackwardWeight(rt, t(dy, [N, cout, OH, OW]), t(x, xs), g, { algorithm });
          expect(dw.shape).toEqual([...ws]);
          expect(relErr(await dw.read(), ref.conv2dWeightGrad(dy, x, xs, ws, OH, OW, pad)), 'backward-weight').toBeLessThan(TOL);
          // frozen weights: packed once, with the transform of the runtime's algorithm
          const packed = PackedConvWeights.of(rt, t(w, ws), { padding: pad });
          expect(packed.winograd !== null).toBe(prefersWinograd(rt));
          const yp = conv2dForward(rt, t(x, xs), packed, t(b, [cout]), { padding: pad, relu: true, residual: t(r, conv.shape) });
          expect(relErr(await yp.read(), fused), 'forward with packed weights').toBeLessThan(TOL);
          packed.dispose();
        });
      });
    }
    // the tiles the runtime does not use by default, forward (with the epilogue) and backward-data, and the
    // other weight gradient
    const otherTiles = ([2, 3, 4] as const).filter((tile) => tile !== WINOGRAD_TILE);
    const otherWeightGradientTile = WEIGHT_GRADIENT_TILE === 4 ? 2 : 4;
    it(`winograd ${otherTiles.map((tile) => `${tile}x${tile}`).join(' and ')} tiles (weight gradient ${otherWeightGradientTile}x${otherWeightGradientTile}): 3x3/s1/p${pad} ${cin}->${cout} x[${N},${cin},${H},${W}]`, async () => {
      const rt = ctx.rt;
      const { xs, ws, x, w, b, conv, r, fused, OH, OW, dy } = convCase(1900 + cin * 7 + pad, N, cin, cout, H, W, pad);
      await rt.tidyAsync(async () => {
        const t = (a: Float64Array, s: readonly number[]) => rt.tensor(Float32Array.from(a), [...s]);
        for (const tile of otherTiles) {
          const u = winogradWeights(rt, t(w, ws), true, tile);
          expect(u.shape[0]).toBe((tile + 2) ** 2);
          const y = winogradConv(rt, t(x, xs), u, cout, pad, { bias: t(b, [cout]), residual: t(r, conv.shape), relu: true });
          expect(relErr(await y.read(), fused), `forward + bias + residual + ReLU, ${tile}x${tile} tiles`).toBeLessThan(TOL);
          const chunked = winogradConv(rt, t(x, xs), u, cout, pad, { bias: t(b, [cout]), residual: t(r, conv.shape), relu: true, maxImagesPerChunk: 1 });
          expect(Array.from(await chunked.read()), `forward in chunks of one image, ${tile}x${tile} tiles`).toEqual(Array.from(await y.read()));
          const dx = winogradConv(rt, t(dy, [N, cout, OH, OW]), winogradWeights(rt, t(w, ws), false, tile), cin, 2 - pad);
          expect(dx.shape).toEqual([...xs]);
          expect(relErr(await dx.read(), ref.conv2dInputGrad(dy, w, xs, ws, OH, OW, 1, pad)), `backward-data, ${tile}x${tile} tiles`).toBeLessThan(TOL);
        }
        const u = winogradWeights(rt, t(w, ws), true, otherTiles[0]);
        const g = convGeometryOf(xs, ws, { padding: pad });
        const dw = winogradConvBackwardWeight(rt, t(dy, [N, cout, OH, OW]), t(x, xs), g, otherWeightGradientTile);
        expect(relErr(await dw.read(), ref.conv2dWeightGrad(dy, x, xs, ws, OH, OW, pad)), `backward-weight, F(3x3, ${otherWeightGradientTile}x${otherWeightGradientTile})`).toBeLessThan(TOL);
        // the batch one image at a time, each chunk's products added to the last's
        for (const tile of [2, 4] as const) {
          const chunked = winogradConvBackwardWeight(rt, t(dy, [N, cout, OH, OW]), t(x, xs), g, tile, 1);
          expect(relErr(await chunked.read(), ref.conv2dWeightGrad(dy, x, xs, ws, OH, OW, pad)), `backward-weight, F(3x3, ${tile}x${tile}), in chunks of one image`).toBeLessThan(TOL);
        }
        // weights transformed for another (padded) output channel count are refused, naming both
        expect(() => winogradConv(rt, t(x, xs), u, cout + 8, pad)).toThrow(/weights transformed as .*input has \d+ channels and the output \d+/);
      });
    });
  }

  // Stride-2 convs over the input's four stride-2 phases: the stem (7x7) by F(3x3, 4x4), a 3x3 one by
  // F(4x4, 2x2). Odd sizes (partial tiles, phases of unequal size), paddings 0..3, channel counts off the
  // block of 8, batch > 1.
  const phaseCases = [
    [7, 2, 3, 12, 37, 29, 3], [7, 3, 2, 9, 11, 20, 0], [7, 1, 5, 17, 8, 9, 2], [7, 2, 3, 64, 16, 16, 3],
    [3, 2, 5, 12, 17, 13, 1], [3, 3, 8, 9, 10, 20, 0], [3, 1, 3, 17, 9, 8, 2], [3, 2, 16, 32, 32, 32, 1], [3, 1, 4, 8, 9, 9, 1],
  ] as const;
  for (const [K, N, cin, cout, H, W, pad] of phaseCases) {
    it(`stride 2 by Winograd over the phases: ${K}x${K}/s2/p${pad} ${cin}->${cout} x[${N},${cin},${H},${W}], in chunks of images, through packed weights; the weight gradient and backward-data, whole and in chunks`, async () => {
      const rt = ctx.rt;
      const { xs, ws, x, w, b, conv, r, fused, OH, OW, dy } = convCase(4100 + cout + pad + K, N, cin, cout, H, W, pad, K, 2);
      await rt.tidyAsync(async () => {
        const t = (a: Float64Array, s: readonly number[]) => rt.tensor(Float32Array.from(a), [...s]);
        const u = phaseWinogradWeights(rt, t(w, ws));
        expect(u.shape).toEqual([K === 7 ? 36 : 25, 4 * cin, Math.ceil(cout / 8) * 8]);
        const plain = phaseWinogradConv(rt, t(x, xs), u, cout, pad);
        expect(plain.shape).toEqual([...conv.shape]);
        expect(relErr(await plain.read(), ref.conv2d(x, xs, w, ws, null, 2, pad).y), 'forward').toBeLessThan(TOL);
        const epilogue = { bias: t(b, [cout]), residual: t(r, conv.shape), relu: true };
        const y = phaseWinogradConv(rt, t(x, xs), u, cout, pad, epilogue);
        expect(relErr(await y.read(), fused), 'forward + bias + residual + ReLU').toBeLessThan(TOL);
        // one image per pass: each chunk reads and writes its own images (and their residual)
        const chunked = phaseWinogradConv(rt, t(x, xs), u, cout, pad, { ...epilogue, maxImagesPerChunk: 1 });
        expect(Array.from(await chunked.read())).toEqual(Array.from(await y.read()));
        // frozen weights: packed with the phases' transform where the runtime prefers Winograd
        const packed = PackedConvWeights.of(rt, t(w, ws), { stride: 2, padding: pad });
        expect(packed.winograd?.shape[0] ?? null).toBe(prefersWinograd(rt) ? u.shape[0] : null);
        const yp = conv2dForward(rt, t(x, xs), packed, t(b, [cout]), { stride: 2, padding: pad, relu: true, residual: t(r, conv.shape) });
        expect(relErr(await yp.read(), fused), 'forward with packed weights').toBeLessThan(TOL);
        const direct = conv2dForward(rt, t(x, xs), packed, t(b, [cout]), { stride: 2, padding: pad, relu: true, residual: t(r, conv.shape), algorithm: 'direct' });
        expect(relErr(await direct.read(), fused), 'forward with packed weights, direct').toBeLessThan(TOL);
        // weights being trained (transformed at each call where the runtime prefers Winograd)
        const [xt, wt, bt, rest] = [t(x, xs), t(w, ws), t(b, [cout]), t(r, conv.shape)];
        const dispatchesOf = (algorithm?: 'direct') => {
          const before = rt.commands.dispatchCount;
          const out = conv2dForward(rt, xt, wt, bt, { stride: 2, padding: pad, relu: true, residual: rest, algorithm });
          return { out, dispatches: rt.commands.dispatchCount - before };
        };
        const directly = dispatchesOf('direct');
        const { out: trained, dispatches } = dispatchesOf();
        // a 3x3 one on fewer tiles than the GEMM computes at a time stays direct
        const tiles = N * Math.ceil(conv.shape[2] / 4) * Math.ceil(conv.shape[3] / 4);
        expect(dispatches > directly.dispatches, 'trained weights by Winograd (more passes than direct)').toBe(prefersWinograd(rt) && (K === 7 || tiles >= MIN_PHASE_TILES));
        expect(relErr(await trained.read(), fused), 'forward with weights being trained').toBeLessThan(TOL);
        packed.dispose();
        // the weight gradient by the transposed algorithm over the phases, and as conv2dBackwardWeight picks it
        const g = convGeometryOf(xs, ws, { stride: 2, padding: pad });
        const dwWant = ref.conv2dWeightGrad(dy, x, xs, ws, OH, OW, pad, 2);
        const dyt = t(dy, [N, cout, OH, OW]);
        expect(relErr(await phaseWinogradConvBackwardWeight(rt, dyt, xt, g).read(), dwWant), 'weight gradient over the phases').toBeLessThan(TOL);
        expect(relErr(await phaseWinogradConvBackwardWeight(rt, dyt, xt, g, 1).read(), dwWant), 'weight gradient over the phases, in chunks of one image').toBeLessThan(TOL);
        expect(relErr(await conv2dBackwardWeight(rt, dyt, xt, g).read(), dwWant), 'weight gradient').toBeLessThan(TOL);
        expect(relErr(await conv2dBackwardWeight(rt, dyt, xt, g, { algorithm: 'winograd' }).read(), dwWant), 'weight gradient, Winograd asked for').toBeLessThan(TOL);
        expect(relErr(await conv2dBackwardWeight(rt, dyt, xt, g, { algorithm: 'direct' }).read(), dwWant), 'weight gradient, direct').toBeLessThan(TOL);
        // backward-data: dy convolved with each phase's rotated filter, written into the input's phases
        // (every pixel of dx written once: the runtime poisons new buffers with NaN)
        const dxWant = ref.conv2dInputGrad(dy, w, xs, ws, OH, OW, 2, pad);
        const uData = phaseWinogradWeights(rt, wt, false);
        expect(uData.shape).toEqual([K === 7 ? 36 : 25, cout, Math.ceil((4 * cin) / 8) * 8]);
        const dx = phaseWinogradConvBackwardData(rt, dyt, uData, g);
        expect(dx.shape).toEqual([...xs]);
        expect(relErr(await dx.read(), dxWant), 'backward-data over the phases').toBeLessThan(TOL);
        expect(Array.from(await phaseWinogradConvBackwardData(rt, dyt, uData, g, 1).read()), 'backward-data over the phases, in chunks of one image').toEqual(Array.from(await dx.read()));
        for (const algorithm of [undefined, 'winograd', 'direct'] as const) {
          expect(relErr(await conv2dBackwardData(rt, dyt, wt, g, { algorithm }).read(), dxWant), `backward-data, ${algorithm ?? 'default'}`).toBeLessThan(TOL);
        }
        // by default a 3x3 one on fewer tiles than MIN_PHASE_BACKWARD_DATA_TILES stays direct
        const passesOf = (algorithm?: 'direct') => {
          const before = rt.commands.dispatchCount;
          conv2dBackwardData(rt, dyt, wt, g, { algorithm });
          return rt.commands.dispatchCount - before;
        };
        const directPasses = passesOf('direct');
        expect(passesOf() > directPasses, 'backward-data by Winograd (more passes than direct)').toBe(prefersWinograd(rt) && (K === 7 || tiles >= MIN_PHASE_BACKWARD_DATA_TILES));
        // the planner says which way each pass went (the kernels benchmark reports it)
        const weightGradientPasses = (algorithm?: 'direct') => {
          const before = rt.commands.dispatchCount;
          conv2dBackwardWeight(rt, dyt, xt, g, { algorithm });
          return rt.commands.dispatchCount - before;
        };
        const route = (pass: ConvPass) => (planOn(rt, g, pass, 'trained').algorithm === 'direct' ? 'direct' : 'phases');
        const byPhases = (yes: boolean) => (yes ? 'phases' : 'direct');
        expect(route('forward'), 'plan of the forward').toBe(byPhases(dispatches > directly.dispatches));
        expect(route('backward-data'), 'plan of backward-data').toBe(byPhases(passesOf() > directPasses));
        expect(route('backward-weight'), 'plan of the weight gradient').toBe(byPhases(weightGradientPasses() !== weightGradientPasses('direct')));
        expect(planOn(rt, g, 'forward', 'trained', 'direct').algorithm).toBe('direct');
        expect(() => phaseWinogradConvBackwardData(rt, dyt, uData, { ...g, Cout: cout + 1 })).toThrow(/weights transformed as .*output x 4 input phases.*has \d+ output and \d+ input channels/);
        expect(() => phaseWinogradConv(rt, t(x, xs), u, cout + 8, pad)).toThrow(/weights transformed as .*4 input phases.*input has \d+ channels and the output \d+/);
      });
    });
  }

  it('weights being trained take 3x3 tiles where their GEMM does at most 3/4 of the 2x2 tiles\' multiply-adds', () => {
    const tileOf = (side: number) => trainedForwardTile({ OH: side, OW: side });
    expect([4, 8, 16, 32, 64, 128].map(tileOf)).toEqual([2, 2, 2, 3, 3, 3]);
    expect(trainedForwardTile({ OH: 33, OW: 34 })).toBe(3);
    expect(trainedForwardTile({ OH: 8, OW: 8 }, { trainedForwardTile: 3 })).toBe(3);
  });

  it('a trained forward whose 3x3 or 2x2 tiles\' temporaries exceed one binding goes direct where 4x4 ones would fit', () => {
    // 8 -> 8 channels on a 64x64 map: one image's widest temporary is 295 KiB with 4x4 tiles, 387 KiB with
    // 3x3 (what trainedForwardTile takes there), 524 KiB with 2x2
    const g = convGeometryOf([1, 8, 64, 64], [8, 8, 3, 3], { padding: 1 });
    const caps = (bytes: number) => ({ isSoftware: true, maxStorageBufferBindingSize: bytes });
    const plan = (bytes: number, pass: ConvPass, tile?: 2 | 3, request?: 'winograd') => planConv(caps(bytes), g, pass, 'trained', request, { trainedForwardTile: tile }).algorithm;
    expect(plan(320 * 1024, 'backward-data')).toBe('winograd-f4x3');
    expect(plan(320 * 1024, 'forward')).toBe('direct');
    expect(() => plan(320 * 1024, 'forward', undefined, 'winograd')).toThrow(/Winograd was asked for but cannot run this conv \(3x3, stride 1, padding 1, input 1x8x64x64\): the Winograd temporaries \(3x3 tiles\) of one image exceed one binding/);
    expect(plan(450 * 1024, 'forward')).toBe('winograd-f3x3');
    expect(plan(450 * 1024, 'forward', 2)).toBe('direct');
    // a device's real caps: the plan the passes take
    expect(planOn(ctx.rt, g, 'forward', 'trained').algorithm).toBe(planConv(adapterCaps(ctx.rt), g, 'forward', 'trained').algorithm);
  });

  it('Winograd asked for where it cannot run is an error naming the geometry; packed weights without its transform refuse it', async () => {
    const rt = ctx.rt;
    await rt.tidyAsync(async () => {
      const x = rt.tensor(new Float32Array(2 * 4 * 8 * 8).fill(1), [2, 4, 8, 8]);
      const w3 = rt.tensor(new Float32Array(5 * 4 * 9).fill(0.1), [5, 4, 3, 3]);
      expect(() => conv2dForward(rt, x, w3, null, { stride: 3, padding: 1, algorithm: 'winograd' })).toThrow(/^conv2d: Winograd was asked for but cannot run this conv \(3x3, stride 3, padding 1, input 2x4x8x8\): Winograd needs a stride-1 3x3 convolution/);
      expect(() => conv2dBackwardData(rt, rt.tensor(new Float32Array(2 * 5 * 9), [2, 5, 3, 3]), w3, convGeometryOf(x.shape, w3.shape, { stride: 3, padding: 1 }), { algorithm: 'winograd' })).toThrow(/^conv2d backward \(input\): Winograd was asked for .*stride 3.*or a 7x7 or 3x3 stride-2 one/);
      const w1 = rt.tensor(new Float32Array(5 * 4).fill(0.1), [5, 4, 1, 1]);
      expect(() => conv2dForward(rt, x, w1, null, { algorithm: 'winograd' })).toThrow(/\(1x1, stride 1, .*Winograd needs a stride-1 3x3/);
      const packedForStride3 = PackedConvWeights.of(rt, w3, { stride: 3, padding: 1 });
      expect(packedForStride3.winograd).toBeNull();
      expect(() => conv2dForward(rt, x, packedForStride3, null, { padding: 1, algorithm: 'winograd' })).toThrow(/no Winograd transform/);
      expect(() => conv2dForward(rt, x, packedForStride3, null, { stride: 2, padding: 1, algorithm: 'winograd' })).toThrow(/no Winograd transform/);
      // used at stride 1 anyway: the direct path, still exact
      const y = conv2dForward(rt, x, packedForStride3, null, { padding: 1 });
      expect(Array.from(await y.read())).toEqual(Array.from(await conv2dForward(rt, x, w3, null, { padding: 1, algorithm: 'direct' }).read()));
      packedForStride3.dispose();
      // packed for stride 2 (with the phases' transform where the runtime prefers Winograd), used at stride 1: direct
      const packedForStride2 = PackedConvWeights.of(rt, w3, { stride: 2, padding: 1 });
      const y1 = conv2dForward(rt, x, packedForStride2, null, { padding: 1 });
      expect(Array.from(await y1.read())).toEqual(Array.from(await y.read()));
      packedForStride2.dispose();
      // asked for on any runtime, a stride-2 conv runs over the phases
      const y2 = conv2dForward(rt, x, w3, null, { stride: 2, padding: 1, algorithm: 'winograd' });
      const y2direct = conv2dForward(rt, x, w3, null, { stride: 2, padding: 1, algorithm: 'direct' });
      expect(relErr(await y2.read(), await y2direct.read())).toBeLessThan(TOL);
    });
  });
});
