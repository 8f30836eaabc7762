/**
 * conv2d forward / backward-data / backward-weight for every distinct convolution of ResNet18
 * conv1..layer3, ours beside tfjs-backend-webgpu's own kernels on the same adapter and values, in GFLOP/s
 * and as a fraction of a ceiling measured in the same run: the best large-matmul rate the engine reaches
 * (a 1x1 convolution is a matmul).
 */
import type { Runtime } from '../../src/graph/runtime.js';
import { conv2dBackwardData, conv2dBackwardWeight, conv2dForward, conv2dMacs, convGeometryOf, planOn, type ConvAlgorithm, type ConvPass, type ConvPlan } from '../../src/kernels/conv2d.js';
import { Rng } from '../../src/nn/init.js';
import type { Bench } from '../lib/context.js';
import { nchwToNhwc, oihwToHwio, type TfjsPeer } from '../lib/tfjs-peer.js';
import { geomean, time, tryPeer, type PeerResult, type Timing } from '../lib/timing.js';

export interface ConvShape {
  name: string;
  cin: number;
  cout: number;
  k: number;
  stride: number;
  pad: number;
  /** Input height = width. */
  hw: number;
  /** How many convs of this shape the trunk has. */
  count: number;
}

/** The distinct convolutions of ResNet18 conv1..layer3 at input size S. */
export function resnetConvShapes(S: number): ConvShape[] {
  const s4 = S / 4, s8 = S / 8, s16 = S / 16;
  return [
    { name: 'conv1 7x7/2 3->64', cin: 3, cout: 64, k: 7, stride: 2, pad: 3, hw: S, count: 1 },
    { name: 'layer1 3x3 64->64', cin: 64, cout: 64, k: 3, stride: 1, pad: 1, hw: s4, count: 4 },
    { name: 'layer2.0 3x3/2 64->128', cin: 64, cout: 128, k: 3, stride: 2, pad: 1, hw: s4, count: 1 },
    { name: 'layer2.0 down 1x1/2 64->128', cin: 64, cout: 128, k: 1, stride: 2, pad: 0, hw: s4, count: 1 },
    { name: 'layer2 3x3 128->128', cin: 128, cout: 128, k: 3, stride: 1, pad: 1, hw: s8, count: 3 },
    { name: 'layer3.0 3x3/2 128->256', cin: 128, cout: 256, k: 3, stride: 2, pad: 1, hw: s8, count: 1 },
    { name: 'layer3.0 down 1x1/2 128->256', cin: 128, cout: 256, k: 1, stride: 2, pad: 0, hw: s8, count: 1 },
    { name: 'layer3 3x3 256->256', cin: 256, cout: 256, k: 3, stride: 1, pad: 1, hw: s16, count: 3 },
  ];
}

export const geometryOf = (c: ConvShape, batch: number) => convGeometryOf([batch, c.cin, c.hw, c.hw], [c.cout, c.cin, c.k, c.k], { stride: c.stride, padding: c.pad });

/** FLOPs (2 per multiply-add) of one forward pass of the trunk (all convs) at input size S, per image. */
export function trunkForwardFlops(S: number): number {
  return resnetConvShapes(S).reduce((a, c) => a + c.count * 2 * conv2dMacs(geometryOf(c, 1)), 0);
}

type Pass = ConvPass;
const PASSES: Pass[] = ['forward', 'backward-data', 'backward-weight'];

export interface ConvRow {
  conv: string;
  pass: Pass;
  /** The algorithm the planner chose (stride-1 3x3 convs and stride-2 3x3 and 7x7 ones may run Winograd; GFLOP/s stay direct-equivalent). */
  algorithm: ConvPlan['algorithm'];
  gflop: number;
  ours: Timing;
  oursGflops: number;
  fractionOfCeiling: number;
  tfjs: PeerResult<Timing>;
  ratio: number | null;
}

export interface KernelsResult {
  batch: number;
  size: number;
  ceiling: { gflops: number; shape: string; timing: Timing };
  rows: ConvRow[];
  summary: { geomeanRatio: number | null; minRatio: number | null; cases: number };
}

function random(n: number, rng: Rng, scale = 1): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = rng.normal() * scale;
  return a;
}

/** Best rate of our conv kernel as a plain matmul (1x1 conv over a square problem), in GFLOP/s. */
async function measureCeiling(b: Bench): Promise<KernelsResult['ceiling']> {
  const rt = b.rt;
  const rng = new Rng(1);
  // Large enough to fill the device: a software adapter saturates early, a discrete GPU needs more.
  const sizes = b.quick ? [128] : rt.adapter.isSoftware ? [512, 1024] : [1024, 2048, 4096];
  let best: KernelsResult['ceiling'] | null = null;
  for (const n of sizes) {
    // M = pixels (32 x n/32), K = input channels, N = output channels: an n x n x n matmul.
    const x = rt.tensor(random(n * n, rng), [1, n, 32, n / 32]).keep();
    const wt = rt.tensor(random(n * n, rng, 0.03), [n, n, 1, 1]).keep();
    const t = await time(() => conv2dForward(rt, x, wt, null, {}).dispose(), () => rt.sync(), b.timing);
    const gflops = (2 * n * n * n) / 1e9 / (t.median / 1000);
    if (!best || gflops > best.gflops) best = { gflops, shape: `${n}x${n}x${n} matmul (1x1 conv)`, timing: t };
    x.dispose();
    wt.dispose();
  }
  return best!;
}

async function oursConv(rt: Runtime, c: ConvShape, batch: number, data: { x: Float32Array; w: Float32Array; dy: Float32Array }, b: Bench): Promise<Record<Pass, Timing>> {
  const g = geometryOf(c, batch);
  const x = rt.tensor(data.x, [batch, c.cin, c.hw, c.hw]).keep();
  const w = rt.tensor(data.w, [c.cout, c.cin, c.k, c.k]).keep();
  const dy = rt.tensor(data.dy, [batch, c.cout, g.OH, g.OW]).keep();
  const drain = () => rt.sync();
  const out = {} as Record<Pass, Timing>;
  out.forward = await time(() => conv2dForward(rt, x, w, null, { stride: c.stride, padding: c.pad }).dispose(), drain, b.timing);
  out['backward-data'] = await time(() => conv2dBackwardData(rt, dy, w, g).dispose(), drain, b.timing);
  out['backward-weight'] = await time(() => conv2dBackwardWeight(rt, dy, x, g).dispose(), drain, b.timing);
  for (const t of [x, w, dy]) t.dispose();
  return out;
}

/* eslint-disable @typescript-eslint/no-explicit-any */
async function tfjsConv(peer: TfjsPeer, c: ConvShape, batch: number, data: { x: Float32Array; w: Float32Array; dy: Float32Array }, b: Bench): Promise<Record<Pass, Timing>> {
  const { tf, drain } = peer;
  const g = geometryOf(c, batch);
  const x = tf.tensor4d(nchwToNhwc(data.x, batch, c.cin, c.hw, c.hw), [batch, c.hw, c.hw, c.cin]);
  const w = tf.tensor4d(oihwToHwio(data.w, c.cout, c.cin, c.k, c.k), [c.k, c.k, c.cin, c.cout]);
  const dy = tf.tensor4d(nchwToNhwc(data.dy, batch, c.cout, g.OH, g.OW), [batch, g.OH, g.OW, c.cout]);
  const strides: [number, number] = [c.stride, c.stride];
  const attrs = { strides, pad: c.pad, dataFormat: 'NHWC', dimRoundingMode: undefined };
  const out = {} as Record<Pass, Timing>;
  try {
    out.forward = await time(() => tf.conv2d(x, w, strides, c.pad).dispose(), drain, b.timing);
    out['backward-data'] = await time(() => tf.engine().runKernel('Conv2DBackpropInput', { dy, filter: w }, { ...attrs, inputShape: x.shape }).dispose(), drain, b.timing);
    out['backward-weight'] = await time(() => tf.engine().runKernel('Conv2DBackpropFilter', { x, dy }, { ...attrs, filterShape: w.shape }).dispose(), drain, b.timing);
  } finally {
    for (const t of [x, w, dy]) t.dispose();
  }
  return out;
}

export async function benchKernels(b: Bench): Promise<KernelsResult> {
  const { rt } = b;
  const batch = b.quick ? 2 : 8;
  const size = b.quick ? 32 : 128;
  console.log(`\n## conv2d kernels (batch ${batch}, input ${size}x${size})`);
  const ceiling = await measureCeiling(b);
  console.log(`ceiling: ${ceiling.gflops.toFixed(2)} GFLOP/s (${ceiling.shape})`);
  const rng = new Rng(42);
  const rows: ConvRow[] = [];
  for (const c of resnetConvShapes(size)) {
    const g = geometryOf(c, batch);
    const data = {
      x: random(batch * c.cin * c.hw * c.hw, rng),
      w: random(c.cout * c.cin * c.k * c.k, rng, 0.05),
      dy: random(batch * c.cout * g.OH * g.OW, rng),
    };
    const gflop = (2 * conv2dMacs(g)) / 1e9;
    const ours = await oursConv(rt, c, batch, data, b);
    const peer: PeerResult<Record<Pass, Timing>> = 'na' in b.tfjs ? b.tfjs : await tryPeer(`tfjs ${c.name}`, () => tfjsConv((b.tfjs as { ok: TfjsPeer }).ok, c, batch, data, b));
    for (const pass of PASSES) {
      const o = ours[pass];
      const p: PeerResult<Timing> = 'ok' in peer ? { ok: peer.ok[pass] } : peer;
      const oursGflops = gflop / (o.median / 1000);
      const algorithm = planOn(rt, g, pass, 'trained').algorithm;
      rows.push({ conv: c.name, pass, algorithm, gflop, ours: o, oursGflops, fractionOfCeiling: oursGflops / ceiling.gflops, tfjs: p, ratio: 'ok' in p ? p.ok.median / o.median : null });
      const r = rows[rows.length - 1];
      console.log(`${c.name.padEnd(30)} ${pass.padEnd(16)} ours ${o.median.toFixed(2).padStart(8)} ms  tfjs ${'ok' in p ? p.ok.median.toFixed(2).padStart(8) : 'n/a'.padStart(8)} ms  ratio ${r.ratio?.toFixed(2) ?? 'n/a'}`);
    }
  }
  const ratios = rows.map((r) => r.ratio).filter((r): r is number => r !== null);
  return {
    batch,
    size,
    ceiling,
    rows,
    summary: { geomeanRatio: ratios.length ? geomean(ratios) : null, minRatio: ratios.length ? Math.min(...ratios) : null, cases: ratios.length },
  };
}
