/**
 * Few-shot training in an application (browser or Node): a student trained on a handful of good images
 * against the teacher, that can stop, continue, give a Detector at any point and be saved as a run folder
 * that `dcam eval / infer / calibrate` and loadDetector accept.
 *
 *   const trainer = await FewShotTrainer.create({ images, method: 'stfpm', size: 128, epochs: 20 });
 *   await trainer.run({ onProgress: (p) => chart.push(p.loss), signal });   // again to continue
 *   const det = await trainer.detector();
 */
import { strToU8 } from 'fflate';
import { teacherFingerprint } from './model/fingerprint.js';
import { Detector, DetectorError, fetchBytes, openTeacher, SHIPPED_TEACHER_URL, toRgb, type ImageInput } from './detector.js';
import { toInput } from './data/resize.js';
import { cutTiles, makeTiling, type Tiling } from './data/tiles.js';
import { createDevice } from './graph/device.js';
import type { Runtime } from './graph/runtime.js';
import { createAttention } from './model/attention.js';
import { attentionSafetensors, studentSafetensors } from './model/checkpoint.js';
import { preset, type MethodConfig } from './model/config.js';
import { createOptimizer, DistillationModel } from './model/distill.js';
import type { FoldedTrunk } from './model/resnet.js';
import { ResNetTrunk } from './model/resnet.js';
import { readStateDict } from './model/weights/index.js';
import { Rng } from './nn/init.js';
import type { SGD } from './optim/sgd.js';
import type { RunConfig } from './train/run-config.js';
import { TrainStepper } from './train/step.js';

export interface FewShotOptions {
  /** Good images only (a few to a few dozen). */
  images: readonly ImageInput[];
  method?: 'stfpm' | 'dcam';
  size?: number;
  epochs?: number;
  batch?: number;
  lr?: number;
  seed?: number;
  /** Teacher weights: bytes or a URL; default the shipped ImageNet ResNet18. */
  teacher?: Uint8Array | string | URL;
  runtime?: Runtime;
  /**
   * Cut each image into tiles of `tile` px (every `stride`, default half a tile, after a downscale by
   * `scale`, default 1) at its own resolution instead of resizing it to `size`: every tile is a training
   * sample, and the detector stitches its tiles' maps at the image's size (`dcam train --tile`).
   */
  tiling?: { tile: number; stride?: number; scale?: number };
}

export interface TrainProgress {
  step: number;
  totalSteps: number;
  epoch: number;
  loss: number;
  imagesPerSec: number;
}

export class FewShotTrainer {
  private stepsDone = 0;
  private order: number[] = [];
  private running = false;
  /** Loss of every step so far. */
  readonly losses: number[] = [];
  /** Records a step once and replays it from then on (train/step.ts). */
  private readonly stepper: TrainStepper;

  private constructor(
    readonly runtime: Runtime,
    private readonly teacher: FoldedTrunk,
    private readonly teacherInfo: { fingerprint: number[] },
    private readonly model: DistillationModel,
    private readonly opt: SGD,
    readonly config: MethodConfig,
    private readonly data: Float32Array[],
    readonly size: number,
    readonly batch: number,
    readonly epochs: number,
    private readonly seed: number,
    private readonly rng: Rng,
    private readonly ownsRuntime: boolean,
    /** How images are cut into tiles (null: resized to `size`). */
    readonly tiling: Tiling | null,
    private readonly imageCount: number,
  ) {
    this.stepper = new TrainStepper(runtime, model, opt);
  }

  static async create(o: FewShotOptions): Promise<FewShotTrainer> {
    if (o.images.length === 0) throw new DetectorError('few-shot training needs at least one good image');
    const rt = o.runtime ?? (await createDevice());
    try {
      if (o.tiling && o.size !== undefined && o.size !== o.tiling.tile) throw new DetectorError(`tiles of ${o.tiling.tile} with size ${o.size}: a tiled model's size is its tile`);
      const tiling = o.tiling ? makeTiling(o.tiling.tile, o.tiling.stride, o.tiling.scale) : null;
      const size = tiling?.tile ?? o.size ?? 128;
      const seed = o.seed ?? 0;
      const config = preset(o.method ?? 'stfpm', o.lr !== undefined ? { lr: o.lr } : {});
      // the samples: each image resized, or each tile of each image
      const data = o.images.flatMap((img, k) => (tiling ? cutTiles(toRgb(img, `image ${k}`), tiling, `image ${k}`).tiles : [toInput(toRgb(img, `image ${k}`), size)]));
      const teacherBytes = o.teacher instanceof Uint8Array ? o.teacher : await fetchBytes(o.teacher ?? SHIPPED_TEACHER_URL);
      const teacher = await openTeacher(rt, { bytes: teacherBytes, name: 'teacher' });
      const fingerprint = await teacherFingerprint(rt, teacher);
      const model = new DistillationModel(teacher, ResNetTrunk.random(rt, seed), createAttention(rt, config.attention, seed, config.reduction), config);
      const opt = createOptimizer(model);
      return new FewShotTrainer(rt, teacher, { fingerprint }, model, opt, config, data, size, Math.min(o.batch ?? 8, data.length), o.epochs ?? 20, seed, new Rng(seed), !o.runtime, tiling, o.images.length);
    } catch (e) {
      if (!o.runtime) rt.destroy();
      throw e;
    }
  }

  get step(): number {
    return this.stepsDone;
  }

  get totalSteps(): number {
    return this.epochs * Math.floor(this.data.length / this.batch);
  }

  get isRunning(): boolean {
    return this.running;
  }

  /** Trains until done or `signal` aborts (after the current step); call again to continue. */
  async run(o: { onProgress?: (p: TrainProgress) => void; signal?: AbortSignal } = {}): Promise<void> {
    if (this.running) throw new DetectorError('training is already running');
    this.running = true;
    const { batch, size } = this;
    const perEpoch = Math.floor(this.data.length / batch);
    const x = new Float32Array(batch * 3 * size * size);
    try {
      while (this.stepsDone < this.totalSteps && !o.signal?.aborted) {
        const k = this.stepsDone % perEpoch;
        if (k === 0) this.order = this.rng.shuffle(this.data.map((_, i) => i));
        const images = this.order.slice(k * batch, (k + 1) * batch);
        images.forEach((i, j) => x.set(this.data[i], j * 3 * size * size));
        const t0 = performance.now();
        // the images' indices key their teacher features, computed in the first epoch and kept
        const { loss } = await this.stepper.step(x, batch, size, images.map(String));
        if (!Number.isFinite(loss)) throw new DetectorError(`the loss became ${loss} at step ${this.stepsDone + 1}: training stopped; try a lower learning rate`);
        this.stepsDone++;
        this.losses.push(loss);
        o.onProgress?.({ step: this.stepsDone, totalSteps: this.totalSteps, epoch: Math.floor((this.stepsDone - 1) / perEpoch) + 1, loss, imagesPerSec: (batch * 1000) / (performance.now() - t0) });
      }
    } finally {
      this.running = false;
    }
  }

  private async studentCopy(): Promise<ResNetTrunk> {
    const sd = readStateDict(await studentSafetensors(this.model.student), 'student');
    return ResNetTrunk.fromStateDict(this.runtime, sd, 'student', false);
  }

  /**
   * A detector of the student as trained so far (a copy: training may go on). It shares the trainer's
   * teacher and runtime: dispose it before the trainer. No thresholds.
   */
  async detector(): Promise<Detector> {
    return Detector.create(this.runtime, this.teacher, await this.studentCopy(), this.config, this.size, null, { runtime: false, teacher: false }, undefined, this.tiling);
  }

  /** Ends the training: the detector takes over the teacher (and the runtime, if the trainer made it). */
  async finish(): Promise<Detector> {
    const det = await Detector.create(this.runtime, this.teacher, await this.studentCopy(), this.config, this.size, null, { runtime: this.ownsRuntime, teacher: true }, undefined, this.tiling);
    this.stepper.dispose();
    this.opt.dispose();
    this.model.dispose();
    return det;
  }

  /** The model as a run folder's files (config.json, student.safetensors, attention.safetensors). */
  async runFiles(): Promise<Map<string, Uint8Array>> {
    const config: RunConfig = {
      method: this.config, size: this.size, batch: this.batch, epochs: this.epochs, steps: null, seed: this.seed, shuffle: true,
      categories: ['few-shot'], data: '(images given to the app)', trainImages: this.imageCount, ...(this.tiling ? { tiling: this.tiling } : {}),
      // not a file on any disk (file null would mean a random teacher): the CLI then takes the default
      // teacher, or --teacher, and checks it by this fingerprint
      teacher: { file: '(the teacher given to the app)', sha256: null, fingerprint: this.teacherInfo.fingerprint },
    };
    const files = new Map<string, Uint8Array>([
      ['config.json', strToU8(JSON.stringify(config, null, 2))],
      ['student.safetensors', await studentSafetensors(this.model.student)],
    ]);
    if (this.model.attention.length) files.set('attention.safetensors', await attentionSafetensors(this.model.attention));
    return files;
  }

  /** Frees the training's GPU memory (detectors made from it stay valid until the teacher goes: dispose them first). */
  dispose(): void {
    this.stepper.dispose();
    this.opt.dispose();
    this.model.dispose();
    this.teacher.dispose();
    if (this.ownsRuntime) this.runtime.destroy();
  }
}

export interface TrainDetectorOptions extends FewShotOptions {
  onProgress?: (p: TrainProgress) => void;
  /** Aborting stops after the current step; the detector trained so far is returned. */
  signal?: AbortSignal;
}

/** Few-shot training in one call: the trained Detector (no thresholds: good images alone set none). */
export async function trainDetector(o: TrainDetectorOptions): Promise<Detector> {
  const trainer = await FewShotTrainer.create(o);
  try {
    await trainer.run({ onProgress: o.onProgress, signal: o.signal });
  } catch (e) {
    trainer.dispose();
    throw e;
  }
  return trainer.finish();
}
