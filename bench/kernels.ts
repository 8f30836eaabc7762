/**
 * Kernel benchmark: conv2d forward, backward-data and backward-weight for every ResNet18 conv1..layer3
 * shape, beside tfjs-backend-webgpu on the same adapter in the same process, with the ratio.
 *
 *   npm run bench:kernels                 # batch 8, 128x128 input (the setting)
 *   npm run bench:kernels -- --quick      # tiny sizes, one timed run: proves the harness works
 *   npm run bench:kernels -- --size 256 --batch 8 --runs 7
 *
 * Method: both engines get the same inputs; warm-up runs (pipeline compiles) are excluded; each timed
 * run drains the GPU queue before and after; the median of the runs is reported with min and max.
 * GFLOP/s counts 2 FLOPs per multiply-add of the direct convolution (same count for all three passes).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { create, globals } from 'webgpu';
import { createDevice, describeAdapter, type Runtime } from '../src/index.js';
import { conv2dBackwardData, conv2dBackwardWeight, conv2dForward, convGeometry, convGeometryOf, conv2dMacs, type ConvGeometry } from '../src/kernels/conv2d.js';
import { Rng } from '../src/nn/init.js';

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    size: { type: 'string', default: '128' },
    batch: { type: 'string', default: '8' },
    runs: { type: 'string', default: '5' },
    'no-peer': { type: 'boolean', default: false },
    out: { type: 'string', default: 'bench/results' },
  },
});
const quick = args.quick!;
const size = quick ? 32 : Number(args.size);
const batch = quick ? 2 : Number(args.batch);
const runs = quick ? 1 : Math.max(1, Number(args.runs));
const warmup = quick ? 1 : 2;

// Both engines share one Dawn GPU instance (tfjs finds it through navigator.gpu).
Object.assign(globalThis, globals);
(globalThis as { navigator?: unknown }).navigator = { gpu: create([]) };

interface ConvCase { name: string; cin: number; cout: number; k: number; stride: number; pad: number; hw: number }

/** The distinct convolutions of ResNet18 conv1..layer3 at input size S (count = how many in the trunk). */
function resnetShapes(S: number): Array<ConvCase & { count: number }> {
  const s2 = S / 2, s4 = S / 4, s8 = S / 8;
  return [
    { name: 'conv1 7x7/2 3->64', cin: 3, cout: 64, k: 7, stride: 2, pad: 3, hw: S, count: 1 },
    { name: 'layer1 3x3 64->64', cin: 64, cout: 64, k: 3, stride: 1, pad: 1, hw: s4, count: 4 },
    { name: 'layer2.0 3x3/2 64->128', cin: 64, cout: 128, k: 3, stride: 2, pad: 1, hw: s4, count: 1 },
    { name: 'layer2.0 down 1x1/2 64->128', cin: 64, cout: 128, k: 1, stride: 2, pad: 0, hw: s4, count: 1 },
    { name: 'layer2 3x3 128->128', cin: 128, cout: 128, k: 3, stride: 1, pad: 1, hw: s8, count: 3 },
    { name: 'layer3.0 3x3/2 128->256', cin: 128, cout: 256, k: 3, stride: 2, pad: 1, hw: s8, count: 1 },
    { name: 'layer3.0 down 1x1/2 128->256', cin: 128, cout: 256, k: 1, stride: 2, pad: 0, hw: s8, count: 1 },
    { name: 'layer3 3x3 256->256', cin: 256, cout: 256, k: 3, stride: 1, pad: 1, hw: s2 / 8, count: 3 },
  ];
}

interface Timing { median: number; min: number; max: number }

async function time(run: () => void, drain: () => Promise<void>): Promise<Timing> {
  for (let i = 0; i < warmup; i++) {
    run();
    await drain();
  }
  const ms: number[] = [];
  for (let i = 0; i < runs; i++) {
    await drain();
    const t0 = performance.now();
    run();
    await drain();
    ms.push(performance.now() - t0);
  }
  ms.sort((a, b) => a - b);
  return { median: ms[Math.floor(ms.length / 2)], min: ms[0], max: ms[ms.length - 1] };
}

function random(n: number, rng: Rng, scale = 1): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = rng.normal() * scale;
  return a;
}

type Pass = 'forward' | 'backward-data' | 'backward-weight';
const PASSES: Pass[] = ['forward', 'backward-data', 'backward-weight'];

async function benchOurs(rt: Runtime, c: ConvCase, data: { x: Float32Array; w: Float32Array; dy: Float32Array }): Promise<Record<Pass, Timing>> {
  const x = rt.tensor(data.x, [batch, c.cin, c.hw, c.hw]).keep();
  const w = rt.tensor(data.w, [c.cout, c.cin, c.k, c.k]).keep();
  const g: ConvGeometry = convGeometry(x, w, { stride: c.stride, padding: c.pad });
  const dy = rt.tensor(data.dy, [batch, c.cout, g.OH, g.OW]).keep();
  const drain = () => rt.sync();
  const out = {} as Record<Pass, Timing>;
  out.forward = await time(() => conv2dForward(rt, x, w, null, { stride: c.stride, padding: c.pad }).dispose(), drain);
  out['backward-data'] = await time(() => conv2dBackwardData(rt, dy, w, g).dispose(), drain);
  out['backward-weight'] = await time(() => conv2dBackwardWeight(rt, dy, x, g).dispose(), drain);
  x.dispose();
  w.dispose();
  dy.dispose();
  return out;
}

/* eslint-disable @typescript-eslint/no-explicit-any */
async function loadTfjs(): Promise<{ tf: any; drain: () => Promise<void> } | { error: string }> {
  try {
    const tf: any = await import('@tensorflow/tfjs-core');
    await import('@tensorflow/tfjs-backend-webgpu');
    if (!(await tf.setBackend('webgpu'))) return { error: 'tfjs could not initialise its webgpu backend' };
    await tf.ready();
    const backend: any = tf.backend();
    const drain = async () => {
      // The sequence tfjs itself uses before a readback: close the pass, submit.
      backend.ensureCommandEncoderReady();
      backend.endComputePassEncoder();
      backend.submitQueue();
      await backend.device.queue.onSubmittedWorkDone();
    };
    return { tf, drain };
  } catch (e) {
    return { error: `tfjs-backend-webgpu unavailable: ${(e as Error).message}` };
  }
}

/** NHWC <-> NCHW: tfjs runs in its native NHWC layout (its fastest path), on the same values. */
function nchwToNhwc(a: Float32Array, n: number, c: number, h: number, w: number): Float32Array {
  const o = new Float32Array(a.length);
  for (let b = 0; b < n; b++) for (let ch = 0; ch < c; ch++) for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
    o[((b * h + y) * w + x) * c + ch] = a[((b * c + ch) * h + y) * w + x];
  }
  return o;
}

/** OIHW -> HWIO (tfjs filter layout). */
function oihwToHwio(a: Float32Array, o: number, i: number, kh: number, kw: number): Float32Array {
  const r = new Float32Array(a.length);
  for (let oo = 0; oo < o; oo++) for (let ii = 0; ii < i; ii++) for (let y = 0; y < kh; y++) for (let x = 0; x < kw; x++) {
    r[((y * kw + x) * i + ii) * o + oo] = a[((oo * i + ii) * kh + y) * kw + x];
  }
  return r;
}

async function benchTfjs(tfjs: { tf: any; drain: () => Promise<void> }, c: ConvCase, data: { x: Float32Array; w: Float32Array; dy: Float32Array }, g: ConvGeometry): Promise<Record<Pass, Timing>> {
  const { tf, drain } = tfjs;
  const x = tf.tensor4d(nchwToNhwc(data.x, batch, c.cin, c.hw, c.hw), [batch, c.hw, c.hw, c.cin]);
  const w = tf.tensor4d(oihwToHwio(data.w, c.cout, c.cin, c.k, c.k), [c.k, c.k, c.cin, c.cout]);
  const dy = tf.tensor4d(nchwToNhwc(data.dy, batch, c.cout, g.OH, g.OW), [batch, g.OH, g.OW, c.cout]);
  const strides: [number, number] = [c.stride, c.stride];
  const out = {} as Record<Pass, Timing>;
  out.forward = await time(() => tf.conv2d(x, w, strides, c.pad).dispose(), drain);
  out['backward-data'] = await time(
    () => tf.engine().runKernel('Conv2DBackpropInput', { dy, filter: w }, { strides, pad: c.pad, dataFormat: 'NHWC', inputShape: x.shape, dimRoundingMode: undefined }).dispose(),
    drain,
  );
  out['backward-weight'] = await time(
    () => tf.engine().runKernel('Conv2DBackpropFilter', { x, dy }, { strides, pad: c.pad, dataFormat: 'NHWC', filterShape: w.shape, dimRoundingMode: undefined }).dispose(),
    drain,
  );
  x.dispose();
  w.dispose();
  dy.dispose();
  return out;
}

async function main(): Promise<void> {
  const rt = await createDevice();
  const adapter = describeAdapter(rt);
  console.log(`adapter: ${adapter}`);
  console.log(`conv2d kernels, batch ${batch}, input ${size}x${size}, median of ${runs} run(s) after ${warmup} warm-up\n`);
  const tfjs = args['no-peer'] ? { error: 'disabled by --no-peer' } : await loadTfjs();
  const rng = new Rng(42);
  const rows: Array<Record<string, unknown>> = [];
  const lines = [
    '| conv | pass | GFLOP | ours ms (min-max) | ours GFLOP/s | tfjs-webgpu ms | tfjs GFLOP/s | ratio |',
    '|---|---|---:|---:|---:|---:|---:|---:|',
  ];
  for (const c of resnetShapes(size)) {
    const g = convGeometryOf([batch, c.cin, c.hw, c.hw], [c.cout, c.cin, c.k, c.k], { stride: c.stride, padding: c.pad });
    const data = {
      x: random(batch * c.cin * c.hw * c.hw, rng),
      w: random(c.cout * c.cin * c.k * c.k, rng, 0.05),
      dy: random(batch * c.cout * g.OH * g.OW, rng),
    };
    const gflop = (2 * conv2dMacs(g)) / 1e9;
    const ours = await benchOurs(rt, c, data);
    const peer = 'error' in tfjs ? null : await benchTfjs(tfjs, c, data, g).catch((e: Error) => ({ error: e.message }) as const);
    for (const pass of PASSES) {
      const o = ours[pass];
      const p = peer && !('error' in peer) ? peer[pass] : null;
      const ratio = p ? p.median / o.median : null;
      const peerNote = 'error' in tfjs ? `n/a (${tfjs.error})` : peer && 'error' in peer ? `n/a (${peer.error})` : '';
      rows.push({ conv: c.name, pass, gflop, ours: o, oursGflops: gflop / (o.median / 1000), tfjs: p, tfjsGflops: p ? gflop / (p.median / 1000) : null, ratio, peerNote });
      lines.push(
        `| ${c.name} | ${pass} | ${gflop.toFixed(3)} | ${o.median.toFixed(2)} (${o.min.toFixed(1)}-${o.max.toFixed(1)}) | ${(gflop / (o.median / 1000)).toFixed(2)} | ` +
          (p ? `${p.median.toFixed(2)} | ${(gflop / (p.median / 1000)).toFixed(2)} | **${ratio!.toFixed(2)}x** |` : `${peerNote} | | |`),
      );
      for (const v of [o.median, p?.median ?? 1]) {
        if (!Number.isFinite(v) || v <= 0) throw new Error(`non-finite timing for ${c.name} ${pass}`);
      }
    }
    console.log(lines.slice(-3).join('\n'));
  }
  const ratios = rows.map((r) => r.ratio as number | null).filter((r): r is number => r !== null);
  const summary = ratios.length
    ? `ratio tfjs/ours: min ${Math.min(...ratios).toFixed(2)}x, geometric mean ${Math.exp(ratios.reduce((a, r) => a + Math.log(r), 0) / ratios.length).toFixed(2)}x over ${ratios.length} cases`
    : 'no peer figures';
  const md = [`# conv2d kernels: dcam-webgpu vs tfjs-backend-webgpu`, '', `adapter: ${adapter}`, `batch ${batch}, input ${size}x${size}, median of ${runs} run(s)`, '', ...lines, '', summary, ''].join('\n');
  console.log(`\n${summary}`);
  mkdirSync(args.out!, { recursive: true });
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const base = `${args.out}/${stamp}-kernels${quick ? '-quick' : ''}`;
  writeFileSync(`${base}.json`, JSON.stringify({ adapter: rt.adapter, batch, size, runs, node: process.version, rows }, null, 2));
  writeFileSync(`${base}.md`, md);
  console.log(`wrote ${base}.json and ${base}.md`);
  rt.destroy();
  process.exit(0); // tfjs keeps its own device alive
}

await main();
