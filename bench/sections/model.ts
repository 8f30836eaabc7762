/**
 * End-to-end cases: inference (image batch in, anomaly map read back) and one training step (upload, the
 * method's loss, backward, SGD, loss read back), ours beside tfjs-backend-webgpu on the same adapter and,
 * for inference, onnxruntime-node on the CPU. Peak GPU memory and a per-kernel GPU time breakdown of the
 * training step (timestamp queries) come with it.
 */
import { readFileSync } from 'node:fs';
import type { KernelTime } from '../../src/graph/profiler.js';
import type { Runtime } from '../../src/graph/runtime.js';
import { createAttention } from '../../src/model/attention.js';
import { preset } from '../../src/model/config.js';
import { DistillationModel } from '../../src/model/distill.js';
import { FoldedTrunk, foldTrunk, ResNetTrunk, trunkTensorShapes } from '../../src/model/resnet.js';
import { readStateDict } from '../../src/model/weights/index.js';
import { Rng } from '../../src/nn/init.js';
import { SGD } from '../../src/optim/sgd.js';
import { trainStep } from '../../src/train/step.js';
import type { Bench } from '../lib/context.js';
import { buildInferenceOnnx, loadOrt } from '../lib/onnx-peer.js';
import { anomalyMapTf, foldedTrunk, nchwToNhwc, tfTrainStep, type TfjsPeer } from '../lib/tfjs-peer.js';
import { time, tryPeer, type PeerResult, type Timing } from '../lib/timing.js';
import { trunkForwardFlops } from './kernels.js';

/** The benchmark's student: seeded, so every case and every peer starts from the same weights. */
const STUDENT_SEED = 1;

async function trunkArrays(trunk: ResNetTrunk): Promise<Map<string, Float32Array>> {
  const sd = new Map<string, Float32Array>();
  for (const [name] of trunkTensorShapes()) sd.set(name, await trunk.tensor(name).read());
  return sd;
}

function images(n: number, seed: number): Float32Array {
  const rng = new Rng(seed);
  return Float32Array.from({ length: n }, () => rng.normal());
}

/** Largest |a - b| relative to the largest |a|. */
function relDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let d = 0;
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    d = Math.max(d, Math.abs(a[i] - b[i]));
    m = Math.max(m, Math.abs(a[i]));
  }
  return a.length === b.length ? d / (m || 1) : Infinity;
}

/** The teacher (real weights when available) and a seeded random student, as GPU trunks and as arrays. */
export interface Weights {
  teacher: FoldedTrunk;
  teacherSd: Map<string, Float32Array>;
  studentSd: Map<string, Float32Array>;
  source: string;
}

export async function loadWeights(b: Bench): Promise<Weights> {
  const rt = b.rt;
  const f = b.teacherFile;
  const trunk = f ? ResNetTrunk.fromStateDict(rt, readStateDict(readFileSync(f), f), f, false) : ResNetTrunk.random(rt, 7919);
  const teacherSd = await trunkArrays(trunk);
  const teacher = await FoldedTrunk.fromTrunk(trunk);
  trunk.dispose();
  const student = ResNetTrunk.random(rt, STUDENT_SEED);
  const studentSd = await trunkArrays(student);
  student.dispose();
  return { teacher, teacherSd, studentSd, source: f ?? 'random teacher (no weights file found)' };
}

// ---- inference ------------------------------------------------------------------------------------

export interface InferenceRow {
  batch: number;
  size: number;
  gflopPerImage: number;
  ours: Timing;
  tfjs: PeerResult<Timing>;
  ort: PeerResult<Timing>;
  /** ms per image, and peer / ours (above 1: we are faster). */
  oursMsPerImage: number;
  ratioTfjs: number | null;
  ratioOrt: number | null;
  /** Largest map difference relative to the map's largest value (the peers compute the same map). */
  agreement: { tfjs: number | null; ort: number | null };
}

export async function benchInference(b: Bench, w: Weights): Promise<{ rows: InferenceRow[]; ortVersion: string | null; ortThreads: number | null }> {
  const rt = b.rt;
  const size = b.quick ? 32 : 256;
  const batches = b.quick ? [1, 2] : [1, 8];
  console.log(`\n## inference (teacher + student + anomaly map, ${size}x${size})`);
  const config = preset('dcam', { attention: 'none' });
  const model = new DistillationModel(w.teacher, ResNetTrunk.random(rt, STUDENT_SEED), [], config);
  await model.foldForInference();
  const teacherFolded = foldTrunk(w.teacherSd);
  const studentFolded = foldTrunk(w.studentSd);

  let ort: PeerResult<Awaited<ReturnType<typeof loadOrt>>> = { na: 'disabled by --no-ort' };
  if (!b.noOrt) ort = await tryPeer('onnxruntime-node', async () => loadOrt(await buildInferenceOnnx(teacherFolded, studentFolded, size, config.aggregation), size));
  let tfNets: PeerResult<{ peer: TfjsPeer; teacher: ReturnType<typeof foldedTrunk>; student: ReturnType<typeof foldedTrunk> }> = 'na' in b.tfjs ? b.tfjs : { na: '' };
  if ('ok' in b.tfjs) {
    const peer = b.tfjs.ok;
    tfNets = { ok: { peer, teacher: foldedTrunk(peer.tf, teacherFolded), student: foldedTrunk(peer.tf, studentFolded) } };
  }

  const rows: InferenceRow[] = [];
  for (const batch of batches) {
    const x = images(batch * 3 * size * size, batch);
    let oursMap: Float32Array | null = null;
    const ours = await time(
      async () => {
        const t = rt.tensor(x, [batch, 3, size, size]);
        const m = model.anomalyMap(t);
        t.dispose();
        const d = await m.read();
        oursMap ??= d;
        m.dispose();
      },
      () => rt.sync(),
      b.timing,
    );
    let tfMap: Float32Array | null = null;
    const tfjs: PeerResult<Timing> =
      'na' in tfNets
        ? tfNets
        : await tryPeer('tfjs inference', () => {
            const { peer, teacher, student } = (tfNets as { ok: { peer: TfjsPeer; teacher: ReturnType<typeof foldedTrunk>; student: ReturnType<typeof foldedTrunk> } }).ok;
            const { tf } = peer;
            const xh = nchwToNhwc(x, batch, 3, size, size);
            return time(
              async () => {
                const m = tf.tidy(() => {
                  const xt = tf.tensor4d(xh, [batch, size, size, 3]);
                  return anomalyMapTf(tf, teacher(xt), student(xt), size, config.aggregation);
                });
                const d = (await m.data()) as Float32Array;
                tfMap ??= d;
                m.dispose();
              },
              peer.drain,
              b.timing,
            );
          });
    let ortMap: Float32Array | null = null;
    const ortT: PeerResult<Timing> =
      'na' in ort
        ? ort
        : await tryPeer('onnxruntime-node inference', () => {
            const peer = (ort as { ok: Awaited<ReturnType<typeof loadOrt>> }).ok;
            return time(
              async () => {
                const d = await peer.run(x, batch);
                ortMap ??= d;
              },
              async () => {},
              b.timing,
            );
          });
    const gflopPerImage = (2 * trunkForwardFlops(size)) / 1e9;
    const row: InferenceRow = {
      batch,
      size,
      gflopPerImage,
      ours,
      tfjs,
      ort: ortT,
      oursMsPerImage: ours.median / batch,
      ratioTfjs: 'ok' in tfjs ? tfjs.ok.median / ours.median : null,
      ratioOrt: 'ok' in ortT ? ortT.ok.median / ours.median : null,
      agreement: { tfjs: tfMap ? relDiff(oursMap!, tfMap) : null, ort: ortMap ? relDiff(oursMap!, ortMap) : null },
    };
    rows.push(row);
    console.log(
      `batch ${batch}: ours ${ours.median.toFixed(1)} ms, tfjs ${'ok' in tfjs ? tfjs.ok.median.toFixed(1) : 'n/a'} ms (x${row.ratioTfjs?.toFixed(2) ?? '-'}), ` +
        `onnxruntime ${'ok' in ortT ? ortT.ok.median.toFixed(1) : 'n/a'} ms (x${row.ratioOrt?.toFixed(2) ?? '-'}); map agreement tfjs ${row.agreement.tfjs?.toExponential(1) ?? '-'}, ort ${row.agreement.ort?.toExponential(1) ?? '-'}`,
    );
  }
  model.dispose();
  if ('ok' in ort) await ort.ok.release();
  return { rows, ortVersion: 'ok' in ort ? ort.ok.version : null, ortThreads: 'ok' in ort ? ort.ok.threads : null };
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
  /** Loss of the first step, ours and tfjs (same weights: they agree for stfpm; dcam's attention inits differ). */
  firstLoss: { ours: number; tfjs: number | null };
  /** Peak live GPU bytes during one step (ours); tfjs's allocated GPU bytes after its steps. */
  peakBytes: number;
  tfjsAllocatedBytes: number | null;
  /** GPU time per kernel of one step (timestamp queries), or why there is none. */
  profile: KernelTime[] | string;
}

export async function benchTraining(b: Bench, w: Weights): Promise<TrainingRow[]> {
  const rt = b.rt;
  const sizes = b.quick ? [32] : b.trainSizes;
  const batch = b.quick ? 2 : 8;
  const rows: TrainingRow[] = [];
  for (const method of b.methods) {
    for (const size of sizes) {
      console.log(`\n## training step: ${method}, batch ${batch}, ${size}x${size}`);
      const config = preset(method);
      const model = new DistillationModel(w.teacher, ResNetTrunk.random(rt, STUDENT_SEED), createAttention(rt, config.attention, 1, config.reduction), config);
      const opt = new SGD(model.parameters(), { lr: config.lr, momentum: config.momentum, weightDecay: config.weightDecay });
      const x = images(batch * 3 * size * size, 100 + size);
      const losses: number[] = [];
      const step = async () => losses.push((await trainStep(rt, model, opt, x, batch, size)).loss);
      const ours = await time(step, () => rt.sync(), { ...b.timing, warmup: Math.max(1, b.timing.warmup) });
      rt.pool.resetPeak();
      await step();
      const peakBytes = rt.memory().peakLiveBytes;
      let profile: KernelTime[] | string = 'the adapter has no timestamp-query';
      if (rt.features.has('timestamp-query')) profile = (await rt.profile(step)).kernels;
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
              const trainer = tfTrainStep(tf, teacher, w.studentSd, method, { lr: config.lr, momentum: config.momentum, weightDecay: config.weightDecay, reduction: config.reduction, seed: 1 });
              const xh = nchwToNhwc(x, batch, 3, size, size);
              try {
                return await time(
                  async () => {
                    const xt = tf.tensor4d(xh, [batch, size, size, 3]);
                    const v = await trainer.step(xt);
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
