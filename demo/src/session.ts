/// <reference types="vite/client" />
/**
 * The demo's engine side, free of DOM code: one WebGPU runtime; a teacher and a model (a trained run, or
 * one trained here); inspection of images; few-shot training with stop/continue; export of the trained
 * model as a run folder (zip) that `dcam infer --run` accepts. Everything runs in the page, on WebGPU.
 */
import { unzipSync, zipSync, strToU8, strFromU8 } from 'fflate';
import { createDevice } from '../../src/graph/device.js';
import type { Runtime } from '../../src/graph/runtime.js';
import { decodeImage, ImageDecodeError, type RgbImage } from '../../src/data/image.js';
import { toInput } from '../../src/data/resize.js';
import { attentionSafetensors, studentSafetensors } from '../../src/model/checkpoint.js';
import { createAttention } from '../../src/model/attention.js';
import { preset, type MethodConfig } from '../../src/model/config.js';
import { DistillationModel } from '../../src/model/distill.js';
import { FoldedTrunk, ResNetTrunk } from '../../src/model/resnet.js';
import { readStateDict } from '../../src/model/weights/index.js';
import { Rng } from '../../src/nn/init.js';
import { SGD } from '../../src/optim/sgd.js';
import { trainStep } from '../../src/train/step.js';
import type { RunConfig, Thresholds } from '../../src/train/run-config.js';
import { FINGERPRINT_TOLERANCE, fingerprintDistance, teacherFingerprint } from '../../src/model/fingerprint.js';
import { normalizeScore } from '../../src/eval/thresholds.js';
import shippedTeacherUrl from '../../weights/resnet18-imagenet-layer1to3.safetensors?url';

/** The ImageNet teacher that ships with dcam-webgpu (served with the page): the default. */
export const SHIPPED_TEACHER_URL = shippedTeacherUrl;

export class DemoError extends Error {}

export interface Inspection {
  name: string;
  score: number;
  /** size x size anomaly map. */
  map: Float32Array;
  /** The network input (normalised CHW), for drawing. */
  input: Float32Array;
  size: number;
  /** Map computation, upload to read-back, in ms. */
  ms: number;
  /** With the run's thresholds: the verdict and the score normalised to [0, 1] (threshold at 0.5). */
  label: 'ok' | 'defect' | null;
  normalized: number | null;
}

export interface TrainOptions {
  method: 'stfpm' | 'dcam';
  size: number;
  batch: number;
  epochs: number;
  lr?: number;
  seed?: number;
}

export interface StepReport {
  step: number;
  totalSteps: number;
  epoch: number;
  loss: number;
  imagesPerSec: number;
}

/** Decodes any PNG/JPEG and resizes it (any size) to size x size, as the CLI does. */
export function prepareImage(bytes: Uint8Array, name: string, size: number): Float32Array {
  let img: RgbImage;
  try {
    img = decodeImage(bytes, name);
  } catch (e) {
    if (e instanceof ImageDecodeError) throw new DemoError(`${name}: not an image this demo can read (PNG or JPEG): ${e.message}`);
    throw e;
  }
  return toInput(img, size);
}

/** An RGBA frame (webcam, canvas) as a network input. */
export function prepareRgba(rgba: Uint8ClampedArray, width: number, height: number, size: number): Float32Array {
  const rgb = new Uint8Array(width * height * 3);
  for (let i = 0; i < width * height; i++) for (let k = 0; k < 3; k++) rgb[3 * i + k] = rgba[4 * i + k];
  return toInput({ width, height, data: rgb }, size);
}

async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const d = await crypto.subtle.digest('SHA-256', bytes as unknown as ArrayBuffer);
  return [...new Uint8Array(d)].map((b) => b.toString(16).padStart(2, '0')).join('');
}

interface Training {
  model: DistillationModel;
  opt: SGD;
  options: Required<TrainOptions>;
  config: MethodConfig;
  data: Float32Array[];
  step: number;
  totalSteps: number;
  order: number[];
  rng: Rng;
  losses: number[];
}

export class DemoSession {
  private teacher: FoldedTrunk | null = null;
  private teacherInfo: { name: string; sha256: string; fingerprint: number[] } | null = null;
  /** The loaded run's decision thresholds (null for a model trained here, or a run never evaluated). */
  thresholds: Thresholds | null = null;
  private model: DistillationModel | null = null;
  /** Image size and method of the current model. */
  size = 256;
  method: MethodConfig | null = null;
  modelSource = '';
  private training: Training | null = null;
  private stopRequested = false;
  private running = false;

  private constructor(readonly rt: Runtime) {}

  /** Throws a DemoError with instructions when the browser has no WebGPU. */
  static async create(): Promise<DemoSession> {
    if (!('gpu' in navigator) || !navigator.gpu) {
      throw new DemoError('This browser has no WebGPU. Use a recent Chrome or Edge (on by default), or enable it: chrome://flags/#enable-unsafe-webgpu; in Firefox, dom.webgpu.enabled in about:config; in Safari, Develop > Feature Flags > WebGPU.');
    }
    return new DemoSession(await createDevice());
  }

  get adapter(): string {
    const a = this.rt.adapter;
    return `${a.vendor} ${a.architecture} ${a.description}`.trim() + (a.isSoftware ? ' (software)' : '');
  }

  get hasTeacher(): boolean {
    return this.teacher !== null;
  }

  get hasModel(): boolean {
    return this.model !== null;
  }

  get isTraining(): boolean {
    return this.running;
  }

  /** Steps done and planned of the current training (null when the model was not trained here). */
  get trainingProgress(): { step: number; totalSteps: number } | null {
    return this.training ? { step: this.training.step, totalSteps: this.training.totalSteps } : null;
  }

  /** Live GPU bytes held by the engine (shows that replaced models are released). */
  gpuBytes(): number {
    return this.rt.memory().liveBytes;
  }

  async loadTeacher(bytes: Uint8Array, name: string): Promise<void> {
    const sd = readStateDict(bytes, name);
    const trunk = ResNetTrunk.fromStateDict(this.rt, sd, name, false);
    const folded = await FoldedTrunk.fromTrunk(trunk).finally(() => trunk.dispose());
    this.releaseModel();
    this.teacher?.dispose();
    this.teacher = folded;
    this.teacherInfo = { name, sha256: await sha256Hex(bytes), fingerprint: await teacherFingerprint(this.rt, folded) };
  }

  /**
   * A run from `dcam train`: config.json and student.safetensors (attention.safetensors is not needed for
   * inspection), as loose files or one zip.
   */
  async loadRun(files: Map<string, Uint8Array>): Promise<void> {
    if (!this.teacher) throw new DemoError('load a teacher first: the run needs the ImageNet ResNet18 it was trained with');
    let named = new Map([...files].map(([k, v]) => [k.replace(/^.*[\\/]/, ''), v]));
    const zip = [...named.entries()].find(([k]) => k.endsWith('.zip'));
    if (zip) named = new Map(Object.entries(unzipSync(zip[1])).map(([k, v]) => [k.replace(/^.*[\\/]/, ''), v]));
    const cfgBytes = named.get('config.json');
    const studentBytes = named.get('student.safetensors');
    if (!cfgBytes || !studentBytes) {
      throw new DemoError(`a run needs config.json and student.safetensors (got: ${[...named.keys()].join(', ') || 'nothing'})`);
    }
    let run: RunConfig;
    try {
      run = JSON.parse(strFromU8(cfgBytes)) as RunConfig;
    } catch (e) {
      throw new DemoError(`config.json is not valid JSON: ${(e as Error).message}`);
    }
    if (!run.method || !run.size) throw new DemoError('config.json is not a dcam run (no method or size)');
    if (run.teacher?.fingerprint && this.teacherInfo) {
      const d = fingerprintDistance(this.teacherInfo.fingerprint, run.teacher.fingerprint);
      if (!(d <= FINGERPRINT_TOLERANCE)) {
        throw new DemoError(`this run was trained with another teacher than ${this.teacherInfo.name} (features differ by ${d.toExponential(2)}): load the teacher it was trained with`);
      }
    }
    const student = ResNetTrunk.fromStateDict(this.rt, readStateDict(studentBytes, 'student.safetensors'), 'student.safetensors', false);
    const model = new DistillationModel(this.teacher, student, [], { ...run.method, attention: 'none' });
    await model.foldForInference();
    this.releaseModel();
    this.model = model;
    this.size = run.size;
    this.method = run.method;
    this.thresholds = run.thresholds ?? null;
    this.modelSource = `run (${run.method.method}, ${run.size}px, categories: ${run.categories.join(', ')})`;
  }

  async inspect(bytes: Uint8Array, name: string): Promise<Inspection> {
    return this.inspectInput(prepareImage(bytes, name, this.size), name);
  }

  async inspectInput(input: Float32Array, name: string): Promise<Inspection> {
    const model = this.model;
    if (!model) throw new DemoError('no model yet: load a trained run, or train one on a few good images');
    const rt = this.rt;
    const S = this.size;
    const t0 = performance.now();
    const map = await rt.tidyAsync(async () => model.anomalyMap(rt.tensor(input, [1, 3, S, S])).read());
    const ms = performance.now() - t0;
    let score = -Infinity;
    for (const v of map) if (v > score) score = v;
    const t = this.thresholds;
    return { name, score, map, input, size: S, ms, label: t ? (score >= t.image ? 'defect' : 'ok') : null, normalized: t ? normalizeScore(score, t) : null };
  }

  /**
   * Starts few-shot training on good images (replacing the current model), or continues a stopped one
   * when `images` is null. `onStep` runs after every step; resolves when done or stopped.
   */
  async train(images: Array<{ name: string; bytes: Uint8Array }> | null, options: TrainOptions | null, onStep: (r: StepReport) => void): Promise<void> {
    if (!this.teacher) throw new DemoError('load a teacher first: the student learns to match the ImageNet ResNet18');
    if (images) {
      if (images.length === 0) throw new DemoError('drop a few good images (5 to 50) to train on');
      const o: Required<TrainOptions> = { lr: preset(options!.method).lr, seed: 0, ...options! };
      const data = images.map((im) => prepareImage(im.bytes, im.name, o.size));
      const config = preset(o.method);
      const model = new DistillationModel(this.teacher, ResNetTrunk.random(this.rt, o.seed), createAttention(this.rt, config.attention, o.seed, config.reduction), config);
      const opt = new SGD(model.parameters(), { lr: o.lr, momentum: config.momentum, weightDecay: config.weightDecay });
      this.releaseModel();
      const batch = Math.min(o.batch, data.length);
      const perEpoch = Math.floor(data.length / batch);
      this.training = { model, opt, options: { ...o, batch }, config, data, step: 0, totalSteps: perEpoch * o.epochs, order: [], rng: new Rng(o.seed), losses: [] };
      this.model = model;
      this.size = o.size;
      this.method = config;
      this.modelSource = `trained here (${o.method}, ${o.size}px, ${data.length} images)`;
    }
    const t = this.training;
    if (!t) throw new DemoError('nothing to continue: start a training first');
    if (this.running) throw new DemoError('training is already running');
    this.stopRequested = false;
    this.running = true;
    try {
      await this.trainLoop(t, onStep);
    } finally {
      this.running = false;
    }
  }

  private async trainLoop(t: Training, onStep: (r: StepReport) => void): Promise<void> {
    const { batch, size } = t.options;
    const perEpoch = Math.floor(t.data.length / batch);
    const x = new Float32Array(batch * 3 * size * size);
    while (t.step < t.totalSteps && !this.stopRequested) {
      const k = t.step % perEpoch;
      if (k === 0) t.order = shuffled(t.data.length, t.rng);
      for (let j = 0; j < batch; j++) x.set(t.data[t.order[k * batch + j]], j * 3 * size * size);
      const t0 = performance.now();
      const { loss } = await trainStep(this.rt, t.model, t.opt, x, batch, size);
      if (!Number.isFinite(loss)) {
        this.stopRequested = true;
        throw new DemoError(`the loss became ${loss} at step ${t.step + 1}: training stopped; try a lower learning rate`);
      }
      t.step++;
      t.losses.push(loss);
      onStep({ step: t.step, totalSteps: t.totalSteps, epoch: Math.floor((t.step - 1) / perEpoch) + 1, loss, imagesPerSec: (batch * 1000) / (performance.now() - t0) });
    }
  }

  stop(): void {
    this.stopRequested = true;
  }

  get losses(): readonly number[] {
    return this.training?.losses ?? [];
  }

  /** The trained model as a run folder (zip): config.json, student.safetensors, attention.safetensors. */
  async exportRun(): Promise<Uint8Array> {
    const t = this.training;
    if (!t) throw new DemoError('train a model here first: loaded runs are already on disk');
    const config: RunConfig = {
      method: t.config,
      size: t.options.size,
      batch: t.options.batch,
      epochs: t.options.epochs,
      steps: null,
      seed: t.options.seed,
      shuffle: true,
      categories: ['browser'],
      data: '(images given in the browser)',
      teacher: { file: this.teacherInfo?.name ?? null, sha256: this.teacherInfo?.sha256 ?? null, fingerprint: this.teacherInfo?.fingerprint },
      trainImages: t.data.length,
    };
    const files: Record<string, Uint8Array> = {
      'run/config.json': strToU8(JSON.stringify(config, null, 2)),
      'run/student.safetensors': await studentSafetensors(t.model.student),
    };
    if (t.model.attention.length) files['run/attention.safetensors'] = await attentionSafetensors(t.model.attention);
    return zipSync(files);
  }

  /** Frees the current model's GPU memory (the teacher stays). */
  private releaseModel(): void {
    if (this.training) {
      this.training.opt.dispose();
      this.training = null;
    }
    this.model?.dispose();
    this.model = null;
    this.thresholds = null;
  }

  destroy(): void {
    this.releaseModel();
    this.teacher?.dispose();
    this.rt.destroy();
  }
}

function shuffled(n: number, rng: Rng): number[] {
  const a = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rng.next() * (i + 1));
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a;
}
