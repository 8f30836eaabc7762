/**
 * End-to-end cases: inference (image batch in, anomaly map read back) and one training step (upload, the
 * method's loss, backward, SGD, loss read back), ours beside tfjs-backend-webgpu on the same adapter and,
 * for inference, onnxruntime-node on the CPU. Peak GPU memory and a per-kernel GPU time breakdown of the
 * training step (timestamp queries) come with it.
 */
import { readFileSync } from 'node:fs';
import type { KernelTime } from '../../src/graph/profiler.js';
import type { Runtime } from '../../src/graph/runtime.js';
import { attentionTensorNames, createAttention } from '../../src/model/attention.js';
import { preset } from '../../src/model/config.js';
import { DistillationModel } from '../../src/model/distill.js';
import { foldTrunk, ResNetTrunk } from '../../src/model/resnet.js';
import { SGD } from '../../src/optim/sgd.js';
import { TrainStepper } from '../../src/train/step.js';
import type { Bench } from '../lib/context.js';
import { buildInferenceOnnx, loadOrt } from '../lib/onnx-peer.js';
import { countSteps } from '../lib/host-counts.js';
import { loadOrtWeb, type OrtWebBuild } from '../lib/ort-web-peer.js';
import { anomalyMapTf, foldedTrunk, nchwToNhwc, tfTrainStep, type TfjsPeer } from '../lib/tfjs-peer.js';
import { time, tryPeer, type PeerResult, type Timing } from '../lib/timing.js';
import { trunkForwardFlops } from './kernels.js';
import { relDiff } from '../lib/agreement.js';
import { benchInputs, benchWeights, inferenceModel, STUDENT_SEED, type Weights } from '../lib/network.js';

export type { Weights } from '../lib/network.js';

export async function loadWeights(b: Bench): Promise<Weights> {
  const f = b.teacherFile;
  return benchWeights(b.rt, f ? { bytes: readFileSync(f), name: f } : null);
}

// ---- inference ------------------------------------------------------------------------------------

export interface InferenceRow {
  batch: number;
  size: number;
  gflopPerImage: number;
  ours: Timing;
  tfjs: PeerResult<Timing>;
  ort: PeerResult<Timing>;
  /** onnxruntime-web on the same adapter, per build (C++ WebGPU EP, JSEP). */
  ortWeb: Partial<Record<OrtWebBuild, PeerResult<Timing>>>;
  /** ms per image, and peer / ours (above 1: we are faster). */
  oursMsPerImage: number;
  ratioTfjs: number | null;
  ratioOrt: number | null;
  ratioOrtWeb: Partial<Record<OrtWebBuild, number | null>>;
  /** Largest map difference relative to the map's largest value (the peers compute the same map). */
  agreement: { tfjs: number | null; ort: number | null; ortWeb: Partial<Record<OrtWebBuild, number | null>> };
  /** GPU time per kernel of one batch (timestamp queries), or why there is none. */
  profile: KernelTime[] | string;
}

/** One engine's inference: an NCHW image batch in, the anomaly maps [batch, S, S] back on the CPU. */
interface MapRunner {
  map: (x: Float32Array, batch: number) => Promise<Float32Array>;
  /** Waits until the engine's GPU queue is idle (nothing for a CPU engine). */
  drain: () => Promise<void>;
  release?: () => Promise<void>;
}

export async function benchInference(b: Bench, w: Weights): Promise<{ rows: InferenceRow[]; ortVersion: string | null; ortThreads: number | null; ortWebVersion: string | null }> {
  const rt = b.rt;
  const size = b.quick ? 32 : 256;
  const batches = b.quick ? [1, 2] : [1, 8];
  console.log(`\n## inference (teacher + student + anomaly map, ${size}x${size})`);
  const model = await inferenceModel(rt, w);
  const config = model.config;
  const teacherFolded = foldTrunk(w.teacherSd);
  const studentFolded = foldTrunk(w.studentSd);

  const ours: MapRunner = {
    map: async (x, batch) => {
      const m = rt.tidy(() => model.anomalyMap(rt.tensor(x, [batch, 3, size, size])));
      const d = await m.read();
      m.dispose();
      return d;
    },
    drain: () => rt.sync(),
  };
  const tfjs: PeerResult<MapRunner> = 'na' in b.tfjs ? b.tfjs : { ok: tfjsRunner(b.tfjs.ok, teacherFolded, studentFolded, size, config.aggregation) };
  let ortInfo: { version: string; threads: number } | null = null;
  // one ONNX model (what `dcam export` writes) for onnxruntime-node and both onnxruntime-web builds
  const onnx = !b.noOrt || b.ortWeb.length ? await buildInferenceOnnx(teacherFolded, studentFolded, size, config.aggregation) : null;
  const ort: PeerResult<MapRunner> = b.noOrt
    ? { na: 'disabled by --no-ort' }
    : await tryPeer('onnxruntime-node', async () => {
        const peer = await loadOrt(onnx!, size);
        ortInfo = { version: peer.version, threads: peer.threads };
        return { map: peer.run, drain: async () => {}, release: peer.release };
      });
  let ortWebVersion: string | null = null;
  const ortWeb: Array<[OrtWebBuild, PeerResult<MapRunner>]> = [];
  for (const build of b.ortWeb) {
    ortWeb.push([build, await tryPeer(`onnxruntime-web (${build})`, async () => {
      const peer = await loadOrtWeb(build, onnx!, size, b.gpuGlobals, b.peerWait);
      ortWebVersion = peer.version;
      // its maps come back to the CPU inside run(): nothing left to drain
      return { map: peer.run, drain: async () => {}, release: peer.release };
    })]);
  }

  /** Timing of one runner, and its first map (to check that every engine computes the same one). */
  const measure = async (r: MapRunner, x: Float32Array, batch: number) => {
    let first: Float32Array | null = null;
    const t = await time(
      async () => {
        const m = await r.map(x, batch);
        first ??= m;
      },
      r.drain,
      b.timing,
    );
    return { t, map: first! };
  };
  const rows: InferenceRow[] = [];
  for (const batch of batches) {
    const x = benchInputs(batch * 3 * size * size, batch);
    const o = await measure(ours, x, batch);
    const peer = async (name: string, r: PeerResult<MapRunner>): Promise<PeerResult<{ t: Timing; map: Float32Array }>> =>
      'na' in r ? r : tryPeer(`${name} inference`, () => measure(r.ok, x, batch));
    const tf = await peer('tfjs', tfjs);
    const on = await peer('onnxruntime-node', ort);
    const web = new Map<OrtWebBuild, PeerResult<{ t: Timing; map: Float32Array }>>();
    for (const [build, r] of ortWeb) web.set(build, await peer(`onnxruntime-web (${build})`, r));
    let profile: KernelTime[] | string = 'the adapter has no timestamp-query';
    if (rt.features.has('timestamp-query')) profile = (await rt.profile(() => ours.map(x, batch))).kernels;
    const row: InferenceRow = {
      batch,
      size,
      gflopPerImage: (2 * trunkForwardFlops(size)) / 1e9,
      ours: o.t,
      tfjs: 'ok' in tf ? { ok: tf.ok.t } : tf,
      ort: 'ok' in on ? { ok: on.ok.t } : on,
      ortWeb: Object.fromEntries([...web].map(([k, v]) => [k, 'ok' in v ? { ok: v.ok.t } : v])),
      oursMsPerImage: o.t.median / batch,
      ratioTfjs: 'ok' in tf ? tf.ok.t.median / o.t.median : null,
      ratioOrt: 'ok' in on ? on.ok.t.median / o.t.median : null,
      ratioOrtWeb: Object.fromEntries([...web].map(([k, v]) => [k, 'ok' in v ? v.ok.t.median / o.t.median : null])),
      agreement: {
        tfjs: 'ok' in tf ? relDiff(o.map, tf.ok.map) : null,
        ort: 'ok' in on ? relDiff(o.map, on.ok.map) : null,
        ortWeb: Object.fromEntries([...web].map(([k, v]) => [k, 'ok' in v ? relDiff(o.map, v.ok.map) : null])),
      },
      profile,
    };
    rows.push(row);
    const ms = (p: PeerResult<Timing>) => ('ok' in p ? p.ok.median.toFixed(1) : 'n/a');
    console.log(
      `batch ${batch}: ours ${o.t.median.toFixed(1)} ms, tfjs ${ms(row.tfjs)} ms (x${row.ratioTfjs?.toFixed(2) ?? '-'}), ` +
        `onnxruntime ${ms(row.ort)} ms (x${row.ratioOrt?.toFixed(2) ?? '-'})` +
        [...web.keys()].map((k) => `, ort-web ${k} ${ms(row.ortWeb[k]!)} ms (x${row.ratioOrtWeb[k]?.toFixed(2) ?? '-'})`).join('') +
        `; map agreement tfjs ${row.agreement.tfjs?.toExponential(1) ?? '-'}, ort ${row.agreement.ort?.toExponential(1) ?? '-'}` +
        [...web.keys()].map((k) => `, ort-web ${k} ${row.agreement.ortWeb[k]?.toExponential(1) ?? '-'}`).join(''),
    );
  }
  model.dispose();
  for (const r of [tfjs, ort, ...ortWeb.map(([, r]) => r)]) if ('ok' in r) await r.ok.release?.();
  const info = ortInfo as { version: string; threads: number } | null;
  return { rows, ortVersion: info?.version ?? null, ortThreads: info?.threads ?? null, ortWebVersion };
}

/** tfjs: both trunks folded (fused conv + bias + ReLU, its fastest path), NHWC input converted once per batch. */
function tfjsRunner(peer: TfjsPeer, teacherFolded: ReturnType<typeof foldTrunk>, studentFolded: ReturnType<typeof foldTrunk>, size: number, aggregation: 'sum' | 'product'): MapRunner {
  const { tf } = peer;
  const teacher = foldedTrunk(tf, teacherFolded);
  const student = foldedTrunk(tf, studentFolded);
  let lastX: Float32Array | null = null;
  let nhwc: Float32Array = new Float32Array();
  return {
    map: async (x, batch) => {
      if (x !== lastX) [lastX, nhwc] = [x, nchwToNhwc(x, batch, 3, size, size)];
      const m = tf.tidy(() => {
        const xt = tf.tensor4d(nhwc, [batch, size, size, 3]);
        return anomalyMapTf(tf, teacher.forward(xt), student.forward(xt), size, aggregation);
      });
      const d = (await peer.wait(m.data())) as Float32Array;
      m.dispose();
      return d;
    },
    drain: peer.drain,
    release: async () => {
      teacher.dispose();
      student.dispose();
    },
  };
}

// ---- training -------------------------------------------------------------------------------------

export interface TrainingRow {
  method: 'stfpm' | 'dcam';
  batch: number;
  size: number;
  /** Forward teacher + forward and backward student (backward = 2 x forward), per image. */
  gflopPerImage: number;
  ours: Timing;
  tfjs: PeerResult<Timing>;
  oursMsPerImage: number;
  ratioTfjs: number | null;
  /** Loss of the first step, ours and tfjs (the same student and attention weights: they agree). */
  firstLoss: { ours: number; tfjs: number | null };
  /** Peak live GPU bytes during one step (ours); tfjs's allocated GPU bytes after its steps. */
  peakBytes: number;
  tfjsAllocatedBytes: number | null;
  /** GPU time per kernel of one step (timestamp queries), or why there is none. */
  profile: KernelTime[] | string;
  /** What the host asks of WebGPU per step, replayed (as training runs) and through autograd (lib/host-counts.ts). */
  host: { replayed: StepCounts; autograd: StepCounts };
}

type StepCounts = Awaited<ReturnType<typeof countSteps>>;

export async function benchTraining(b: Bench, w: Weights): Promise<TrainingRow[]> {
  const rt = b.rt;
  const sizes = b.quick ? [32] : b.trainSizes;
  const batch = b.quick ? 2 : 8;
  const rows: TrainingRow[] = [];
  for (const method of b.methods) {
    for (const size of sizes) {
      console.log(`\n## training step: ${method}, batch ${batch}, ${size}x${size}`);
      const config = preset(method);
      const attention = createAttention(rt, config.attention, 1, config.reduction);
      // the attention's initial weights, for the tfjs peer's first step to be ours
      const attentionSd = new Map(await Promise.all(attentionTensorNames(attention).map(async ([name, t]) => [name, await t.read()] as const)));
      const model = new DistillationModel(w.teacher, ResNetTrunk.random(rt, STUDENT_SEED), attention, config);
      const opt = new SGD(model.parameters(), { lr: config.lr, momentum: config.momentum, weightDecay: config.weightDecay });
      const x = benchInputs(batch * 3 * size * size, 100 + size);
      const losses: number[] = [];
      // as a training run steps: the first two through autograd (the second recorded), then replays
      const stepper = new TrainStepper(rt, model, opt);
      const step = async () => losses.push((await stepper.step(x, batch, size)).loss);
      const ours = await time(step, () => rt.sync(), { ...b.timing, warmup: Math.max(2, b.timing.warmup) });
      await rt.sync();
      const replayed = await countSteps(b.counters, b.quick ? 1 : 3, step);
      rt.pool.resetPeak();
      const unrecorded = new TrainStepper(rt, model, opt, { replay: false });
      const stepThroughAutograd = async () => losses.push((await unrecorded.step(x, batch, size)).loss);
      await rt.sync();
      const autograd = await countSteps(b.counters, 1, stepThroughAutograd);
      const peakBytes = rt.memory().peakLiveBytes;
      let profile: KernelTime[] | string = 'the adapter has no timestamp-query';
      // a replayed step, as timed (a replay under a profile stamps each dispatch in a pass of its own);
      // through autograd, the host's work would share the cores with a software adapter's kernels
      if (rt.features.has('timestamp-query')) profile = (await rt.profile(step)).kernels;
      stepper.dispose();
      opt.dispose();
      model.dispose();

      let tfFirst: number | null = null;
      let tfjsAllocatedBytes: number | null = null;
      const tfjs: PeerResult<Timing> =
        'na' in b.tfjs
          ? b.tfjs
          : await tryPeer(`tfjs training ${method}`, async () => {
              const peer = (b.tfjs as { ok: TfjsPeer }).ok;
              const { tf } = peer;
              const teacher = foldedTrunk(tf, foldTrunk(w.teacherSd));
              const trainer = tfTrainStep(tf, teacher, w.studentSd, method, { lr: config.lr, momentum: config.momentum, weightDecay: config.weightDecay, reduction: config.reduction }, attentionSd);
              const xh = nchwToNhwc(x, batch, 3, size, size);
              try {
                return await time(
                  async () => {
                    const xt = tf.tensor4d(xh, [batch, size, size, 3]);
                    const v = await peer.wait(trainer.step(xt));
                    xt.dispose();
                    tfFirst ??= v;
                  },
                  peer.drain,
                  { ...b.timing, warmup: Math.max(1, b.timing.warmup) },
                );
              } finally {
                const m = tf.memory() as { numBytesInGPUAllocated?: number; numBytesInGPU?: number };
                tfjsAllocatedBytes = m.numBytesInGPUAllocated ?? m.numBytesInGPU ?? null;
                trainer.dispose();
                teacher.dispose();
              }
            });
      const row: TrainingRow = {
        method,
        batch,
        size,
        gflopPerImage: (4 * trunkForwardFlops(size)) / 1e9,
        ours,
        tfjs,
        oursMsPerImage: ours.median / batch,
        ratioTfjs: 'ok' in tfjs ? tfjs.ok.median / ours.median : null,
        firstLoss: { ours: losses[0], tfjs: tfFirst },
        peakBytes,
        tfjsAllocatedBytes,
        profile,
        host: { replayed, autograd },
      };
      if (!losses.every(Number.isFinite)) throw new Error(`training ${method}: non-finite loss ${losses}`);
      rows.push(row);
      console.log(
        `ours ${ours.median.toFixed(1)} ms/step, tfjs ${'ok' in tfjs ? tfjs.ok.median.toFixed(1) : 'n/a'} ms/step (x${row.ratioTfjs?.toFixed(2) ?? '-'}); ` +
          `first loss ours ${losses[0].toFixed(5)} tfjs ${tfFirst === null ? '-' : (tfFirst as number).toFixed(5)}; peak ${(peakBytes / 2 ** 20).toFixed(1)} MiB`,
      );
    }
  }
  return rows;
}
