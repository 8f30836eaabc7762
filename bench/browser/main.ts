/**
 * The browser page of bench/browser-peers.ts: our inference and onnxruntime-web's on the browser's own
 * WebGPU adapter, the same network (teacher + student + anomaly map, what `dcam export` writes) on the same
 * input, one onnxruntime-web build per page load (`?build=webgpu`: the C++ WebGPU EP, `ort.webgpu.min.mjs`;
 * `?build=jsep`: the JavaScript EP, `ort.all.min.mjs`). onnxruntime-web is loaded unbundled from /ort/, as
 * its own files (its wasm beside it); the teacher from /weights/. The result goes to `window.benchResult`.
 */
import { buildInferenceOnnx } from '../../src/export/onnx.js';
import { createDevice, describeAdapter } from '../../src/graph/device.js';
import type { KernelTime } from '../../src/graph/profiler.js';
import { setConvPolicy } from '../../src/kernels/conv2d.js';
import { foldTrunk } from '../../src/model/resnet.js';
import { time, type Timing } from '../lib/timing.js';
import { relDiff } from '../lib/agreement.js';
import { benchInputs, benchWeights, inferenceModel } from '../lib/network.js';

/* eslint-disable @typescript-eslint/no-explicit-any */
const q = new URLSearchParams(location.search);
const build = q.get('build') === 'jsep' ? 'jsep' : 'webgpu';
const size = Number(q.get('size') ?? 128);
const batches = (q.get('batches') ?? '1').split(',').map(Number);
/** How our 3x3 and stride-2 convs run (`--conv3x3` of bench/run.ts); default: the planner's choice for the adapter. */
const conv3x3 = q.get('conv3x3') as 'direct' | 'winograd' | null;
const timing = { warmup: Number(q.get('warmup') ?? 1), runs: Number(q.get('runs') ?? 3) };
const out = document.getElementById('out')!;
const log = (s: string) => (out.textContent += `\n${s}`);

async function main() {
  const rt = await createDevice();
  if (conv3x3) setConvPolicy(rt, { conv3x3 });
  const teacherBytes = new Uint8Array(await (await fetch('/weights/resnet18-imagenet-layer1to3.safetensors')).arrayBuffer());
  const w = await benchWeights(rt, { bytes: teacherBytes, name: 'the shipped teacher' });
  const model = await inferenceModel(rt, w);
  const config = model.config;
  const onnx = await buildInferenceOnnx(foldTrunk(w.teacherSd), foldTrunk(w.studentSd), size, config.aggregation);

  // a URL made at run time: the bundler leaves it alone, the browser loads ort-web's own files
  const ortUrl = new URL(`/ort/${build === 'webgpu' ? 'ort.webgpu.min.mjs' : 'ort.all.min.mjs'}`, location.href).href;
  const ort: any = await import(/* @vite-ignore */ ortUrl);
  ort.env.logLevel = 'error';
  ort.env.wasm.numThreads = 1;
  const session = await ort.InferenceSession.create(onnx, { executionProviders: ['webgpu'], graphOptimizationLevel: 'all' });
  log(`adapter ${describeAdapter(rt)}; onnxruntime-web ${ort.env.versions?.web} (${build})`);

  const rows: Array<{ batch: number; size: number; ours: Timing; ortWeb: Timing; ratio: number; agreement: number; profile: KernelTime[] | string }> = [];
  for (const batch of batches) {
    const x = benchInputs(batch * 3 * size * size, batch);
    let oursMap: Float32Array | null = null;
    let ortMap: Float32Array | null = null;
    const ours = await time(
      async () => {
        const m = rt.tidy(() => model.anomalyMap(rt.tensor(x, [batch, 3, size, size])));
        const d = await m.read();
        m.dispose();
        oursMap ??= d;
      },
      () => rt.sync(),
      timing,
    );
    const ortWeb = await time(
      async () => {
        const r = await session.run({ image: new ort.Tensor('float32', x, [batch, 3, size, size]) });
        ortMap ??= r.map.data as Float32Array;
      },
      async () => {},
      timing,
    );
    // where our time goes on this adapter (timestamp queries, when the browser exposes them)
    let profile: KernelTime[] | string = 'the adapter has no timestamp-query';
    if (rt.features.has('timestamp-query')) {
      const { kernels } = await rt.profile(async () => {
        const m = rt.tidy(() => model.anomalyMap(rt.tensor(x, [batch, 3, size, size])));
        await m.read();
        m.dispose();
      });
      profile = kernels;
    }
    const row = { batch, size, ours, ortWeb, ratio: ortWeb.median / ours.median, agreement: relDiff(oursMap!, ortMap!), profile };
    rows.push(row);
    log(`batch ${batch}: ours ${ours.median.toFixed(1)} ms, onnxruntime-web ${ortWeb.median.toFixed(1)} ms (x${row.ratio.toFixed(2)}), maps ${row.agreement.toExponential(1)}`);
  }
  await session.release();
  model.dispose();
  w.teacher.dispose();
  return { build, conv3x3: conv3x3 ?? 'the adapter\'s default', version: ort.env.versions?.web ?? 'unknown', adapter: describeAdapter(rt), userAgent: navigator.userAgent, size, timing, rows };
}

main().then(
  (r) => ((window as any).benchResult = r),
  (e) => {
    (window as any).benchResult = { error: String(e?.stack ?? e) };
    log(`error: ${e}`);
  },
);
