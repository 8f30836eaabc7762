/**
 * The tfjs-backend-webgpu peer: the same convolutions, the same network (teacher + student + anomaly map)
 * and the same losses written in tfjs with its own autograd and optimiser, on the same Dawn adapter, in
 * tfjs's native NHWC layout and with its fused conv + bias + ReLU where the network allows it (its fastest
 * path). The caller must have set `navigator.gpu` to the shared Dawn instance before `loadTfjs`.
 */
/* eslint-disable @typescript-eslint/no-explicit-any */
import { waitAs, type HostWait } from '../../src/graph/host-wait.js';
import type { FoldedConv } from '../../src/model/resnet.js';
import { trunkConvs, walkTrunk, type TrunkConv } from '../../src/model/resnet.js';

type Tf = any;
type T = any;

export interface TfjsPeer {
  tf: Tf;
  /** Closes tfjs's open pass, submits, waits for the queue (what tfjs does before a readback). */
  drain: () => Promise<void>;
  /** Awaits one of tfjs's promises: as tfjs ships (`poll`: Dawn's binding spins a core) or sleeping between polls. */
  wait: <R>(p: Promise<R>) => Promise<R>;
  version: string;
}

export async function loadTfjs(hostWait: HostWait = 'poll'): Promise<TfjsPeer> {
  // The union package: tfjs-core alone registers no gradients in Node.
  const tf: Tf = await import('@tensorflow/tfjs');
  await import('@tensorflow/tfjs-backend-webgpu');
  if (!(await tf.setBackend('webgpu'))) throw new Error('tfjs could not initialise its webgpu backend');
  await tf.ready();
  const backend = tf.backend();
  const wait = <R>(p: Promise<R>): Promise<R> => waitAs(hostWait, p);
  const drain = async () => {
    backend.ensureCommandEncoderReady();
    backend.endComputePassEncoder();
    backend.submitQueue();
    await wait(backend.device.queue.onSubmittedWorkDone());
  };
  return { tf, drain, wait, version: tf.version.tfjs };
}

/** NCHW -> NHWC. */
export function nchwToNhwc(a: Float32Array, n: number, c: number, h: number, w: number): Float32Array {
  const o = new Float32Array(a.length);
  for (let b = 0; b < n; b++)
    for (let ch = 0; ch < c; ch++)
      for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) o[((b * h + y) * w + x) * c + ch] = a[((b * c + ch) * h + y) * w + x];
  return o;
}

/** OIHW -> HWIO (tfjs filter layout). */
export function oihwToHwio(a: Float32Array, o: number, i: number, kh: number, kw: number): Float32Array {
  const r = new Float32Array(a.length);
  for (let oo = 0; oo < o; oo++)
    for (let ii = 0; ii < i; ii++)
      for (let y = 0; y < kh; y++) for (let x = 0; x < kw; x++) r[((y * kw + x) * i + ii) * o + oo] = a[((oo * i + ii) * kh + y) * kw + x];
  return r;
}

// ---- network --------------------------------------------------------------------------------------

/** A conv with its BN (folded or applied), optionally ReLU'd; the trunk's walk adds shortcuts. */
type Conv = (c: TrunkConv, x: T, relu: boolean) => T;

/** conv1 .. layer3 over any conv function; returns the three feature levels (NHWC). */
function trunk(tf: Tf, x: T, conv: Conv): [T, T, T] {
  return walkTrunk<T>({
    conv: (c, h, relu, residual) => (residual ? tf.relu(tf.add(conv(c, h, false), residual)) : conv(c, h, relu)),
    maxPool: (h) => tf.maxPool(h, 3, 2, 1),
  }, x);
}

export interface TfTrunk {
  forward: (x: T) => [T, T, T];
  /** Frees the trunk's weight tensors. */
  dispose: () => void;
}

/** A BN-folded trunk (teacher, or the student at inference) as fused conv + bias (+ ReLU). */
export function foldedTrunk(tf: Tf, folded: readonly FoldedConv[]): TfTrunk {
  const convs = new Map(
    folded.map((c) => {
      const [o, i, kh, kw] = c.shape;
      return [c.conv, { w: tf.tensor4d(oihwToHwio(c.w, o, i, kh, kw), [kh, kw, i, o]), b: tf.tensor1d(c.b), stride: c.stride, pad: c.pad }];
    }),
  );
  return {
    forward: (x) =>
      trunk(tf, x, (tc, h, relu) => {
        const c = convs.get(tc.conv)!;
        return tf.fused.conv2d({ x: h, filter: c.w, strides: c.stride, pad: c.pad, bias: c.b, activation: relu ? 'relu' : 'linear' });
      }),
    dispose: () => {
      for (const c of convs.values()) tf.dispose([c.w, c.b]);
    },
  };
}

/** 1 - cosine similarity across channels (last axis), [N, H, W, 1]. */
function channelCosDistance(tf: Tf, t: T, s: T, eps: number): T {
  const dot = tf.sum(tf.mul(t, s), -1, true);
  const norms = tf.mul(tf.sqrt(tf.sum(tf.square(t), -1, true)), tf.sqrt(tf.sum(tf.square(s), -1, true)));
  return tf.sub(1, tf.div(dot, tf.maximum(norms, eps)));
}

/** The anomaly map [N, S, S, 1]: per level 1 - cos, bilinear (half-pixel) to S, summed or multiplied. */
export function anomalyMapTf(tf: Tf, ft: T[], fs: T[], size: number, aggregation: 'sum' | 'product'): T {
  const maps = ft.map((t, k) => tf.image.resizeBilinear(channelCosDistance(tf, t, fs[k], 1e-8), [size, size], false, true));
  return maps.reduce((a: T, m: T) => (aggregation === 'sum' ? tf.add(a, m) : tf.mul(a, m)));
}

// ---- training -------------------------------------------------------------------------------------

export interface TfTrainStep {
  /** One SGD step on an NHWC batch; resolves with the loss value (read back, so the step has finished). */
  step: (x: T) => Promise<number>;
  dispose: () => void;
}

/**
 * A trainable student (conv without bias, BN in training mode, ReLU), the method's losses and SGD with
 * momentum and weight decay (added to the gradient, as torch.optim.SGD). BN running statistics are not
 * updated (a few small ops the peer is spared).
 */
export function tfTrainStep(
  tf: Tf,
  teacher: TfTrunk,
  studentSd: ReadonlyMap<string, Float32Array>,
  method: 'stfpm' | 'dcam',
  o: { lr: number; momentum: number; weightDecay: number; reduction: number },
  /** The attention's initial weights by their names in attention.safetensors ({k}.mlp.0.weight [C/r, C], {k}.mlp.2.weight [C, C/r]): ours, so both engines take the same first step. */
  attentionSd?: ReadonlyMap<string, Float32Array>,
): TfTrainStep {
  const vars = new Map<string, T>();
  for (const { conv, bn, cout, cin, k } of trunkConvs()) {
    const w = studentSd.get(`${conv}.weight`)!;
    vars.set(`${conv}.weight`, tf.variable(tf.tensor4d(oihwToHwio(w, cout, cin, k, k), [k, k, cin, cout])));
    vars.set(`${bn}.weight`, tf.variable(tf.tensor1d(studentSd.get(`${bn}.weight`)!)));
    vars.set(`${bn}.bias`, tf.variable(tf.tensor1d(studentSd.get(`${bn}.bias`)!)));
  }
  if (method === 'dcam') {
    if (!attentionSd) throw new Error('tfjs dcam step: give the attention weights');
    for (const [k, C] of [64, 128, 256].entries()) {
      const hidden = C / o.reduction;
      // torch's Linear weights are [out, in]; v @ W^T is tf.matMul(v, W transposed)
      const weight = (name: string, rows: number, cols: number) => tf.variable(tf.transpose(tf.tensor2d(attentionSd.get(name)!, [rows, cols])));
      vars.set(`att${k}.0`, weight(`${k}.mlp.0.weight`, hidden, C));
      vars.set(`att${k}.2`, weight(`${k}.mlp.2.weight`, C, hidden));
    }
  }
  const studentConv: Conv = (g, h, relu) => {
    const y = tf.conv2d(h, vars.get(`${g.conv}.weight`), g.stride, g.pad);
    const { mean, variance } = tf.moments(y, [0, 1, 2]);
    const z = tf.batchNorm(y, mean, variance, vars.get(`${g.bn}.bias`), vars.get(`${g.bn}.weight`), 1e-5);
    return relu ? tf.relu(z) : z;
  };
  const attend = (k: number, f: T): T => {
    const mlp = (v: T) => tf.matMul(tf.relu(tf.matMul(v, vars.get(`att${k}.0`))), vars.get(`att${k}.2`));
    const gate = tf.sigmoid(tf.add(mlp(tf.mean(f, [1, 2])), mlp(tf.max(f, [1, 2]))));
    const [N, , , C] = f.shape;
    return tf.mul(f, tf.reshape(gate, [N, 1, 1, C]));
  };
  /** KL(P_t || P_s) with softmax over positions per channel, mean over channels and batch (T = 1). */
  const spatialKD = (t: T, s: T): T => {
    const [N, H, W, C] = t.shape;
    const rows = (f: T) => tf.logSoftmax(tf.reshape(tf.transpose(f, [0, 3, 1, 2]), [N, C, H * W]));
    const lt = rows(t);
    const ls = rows(s);
    return tf.mean(tf.sum(tf.mul(tf.exp(lt), tf.sub(lt, ls)), -1));
  };
  const lossFn = (x: T) => () => {
    const ft = teacher.forward(x);
    const raw = trunk(tf, x, studentConv);
    if (method === 'stfpm') {
      // sum over channels of (t/|t| - s/|s|)^2, mean over batch and positions
      const terms = ft.map((t, k) => {
        const tn = tf.div(t, tf.maximum(tf.norm(t, 'euclidean', -1, true), 1e-12));
        const sn = tf.div(raw[k], tf.maximum(tf.norm(raw[k], 'euclidean', -1, true), 1e-12));
        return tf.mean(tf.sum(tf.squaredDifference(tn, sn), -1));
      });
      return tf.addN(terms);
    }
    const fs = raw.map((f, k) => attend(k, f));
    const terms = ft.map((t, k) => tf.add(tf.mean(channelCosDistance(tf, t, fs[k], 1e-8)), spatialKD(t, fs[k])));
    return tf.addN(terms);
  };
  const optimizer = tf.train.momentum(o.lr, o.momentum);
  const varList = [...vars.values()];
  return {
    step: async (x: T) => {
      const loss = tf.tidy(() => {
        const { value, grads } = tf.variableGrads(lossFn(x), varList);
        const decayed: Record<string, T> = {};
        for (const v of varList) decayed[v.name] = tf.add(grads[v.name], tf.mul(v, o.weightDecay));
        optimizer.applyGradients(decayed);
        return value;
      });
      const v = (await loss.data())[0];
      loss.dispose();
      return v;
    },
    dispose: () => {
      optimizer.dispose();
      for (const v of varList) v.dispose();
    },
  };
}
